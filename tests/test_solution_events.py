"""ef.solve's dense Solution, events, per-row time grids, reference values of classic
test problems, and what a step-size underflow says."""

import eulerflow as ef
import numpy as np
import pytest

A = np.array([[-0.1, -1.0], [1.0, -0.1]])
G = 9.8


def _expm_spiral(t, y0):
    """exp(t A) y0 for A = [[-a, -w], [w, -a]] in closed form."""
    a, w = 0.1, 1.0
    c, s = np.cos(w * t), np.sin(w * t)
    rot = np.array([[c, -s], [s, c]])
    return np.exp(-a * t) * rot @ y0


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
@pytest.mark.parametrize("direction", [1, -1])
def test_solution_evaluates_to_odeints_bits_and_to_the_truth(method, direction):
    t = np.linspace(0.0, 7.0, 41)[::direction]
    y0 = np.array([0.6, 0.3])
    ys = ef.odeint(ef.fields.Linear(A), y0, t, method=method, rtol=1e-9, atol=1e-12)
    sol = ef.solve(ef.fields.Linear(A), y0, t, method=method, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(sol.evaluate(t), ys)  # the same steps, the same formulas
    np.testing.assert_array_equal(sol.t[[0, -1]], t[[0, -1]])
    np.testing.assert_array_equal(sol.y[0], y0)
    dense = np.linspace(t[0], t[-1], 997)  # anywhere in between, to the tolerance
    err = max(np.abs(sol(ti) - _expm_spiral(ti - t[0], y0)).max() for ti in dense)
    assert err < (1e-7 if method == "dopri5" else 1e-5)
    assert sol.evaluate(dense).shape == (997, 2) and sol.evaluate(3.0).shape == (2,)
    # the stored boundary states are the steps' own
    np.testing.assert_array_equal(sol.evaluate(sol.t), sol.y)
    with pytest.raises(ValueError, match="within the solution's span"):
        sol.evaluate(t[-1] + direction * 1.0)


def test_solve_on_a_batch_and_bad_input():
    y0 = np.array([[0.6, 0.3], [1.0, -1.0]])
    sol = ef.solve(ef.fields.Linear(A), y0, [0.0, 2.0])
    assert sol.evaluate([0.5, 1.5]).shape == (2, 2, 2)
    with pytest.raises(ValueError, match="adaptive method"):
        ef.solve(ef.fields.Linear(A), y0, [0.0, 1.0], method="rk4")
    with pytest.raises(ValueError, match="at least two times"):
        ef.solve(ef.fields.Linear(A), y0, [0.0])


def _falling(t, y):
    return np.array([y[1], -G])


def test_a_falling_projectile_hits_the_ground_at_the_analytic_time():
    def ground(t, y):
        return y[0]

    ground.terminal, ground.direction = True, -1
    h0 = 10.0
    t = np.linspace(0.0, 5.0, 11)
    ys, info = ef.odeint(_falling, [h0, 0.0], t, events=[ground], rtol=1e-10, atol=1e-12)
    t_hit = np.sqrt(2 * h0 / G)
    assert info["terminated"] and info["t_events"][0].shape == (1,)
    assert abs(info["t_events"][0][0] - t_hit) < 1e-10
    np.testing.assert_allclose(info["y_events"][0][0], [0.0, -G * t_hit], atol=1e-9)
    assert ys.shape == (int(np.sum(t <= t_hit)), 2)  # the times up to the event
    sol = ef.solve(_falling, [h0, 0.0], t, events=ground, rtol=1e-10, atol=1e-12)
    assert sol.terminated and sol.t[-1] == info["t_events"][0][0]


def test_event_directions_and_non_terminal_events():
    """Thrown up at v0 from the ground, the height crosses 3 on the way up and down:
    both times are found, or only the one of the requested direction."""
    v0, level = 10.0, 3.0
    up_t, down_t = np.sort(np.roots([-G / 2, v0, -level]))

    def height(t, y):
        return y[0] - level

    def rising(t, y):
        return y[0] - level

    def falling(t, y):
        return y[0] - level

    rising.direction, falling.direction = 1, -1
    sol = ef.solve(_falling, [0.0, v0], [0.0, 2.0], events=[height, rising, falling],
                   rtol=1e-11, atol=1e-12)
    assert not sol.terminated and sol.t[-1] == 2.0
    np.testing.assert_allclose(sol.t_events[0], [up_t, down_t], atol=1e-10)
    np.testing.assert_allclose(sol.t_events[1], [up_t], atol=1e-10)
    np.testing.assert_allclose(sol.t_events[2], [down_t], atol=1e-10)
    np.testing.assert_allclose(sol.y_events[0][:, 0], level, atol=1e-9)
    with pytest.raises(ValueError, match="adaptive"):
        ef.odeint(_falling, [0.0, v0], [0.0, 1.0], method="rk4", events=[height])
    with pytest.raises(TypeError, match="callables"):
        ef.solve(_falling, [0.0, v0], [0.0, 1.0], events=[3])


@pytest.mark.parametrize("method", ["dopri5", "rk4"])
def test_per_row_time_grids_in_one_call(method):
    y0 = np.array([[1.0, 0.0], [0.5, 0.5], [-0.2, 0.9]])
    T = np.array([[0.0, 1.0, 2.0, 4.0], [0.0, 0.5, 3.0, 3.5], [1.0, 0.7, 0.2, -1.0]])
    kw = {"step_size": 0.01} if method == "rk4" else {"rtol": 1e-10, "atol": 1e-12}
    ys, info = ef.odeint(ef.fields.Linear(A), y0, T, method=method, full_output=True, **kw)
    assert ys.shape == (4, 3, 2) and info["nfev"] > 0
    for r in range(3):  # each row as its own integration, bit for bit
        np.testing.assert_array_equal(ys[:, r], ef.odeint(ef.fields.Linear(A), y0[r], T[r],
                                                          method=method, **kw))
        for i in range(4):
            truth = _expm_spiral(T[r, i] - T[r, 0], y0[r])
            np.testing.assert_allclose(ys[i, r], truth, atol=1e-7)
    with pytest.raises(ValueError, match=r"^t of shape \(batch, n_times\).*same batch"):
        ef.odeint(ef.fields.Linear(A), y0[:2], T)
    with pytest.raises(ValueError, match=r"t\[1\] must be strictly"):
        ef.odeint(ef.fields.Linear(A), y0, np.array([[0, 1.0], [1.0, 1.0], [0, 2.0]]))


# --- reference values (issue 12): Brusselator, Lotka-Volterra, DETEST A1-A4 -------------------

def brusselator(t, y):
    return np.array([1 + y[0] ** 2 * y[1] - 4 * y[0], 3 * y[0] - y[0] ** 2 * y[1]])


def lotka_volterra(t, y):
    a, b, c, d = 1.5, 1.0, 3.0, 1.0
    return np.array([a * y[0] - b * y[0] * y[1], -c * y[1] + d * y[0] * y[1]])


@pytest.mark.parametrize("name, f, y0, t_end, expected", [
    ("Brusselator", brusselator, [1.5, 3.0], 20.0, [0.498637071268347, 4.59678034945202]),
    ("Lotka-Volterra", lotka_volterra, [10.0, 5.0], 15.0, [0.7137513780978, 0.0754077962408]),
])
def test_reference_values(name, f, y0, t_end, expected):
    ys = ef.odeint(f, y0, [0.0, t_end], rtol=1e-12, atol=1e-14, max_steps=1_000_000)
    np.testing.assert_allclose(ys[-1], expected, rtol=1e-9, atol=1e-12, err_msg=name)


DETEST = {
    "A1": (lambda t, y: -y, 1.0, lambda t: np.exp(-t)),
    "A2": (lambda t, y: -y ** 3 / 2, 1.0, lambda t: 1 / np.sqrt(t + 1)),
    "A3": (lambda t, y: y * np.cos(t), 1.0, lambda t: np.exp(np.sin(t))),
    "A4": (lambda t, y: y / 4 * (1 - y / 20), 1.0, lambda t: 20 / (1 + 19 * np.exp(-t / 4))),
}


@pytest.mark.parametrize("problem", list(DETEST))
def test_detest_class_a_closed_forms(problem):
    f, y0, exact = DETEST[problem]
    t = np.linspace(0.0, 20.0, 21)
    ys = ef.odeint(f, [y0], t, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ys[:, 0], exact(t), rtol=1e-9, atol=1e-13)


def test_a_step_size_underflow_names_the_time_the_step_and_the_state():
    """y' = y^2 from 1 blows up at t = 1: the message says where, with what step and
    state, and what to try; no NaN comes back silently."""
    with pytest.raises(ef.IntegrationError) as info:
        ef.odeint(lambda t, y: y ** 2, [1.0], [0.0, 2.0])
    message = str(info.value)
    assert "step size underflow at t = " in message
    t_reached = float(message.split("at t = ")[1].split()[0])
    assert abs(t_reached - 1.0) < 1e-3  # where the solution blows up
    assert "state norm" in message and "implicit method" in message


def test_tsit5_on_the_arenstorf_orbit():
    """Tsitouras 5(4), diffrax's default: closes the Arenstorf orbit, and more accurately
    than dopri5 for about the same evaluations."""
    T = 17.0652165601579625588917206249
    y0 = np.array([0.994, 0.0, 0.0, -2.00158510637908252240537862224])
    results = {}
    for method in ("tsit5", "dopri5"):
        ys, info = ef.odeint(ef.fields.Arenstorf(), y0, [0.0, T], method=method, rtol=1e-10,
                             atol=1e-10, full_output=True, max_steps=10**6)
        results[method] = (np.abs(ys[-1] - y0).max(), info["nfev"])
    assert results["tsit5"][0] < 1e-5
    assert results["tsit5"][0] < results["dopri5"][0]
    assert results["tsit5"][1] < 1.2 * results["dopri5"][1]
    assert ef.ode.tableau("tsit5")["order"] == 5
