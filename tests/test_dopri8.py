"""``method="dopri8"``: Hairer's DOP853, the Dormand-Prince 8(5,3) pair, against
independent numbers.

References: Butcher's order conditions (every rooted tree up to 8 nodes, summed in NumPy
by tests/reference/rk_reference.py), closed-form solutions (DETEST-like scalar problems,
the harmonic oscillator), the Arenstorf orbit's period (Hairer, Norsett & Wanner, Solving
ODEs I, II.0), scipy's ``solve_ivp(method="DOP853")`` when scipy is installed, measured
convergence orders of the dense output, a call-counting Python field for ``nfev``, and
central finite differences for a Neural ODE's gradient.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from reference import node_reference as nref
from reference import rk_reference as ref

MU = 0.012277471
MUP = 1.0 - MU
PERIOD = 17.0652165601579625588917206249
Y0 = np.array([0.994, 0.0, 0.0, -2.00158510637908252240537862224])


def arenstorf(t, y):
    x, yy, vx, vy = y
    d1 = ((x + MU) ** 2 + yy * yy) ** 1.5
    d2 = ((x - MUP) ** 2 + yy * yy) ** 1.5
    return np.array([vx, vy,
                     x + 2.0 * vy - MUP * (x + MU) / d1 - MU * (x - MUP) / d2,
                     yy - 2.0 * vx - MUP * yy / d1 - MU * yy / d2])


class Counting:
    """A Python field that counts its calls."""

    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, t, y):
        self.calls += 1
        return self.f(t, y)


def orbit_error(method, tol, func=None):
    ys, info = ef.odeint(func or ef.fields.Arenstorf(MU), Y0, [0.0, PERIOD], method=method,
                         rtol=tol, atol=tol, max_steps=1_000_000, full_output=True)
    return float(np.linalg.norm(ys[-1] - Y0)), info


# --------------------------------------------------------------------------------------
# The tableau
# --------------------------------------------------------------------------------------


def test_tableau_is_listed_adaptive_order_8():
    assert "dopri8" in ef.ode.EXPLICIT_METHODS
    assert "dopri8" in ef.ode.ADAPTIVE_METHODS
    tb = ef.ode.tableau("dopri8")
    assert tb["order"] == 8 and tb["fsal"]
    # 12 stages of DOP853 plus f(t + h, y_new), the next step's first stage
    assert tb["stages"] == 13 and tb["a"].shape == (13, 13)
    np.testing.assert_array_equal(tb["a"][12], tb["b"])
    assert tb["c"][11] == tb["c"][12] == 1.0 and tb["b"][12] == 0.0


def test_order_conditions_up_to_8_hold_and_9_do_not():
    tb = ef.ode.tableau("dopri8")
    a, b, c = tb["a"], tb["b"], tb["c"]
    # the simplest ones spelled out: sum b = 1, b.c^k = 1/(k+1), b.A.c = 1/6
    assert b.sum() == pytest.approx(1.0, abs=1e-14)
    for k in range(1, 8):
        assert b @ c**k == pytest.approx(1.0 / (k + 1), abs=1e-14), k
    assert b @ a @ c == pytest.approx(1.0 / 6.0, abs=1e-14)
    assert b @ a @ a @ a @ a @ a @ c == pytest.approx(1.0 / 5040.0, abs=1e-15)
    np.testing.assert_allclose(a.sum(axis=1), c, rtol=0, atol=1e-13)
    # every rooted tree with at most 8 nodes (200 of them) ...
    defects = ref.order_defects(a, b, 8)
    assert len(defects) == 200
    assert max(defects) < 5e-15
    # ... and not 9: the method's order is exactly 8 (measured: largest defect 2.7e-5)
    assert max(ref.order_defects(a, b, 9)) > 1e-6


def test_embedded_estimates_have_orders_5_and_3():
    tb = ef.ode.tableau("dopri8")
    a, b = tb["a"], tb["b"]
    b5 = b - tb["b_err"]
    b3 = b - tb["b_err3"]
    assert max(ref.order_defects(a, b5, 5)) < 5e-15
    assert max(ref.order_defects(a, b5, 6)) > 1e-5
    assert max(ref.order_defects(a, b3, 3)) < 5e-15
    assert max(ref.order_defects(a, b3, 4)) > 1e-3
    # the third-order weights use stages 1, 9 and 12 only (DOP853's bhh)
    assert np.flatnonzero(b3).tolist() == [0, 8, 11]


def test_tableau_equals_scipys_dop853_constants():
    coef = pytest.importorskip("scipy.integrate._ivp.dop853_coefficients")
    tb = ef.ode.tableau("dopri8")
    np.testing.assert_allclose(tb["a"][:12, :12], coef.A[:12, :12], rtol=1e-15, atol=0)
    np.testing.assert_allclose(tb["b"][:12], coef.B, rtol=1e-15, atol=0)
    np.testing.assert_allclose(tb["c"], coef.C[:13], rtol=1e-15, atol=0)
    np.testing.assert_allclose(tb["b_err"], coef.E5, rtol=1e-15, atol=0)
    np.testing.assert_allclose(tb["b_err3"], coef.E3, rtol=1e-15, atol=0)


# --------------------------------------------------------------------------------------
# Accuracy on closed forms
# --------------------------------------------------------------------------------------

# DETEST-like scalar problems (Hull, Enright, Fellen & Sedgwick 1972, class A) with their
# closed forms, over [0, 20]
DETEST = {
    "A1": (lambda t, y: -y, 1.0, lambda t: np.exp(-t)),
    "A2": (lambda t, y: -0.5 * y**3, 1.0, lambda t: 1.0 / np.sqrt(t + 1.0)),
    "A3": (lambda t, y: y * np.cos(t), 1.0, lambda t: np.exp(np.sin(t))),
    "A4": (lambda t, y: 0.25 * y * (1.0 - y / 20.0), 1.0,
           lambda t: 20.0 / (1.0 + 19.0 * np.exp(-t / 4.0))),
}


@pytest.mark.parametrize("problem", list(DETEST))
def test_detest_closed_forms_error_follows_the_tolerance(problem):
    f, y0, exact = DETEST[problem]
    t = np.linspace(0.0, 20.0, 41)
    errors = []
    for tol in (1e-6, 1e-9, 1e-12):
        ys = ef.odeint(f, [y0], t, method="dopri8", rtol=tol, atol=tol)
        err = float(np.max(np.abs(ys[:, 0] - exact(t)) / (1.0 + np.abs(exact(t)))))
        errors.append(err)
        # a global error within a modest multiple of the local tolerance (measured: at
        # most 72 tol, A3 at 1e-12; A1, A2, A4 below 3.2 tol)
        assert err < 100 * tol, (tol, err)
    # tightening the tolerance by 1000 gains at least a factor 50 (measured: 90 to 650)
    assert errors[1] < errors[0] / 50 and errors[2] < errors[1] / 50


def test_harmonic_oscillator_at_many_output_times():
    # y'' = -y: (cos t, -sin t); 500 output times, most of them inside steps
    t = np.linspace(0.0, 30.0, 501)
    ys = ef.odeint(ef.fields.Linear([[0.0, 1.0], [-1.0, 0.0]]), [1.0, 0.0], t, method="dopri8",
                   rtol=1e-12, atol=1e-12)
    exact = np.stack([np.cos(t), -np.sin(t)], axis=1)
    assert np.abs(ys - exact).max() < 1e-10


def test_arenstorf_orbit_closes_like_scipys_dop853():
    err, info = orbit_error("dopri8", 1e-12)
    # measured: 1.3e-9 with 4310 evaluations (scipy DOP853: 1.6e-9 with 4286)
    assert err < 3e-9
    assert info["nfev"] == 12 * info["nsteps"] + 2   # + f(y0) + the initial step's probe
    integrate = pytest.importorskip("scipy.integrate")
    sol = integrate.solve_ivp(arenstorf, (0.0, PERIOD), Y0, method="DOP853", rtol=1e-12,
                              atol=1e-12)
    err_scipy = float(np.linalg.norm(sol.y[:, -1] - Y0))
    assert err_scipy / 10 < err < 10 * err_scipy
    assert 0.7 * sol.nfev < info["nfev"] < 1.3 * sol.nfev


@pytest.mark.parametrize("tol", [1e-5, 1e-7, 1e-9])
def test_arenstorf_same_steps_and_error_as_scipys_dop853(tol):
    # the same method, error estimate, step control and first step as Hairer's DOP853 and
    # scipy's port of it: the same accepted steps (measured: equal, or 1 apart where
    # scipy ends with a sliver step) and end-point errors agreeing to rounding's effect
    # on the orbit (measured: 3e-4 relative at most)
    integrate = pytest.importorskip("scipy.integrate")
    err, info = orbit_error("dopri8", tol, arenstorf)
    sol = integrate.solve_ivp(arenstorf, (0.0, PERIOD), Y0, method="DOP853", rtol=tol,
                              atol=tol)
    assert abs(info["naccepted"] - (sol.t.size - 1)) <= 1
    assert err == pytest.approx(float(np.linalg.norm(sol.y[:, -1] - Y0)), rel=2e-3)


def test_arenstorf_dopri8_needs_fewer_evaluations_than_dopri5_for_the_same_error():
    err8, info8 = orbit_error("dopri8", 1e-12)
    # at the same tolerance dopri5 is 23x less accurate with 3x the work; at a 10x tighter
    # one it is about as accurate with 4.7x the work (measured: dopri8 1.28e-9 with 4310
    # evaluations; dopri5 3.0e-8 with 12692 at 1e-12, 1.2e-9 with 20114 at 1e-13)
    err5, info5 = orbit_error("dopri5", 1e-12)
    assert 10 * err8 < err5 and 2 * info8["nfev"] < info5["nfev"]
    err5, info5 = orbit_error("dopri5", 1e-13)
    assert err8 < 1.5 * err5 and 4 * info8["nfev"] < info5["nfev"]
    # at 1e-9 too: dopri8 7.6e-6 with 2234 evaluations, dopri5 2.0e-5 with 3212 (measured)
    err8, info8 = orbit_error("dopri8", 1e-9)
    err5, info5 = orbit_error("dopri5", 1e-9)
    assert err8 < err5 and info8["nfev"] < info5["nfev"]


# --------------------------------------------------------------------------------------
# Function evaluations
# --------------------------------------------------------------------------------------


def test_nfev_counts_every_evaluation_end_point_only():
    f = Counting(arenstorf)
    _, info = orbit_error("dopri8", 1e-10, f)
    assert info["nfev"] == f.calls
    # no dense output needed: 12 evaluations per step (rejected ones included)
    assert f.calls == 12 * info["nsteps"] + 2


def test_nfev_counts_the_dense_output_stages():
    t = np.linspace(0.0, PERIOD, 201)
    f = Counting(arenstorf)
    _, info = ef.odeint(f, Y0, t, method="dopri8", rtol=1e-10, atol=1e-10, full_output=True)
    assert info["nfev"] == f.calls
    extra = f.calls - (12 * info["nsteps"] + 2)
    # three more per accepted step with an output time inside it, none for the others
    assert extra % 3 == 0 and 0 < extra <= 3 * info["naccepted"]
    g = Counting(arenstorf)
    sol = ef.solve(g, Y0, [0.0, PERIOD], method="dopri8", rtol=1e-10, atol=1e-10)
    assert sol.info["nfev"] == g.calls == 15 * sol.info["naccepted"] + 12 * sol.info[
        "nrejected"] + 2


# --------------------------------------------------------------------------------------
# Dense output
# --------------------------------------------------------------------------------------


def test_dense_output_matches_closed_form_off_the_steps():
    field = ef.fields.Linear([[0.0, 1.0], [-1.0, 0.0]])
    sol = ef.solve(field, [1.0, 0.0], [0.0, 20.0], method="dopri8", rtol=1e-12, atol=1e-12)
    # the midpoints of every step and quarter points: never a step boundary
    mids = np.concatenate([sol.t[:-1] + q * np.diff(sol.t) for q in (0.25, 0.5, 0.75)])
    ys = sol.evaluate(mids)
    exact = np.stack([np.cos(mids), -np.sin(mids)], axis=1)
    err_inside = np.abs(ys - exact).max()
    ends = np.stack([np.cos(sol.t), -np.sin(sol.t)], axis=1)
    err_ends = np.abs(sol.y - ends).max()
    # measured: inside 4.0e-12, at the steps 3.1e-12
    assert err_inside < 1e-11
    assert err_inside < 5 * err_ends + 1e-13
    # a cubic Hermite interpolant through the same steps (values and slopes at both ends)
    # would spoil that: measured 4.3e-6
    h = np.diff(sol.t)
    slopes = sol.y @ np.array([[0.0, 1.0], [-1.0, 0.0]]).T
    hermite = []
    for q in (0.25, 0.5, 0.75):
        h00, h10 = 2 * q**3 - 3 * q**2 + 1, q**3 - 2 * q**2 + q
        h01, h11 = -2 * q**3 + 3 * q**2, q**3 - q**2
        hermite.append(h00 * sol.y[:-1] + h10 * h[:, None] * slopes[:-1] + h01 * sol.y[1:]
                       + h11 * h[:, None] * slopes[1:])
    err_hermite = np.abs(np.concatenate(hermite) - exact).max()
    assert err_hermite > 1000 * err_inside
    # odeint at the same times (and the same end) returns the same values
    t = np.concatenate([[0.0], np.sort(mids), [20.0]])
    ys_odeint = ef.odeint(field, [1.0, 0.0], t, method="dopri8", rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ys_odeint, sol.evaluate(t))


def test_backward_batched_and_per_row_times():
    # a batch of two states on the circle, integrated from t = 10 back to 0 with 301
    # output times (most inside steps); then each row on its own forward grid
    field = ef.fields.Linear([[0.0, 1.0], [-1.0, 0.0]])
    t = np.linspace(10.0, 0.0, 301)
    y0 = np.array([[np.cos(10.0), -np.sin(10.0)], [np.sin(10.0), np.cos(10.0)]])
    ys = ef.odeint(field, y0, t, method="dopri8", rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ys[:, 0], np.stack([np.cos(t), -np.sin(t)], 1), rtol=0, atol=2e-11)
    np.testing.assert_allclose(ys[:, 1], np.stack([np.sin(t), np.cos(t)], 1), rtol=0, atol=2e-11)
    sol = ef.solve(field, y0, [10.0, 0.0], method="dopri8", rtol=1e-12, atol=1e-12)
    tm = np.linspace(10.0, 0.0, 77)
    np.testing.assert_allclose(sol.evaluate(tm)[:, 0], np.stack([np.cos(tm), -np.sin(tm)], 1),
                               rtol=0, atol=2e-11)
    rows = np.stack([np.linspace(0.0, 5.0, 11), np.linspace(0.0, 7.0, 11)])
    yr = ef.odeint(field, np.array([[1.0, 0.0], [1.0, 0.0]]), rows, method="dopri8",
                   rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(yr[:, 1, 0], np.cos(rows[1]), rtol=0, atol=2e-11)
    np.testing.assert_allclose(yr[:, 0, 1], -np.sin(rows[0]), rtol=0, atol=2e-11)


def test_dense_output_is_seventh_order():
    # the interpolation error at the middle of the first step, against the flow from the
    # same start computed tightly: it shrinks like h^8 (local error of a 7th-order
    # interpolant; measured slope 7.8; a cubic Hermite interpolant gives 4)
    field = ef.fields.VanDerPol(mu=1.0)
    y0 = np.array([2.0, 0.0])
    hs, errs = [], []
    for tol in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7):
        sol = ef.solve(field, y0, [0.0, 5.0], method="dopri8", rtol=tol, atol=tol)
        h = sol.t[1] - sol.t[0]
        tm = sol.t[0] + 0.5 * h
        exact = ef.odeint(field, y0, [0.0, tm], method="dopri8", rtol=1e-14, atol=1e-14)[-1]
        hs.append(h)
        errs.append(np.abs(sol.evaluate(tm) - exact).max())
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 7.3 < slope < 8.7, slope


def test_arenstorf_dense_output_against_scipy():
    integrate = pytest.importorskip("scipy.integrate")
    t = np.linspace(0.0, PERIOD, 101)
    ys = ef.odeint(ef.fields.Arenstorf(MU), Y0, t, method="dopri8", rtol=1e-12, atol=1e-12)
    ref_sol = integrate.solve_ivp(arenstorf, (0.0, PERIOD), Y0, method="DOP853", rtol=1e-13,
                                  atol=1e-13, t_eval=t)
    # both within their global errors (measured 1.7e-9 apart; dopri5 2.7e-8)
    assert np.abs(ys - ref_sol.y.T).max() < 1e-8


# --------------------------------------------------------------------------------------
# Events, Neural ODEs, input checks
# --------------------------------------------------------------------------------------


def test_event_on_the_dense_output():
    # y'' = -y from (1, 0): position crosses zero downwards at pi/2, 5 pi/2, ... and
    # upwards at 3 pi/2, ...; the terminal upward one ends the solve at 3 pi/2
    def down(t, y):
        return y[0]

    down.direction = -1.0

    def up(t, y):
        return y[0]

    up.direction = 1.0
    up.terminal = True
    field = ef.fields.Linear([[0.0, 1.0], [-1.0, 0.0]])
    sol = ef.solve(field, [1.0, 0.0], [0.0, 10.0], method="dopri8", rtol=1e-12, atol=1e-12,
                   events=[down, up])
    assert sol.terminated
    np.testing.assert_allclose(sol.t_events[0], [np.pi / 2], rtol=0, atol=1e-11)
    np.testing.assert_allclose(sol.t_events[1], [3 * np.pi / 2], rtol=0, atol=1e-11)
    assert sol.t[-1] == sol.t_events[1][0]
    np.testing.assert_allclose(sol.y_events[1][0], [0.0, 1.0], atol=1e-11)
    ys, info = ef.odeint(field, [1.0, 0.0], [0.0, 1.0, 2.0, 6.0], method="dopri8",
                         rtol=1e-12, atol=1e-12, events=up)
    assert info["terminated"] and ys.shape == (3, 2)
    np.testing.assert_allclose(ys[2], [np.cos(2.0), -np.sin(2.0)], atol=1e-11)


@pytest.mark.parametrize("field", ["affine", "tanh3"])
def test_neural_ode_backprop_matches_finite_differences(field):
    # as test_node's adaptive check: backprop is the derivative of the discrete solver with
    # its accepted steps held, the finite difference also moves the steps; at 1e-10 both
    # are that close to the flow's gradient (measured: 2.7e-11 and 2.2e-11 relative)
    makers = {"affine": lambda: ef.Dense(2, 2, seed=12),
              "tanh3": lambda: ef.mlp([3, 8, 3], "tanh", seed=14)}
    net = makers[field]()
    rng = np.random.default_rng(8)
    z0, y = rng.standard_normal(net.in_features), rng.standard_normal(net.in_features)
    t = np.array([0.0, 0.5, 1.2, 2.0])
    model = ef.NeuralODE(net, "dopri8", rtol=1e-10, atol=1e-10)
    loss, grads, _ = model.loss_and_gradient(z0, y, t)
    fd = nref.finite_difference_gradient(lambda: model.loss_and_gradient(z0, y, t)[0],
                                         net.parameters(), eps=1e-4)
    scale = max(float(np.abs(g).max()) for g in fd)
    assert max(float(np.abs(g - e).max()) for g, e in zip(grads, fd, strict=True)) < 1e-6 * scale
    # the loss is the one of odeint's trajectory with the same tolerances
    zs = ef.odeint(net, z0, t, method="dopri8", rtol=1e-10, atol=1e-10)
    assert loss == pytest.approx(float(np.mean((zs[-1] - y) ** 2)), rel=1e-8)


def test_same_inputs_same_bits():
    a = ef.odeint(ef.fields.Arenstorf(MU), Y0, np.linspace(0.0, PERIOD, 7), method="dopri8",
                  rtol=1e-10, atol=1e-10)
    b = ef.odeint(ef.fields.Arenstorf(MU), Y0, np.linspace(0.0, PERIOD, 7), method="dopri8",
                  rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(a, b)


def test_bad_input():
    field = ef.fields.Arenstorf(MU)
    with pytest.raises(ValueError, match="step_size"):
        ef.odeint(field, Y0, [0.0, 1.0], method="dopri8", step_size=0.1)
    with pytest.raises(ValueError, match="rtol"):
        ef.odeint(field, Y0, [0.0, 1.0], method="dopri8", rtol=-1.0)
    with pytest.raises(ValueError, match="method"):
        ef.odeint(field, Y0, [0.0, 1.0], method="dopri853")
    with pytest.raises(ValueError, match="step_size"):
        ef.NeuralODE(ef.Dense(2, 2, seed=0), "dopri8", step_size=0.1)
