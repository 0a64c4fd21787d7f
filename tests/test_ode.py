"""``ef.odeint``, the Butcher tableaus and the native fields against independent numbers.

References: the literature tableaus and the NumPy stepper of tests/reference/rk_reference.py
(fixed-step methods to 1e-12), Butcher's order conditions, the matrix exponential
(scipy.linalg.expm) for linear fields, closed forms for the projectile and for
y' = -2 t y^2, measured convergence orders, the Arenstorf periodic orbit and
scipy.integrate.solve_ivp (DOP853) for Van der Pol, and the same fields written in Python.
"""

from __future__ import annotations

import math
import re

import eulerflow as ef
import numpy as np
import pytest
from reference import rk_reference as ref

FIXED = ("euler", "midpoint", "heun", "rk4", "rk38")
ADAPTIVE = ("bosh3", "dopri5")
ORDER = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4, "rk38": 4, "bosh3": 3, "dopri5": 5}
STAGES = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4, "rk38": 4, "bosh3": 4, "dopri5": 7}

# a damped rotation and a 3-D linear field with a bias
SPIRAL = np.array([[-0.1, 2.0], [-2.0, -0.1]])
A3 = np.array([[-0.1, 2.0, 0.0], [-2.0, -0.1, 0.3], [0.2, 0.0, -0.5]])
B3 = np.array([1.0, -0.5, 0.25])


def expm(M):
    return pytest.importorskip("scipy.linalg").expm(M)


def linear_exact(A, b, y0, ts):
    """y(t) = expm(t A) y0 (b None) or, with a bias, the top rows of
    expm(t [[A, b], [0, 0]]) [y0, 1]."""
    d = A.shape[0]
    if b is None:
        return np.array([expm(s * A) @ y0 for s in ts])
    M = np.zeros((d + 1, d + 1))
    M[:d, :d], M[:d, d] = A, b
    return np.array([(expm(s * M) @ np.append(y0, 1.0))[:d] for s in ts])


# --- the fields written in Python, from their textbook formulas (any leading shape) ---

