"""The ODE data generators against closed forms and the seeds' own loops."""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest

SPIRAL_A = np.array([[-0.1, -1.0], [1.0, -0.1]])


def test_spiral_ode_matches_the_matrix_exponential():
    t, ys = ef.data.spiral_ode(SPIRAL_A, (0.6, 0.3), 10.0, 100)
    assert t.shape == (100,) and ys.shape == (100, 2)
    assert np.array_equal(t, np.linspace(0.0, 10.0, 100))
    # expm(tA) for A = a I + b J (J the rotation generator) is e^{at} R(bt)
    a, b = -0.1, 1.0
    c, s = np.cos(b * t), np.sin(b * t)
    exact = np.exp(a * t)[:, None] * np.stack([c * 0.6 - s * 0.3, s * 0.6 + c * 0.3], axis=1)
    np.testing.assert_allclose(ys, exact, rtol=0, atol=1e-10)


def test_projectile_dataset_is_the_seeds_formula():
    X, Y = ef.data.projectile(1000, seed=3)
    assert X.shape == (1000, 7) and Y.shape == (1000, 3)
    np.testing.assert_array_equal(X[:, :6], np.tile([0, 0, 0, 5, 0, 0.1], (1000, 1)))
    t = X[:, 6]
    assert t.min() >= 0.0 and t.max() < 1.0
    np.testing.assert_allclose(Y[:, 0], (5 * t - 4.9 * t**2) / 10, rtol=0, atol=1e-15)
    np.testing.assert_allclose(Y[:, 1], 10 * (0.05 * t**2), rtol=0, atol=1e-15)
    np.testing.assert_allclose(Y[:, 2], 10 * (0.1 * t), rtol=0, atol=1e-15)
    X2, _ = ef.data.projectile(1000, seed=3)
    assert np.array_equal(X, X2)
    X3, _ = ef.data.projectile(1000, seed=4)
    assert not np.array_equal(X, X3)


@pytest.mark.parametrize("h", [0.1, 0.01, 0.001])
def test_projectile_euler_is_explicit_euler_in_closed_form(h):
    states = ef.data.projectile_euler(h)
    k = round(1.0 / h)
    assert states.shape == (k + 1, 6)
    n = np.arange(k + 1)
    t = n * h
    # explicit Euler on x'' = g: v_n = v0 + g t_n, x_n = x0 + v0 t_n + g h^2 n(n-1)/2
    for axis, (v0, g) in enumerate([(5.0, -9.8), (0.0, 0.1), (0.1, 0.0)]):
        np.testing.assert_allclose(states[:, 3 + axis], v0 + g * t, rtol=0, atol=1e-12)
        np.testing.assert_allclose(states[:, axis], v0 * t + g * h * h * n * (n - 1) / 2,
                                   rtol=0, atol=1e-12)
    # the end-point error in height is exactly 4.9 h (first order)
    assert states[-1, 0] - (5.0 - 4.9) == pytest.approx(4.9 * h, rel=1e-9)


def test_lorenz_with_euler_is_seed_002s_loop():
    t, ys = ef.data.lorenz(200, 2.0, method="euler")
    assert ys.shape == (200, 3)
    dt = t[1] - t[0]
    x = np.array([1.0, 1.0, 1.0])
    ref = [x.copy()]
    for _ in range(199):
        dx = np.array([10 * (x[1] - x[0]), x[0] * (28 - x[2]) - x[1], x[0] * x[1] - 8 / 3 * x[2]])
        x = x + dt * dx
        ref.append(x.copy())
    np.testing.assert_allclose(ys, np.array(ref), rtol=1e-9, atol=1e-9)


def test_lorenz_methods_converge_to_the_same_solution():
    _, rk4 = ef.data.lorenz(2001, 1.0, method="rk4")
    _, dop = ef.data.lorenz(2001, 1.0, method="dopri5")
    np.testing.assert_allclose(rk4, dop, rtol=0, atol=1e-8)


@pytest.mark.parametrize("call", [
    lambda: ef.data.projectile(0),
    lambda: ef.data.projectile_euler(-0.1),
    lambda: ef.data.lorenz(0, 10.0),
    lambda: ef.data.lorenz(100, 10.0, method="nope"),
    lambda: ef.data.spiral_ode([[1.0, 2.0]], (0.6, 0.3)),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises((ValueError, TypeError)):
        call()
