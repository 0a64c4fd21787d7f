"""method="radau5": the implicit Radau IIA method (order 5) for stiff problems."""

import eulerflow as ef
import numpy as np
import pytest

VDP_T2 = np.array([1.706167732170493, -0.892809701024786])  # Hairer's reference, eps = 1e-6


def van_der_pol(eps):
    def f(t, y):
        return np.array([y[1], ((1 - y[0] ** 2) * y[1] - y[0]) / eps])

    return f


def test_stiff_van_der_pol_to_the_reference_where_dopri5_gives_up():
    ys, info = ef.odeint(van_der_pol(1e-6), [2.0, 0.0], [0.0, 2.0], method="radau5",
                         rtol=1e-6, atol=1e-6, full_output=True)
    np.testing.assert_allclose(ys[-1], VDP_T2, atol=1e-6)
    assert info["naccepted"] < 2000  # a stiff solver's steps, not an explicit one's
    with pytest.raises(ef.IntegrationError, match="radau5"):
        ef.odeint(van_der_pol(1e-6), [2.0, 0.0], [0.0, 2.0], method="dopri5", rtol=1e-6,
                  atol=1e-6, max_steps=20_000)


@pytest.mark.parametrize("rtol", [1e-5, 1e-8, 1e-11])
def test_error_follows_the_tolerance_on_a_stiff_linear_system(rtol):
    """y' = L (y - g(t)) + g'(t) with L = -diag(1, 1e3, 1e6): y = g + exp(L t)(y0 - g0)."""
    lam = np.array([-1.0, -1e3, -1e6])

    def g(t):
        return np.array([np.sin(t), np.cos(t), np.sin(2 * t)])

    def dg(t):
        return np.array([np.cos(t), -np.sin(t), 2 * np.cos(2 * t)])

    def f(t, y):
        return lam * (y - g(t)) + dg(t)

    y0 = np.array([1.0, 2.0, 3.0])
    t = np.linspace(0.0, 3.0, 7)
    ys = ef.odeint(f, y0, t, method="radau5", rtol=rtol, atol=rtol)
    exact = np.array([g(ti) + np.exp(lam * ti) * (y0 - g(0.0)) for ti in t])
    err = np.abs(ys - exact).max()
    assert err < 300 * rtol  # (between steps: the collocation polynomial, order 3)


def test_radau5_with_native_fields_batches_backward_time_and_per_row_grids():
    A = np.array([[-0.1, -1.0], [1.0, -0.1]])
    y0 = np.array([[0.6, 0.3], [1.0, 0.0]])
    t = np.linspace(0.0, 5.0, 11)
    ys = ef.odeint(ef.fields.Linear(A), y0, t, method="radau5", rtol=1e-10, atol=1e-12)
    ref = ef.odeint(ef.fields.Linear(A), y0, t, method="dopri5", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ys, ref, atol=1e-8)
    back = ef.odeint(ef.fields.Linear(A), ys[-1], t[::-1], method="radau5", rtol=1e-10,
                     atol=1e-12)
    np.testing.assert_allclose(back[-1], y0, atol=1e-8)
    rows = ef.odeint(ef.fields.Linear(A), y0, np.stack([t, 2 * t]), method="radau5",
                     rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rows[:, 0], ys[:, 0], atol=1e-8)
    net = ef.mlp([2, 3, 2], "tanh", seed=0)  # a network as the field
    np.testing.assert_allclose(ef.odeint(net, y0[0], t, method="radau5", rtol=1e-10,
                                         atol=1e-12),
                               ef.odeint(net, y0[0], t, rtol=1e-12, atol=1e-14), atol=1e-8)


def test_radau5_refuses_what_it_does_not_do():
    f = van_der_pol(1e-3)
    with pytest.raises(ValueError, match="step_size"):
        ef.odeint(f, [2.0, 0.0], [0.0, 1.0], method="radau5", step_size=0.1)
    with pytest.raises(ValueError, match="events need an adaptive method"):
        ef.odeint(f, [2.0, 0.0], [0.0, 1.0], method="rk4", events=[lambda t, y: y[0]])
    with pytest.raises(ValueError, match="explicit Runge-Kutta"):
        ef.NeuralODE(ef.Dense(2, 2), method="radau5")
    with pytest.raises(ValueError, match="implicit"):
        ef.ode.tableau("radau5")
    with pytest.raises(ef.IntegrationError, match="non-finite"):
        ef.odeint(lambda t, y: y * np.inf, [1.0], [0.0, 1.0], method="radau5")