def lorenz_py(sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    def f(t, y):
        x, v, z = y[..., 0], y[..., 1], y[..., 2]
        return np.stack([sigma * (v - x), x * (rho - z) - v, x * v - beta * z], axis=-1)
    return f


def vdp_py(mu):
    def f(t, y):
        p, q = y[..., 0], y[..., 1]
        return np.stack([q, mu * (1.0 - p**2) * q - p], axis=-1)
    return f


def arenstorf_py(mu=ef.fields.Arenstorf.MU):
    mup = 1.0 - mu

    def f(t, y):
        x, v, vx, vy = y[..., 0], y[..., 1], y[..., 2], y[..., 3]
        d1 = ((x + mu) ** 2 + v**2) ** 1.5
        d2 = ((x - mup) ** 2 + v**2) ** 1.5
        return np.stack([vx, vy,
                         x + 2 * vy - mup * (x + mu) / d1 - mu * (x - mup) / d2,
                         v - 2 * vx - mup * v / d1 - mu * v / d2], axis=-1)
    return f


def projectile_py(gravity=-9.8, wind=0.1, drift=0.0):
    acc = np.array([gravity, wind, drift])

    def f(t, y):
        return np.concatenate([y[..., 3:], np.broadcast_to(acc, y[..., 3:].shape)], axis=-1)
    return f


def linear_py(A, b=None):
    def f(t, y):
        return y @ A.T + (0.0 if b is None else b)
    return f


def forced_py(t, y):
    """A damped oscillator driven by sin(3t): its stage times matter."""
    p, q = y[..., 0], y[..., 1]
    return np.stack([q, -p - 0.1 * q + np.sin(3.0 * t)], axis=-1)


def mlp_numpy(net):
    W0, b0, W1, b1 = (p.copy() for p in net.parameters())
    return lambda t, y: np.tanh(y @ W0.T + b0) @ W1.T + b1


def counting(f):
    """Wraps f(t, y) and counts its calls."""
    def g(t, y):
        g.calls += 1
        return f(t, y)
    g.calls = 0
    return g


# (native or Python field for odeint, its Python formula for the reference, y0, t0,
# time scale); Lorenz runs on a shorter span: backwards in time it blows up quickly
CASES = {
    "forced-py": (lambda: forced_py, forced_py, [1.0, 0.0], 0.3, 1.0),
    "lorenz-py": (lambda: lorenz_py(), lorenz_py(), [1.0, 1.0, 1.0], 0.0, 0.3),
    "lorenz-native": (lambda: ef.fields.Lorenz(), lorenz_py(), [1.0, 1.0, 1.0], 0.0, 0.3),
    "linear-b-native": (lambda: ef.fields.Linear(A3, B3), linear_py(A3, B3), [1.0, 0.5, -1.0], 0.0,
                        1.0),
    "vdp-native": (lambda: ef.fields.VanDerPol(1.5), vdp_py(1.5), [2.0, 0.0], 0.0, 1.0),
}
OFFSETS = np.array([0.0, 0.1, 0.25, 0.3, 0.52])


# ----------------------------------------------------------------- the reference itself

@pytest.mark.parametrize("method", FIXED)
def test_reference_step_is_the_taylor_polynomial_on_linear_problems(method):
    # for y' = lam y every explicit method with s = p <= 4 stages multiplies y by
    # R(z) = sum_{k <= p} z^k / k!, z = h lam (its stability polynomial)
    lam, h, y0 = -1.3, 0.37, np.array([2.0])
    z = h * lam
    R = sum(z**k / math.factorial(k) for k in range(ORDER[method] + 1))
    y1 = ref.rk_step(ref.TABLEAUS[method], lambda t, y: lam * y, 0.0, y0, h)
    np.testing.assert_allclose(y1, R * y0, rtol=1e-15)


def test_reference_stepping_rule():
    assert ref.steps_in_interval(0.0, 1.0, None) == [(0.0, 1.0)]
    steps = ref.steps_in_interval(0.0, 1.0, 0.3)
    assert [tc for tc, _ in steps] == [0.0, 0.3, 0.6, 0.3 * 3]
    assert steps[-1][0] + steps[-1][1] == 1.0
    assert steps[-1][1] == pytest.approx(0.1, abs=1e-15)
    # 1.1 / 0.1 = 11.000000000000002: no sliver step of 2e-16
    assert len(ref.steps_in_interval(0.0, 1.1, 0.1)) == 11
    down = ref.steps_in_interval(1.0, 0.0, 0.3)
    assert [h for _, h in down][:3] == [-0.3] * 3 and down[-1][0] + down[-1][1] == 0.0


@pytest.mark.parametrize("method", list(ref.TABLEAUS))
def test_reference_tableaus_satisfy_their_order_conditions(method):
    tab = ref.TABLEAUS[method]
    assert max(ref.order_defects(tab.a, tab.b, tab.order)) < 1e-15
    # and not the next order: the stated order is the exact order
    assert max(ref.order_defects(tab.a, tab.b, tab.order + 1)) > 1e-4
    if tab.b_hat is not None:
        assert max(ref.order_defects(tab.a, tab.b_hat, tab.error_order)) < 1e-15
        assert max(ref.order_defects(tab.a, tab.b_hat, tab.error_order + 1)) > 1e-5


def test_rooted_tree_counts():
    # 1, 1, 2, 4, 9, 20 rooted trees with 1..6 nodes (OEIS A000081)
    assert [len(ref.rooted_trees(n)) for n in range(1, 7)] == [1, 1, 2, 4, 9, 20]


# ------------------------------------------------------------------------ the tableaus

def test_method_registry():
    assert set(ef.ode.FIXED_METHODS) == set(FIXED)
    assert set(ADAPTIVE) <= set(ef.ode.ADAPTIVE_METHODS)
    assert set(ef.ode.METHODS) == set(ef.ode.FIXED_METHODS) | set(ef.ode.ADAPTIVE_METHODS)
    assert not set(ef.ode.FIXED_METHODS) & set(ef.ode.ADAPTIVE_METHODS)


@pytest.mark.parametrize("method", list(ref.TABLEAUS))
def test_tableau_equals_the_literature(method):
    got, want = ef.ode.tableau(method), ref.TABLEAUS[method]
    s = want.stages
    assert got["stages"] == s
    assert got["a"].shape == (s, s) and got["b"].shape == (s,) and got["c"].shape == (s,)
    np.testing.assert_allclose(got["a"], want.a, rtol=1e-15, atol=0)
    np.testing.assert_allclose(got["b"], want.b, rtol=1e-15, atol=0)
    np.testing.assert_allclose(got["c"], want.c, rtol=1e-15, atol=0)
    assert got["order"] == want.order
    if want.b_hat is None:
        assert got["b_err"].size == 0 and not got["adaptive"] and not got["fsal"]
    else:
        np.testing.assert_allclose(got["b_err"], want.b - want.b_hat, rtol=1e-14, atol=1e-17)
        assert got["error_order"] == want.error_order
        assert got["adaptive"] and got["fsal"]


@pytest.mark.parametrize("method", list(ref.TABLEAUS))
def test_tableau_is_consistent(method):
    tab = ef.ode.tableau(method)
    a, b, c = tab["a"], tab["b"], tab["c"]
    assert np.all(np.triu(a) == 0.0), "explicit: a strictly lower triangular"
    np.testing.assert_allclose(a.sum(axis=1), c, rtol=0, atol=1e-15)
    assert abs(b.sum() - 1.0) < 1e-15
    assert max(ref.order_defects(a, b, tab["order"])) < 1e-14
    if tab["adaptive"]:
        b_hat = b - tab["b_err"]
        assert abs(b_hat.sum() - 1.0) < 1e-15
        assert max(ref.order_defects(a, b_hat, tab["error_order"])) < 1e-14
        np.testing.assert_array_equal(a[-1], b)   # FSAL: last stage is f(t + h, y_new)
        assert c[-1] == 1.0


def test_unknown_tableau():
    with pytest.raises(ValueError, match="method"):
        ef.ode.tableau("rk5")


# ------------------------------------------- fixed-step methods against the NumPy stepper

@pytest.mark.parametrize("step_size", [None, 0.01, 0.03, 0.07],
                         ids=["per-interval", "h0.01", "h0.03", "h0.07"])
@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["forward", "backward"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("method", FIXED)
def test_fixed_methods_match_reference(method, case, direction, step_size):
    make, f_py, y0, t0, scale = CASES[case]
    t = t0 + direction * scale * OFFSETS
    ys, info = ef.odeint(make(), y0, t, method=method, step_size=step_size, full_output=True)
    want, nsteps = ref.odeint_fixed(f_py, y0, t, method, step_size)
    assert ys.shape == want.shape == (t.size, len(y0))
    np.testing.assert_array_equal(ys[0], y0)
    np.testing.assert_allclose(ys, want, rtol=1e-12, atol=1e-12)
    assert info["nsteps"] == nsteps
    assert info["nfev"] == STAGES[method] * nsteps


@pytest.mark.parametrize("method", FIXED)
def test_fixed_methods_match_reference_on_a_batch(method):
    Y0 = np.array([[1.0, 1.0, 1.0], [-2.0, 0.5, 20.0], [0.1, -0.3, 5.0]])
    t = np.array([0.0, 0.2, 0.45])
    want, _ = ref.odeint_fixed(lorenz_py(), Y0, t, method, 0.02)
    for field in (ef.fields.Lorenz(), lorenz_py()):
        ys = ef.odeint(field, Y0, t, method=method, step_size=0.02)
        np.testing.assert_allclose(ys, want, rtol=1e-12, atol=1e-12)


def test_fixed_step_times_follow_the_rule():
    # Euler evaluates f once per step, at the step's start: t0 + j h, then lands on t1
    seen = []

    def f(t, y):
        seen.append(t)
        return np.ones_like(y)

    ys, info = ef.odeint(f, [0.0], [0.0, 1.0], method="euler", step_size=0.3, full_output=True)
    assert seen == [0.0, 0.3, 0.6, 0.3 * 3]
    assert info["nsteps"] == 4
    assert ys[-1, 0] == pytest.approx(1.0, abs=1e-15)
    # a step that divides the interval up to rounding takes no extra sliver step
    _, info = ef.odeint(f, [0.0], [0.0, 1.1], method="euler", step_size=0.1, full_output=True)
    assert info["nsteps"] == 11
    # a step longer than the interval: one step of the interval
    _, info = ef.odeint(f, [0.0], [0.0, 0.2, 0.3], method="euler", step_size=5.0, full_output=True)
    assert info["nsteps"] == 2


def test_network_field_matches_numpy_mlp():
    net = ef.mlp([2, 8, 2], "tanh", seed=0)
    y0 = np.array([0.5, -1.0])
    t = np.linspace(0.0, 2.0, 6)
    for method in FIXED:
        ys = ef.odeint(net, y0, t, method=method, step_size=0.05)
        want, _ = ref.odeint_fixed(mlp_numpy(net), y0, t, method, 0.05)
        np.testing.assert_allclose(ys, want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------- convergence orders

def _slope(hs, errs):
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


STEP_COUNTS = {"euler": [64, 128, 256, 512], "midpoint": [32, 64, 128, 256],
               "heun": [32, 64, 128, 256], "rk4": [16, 32, 64, 128], "rk38": [16, 32, 64, 128]}


@pytest.mark.parametrize("method", FIXED)
def test_convergence_order_linear(method):
    T, y0 = 2.0, np.array([2.0, 0.0])
    exact = expm(T * SPIRAL) @ y0
    field = ef.fields.Linear(SPIRAL)
    hs = [T / n for n in STEP_COUNTS[method]]
    errs = [np.abs(ef.odeint(field, y0, [0.0, T], method=method, step_size=h)[-1] - exact).max()
            for h in hs]
    slope = _slope(hs, errs)
    assert abs(slope - ORDER[method]) < 0.3, (slope, errs)


@pytest.mark.parametrize("method", FIXED)
def test_convergence_order_nonlinear_nonautonomous(method):
    # y' = -2 t y^2, y(0) = 1: y = 1 / (1 + t^2). Unlike a linear autonomous problem this
    # sees every coefficient of the tableau (c included), not only its stability polynomial.
    T = 2.0
    exact = 1.0 / (1.0 + T * T)
    hs = [T / n for n in STEP_COUNTS[method]]
    # one step per output interval: the order also holds when odeint steps interval by interval
    errs = [abs(ef.odeint(lambda t, y: -2.0 * t * y**2, [1.0],
                          np.linspace(0.0, T, round(T / h) + 1), method=method)[-1, 0] - exact)
            for h in hs]
    slope = _slope(hs, errs)
    assert abs(slope - ORDER[method]) < 0.3, (slope, errs)


# ---------------------------------------------------------------- the projectile, seed 000

SEED000_Y0 = np.array([0.0, 0.0, 0.0, 5.0, 0.0, 0.1])


@pytest.mark.parametrize("h", [0.1, 0.01, 0.001])
def test_projectile_euler_error_closed_form(h):
    # Euler keeps the velocities exact (constant acceleration a) and misses a h^2 / 2 of
    # position per step: after steps h_j the position error is -a/2 sum h_j^2, i.e.
    # -a h t / 2 for equal steps: x (gravity -9.8) is 4.9 h t too high, y (wind 0.1)
    # 0.05 h t too low, z (no acceleration) exact.
    field = ef.fields.Projectile()
    t = np.array([0.0, 0.5, 1.0, 2.0])
    ys = ef.odeint(field, SEED000_Y0, t, method="euler", step_size=h)
    err = ys - field.analytic(SEED000_Y0, t)
    want = np.zeros_like(err)
    want[:, 0] = 4.9 * h * t
    want[:, 1] = -0.05 * h * t
    np.testing.assert_allclose(err, want, rtol=1e-9, atol=1e-12)


def test_projectile_euler_error_with_a_shortened_last_step():
    field = ef.fields.Projectile(gravity=-9.8, wind=0.1, drift=0.0)
    t = [0.0, 0.37, 1.0]
    ys = ef.odeint(field, SEED000_Y0, t, method="euler", step_size=0.1)
    steps = [h for i in range(2) for _, h in ref.steps_in_interval(t[i], t[i + 1], 0.1)]
    assert len(steps) == 4 + 7
    sum_h2 = np.cumsum([0.0] + [sum(h * h for _, h in ref.steps_in_interval(t[i], t[i + 1], 0.1))
                                for i in range(2)])
    err = ys - field.analytic(SEED000_Y0, t)
    np.testing.assert_allclose(err[:, 0], 4.9 * sum_h2, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(err[:, 1], -0.05 * sum_h2, rtol=1e-9, atol=1e-13)


def test_projectile_euler_order_is_one():
    field = ef.fields.Projectile()
    exact = field.analytic(SEED000_Y0, [1.5])[0]
    hs = [0.1, 0.05, 0.025, 0.0125]
    errs = [abs(ef.odeint(field, SEED000_Y0, [0.0, 1.5], method="euler", step_size=h)[-1, 0]
                - exact[0]) for h in hs]
    assert abs(_slope(hs, errs) - 1.0) < 1e-6


@pytest.mark.parametrize("method", ["midpoint", "heun", "rk4", "rk38", "bosh3", "dopri5"])
def test_projectile_second_order_and_up_are_exact(method):
    # the solution is quadratic in t and the field linear with (d/dy f)^2 = 0: every
    # method of order >= 2 reproduces it to rounding, dense output included
    field = ef.fields.Projectile(gravity=-9.8, wind=0.1, drift=0.0)
    t = np.linspace(0.0, 2.0, 41)
    kw = {"step_size": 0.1} if method in FIXED else {"rtol": 1e-6, "atol": 1e-6}
    ys = ef.odeint(field, SEED000_Y0, t, method=method, **kw)
    np.testing.assert_allclose(ys, field.analytic(SEED000_Y0, t), rtol=0, atol=1e-12)


# ------------------------------------------------------------ linear fields and expm

@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["forward", "backward"])
@pytest.mark.parametrize("bias", [False, True], ids=["b=None", "with-b"])
@pytest.mark.parametrize("method", ["rk4", "rk38", "bosh3", "dopri5"])
def test_linear_field_matches_expm(method, bias, direction):
    b = B3 if bias else None
    y0 = np.array([1.0, 0.5, -1.0])
    t = direction * np.array([0.0, 0.3, 1.1, 1.7, 2.0])
    # measured: rk4/rk38 1e-8 (backward, where the solution grows), dopri5 2e-10
    kw, tol = {"rk4": ({"step_size": 0.01}, 3e-8), "rk38": ({"step_size": 0.01}, 3e-8),
               "bosh3": ({"rtol": 1e-10, "atol": 1e-10}, 2e-8),
               "dopri5": ({"rtol": 1e-10, "atol": 1e-10}, 2e-9)}[method]
    ys = ef.odeint(ef.fields.Linear(A3, b), y0, t, method=method, **kw)
    np.testing.assert_allclose(ys, linear_exact(A3, b, y0, t), rtol=0, atol=tol)


# ------------------------------------------------------------------ adaptive methods

TOLS = 10.0 ** -np.arange(4, 11)


@pytest.mark.parametrize("problem", ["spiral", "y'=-2ty^2"])
@pytest.mark.parametrize("method", ADAPTIVE)
def test_adaptive_error_follows_the_tolerance(method, problem):
    T = 2.0
    if problem == "spiral":
        field, y0 = ef.fields.Linear(SPIRAL), np.array([2.0, 0.0])
        exact = expm(T * SPIRAL) @ y0
    else:
        field, y0, exact = (lambda t, y: -2.0 * t * y**2), np.array([1.0]), 1.0 / (1.0 + T * T)
    errs, nfevs = [], []
    for tol in TOLS:
        ys, info = ef.odeint(field, y0, [0.0, T], method=method, rtol=tol, atol=tol,
                             full_output=True)
        errs.append(np.abs(ys[-1] - exact).max())
        nfevs.append(info["nfev"])
    slope = _slope(TOLS, errs)
    # measured: dopri5 0.98 / 1.08, bosh3 0.99 / 1.09 (spiral / y' = -2 t y^2)
    assert 0.75 < slope < 1.3, (slope, errs)
    assert all(e < 30 * tol for e, tol in zip(errs, TOLS, strict=True)), errs
    assert all(np.diff(nfevs) > 0), nfevs


@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["forward", "backward"])
@pytest.mark.parametrize("method", ADAPTIVE)
def test_dense_output_matches_exact_solution(method, direction):
    tol, T = 1e-8, 2.0
    y0 = np.array([2.0, 0.0])
    field = ef.fields.Linear(SPIRAL)
    ts = direction * np.linspace(0.0, T, 401)
    ys, info = ef.odeint(field, y0, ts, method=method, rtol=tol, atol=tol, full_output=True)
    if method == "dopri5":
        assert info["naccepted"] < 100   # the 401 times are interpolated, not stepped to
    err = np.abs(ys - linear_exact(SPIRAL, None, y0, ts)).max()
    # measured: dopri5 1.2e-8, bosh3 1.1e-7 (its global error, 10 tol, see above)
    assert err < (5 if method == "dopri5" else 30) * tol, err
    # dense output does not change the steps: same steps and end state as with no
    # interior output times
    ys2, info2 = ef.odeint(field, y0, ts[[0, -1]], method=method, rtol=tol, atol=tol,
                           full_output=True)
    assert info2 == info
    np.testing.assert_array_equal(ys2[-1], ys[-1])


def test_dopri5_dense_output_between_large_steps():
    # loose tolerance, large steps: the interpolant still follows the solution to the
    # accuracy of the steps themselves
    y0 = np.array([2.0, 0.0])
    field = ef.fields.Linear(SPIRAL)
    ts = np.linspace(0.0, 2.0, 201)
    ys, info = ef.odeint(field, y0, ts, rtol=1e-5, atol=1e-5, full_output=True)
    assert info["naccepted"] < 20
    exact = linear_exact(SPIRAL, None, y0, ts)
    assert np.abs(ys - exact).max() < 2e-5   # measured 1.1e-5 (13 steps); cubic Hermite: ~4e-5


def test_arenstorf_orbit_returns_to_its_start():
    y0 = np.array(ef.fields.Arenstorf.Y0)
    T = ef.fields.Arenstorf.PERIOD
    errors = []
    for tol in (1e-8, 1e-10, 1e-12):
        ys = ef.odeint(ef.fields.Arenstorf(), y0, [0.0, T / 2, T], rtol=tol, atol=tol)
        errors.append(np.abs(ys[-1] - y0))
        assert np.linalg.norm(ys[1, :2] - y0[:2]) > 1.0, "half way round it is far from its start"
    # measured at 1e-12: position 1.7e-10, velocity 2.8e-8
    assert errors[-1][:2].max() < 1e-9
    assert errors[-1].max() < 1e-7
    assert errors[0].max() > errors[1].max() > errors[2].max()


def test_van_der_pol_matches_scipy_dop853():
    solve_ivp = pytest.importorskip("scipy.integrate").solve_ivp
    ts = np.linspace(0.0, 10.0, 51)
    sol = solve_ivp(vdp_py(1.0), (0.0, 10.0), [2.0, 0.0], method="DOP853", rtol=1e-13,
                    atol=1e-13, t_eval=ts)
    assert sol.success
    ys = ef.odeint(ef.fields.VanDerPol(1.0), [2.0, 0.0], ts, rtol=1e-12, atol=1e-12)
    # measured: 2.4e-11
    np.testing.assert_allclose(ys, sol.y.T, rtol=0, atol=2e-10)
    ys = ef.odeint(ef.fields.VanDerPol(1.0), [2.0, 0.0], ts, method="rk4", step_size=0.005)
    np.testing.assert_allclose(ys, sol.y.T, rtol=0, atol=1e-8)


# ------------------------------------------------------------------------ batches

BATCH_FIELDS = {
    "linear-b": (lambda: ef.fields.Linear(A3, B3), 3),
    "lorenz": (lambda: ef.fields.Lorenz(), 3),
    "lorenz-py": (lambda: lorenz_py(), 3),
    "arenstorf": (lambda: ef.fields.Arenstorf(), 4),
    "network": (lambda: ef.mlp([3, 8, 3], "tanh", seed=0), 3),
}


@pytest.mark.parametrize("field", list(BATCH_FIELDS))
@pytest.mark.parametrize("method", FIXED)
def test_fixed_batch_equals_row_by_row_bitwise(method, field):
    make, d = BATCH_FIELDS[field]
    rng = np.random.default_rng(3)
    Y0 = rng.standard_normal((5, d))
    if field == "arenstorf":
        Y0 = np.array(ef.fields.Arenstorf.Y0) + 0.01 * Y0
    f = make()
    t = np.array([0.0, 0.13, 0.4])
    ys = ef.odeint(f, Y0, t, method=method, step_size=0.02)
    assert ys.shape == (3, 5, d)
    np.testing.assert_array_equal(ys[0], Y0)
    rows = np.stack([ef.odeint(f, Y0[i], t, method=method, step_size=0.02) for i in range(5)],
                    axis=1)
    np.testing.assert_array_equal(ys, rows)


def test_python_field_sees_the_batch_shape():
    shapes = set()

    def f(t, y):
        shapes.add(y.shape)
        return -y

    ef.odeint(f, np.ones((4, 3)), [0.0, 1.0], method="rk4")
    ef.odeint(f, np.ones((1, 3)), [0.0, 1.0])
    ef.odeint(f, np.ones(3), [0.0, 1.0])
    assert shapes == {(4, 3), (1, 3), (3,)}


@pytest.mark.parametrize("method", ADAPTIVE)
def test_adaptive_batch_is_one_system(method):
    # one shared step sequence for the whole batch: each row is accurate to the tolerance
    tol = 1e-9
    Y0 = np.array([[1.0, 0.5, -1.0], [0.0, 2.0, 3.0], [-4.0, 0.1, 0.2]])
    t = np.linspace(0.0, 2.0, 5)
    f = ef.fields.Linear(A3, B3)
    ys, info = ef.odeint(f, Y0, t, method=method, rtol=tol, atol=tol, full_output=True)
    assert ys.shape == (5, 3, 3)
    np.testing.assert_array_equal(ys[0], Y0)
    for i in range(3):
        exact = linear_exact(A3, B3, Y0[i], t)
        np.testing.assert_allclose(ys[:, i], exact, rtol=0, atol=30 * tol * np.abs(exact).max())
        row = ef.odeint(f, Y0[i], t, method=method, rtol=tol, atol=tol)
        np.testing.assert_allclose(ys[:, i], row, rtol=0, atol=60 * tol * np.abs(exact).max())
    # a batch of identical rows takes the steps of one row (the RMS norm is the same)
    same, info1 = ef.odeint(f, np.tile(Y0[:1], (4, 1)), t, method=method, rtol=tol, atol=tol,
                            full_output=True)
    _, info_row = ef.odeint(f, Y0[0], t, method=method, rtol=tol, atol=tol, full_output=True)
    assert info1 == info_row


# ----------------------------------------------------------- native fields vs Python

NATIVE_VS_PY = {
    "linear": (lambda: ef.fields.Linear(A3), linear_py(A3), np.array([1.0, 0.5, -1.0])),
    "linear-b": (lambda: ef.fields.Linear(A3, B3), linear_py(A3, B3), np.array([1.0, 0.5, -1.0])),
    "lorenz": (lambda: ef.fields.Lorenz(), lorenz_py(), np.array([1.0, 1.0, 1.0])),
    "lorenz-params": (lambda: ef.fields.Lorenz(sigma=7.0, rho=15.0, beta=1.5),
                      lorenz_py(7.0, 15.0, 1.5), np.array([1.0, -2.0, 3.0])),
    "vdp": (lambda: ef.fields.VanDerPol(1.0), vdp_py(1.0), np.array([2.0, 0.0])),
    "vdp-mu3": (lambda: ef.fields.VanDerPol(3.0), vdp_py(3.0), np.array([0.5, 1.0])),
    "arenstorf": (lambda: ef.fields.Arenstorf(), arenstorf_py(), np.array(ef.fields.Arenstorf.Y0)),
    "projectile": (lambda: ef.fields.Projectile(), projectile_py(), SEED000_Y0),
    "projectile-params": (lambda: ef.fields.Projectile(gravity=-3.0, wind=0.5, drift=0.2),
                          projectile_py(-3.0, 0.5, 0.2), SEED000_Y0),
}


@pytest.mark.parametrize("name", list(NATIVE_VS_PY))
def test_native_field_evaluates_like_python(name):
    make, f_py, y0 = NATIVE_VS_PY[name]
    field = make()
    assert field.dim == y0.size
    rng = np.random.default_rng(7)
    Y = y0 + 0.3 * rng.standard_normal((6, y0.size))
    np.testing.assert_allclose(field(0.7, Y), f_py(0.7, Y), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(field(0.7, Y[0]), f_py(0.7, Y[0]), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", list(NATIVE_VS_PY))
def test_native_field_integrates_like_python(name):
    make, f_py, y0 = NATIVE_VS_PY[name]
    t = np.linspace(0.0, 1.0, 6)
    a = ef.odeint(make(), y0, t, method="rk4", step_size=0.01)
    b = ef.odeint(f_py, y0, t, method="rk4", step_size=0.01)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    a = ef.odeint(make(), y0, t, rtol=1e-10, atol=1e-10)
    b = ef.odeint(f_py, y0, t, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_network_as_field_equals_python_lambda(method, batched):
    net = ef.mlp([2, 8, 2], "tanh", seed=0)
    y0 = np.array([[0.5, -1.0], [2.0, 0.3], [-0.7, 0.0]]) if batched else np.array([0.5, -1.0])
    t = np.linspace(0.0, 3.0, 7)
    kw = {"step_size": 0.05} if method == "rk4" else {}
    a = ef.odeint(net, y0, t, method=method, **kw)
    b = ef.odeint(lambda t, y: net(y), y0, t, method=method, **kw)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    if not batched:
        want = ef.odeint(mlp_numpy(net), y0, t, method=method, **kw)
        np.testing.assert_allclose(a, want, rtol=1e-11 if method == "rk4" else 1e-8, atol=1e-12)


# ---------------------------------------------------------------------- full_output

@pytest.mark.parametrize("method", FIXED)
def test_info_fixed(method):
    f = counting(forced_py)
    t = [0.0, 0.25, 0.6, 1.0]
    ys, info = ef.odeint(f, [1.0, 0.0], t, method=method, step_size=0.1, full_output=True)
    _, nsteps = ref.odeint_fixed(forced_py, [1.0, 0.0], t, method, 0.1)
    assert set(info) == {"nfev", "nsteps", "naccepted", "nrejected"}
    assert info["nsteps"] == nsteps == 3 + 4 + 4
    assert info["naccepted"] == nsteps and info["nrejected"] == 0
    assert info["nfev"] == f.calls == STAGES[method] * nsteps
    _, info_native = ef.odeint(ef.fields.Linear(SPIRAL), [1.0, 0.0], t, method=method,
                               step_size=0.1, full_output=True)
    assert info_native == info


@pytest.mark.parametrize("method", ADAPTIVE)
def test_info_adaptive(method):
    # Arenstorf at a loose tolerance rejects steps; every attempt costs stages - 1 new
    # evaluations (FSAL), plus f(t0, y0) and one evaluation for the first-step estimate
    f = counting(arenstorf_py())
    ys, info = ef.odeint(f, ef.fields.Arenstorf.Y0, [0.0, 5.0, ef.fields.Arenstorf.PERIOD],
                         method=method, rtol=1e-5, atol=1e-5, full_output=True)
    assert info["nrejected"] > 0
    assert info["nsteps"] == info["naccepted"] + info["nrejected"]
    assert info["nfev"] == f.calls == 2 + (STAGES[method] - 1) * info["nsteps"]
    _, info_native = ef.odeint(ef.fields.Arenstorf(), ef.fields.Arenstorf.Y0,
                               [0.0, 5.0, ef.fields.Arenstorf.PERIOD], method=method,
                               rtol=1e-5, atol=1e-5, full_output=True)
    assert info_native["nsteps"] == info_native["naccepted"] + info_native["nrejected"]
    assert info_native["nfev"] == 2 + (STAGES[method] - 1) * info_native["nsteps"]


def test_single_time_returns_y0():
    y0 = np.array([1.0, 2.0, 3.0])
    ys, info = ef.odeint(ef.fields.Lorenz(), y0, [0.5], full_output=True)
    assert ys.shape == (1, 3)
    np.testing.assert_array_equal(ys[0], y0)
    assert info == {"nfev": 0, "nsteps": 0, "naccepted": 0, "nrejected": 0}


def test_inputs_are_not_modified_and_ints_are_accepted():
    y0 = np.array([[1, 2], [3, 4]])
    t = [0, 1, 2]
    ys = ef.odeint(ef.fields.VanDerPol(1.0), y0, t, method="rk4", step_size=0.1)
    assert ys.dtype == np.float64 and ys.shape == (3, 2, 2)
    np.testing.assert_array_equal(y0, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(ys[0], y0)
    y0f = np.array([1.0, 2.0])

    def f(t, y):
        y *= 2.0   # a field that scribbles on its argument must not corrupt the state
        return -y / 2.0

    a = ef.odeint(f, y0f, [0.0, 1.0], method="rk4", step_size=0.1)
    b = ef.odeint(lambda t, y: -y, y0f, [0.0, 1.0], method="rk4", step_size=0.1)
    np.testing.assert_array_equal(y0f, [1.0, 2.0])
    np.testing.assert_allclose(a, b, rtol=1e-15)


def test_python_field_may_return_lists_ints_float32_and_non_contiguous():
    y0 = np.array([[1.0, 0.0], [0.0, 1.0]])
    t = [0.0, 0.5]
    want = ef.odeint(lambda t, y: np.stack([y[:, 1], -y[:, 0]], axis=1), y0, t, method="rk4")
    for f in (lambda t, y: [[r[1], -r[0]] for r in y],
              lambda t, y: np.asfortranarray(np.stack([y[:, 1], -y[:, 0]], axis=1)),
              lambda t, y: np.stack([y[:, 1], -y[:, 0]], axis=0).T,
              lambda t, y: np.stack([y[:, 1], -y[:, 0]], axis=1).astype(np.float32)):
        np.testing.assert_allclose(ef.odeint(f, y0, t, method="rk4"), want, rtol=1e-6)
    ints = ef.odeint(lambda t, y: np.ones(y.shape, dtype=np.int64), [0.0], [0.0, 2.0],
                     method="euler")
    assert ints[-1, 0] == 2.0


# ------------------------------------------------------------------------- bad input

LORENZ = ef.fields.Lorenz()
Y3 = np.array([1.0, 1.0, 1.0])


@pytest.mark.parametrize("t", [[0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 2.0], [1.0, 0.0, 0.5],
                               [0.0, 0.0], [2.0, 1.0, 1.0]],
                         ids=["non-monotone", "repeated", "down-up", "zero-span", "repeated-down"])
@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_bad_times(t, method):
    with pytest.raises(ValueError, match="strictly"):
        ef.odeint(LORENZ, Y3, t, method=method)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_y0_and_t(bad):
    with pytest.raises(ValueError, match="y0"):
        ef.odeint(LORENZ, [1.0, bad, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="y0"):
        ef.odeint(lambda t, y: y, [[1.0, 2.0], [bad, 0.0]], [0.0, 1.0], method="rk4")
    with pytest.raises(ValueError, match="t"):
        ef.odeint(LORENZ, Y3, [0.0, bad])
    with pytest.raises(ValueError, match="t"):
        ef.odeint(LORENZ, Y3, [bad, 1.0], method="euler")


@pytest.mark.parametrize("y0, t, exc, name", [
    (np.ones((1, 1, 3)), [0.0, 1.0], ValueError, "y0"),
    (np.ones(3), [[0.0, 1.0]], ValueError, "t"),
    (np.ones(3), [], ValueError, "t"),
    (np.ones((0, 3)), [0.0, 1.0], ValueError, "y0"),
    (np.ones(3) + 0j, [0.0, 1.0], TypeError, "y0"),
    (np.ones(3), np.array([0.0, 1.0]) + 0j, TypeError, "t"),
    (np.array(["1", "2", "3"]), [0.0, 1.0], TypeError, "y0"),
    (np.ones(3, dtype=bool), [0.0, 1.0], TypeError, "y0"),
], ids=["y0-3d", "t-2d", "t-empty", "y0-empty", "y0-complex", "t-complex", "y0-str", "y0-bool"])
def test_bad_arrays(y0, t, exc, name):
    with pytest.raises(exc, match=rf"^{name} "):
        ef.odeint(LORENZ, y0, t)


@pytest.mark.parametrize("step_size", [0.0, -0.1, -1e-300, np.nan, np.inf])
def test_bad_step_size(step_size):
    with pytest.raises(ValueError, match="step_size"):
        ef.odeint(LORENZ, Y3, [0.0, 1.0], method="rk4", step_size=step_size)


@pytest.mark.parametrize("step_size", ["0.1", True, [0.1]])
def test_step_size_of_the_wrong_type(step_size):
    with pytest.raises(TypeError, match="step_size"):
        ef.odeint(LORENZ, Y3, [0.0, 1.0], method="rk4", step_size=step_size)


@pytest.mark.parametrize("method", ADAPTIVE)
def test_step_size_with_an_adaptive_method(method):
    with pytest.raises(ValueError, match="step_size"):
        ef.odeint(LORENZ, Y3, [0.0, 1.0], method=method, step_size=0.01)


@pytest.mark.parametrize("method", ["rk5", "RK4", "", "dopri8x", None, 4])
def test_unknown_method(method):
    with pytest.raises(ValueError, match="method"):
        ef.odeint(LORENZ, Y3, [0.0, 1.0], method=method)


@pytest.mark.parametrize("name", ["rtol", "atol"])
@pytest.mark.parametrize("value", [0.0, -1e-6, np.nan, np.inf])
def test_bad_tolerances(name, value):
    with pytest.raises(ValueError, match=name):
        ef.odeint(LORENZ, Y3, [0.0, 1.0], **{name: value})


@pytest.mark.parametrize("value, exc", [(0, ValueError), (-5, ValueError), (10.0, TypeError),
                                        (True, TypeError)])
def test_bad_max_steps(value, exc):
    with pytest.raises(exc, match="max_steps"):
        ef.odeint(LORENZ, Y3, [0.0, 1.0], max_steps=value)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_python_field_wrong_shape(method, batched):
    y0 = np.ones((2, 3)) if batched else np.ones(3)
    with pytest.raises(ValueError, match=re.escape("(2, 3)" if batched else "(3,)")) as e:
        ef.odeint(lambda t, y: y[..., :2], y0, [0.0, 1.0], method=method)
    assert ("(2, 2)" if batched else "(2,)") in str(e.value)
    with pytest.raises(ValueError, match="shape"):
        ef.odeint(lambda t, y: y[None], y0, [0.0, 1.0], method=method)
    with pytest.raises(ValueError, match="shape"):
        ef.odeint(lambda t, y: 1.0, y0, [0.0, 1.0], method=method)


@pytest.mark.parametrize("ret", [lambda y: y + 0j, lambda y: y > 0, lambda y: None,
                                 lambda y: y.astype(object), lambda y: y.astype(str)],
                         ids=["complex", "bool", "None", "object", "str"])
@pytest.mark.parametrize("method", ["euler", "dopri5"])
def test_python_field_returning_non_real(ret, method):
    with pytest.raises(TypeError):
        ef.odeint(lambda t, y: ret(y), np.ones(3), [0.0, 1.0], method=method)


def test_field_of_the_wrong_kind():
    with pytest.raises(TypeError, match="func"):
        ef.odeint(3, Y3, [0.0, 1.0])
    with pytest.raises(TypeError, match="func"):
        ef.odeint(None, Y3, [0.0, 1.0])


@pytest.mark.parametrize("field, y0", [
    (ef.fields.Lorenz(), np.ones(2)),
    (ef.fields.Lorenz(), np.ones((4, 2))),
    (ef.fields.Arenstorf(), np.ones(3)),
    (ef.fields.VanDerPol(), np.ones(3)),
    (ef.fields.Projectile(), np.ones(3)),
    (ef.fields.Linear(np.eye(4)), np.ones((2, 3))),
    (ef.mlp([2, 4, 3], "tanh", seed=0), np.ones(2)),
    (ef.mlp([2, 4, 2], "tanh", seed=0), np.ones(3)),
])
def test_y0_dimension_must_match_the_field(field, y0):
    with pytest.raises(ValueError):
        ef.odeint(field, y0, [0.0, 1.0], method="rk4")
    with pytest.raises(ValueError):
        ef.odeint(field, y0, [0.0, 1.0], method="dopri5")


def test_float32_network_field_refused():
    with pytest.raises(TypeError, match="float64"):
        ef.odeint(ef.mlp([2, 4, 2], "tanh", seed=0, dtype=np.float32), np.ones(2), [0.0, 1.0])


def _time_in(message: str) -> float:
    m = re.search(r"t = ([-+0-9.eE]+)", message)
    assert m, message
    return float(m.group(1))


def test_max_steps_exceeded_fixed():
    # 1 / 0.01 = 100 steps: 100 is enough, 50 stops half way at t = 0.5
    ef.odeint(LORENZ, Y3, [0.0, 1.0], method="rk4", step_size=0.01, max_steps=100)
    with pytest.raises(ef.IntegrationError, match="max_steps") as e:
        ef.odeint(LORENZ, Y3, [0.0, 1.0], method="rk4", step_size=0.01, max_steps=50)
    assert isinstance(e.value, RuntimeError)
    assert _time_in(str(e.value)) == pytest.approx(0.5, abs=1e-12)
    assert "step" in str(e.value)
    with pytest.raises(ef.IntegrationError) as e:
        ef.odeint(LORENZ, Y3, [0.0, 0.5, 1.0], method="euler", max_steps=1)
    assert _time_in(str(e.value)) == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(ef.IntegrationError) as e:
        ef.odeint(LORENZ, Y3, [3.0, 2.0], method="heun", step_size=0.1, max_steps=4)
    assert _time_in(str(e.value)) == pytest.approx(2.6, abs=1e-12)


@pytest.mark.parametrize("step_size", [1e-20, 1e-300])
def test_max_steps_exceeded_with_a_tiny_step_size(step_size):
    # 1 / step_size steps are far beyond max_steps; this must not silently take one
    # step of the whole interval (the step count must not overflow)
    with pytest.raises(ef.IntegrationError, match="max_steps"):
        ef.odeint(ef.fields.Linear(SPIRAL), [1.0, 0.0], [0.0, 1.0], method="euler",
                  step_size=step_size)


@pytest.mark.parametrize("method", ADAPTIVE)
def test_max_steps_exceeded_adaptive(method):
    with pytest.raises(ef.IntegrationError, match="max_steps") as e:
        ef.odeint(LORENZ, Y3, [0.0, 1.0], method=method, max_steps=20)
    t_reached = _time_in(str(e.value))
    assert 0.0 < t_reached < 1.0
    # it really is the time reached: 20 steps from 0 get there, and no further
    _, info = ef.odeint(LORENZ, Y3, [0.0, t_reached], method=method, full_output=True)
    assert info["nsteps"] <= 21
    with pytest.raises(ef.IntegrationError, match="max_steps") as e:
        ef.odeint(LORENZ, Y3, [0.0, -1.0], method=method, max_steps=20)
    assert -1.0 < _time_in(str(e.value)) < 0.0


def test_stiff_problem_raises():
    # Van der Pol with mu = 1e6 from (2, 0): explicit steps are limited to about 1e-6
    with pytest.raises(ef.IntegrationError) as e:
        ef.odeint(ef.fields.VanDerPol(mu=1e6), [2.0, 0.0], [0.0, 2.0], method="dopri5",
                  max_steps=2000)
    t_reached = _time_in(str(e.value))
    assert 0.0 < t_reached < 0.01
    assert "step" in str(e.value)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_non_finite_solution_raises(method):
    def f(t, y):
        return np.full_like(y, np.nan) if t > 0.5 else -y

    with pytest.raises(ef.IntegrationError) as e:
        ef.odeint(f, [1.0, 2.0], [0.0, 1.0, 2.0], method=method)
    t_reached = _time_in(str(e.value))
    assert 0.4 <= t_reached <= 1.0


class FieldError(Exception):
    pass


@pytest.mark.parametrize("exc", [FieldError("boom"), ValueError("mine"), KeyboardInterrupt()],
                         ids=["custom", "ValueError", "KeyboardInterrupt"])
@pytest.mark.parametrize("at_call", [1, 2, 9])
@pytest.mark.parametrize("method", ["euler", "rk4", "bosh3", "dopri5"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_exception_in_python_field_propagates_unchanged(exc, at_call, method, batched):
    calls = []

    def f(t, y):
        calls.append(t)
        if len(calls) == at_call:
            raise exc
        return -y

    y0 = np.ones((2, 3)) if batched else np.ones(3)
    with pytest.raises(type(exc)) as e:
        ef.odeint(f, y0, np.linspace(0.0, 1.0, 21), method=method)
    assert e.value is exc
    assert len(calls) == at_call, "the integration stops at the exception"
    # and the solver is usable afterwards
    ys = ef.odeint(lambda t, y: -y, y0, [0.0, 1.0], method=method)
    assert np.all(np.isfinite(ys))
