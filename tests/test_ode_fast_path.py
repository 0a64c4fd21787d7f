"""The fixed-step fast path of the native fields against the generic stepping loop, bit for bit.

``odeint`` with a built-in field (Lorenz, VanDerPol, Arenstorf, Projectile, Linear with
d <= 4) and a fixed-step method runs a loop with the field's arithmetic inlined, a batch
16 trajectories side by side in SIMD registers (cpp/src/rk_native.cpp). It must give the
bits of the generic loop (rk.cpp: rk_step calling the field through its virtual eval),
which a native field takes when wrapped in the private ``_core.OpaqueField``. The generic
loop itself is checked against independent references in test_ode.py; here, every
difference of one bit (signs of zeros included) fails, and so do differing step counts
and error messages.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from eulerflow import _core

FIXED = ("euler", "midpoint", "heun", "rk4", "rk38")

RNG = np.random.default_rng(20261125)
LINEAR_A = {d: RNG.standard_normal((d, d)) - 0.5 * np.eye(d) for d in (1, 2, 3, 4)}
LINEAR_B = {d: RNG.standard_normal(d) for d in (1, 2, 3, 4)}


def _fields():
    """name -> (field, y0 maker (batch, rng) -> (batch, d))."""
    arenstorf_y0 = np.array(ef.fields.Arenstorf.Y0)
    fields = {
        "lorenz": (ef.fields.Lorenz(), lambda n, rng: 1.0 + 3.0 * rng.standard_normal((n, 3))),
        "lorenz-params": (ef.fields.Lorenz(sigma=9.5, rho=31.0, beta=2.5),
                          lambda n, rng: rng.standard_normal((n, 3))),
        "vanderpol": (ef.fields.VanDerPol(mu=1.5), lambda n, rng: rng.standard_normal((n, 2))),
        "arenstorf": (ef.fields.Arenstorf(),
                      lambda n, rng: arenstorf_y0 + 0.01 * rng.standard_normal((n, 4))),
        "projectile": (ef.fields.Projectile(), lambda n, rng: rng.standard_normal((n, 6))),
    }
    for d in (1, 2, 3, 4):
        fields[f"linear{d}"] = (ef.fields.Linear(LINEAR_A[d]),
                                lambda n, rng, d=d: rng.standard_normal((n, d)))
        fields[f"linear{d}-bias"] = (ef.fields.Linear(LINEAR_A[d], LINEAR_B[d]),
                                     lambda n, rng, d=d: rng.standard_normal((n, d)))
    return fields


FIELDS = _fields()

# (times, step_size): one step per interval, steps that divide the interval, steps whose
# last one is shortened, steps longer than an interval, decreasing and irregular times
GRIDS = {
    "one-step-per-interval": (np.linspace(0.0, 0.5, 6), None),
    "h=1e-3": (np.array([0.0, 0.25]), 1e-3),
    "h=0.0137-shortened-last": (np.array([0.0, 0.3, 0.5]), 0.0137),
    "h-longer-than-interval": (np.array([0.0, 0.01, 0.05, 0.06]), 0.02),
    "backwards": (np.array([0.2, 0.05, -0.1]), 0.009),
    "irregular": (np.array([-1.0, -0.93, -0.5, -0.4999, 0.0]), 0.0071),
}


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def _run(core_field, y0, t, method, step_size, max_steps=10**7):
    batch = y0.shape[0] if y0.ndim == 2 else 1
    out, info = _core.odeint(core_field, np.ascontiguousarray(y0, dtype=np.float64), batch,
                             np.ascontiguousarray(t, dtype=np.float64), method, 1e-7, 1e-9,
                             float(step_size or 0.0), max_steps)
    return out.reshape((len(t), *y0.shape)), dict(info)


def _fast_and_generic(field, y0, t, method, step_size, max_steps=10**7):
    fast = _run(field._core_field, y0, t, method, step_size, max_steps)
    generic = _run(_core.OpaqueField(field._core_field), y0, t, method, step_size, max_steps)
    return fast, generic


def _assert_same(fast, generic):
    (ys_f, info_f), (ys_g, info_g) = fast, generic
    assert ys_f.shape == ys_g.shape
    different = _bits(ys_f) != _bits(ys_g)
    assert not different.any(), (
        f"{int(different.sum())} of {different.size} values differ; largest gap "
        f"{np.nanmax(np.abs(ys_f - ys_g)):.3e}")
    assert info_f == info_g


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("name", list(FIELDS))
def test_every_native_field_and_fixed_method_takes_the_fast_path(name, method):
    field, _ = FIELDS[name]
    assert _core.has_fixed_native(field._core_field, method)
    # the wrapped field does not: the comparisons below really compare two loops
    assert not _core.has_fixed_native(_core.OpaqueField(field._core_field), method)


@pytest.mark.parametrize("method", ["bosh3", "dopri5", "radau5"])
def test_adaptive_methods_and_other_fields_take_the_generic_path(method):
    assert not _core.has_fixed_native(ef.fields.Lorenz()._core_field, method)
    assert not _core.has_fixed_native(_core.PyField(lambda t, y: -y, 3, False), "rk4")
    assert not _core.has_fixed_native(ef.fields.Linear(np.eye(5))._core_field, "rk4")


def test_opaque_field_needs_a_field():
    with pytest.raises(ValueError, match="needs a field"):
        _core.OpaqueField(None)


def test_the_fast_path_covers_every_fixed_method():
    # a new fixed-step method takes the generic loop until rk_native.cpp knows its terms
    assert set(ef.ode.FIXED_METHODS) == set(FIXED)


@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("name", list(FIELDS))
def test_fast_path_has_the_bits_of_the_generic_loop(name, method, grid):
    field, make_y0 = FIELDS[name]
    t, step_size = GRIDS[grid]
    rng = np.random.default_rng(7)
    for batch in (1, 3, 17):
        y0 = make_y0(batch, rng)
        _assert_same(*_fast_and_generic(field, y0, t, method, step_size))
    # a single state of shape (d,)
    y0 = make_y0(1, rng)[0]
    _assert_same(*_fast_and_generic(field, y0, t, method, step_size))


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("name", ["lorenz", "vanderpol", "arenstorf", "projectile",
                                  "linear3-bias"])
def test_batch_rows_have_the_bits_of_single_rows(name, method):
    # every batch size from 1 to 9 (partial blocks of 16 lanes), two blocks and a bit, and
    # 1,024 trajectories: each row as if integrated alone (the fast path's single-trajectory
    # loop), and the whole batch as the generic loop
    field, make_y0 = FIELDS[name]
    rng = np.random.default_rng(11)
    t, step_size = np.array([0.0, 0.05, 0.2]), 0.003
    for batch in (*range(1, 10), 33, 1024):
        y0 = make_y0(batch, rng)
        (ys, info), generic = _fast_and_generic(field, y0, t, method, step_size)
        _assert_same((ys, info), generic)
        rows = range(batch) if batch <= 33 else rng.choice(batch, 12, replace=False)
        for r in rows:
            alone, _ = _run(field._core_field, y0[r], t, method, step_size)
            assert np.array_equal(_bits(ys[:, r]), _bits(alone)), (batch, r)


def test_one_trajectory_for_many_steps():
    # the W5 benchmark's call, shortened: 20,000 chaotic steps amplify any rounding
    # difference far beyond one ulp
    field = ef.fields.Lorenz()
    y0 = np.array([1.0, 1.0, 1.0])
    fast, generic = _fast_and_generic(field, y0, np.array([0.0, 20.0]), "rk4", 1e-3)
    _assert_same(fast, generic)
    assert fast[1]["nsteps"] == 20_000
    ys = ef.odeint(field, y0, [0.0, 20.0], method="rk4", step_size=1e-3)
    assert np.array_equal(_bits(ys), _bits(fast[0]))


def test_signed_zeros_keep_their_bits():
    # dy = A y without a bias starts from +0.0, as the generic field does: -0.0 states
    # and zero products must give the same signs of zeros on both paths
    field = ef.fields.Linear(np.array([[1.0, 0.0], [0.0, -2.0]]))
    y0 = np.array([[-0.0, 0.0], [0.0, -0.0], [-0.0, -0.0]])
    for method in FIXED:
        fast, generic = _fast_and_generic(field, y0, np.array([0.0, 0.5, 1.0]), method, 0.1)
        _assert_same(fast, generic)
        assert np.all(fast[0] == 0.0)


@pytest.mark.parametrize("method", FIXED)
def test_step_sizes_near_underflow(method):
    # h = 2 x the smallest subnormal: h * b_j rounds to zero for some weights, a term
    # rk_step then skips; the fast path hands such an interval to rk_step itself
    field, make_y0 = FIELDS["lorenz"]
    y0 = make_y0(3, np.random.default_rng(0))
    for t in (np.array([0.0, 1e-323]), np.array([0.0, 1e-323, 1.0])):
        _assert_same(*_fast_and_generic(field, y0, t, method, None))
    _assert_same(*_fast_and_generic(field, y0, np.array([0.0, 4e-323]), method, 1e-323))


def _error(field, y0, t, method, step_size, max_steps):
    with pytest.raises(ef.IntegrationError) as e:
        _run(field, y0, t, method, step_size, max_steps)
    return str(e.value)


@pytest.mark.parametrize("method", FIXED)
def test_errors_match_the_generic_loop(method):
    lorenz = ef.fields.Lorenz()._core_field
    y0 = np.array([[1.0, 1.0, 1.0], [2.0, 0.5, 0.0]])
    cases = [
        (np.array([0.0, 1.0]), 0.01, 50),              # max_steps inside an interval
        (np.array([0.0, 0.5, 1.0]), None, 1),          # at an output time
        (np.array([3.0, 2.0]), 0.1, 4),                # backwards
        (np.array([0.0, 1.0]), 1e-300, 100_000),       # a step count beyond int64
    ]
    for t, h, max_steps in cases:
        fast = _error(lorenz, y0, t, method, h, max_steps)
        generic = _error(_core.OpaqueField(lorenz), y0, t, method, h, max_steps)
        assert fast == generic
        assert "max_steps" in fast
    # a solution that overflows: the same time is named
    blowup = ef.fields.Linear(np.array([[5000.0]]))._core_field
    t = np.array([0.0, 0.5, 1.0, 2.0])
    fast = _error(blowup, np.array([1.0]), t, method, 0.01, 10**6)
    generic = _error(_core.OpaqueField(blowup), np.array([1.0]), t, method, 0.01, 10**6)
    assert fast == generic
    assert "non-finite" in fast


def test_per_row_times_take_the_fast_path_too():
    field = ef.fields.VanDerPol(mu=1.5)
    rng = np.random.default_rng(5)
    y0 = rng.standard_normal((4, 2))
    t = np.sort(rng.uniform(0.0, 2.0, (4, 6)), axis=1)
    fast, info_f = _core.odeint_rows(field._core_field, y0, t, "rk38", 1e-7, 1e-9, 0.01, 10**6)
    generic, info_g = _core.odeint_rows(_core.OpaqueField(field._core_field), y0, t, "rk38",
                                        1e-7, 1e-9, 0.01, 10**6)
    assert np.array_equal(_bits(fast), _bits(generic))
    assert dict(info_f) == dict(info_g)
