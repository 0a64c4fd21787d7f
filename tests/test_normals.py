"""The seeded Gaussian samples (``_core.normal_samples``; ``teacher_samples`` and
``fit_teacher`` read the same stream): Box-Muller on the generator's uniforms with log, sin
and cos evaluated in vector lanes by the core's own polynomials. Checked against NumPy's
libm on the same uniforms (a Python xoshiro256** in tests/reference), for their
distribution, and for the same bits under every kernel variant."""

from __future__ import annotations

import numpy as np
import pytest
from eulerflow import _core
from reference import normals_reference as ref

ULPS = 4  # the core's log, sin and cos against libm's, through sqrt and the product


def ulps_apart(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.spacing(np.abs(want))


@pytest.mark.parametrize("seed", [0, 2, 9, 2**63 + 5])
@pytest.mark.parametrize("n", [1, 2, 7, 40, 64, 65, 129, 1001])
def test_samples_are_box_muller_of_the_generators_uniforms(seed, n):
    """Every count: one pass (up to 64 values), several, a partial vector of lanes, an odd
    count (the last sine dropped)."""
    got = _core.normal_samples(seed, n)
    want = ref.normal_samples(seed, n)
    assert got.shape == (n,)
    assert ulps_apart(got, want).max() <= ULPS


def test_consecutive_calls_continue_one_stream_in_pairs():
    """fit_teacher draws a batch per call: for even counts, consecutive calls on one
    generator are consecutive pieces of one call's stream (the teacher_samples a test
    compares a run with)."""
    want = ref.normal_samples(3, 600)
    got = _core.normal_samples(3, 600)
    assert ulps_apart(got, want).max() <= ULPS
    np.testing.assert_array_equal(got[:40], _core.normal_samples(3, 40))


def hard_uniforms() -> tuple[np.ndarray, np.ndarray]:
    """u2 next to every multiple of 1/8 (zeros of sin and cos, the folds of the quadrants)
    and at its ends; u1 next to 1 (small radius) and down to 2^-53 (the largest)."""
    step = 2.0**-53
    near = np.arange(-2**16, 2**16) * step
    u2 = np.concatenate([q / 8 + near for q in range(1, 8)] +
                        [np.arange(2**16) * step, 1 - np.arange(1, 2**16) * step])
    u1 = np.concatenate([1 - np.arange(2**18) * step, np.arange(1, 2**18) * step,
                         np.random.default_rng(0).random(len(u2))])[:len(u2)]
    return np.maximum(u1, step), u2


def test_box_muller_is_within_a_few_ulp_of_libm_where_it_is_hard():
    u1, u2 = hard_uniforms()
    got, want = _core._box_muller(u1, u2), ref.box_muller(u1, u2)
    zero = want == 0  # u1 = 1: a radius of 0
    np.testing.assert_array_equal(got[zero], 0.0)
    assert ulps_apart(got[~zero], want[~zero]).max() <= ULPS
    assert np.array_equal(np.signbit(got[~zero]), np.signbit(want[~zero]))


def test_box_muller_takes_uniforms_of_its_domain_only():
    with pytest.raises(ValueError, match="u1 must lie"):
        _core._box_muller([0.0], [0.5])
    with pytest.raises(ValueError, match="u1 must lie"):
        _core._box_muller([0.5], [1.0])
    with pytest.raises(ValueError, match="one length"):
        _core._box_muller([0.5, 0.5], [0.5])


def test_samples_are_standard_gaussian():
    stats = pytest.importorskip("scipy.stats")
    x = _core.normal_samples(11, 400_000)
    assert abs(x.mean()) < 4 / np.sqrt(len(x))
    assert abs(x.var() - 1) < 4 * np.sqrt(2 / len(x))
    assert stats.kstest(x, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(x[0::2], x[1::2])[0, 1]) < 4 / np.sqrt(len(x) / 2)
    # the tails: P(|x| > 3) = 0.0027
    assert abs(np.mean(np.abs(x) > 3) - 2 * stats.norm.sf(3)) < 4e-4


def test_same_bits_under_every_kernel_variant(each_isa_variant):
    u1, u2 = hard_uniforms()
    first, first_bm = None, None
    for variant in each_isa_variant():
        x = _core.normal_samples(5, 1001)
        bm = _core._box_muller(u1, u2)
        if first is None:
            first, first_bm = x, bm
            continue
        np.testing.assert_array_equal(x, first, err_msg=variant)
        np.testing.assert_array_equal(bm, first_bm, err_msg=variant)
