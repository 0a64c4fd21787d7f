"""The adaptive fast path of the native fields against the generic stepping loop, bit for bit.

``odeint`` with one state (batch 1) of a built-in field and dopri5, tsit5 or dopri8 runs
its adaptive loop with the field's arithmetic inlined and the stages in registers
(cpp/src/rk_native.cpp, adaptive_native). It must take the steps of the generic loop
(rk.cpp: rk_step calling the field through its virtual eval, error_norm), which a native
field takes when wrapped in the private ``_core.OpaqueField``, and give its bits: the
outputs (end points and dense output inside the steps), the counts and the error messages.
The generic loop itself is checked against scipy and closed forms in test_ode.py and
test_dopri8.py.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from eulerflow import _core
from test_ode_fast_path import FIELDS

ADAPTIVE = ("dopri5", "tsit5", "dopri8")
ARENSTORF_PERIOD = 17.0652165601579625588917206249

# times: the end point only, many outputs inside the steps, backwards, irregular
GRIDS = {
    "end-point": np.array([0.0, 1.5]),
    "dense": np.linspace(0.0, 1.5, 40),
    "backwards": np.array([0.2, 0.05, -0.1]),
    "irregular": np.array([-1.0, -0.93, -0.5, -0.4999, 0.0]),
}


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def _run(core_field, y0, t, method, tol, max_steps=10**5):
    out, info = _core.odeint(core_field, np.ascontiguousarray(y0, dtype=np.float64), 1,
                             np.ascontiguousarray(t, dtype=np.float64), method, tol, tol, 0.0,
                             max_steps)
    return out.reshape((len(t), *y0.shape)), dict(info)


def _assert_fast_is_generic(core_field, y0, t, method, tol, max_steps=10**5):
    ys_f, info_f = _run(core_field, y0, t, method, tol, max_steps)
    ys_g, info_g = _run(_core.OpaqueField(core_field), y0, t, method, tol, max_steps)
    different = _bits(ys_f) != _bits(ys_g)
    assert not different.any(), (
        f"{int(different.sum())} of {different.size} values differ; largest gap "
        f"{np.nanmax(np.abs(ys_f - ys_g)):.3e}")
    assert info_f == info_g
    return ys_f, info_f


@pytest.mark.parametrize("method", ADAPTIVE)
@pytest.mark.parametrize("name", list(FIELDS))
def test_one_state_of_every_native_field_takes_the_fast_path(name, method):
    field, _ = FIELDS[name]
    assert _core.has_adaptive_native(field._core_field, method, 1)
    # the wrapped field, a batch, and the other adaptive method do not
    assert not _core.has_adaptive_native(_core.OpaqueField(field._core_field), method, 1)
    assert not _core.has_adaptive_native(field._core_field, method, 2)
    assert not _core.has_adaptive_native(field._core_field, "bosh3", 1)
    assert not _core.has_adaptive_native(field._core_field, "rk4", 1)


@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize("method", ADAPTIVE)
@pytest.mark.parametrize("name", list(FIELDS))
def test_fast_path_has_the_bits_of_the_generic_loop(name, method, grid):
    field, make_y0 = FIELDS[name]
    y0 = make_y0(1, np.random.default_rng(3))
    for tol in (1e-4, 1e-8, 1e-12):
        # a single state of shape (d,) and of shape (1, d)
        _assert_fast_is_generic(field._core_field, y0[0], GRIDS[grid], method, tol)
        _assert_fast_is_generic(field._core_field, y0, GRIDS[grid], method, tol)


@pytest.mark.parametrize("method", ["dopri5", "dopri8"])
def test_arenstorf_period_with_rejected_steps(method):
    # the W7 benchmark's solve: hundreds of steps, rejected ones among them, and a chaotic
    # enough orbit that a difference of one bit would grow far beyond it
    y0 = np.array(ef.fields.Arenstorf.Y0)
    t = np.array([0.0, ARENSTORF_PERIOD])
    ys, info = _assert_fast_is_generic(ef.fields.Arenstorf()._core_field, y0, t, method, 1e-12)
    assert info["nrejected"] > 0 and info["naccepted"] > 200
    assert np.linalg.norm(ys[-1] - y0) < 1e-7
    # the public call takes the same path
    pub = ef.odeint(ef.fields.Arenstorf(), y0, t, method=method, rtol=1e-12, atol=1e-12)
    assert np.array_equal(_bits(pub), _bits(ys))


def test_signed_zeros_keep_their_bits():
    field = ef.fields.Linear(np.array([[1.0, 0.0], [0.0, -2.0]]))._core_field
    for method in ADAPTIVE:
        ys, _ = _assert_fast_is_generic(field, np.array([-0.0, 0.0]), np.array([0.0, 0.5, 1.0]),
                                        method, 1e-8)
        assert np.all(ys == 0.0)


def _error(core_field, y0, t, method, tol, max_steps):
    with pytest.raises(ef.IntegrationError) as e:
        _run(core_field, y0, t, method, tol, max_steps)
    return str(e.value)


@pytest.mark.parametrize("method", ADAPTIVE)
def test_errors_match_the_generic_loop(method):
    lorenz = ef.fields.Lorenz()._core_field
    # overflows near t = 0.14: blown-up stages, rejected steps, then the step size
    # underflows (dopri5, tsit5) or the inf reaches the end (dopri8)
    blowup = ef.fields.Linear(np.array([[5000.0]]))._core_field
    cases = [
        (lorenz, np.array([1.0, 1.0, 1.0]), np.array([0.0, 5.0]), 30, "max_steps"),
        (lorenz, np.array([1.0, 1.0, 1.0]), np.array([0.0, 1e-3, 5.0]), 12, "max_steps"),
        (blowup, np.array([1.0]), np.array([0.0, 0.1, 1.0]), 10**5,
         "non-finite" if method == "dopri8" else "step size underflow"),
    ]
    for field, y0, t, max_steps, what in cases:
        fast = _error(field, y0, t, method, 1e-10, max_steps)
        generic = _error(_core.OpaqueField(field), y0, t, method, 1e-10, max_steps)
        assert fast == generic
        assert what in fast
