"""radau5's dense output (the collocation polynomial of each step), its events, and
its Jacobians (the native fields' analytic ones, or jac=)."""

import subprocess
import sys
from pathlib import Path

import eulerflow as ef
import numpy as np
import pytest

VDP_T2 = np.array([1.706167732170493, -0.892809701024786])  # Hairer's reference, eps = 1e-6


def van_der_pol(eps):
    def f(t, y):
        return np.array([y[1], ((1 - y[0] ** 2) * y[1] - y[0]) / eps])

    return f


def van_der_pol_jac(eps):
    def jac(t, y):
        return np.array([[0.0, 1.0], [(-2.0 * y[0] * y[1] - 1.0) / eps, (1.0 - y[0] ** 2) / eps]])

    return jac


LAM = 1000.0


def relax(t, y):
    """y' = -1000 (y - cos t): y = c(t) + (y0 - c(0)) exp(-1000 t) with c below."""
    return -LAM * (y - np.cos(t))


def relax_exact(t, y0):
    # the particular solution c(t) = (1000^2 cos t + 1000 sin t) / (1000^2 + 1)
    c = (LAM**2 * np.cos(t) + LAM * np.sin(t)) / (LAM**2 + 1.0)
    c0 = LAM**2 / (LAM**2 + 1.0)
    return c + (y0 - c0) * np.exp(-LAM * t)


@pytest.mark.parametrize("rtol", [1e-6, 1e-9])
def test_dense_output_matches_the_closed_form_between_the_steps(rtol):
    y0 = 2.0
    sol = ef.solve(relax, [y0], [0.0, 3.0], method="radau5", rtol=rtol, atol=rtol)
    assert sol.t.size > 5
    exact_ends = relax_exact(sol.t, y0)
    assert np.all(np.abs(sol.y[:, 0] - exact_ends) < 30 * rtol * (1 + np.abs(exact_ends)))
    h = np.diff(sol.t)
    # off-step times in every step: the collocation polynomial is of order 3 (stage order),
    # so its error is O(h^4) (the solution's derivatives are O(1) after the transient)
    # on top of the steps' own error
    for frac in (0.5, 0.27, 0.81):
        tt = sol.t[:-1] + frac * h
        exact = relax_exact(tt, y0)
        err = np.abs(sol.evaluate(tt)[:, 0] - exact)
        bound = 30 * rtol * (1 + np.abs(exact)) + 1e-3 * h**4
        assert np.all(err < bound), (err / bound).max()
        # far better than joining the step ends by straight lines
        lin = np.abs(np.interp(tt, sol.t, sol.y[:, 0]) - exact)
        assert err.max() < 0.1 * lin.max()


def test_dense_output_of_a_stiff_linear_system_against_expm():
    A = np.array([[-1000.0, 1.0, 0.0], [0.0, -2.0, 3.0], [0.0, -3.0, -2.0]])
    w, V = np.linalg.eig(A)
    y0 = np.array([1.0, 0.5, -0.5])
    coef = np.linalg.solve(V, y0)

    def exact(t):
        return np.real(V @ (coef * np.exp(w * t)))

    sol = ef.solve(ef.fields.Linear(A), y0, [0.0, 4.0], method="radau5", rtol=1e-8, atol=1e-10)
    tt = np.linspace(0.0, 4.0, 1001)
    err = max(np.abs(sol(ti) - exact(ti)).max() for ti in tt)
    assert err < 1e-6
    assert sol.info["njev"] >= 1  # the field's own Jacobian


@pytest.mark.parametrize("direction", [1, -1])
def test_odeint_and_solve_agree_bit_for_bit(direction):
    t = np.linspace(0.0, 1.5, 37)[::direction]
    f = van_der_pol(1e-3)
    y0 = np.array([2.0, 0.0])
    ys, info = ef.odeint(f, y0, t, method="radau5", rtol=1e-6, atol=1e-6, full_output=True)
    sol = ef.solve(f, y0, t, method="radau5", rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(sol.evaluate(t), ys)
    np.testing.assert_array_equal(sol.evaluate(sol.t), sol.y)
    assert sol.info["naccepted"] == info["naccepted"] == sol.t.size - 1
    # a batch: one system of two states, the same steps for both
    y2 = np.array([[2.0, 0.0], [1.0, 1.0]])
    ys2 = ef.odeint(ef.fields.VanDerPol(mu=20.0), y2, t, method="radau5", rtol=1e-7, atol=1e-9)
    sol2 = ef.solve(ef.fields.VanDerPol(mu=20.0), y2, t, method="radau5", rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(sol2.evaluate(t), ys2)


def _first_zero_crossing_reference(eps):
    """The first time after 0 that y[0] crosses 0 downwards, from scipy's Radau at rtol 1e-12
    with its own dense output and a bracketing root finder."""
    from scipy.integrate import solve_ivp
    from scipy.optimize import brentq

    def g(t, y):
        return y[0]

    g.direction, g.terminal = -1, True
    ref = solve_ivp(van_der_pol(eps), (0.0, 3.0), [2.0, 0.0], method="Radau", rtol=1e-12,
                    atol=1e-12, jac=van_der_pol_jac(eps), events=g, dense_output=True)
    t_ev = ref.t_events[0][0]
    return brentq(lambda s: ref.sol(s)[0], t_ev - 1e-3, t_ev + 1e-3, xtol=1e-15)


def test_an_event_on_stiff_van_der_pol_against_scipy_at_tight_tolerance():
    pytest.importorskip("scipy")
    eps = 1e-3
    t_ref = _first_zero_crossing_reference(eps)
    assert 0.5 < t_ref < 1.5  # the relaxation oscillation's first fast jump

    def crossing(t, y):
        return y[0]

    crossing.direction = -1
    ts = np.linspace(0.0, 3.0, 7)
    ys, info = ef.odeint(van_der_pol(eps), [2.0, 0.0], ts, method="radau5", rtol=1e-8,
                         atol=1e-8, events=crossing, jac=van_der_pol_jac(eps))
    assert not info["terminated"] and ys.shape == (7, 2)
    t_ev = info["t_events"][0]
    assert t_ev.size >= 1 and abs(t_ev[0] - t_ref) < 1e-6
    assert np.all(np.abs(info["y_events"][0][:, 0]) < 1e-8)
    sol = ef.solve(van_der_pol(eps), [2.0, 0.0], [0.0, 3.0], method="radau5", rtol=1e-8,
                   atol=1e-8, events=crossing)  # the finite-difference Jacobian: the same time
    assert abs(sol.t_events[0][0] - t_ref) < 1e-6


def test_a_terminal_event_ends_a_radau5_integration():
    def low(t, y):
        return y[0] - 1.5

    low.terminal, low.direction = True, -1
    ts = np.linspace(0.0, 3.0, 31)
    ys, info = ef.odeint(van_der_pol(1e-3), [2.0, 0.0], ts, method="radau5", rtol=1e-8,
                         atol=1e-8, events=low)
    t_hit = info["t_events"][0][0]
    assert info["terminated"] and info["t_events"][0].shape == (1,)
    assert abs(info["y_events"][0][0, 0] - 1.5) < 1e-9
    assert ys.shape == (int(np.sum(ts <= t_hit)), 2)
    sol = ef.solve(van_der_pol(1e-3), [2.0, 0.0], ts, method="radau5", rtol=1e-8, atol=1e-8,
                   events=low)
    assert sol.terminated and sol.t[-1] == t_hit
    # y[0] drifts down the slow manifold (1 - y0^2) y1 = y0, i.e. y0' = y0 / (1 - y0^2):
    # from 2 to 1.5 in [ln y - y^2 / 2] from 2 to 1.5 (the reduced problem, to O(eps))
    t_slow = (np.log(1.5) - 1.125) - (np.log(2.0) - 2.0)
    assert abs(t_hit - t_slow) < 0.01


def test_the_exact_jacobian_gives_the_same_solution_for_fewer_evaluations():
    f, jac = van_der_pol(1e-6), van_der_pol_jac(1e-6)
    ys_fd, fd = ef.odeint(f, [2.0, 0.0], [0.0, 2.0], method="radau5", rtol=1e-6, atol=1e-6,
                          full_output=True)
    ys_j, ex = ef.odeint(f, [2.0, 0.0], [0.0, 2.0], method="radau5", rtol=1e-6, atol=1e-6,
                         full_output=True, jac=jac)
    np.testing.assert_allclose(ys_fd[-1], VDP_T2, atol=1e-6)
    np.testing.assert_allclose(ys_j[-1], VDP_T2, atol=1e-6)
    np.testing.assert_allclose(ys_j[-1], ys_fd[-1], atol=1e-6)
    assert ex["njev"] >= 1 and ex["nfev"] < fd["nfev"]
    # with a Jacobian every evaluation is a Newton or step evaluation: counted exactly
    calls = {"f": 0, "jac": 0}

    def f_counted(t, y):
        calls["f"] += 1
        return f(t, y)

    def jac_counted(t, y):
        calls["jac"] += 1
        return jac(t, y)

    _, info = ef.odeint(f_counted, [2.0, 0.0], [0.0, 2.0], method="radau5", rtol=1e-6,
                        atol=1e-6, full_output=True, jac=jac_counted)
    assert info["nfev"] == calls["f"] and info["njev"] == calls["jac"]
    calls["f"] = 0
    _, info = ef.odeint(f_counted, [2.0, 0.0], [0.0, 2.0], method="radau5", rtol=1e-6,
                        atol=1e-6, full_output=True)
    assert info["nfev"] == calls["f"]  # finite-difference columns included


def _fd_jacobian(field, t, y, h=1e-6):
    d = y.size
    J = np.empty((d, d))
    for k in range(d):
        e = np.zeros(d)
        e[k] = h * max(1.0, abs(y[k]))
        J[:, k] = (field(t, y + e) - field(t, y - e)) / (2 * e[k])
    return J


@pytest.mark.parametrize("field,y", [
    (ef.fields.Linear(np.array([[-2.0, 1.0, 0.5], [0.3, -1.0, 4.0], [0.0, 2.0, -3.0]]),
                      np.array([1.0, 0.0, -1.0])), np.array([0.3, -0.7, 1.1])),
    (ef.fields.Lorenz(), np.array([1.5, -2.0, 20.0])),
    (ef.fields.Projectile(), np.array([1.0, 2.0, 3.0, 0.5, -0.5, 0.1])),
    (ef.fields.VanDerPol(mu=5.0), np.array([1.7, -0.4])),
    (ef.fields.Arenstorf(), np.array([0.994, 0.1, -0.2, -2.0])),
])
def test_native_jacobians_agree_with_finite_differences(field, y):
    J = field.jacobian(0.3, y)
    assert J.shape == (field.dim, field.dim)
    scale = max(1.0, np.abs(J).max())
    np.testing.assert_allclose(J, _fd_jacobian(field, 0.3, y), atol=1e-7 * scale, rtol=0)
    both = field.jacobian(0.3, np.stack([y, 0.5 * y]))  # a batch: one block per state
    np.testing.assert_array_equal(both[0], J)
    np.testing.assert_allclose(both[1], _fd_jacobian(field, 0.3, 0.5 * y),
                               atol=1e-7 * max(1.0, np.abs(both[1]).max()), rtol=0)


def test_native_jacobian_is_used_and_batched_jac_blocks():
    vdp = ef.fields.VanDerPol(mu=1000.0)
    ys, info = ef.odeint(vdp, [2.0, 0.0], [0.0, 1.0], method="radau5", rtol=1e-7, atol=1e-9,
                         full_output=True)
    ys_py, info_py = ef.odeint(lambda t, y: vdp(t, y), [2.0, 0.0], [0.0, 1.0],
                               method="radau5", rtol=1e-7, atol=1e-9, full_output=True)
    np.testing.assert_allclose(ys[-1], ys_py[-1], atol=1e-6)
    assert info["nfev"] < info_py["nfev"]  # no finite-difference columns
    # a batched Python field with jac returning one block per state (batch, d, d)
    y0 = np.array([[2.0, 0.0], [1.0, 0.5]])
    yb, ib = ef.odeint(lambda t, y: vdp(t, y), y0, [0.0, 1.0], method="radau5", rtol=1e-7,
                       atol=1e-9, full_output=True, jac=lambda t, y: vdp.jacobian(t, y))
    ref = ef.odeint(vdp, y0, [0.0, 1.0], method="radau5", rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(yb, ref)  # the same Jacobians, the same bits
    assert ib["njev"] >= 1


def test_bad_jac_is_refused_clearly():
    f = van_der_pol(1e-3)
    y0, t = [2.0, 0.0], [0.0, 1.0]
    with pytest.raises(ValueError, match=r"jac returned shape \(3, 3\).*\(2, 2\)"):
        ef.odeint(f, y0, t, method="radau5", jac=lambda t, y: np.eye(3))
    with pytest.raises(ValueError, match=r"jac returned shape \(2,\)"):
        ef.odeint(f, y0, t, method="radau5", jac=lambda t, y: np.ones(2))
    with pytest.raises(ValueError, match="jac returned a non-finite value"):
        ef.odeint(f, y0, t, method="radau5", jac=lambda t, y: np.full((2, 2), np.nan))
    with pytest.raises(TypeError, match="jac must be a callable"):
        ef.odeint(f, y0, t, method="radau5", jac=np.eye(2))
    with pytest.raises(ValueError, match="explicit method 'dopri5' takes no Jacobian"):
        ef.odeint(f, y0, t, method="dopri5", jac=van_der_pol_jac(1e-3))
    with pytest.raises(ValueError, match="takes no Jacobian"):
        ef.solve(f, y0, t, method="bosh3", jac=van_der_pol_jac(1e-3))
    with pytest.raises(ValueError, match=r"jac returned shape \(2, 2\).*\(2, 2, 2\)"):
        ef.odeint(lambda t, y: y, np.ones((2, 2)), t, method="radau5",
                  jac=lambda t, y: np.eye(2))
    with pytest.raises(ValueError, match=r"3 values per state, got shape \(2,\)"):
        ef.fields.Lorenz().jacobian(0.0, [1.0, 2.0])


def test_the_stiff_van_der_pol_example_runs():
    script = Path(__file__).resolve().parents[1] / "examples" / "stiff_van_der_pol.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, check=True)
    assert "Jacobians" in proc.stdout and "falls through 1.75" in proc.stdout
    first = float(proc.stdout.split("falls through 1.75 at t = ")[1].split(",")[0].split()[0])
    reduced = (np.log(1.75) - 1.75**2 / 2) - (np.log(2.0) - 2.0)
    assert abs(first - reduced) < 1e-4  # eps = 1e-6: the reduced problem to O(eps)
