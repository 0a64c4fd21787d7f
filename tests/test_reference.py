"""The NumPy reference checks itself: finite differences and closed forms.

The other tests trust tests/reference/nn_reference.py, so it is verified here against
numbers it does not compute itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ACTIVATIONS, act_id
from reference import nn_reference as ref


def _random_net(rng, act):
    name, kw = act
    return ref.Sequential([
        ref.Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
        ref.Activation(name, **kw),
        ref.Residual(ref.Sequential([ref.Dense(rng.standard_normal((4, 4)) / 2,
                                               rng.standard_normal(4)),
                                     ref.Activation(name, **kw)]), mode="step", h=0.3),
        ref.Residual(ref.Dense(rng.standard_normal((4, 4)) / 2), mode="average"),
        ref.Residual(ref.Activation(name, **kw), mode="add"),
        ref.Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
    ])


@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_reference_backward_matches_finite_differences(act):
    rng = np.random.default_rng(1)
    net = _random_net(rng, act)
    x = rng.standard_normal((5, 3))
    gy = rng.standard_normal((5, 2))
    net.forward(x)
    gx = net.backward(gy)
    grads = [g.copy() for g in net.gradients()]

    def objective():
        return float(np.sum(gy * net.forward(x)))

    h = 1e-6
    for p, g in [(x, gx)] + list(zip(net.parameters(), grads, strict=True)):
        fd = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = objective()
            p[idx] = old - h
            down = objective()
            p[idx] = old
            fd[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_reference_activations_closed_forms():
    x = np.array([-30.0, -2.0, -0.5, 0.5, 2.0, 30.0])
    f, df = ref.activation_functions("softplus")
    np.testing.assert_allclose(f(x), np.where(x > 20, x, np.log1p(np.exp(x))), rtol=1e-15)
    f, _ = ref.activation_functions("softplus", beta=2.0, threshold=1.5)
    np.testing.assert_array_equal(f(x)[-2:], x[-2:])  # beta*x > threshold: identity
    np.testing.assert_allclose(f(x)[:4], np.log1p(np.exp(2 * x[:4])) / 2, rtol=1e-15)
    f, df = ref.activation_functions("leaky_relu", slope=0.2)
    np.testing.assert_array_equal(f(x), [-6.0, -0.4, -0.1, 0.5, 2.0, 30.0])
    np.testing.assert_array_equal(df(x), [0.2, 0.2, 0.2, 1, 1, 1])
    f, df = ref.activation_functions("elu", alpha=0.5)
    np.testing.assert_allclose(f(x)[:3], 0.5 * (np.exp(x[:3]) - 1), rtol=1e-15)
    f, _ = ref.activation_functions("sigmoid")
    np.testing.assert_allclose(f(x), 1 / (1 + np.exp(-x)), rtol=1e-15)


def test_reference_losses_closed_forms():
    y = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert ref.mse(y, t)[0] == (1 + 4 + 4 + 16) / 4
    assert ref.half_se(y, t)[0] == (1 + 4 + 4 + 16) / 2 / 2
    z = np.array([[0.0, math.log(3.0)], [1000.0, 1000.0]])  # second row would overflow exp
    value, grad = ref.cross_entropy(z, np.array([1, 0]))
    expected = (math.log(4.0) - math.log(3.0) + math.log(2.0)) / 2
    assert value == pytest.approx(expected, rel=1e-15)
    np.testing.assert_allclose(grad, [[0.25 / 2, -0.25 / 2], [-0.25, 0.25]], rtol=1e-15)
    value_p, grad_p = ref.cross_entropy(z, np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert value_p == value
    np.testing.assert_array_equal(grad_p, grad)


@pytest.mark.parametrize("loss", ["mse", "half_se", "cross_entropy"])
def test_reference_loss_gradients_match_finite_differences(loss):
    rng = np.random.default_rng(2)
    y = rng.standard_normal((4, 3))
    t = rng.integers(0, 3, 4) if loss == "cross_entropy" else rng.standard_normal((4, 3))
    _, grad = ref.LOSSES[loss](y, t)
    fd = np.zeros_like(y)
    h = 1e-6
    for idx in np.ndindex(y.shape):
        yp, ym = y.copy(), y.copy()
        yp[idx] += h
        ym[idx] -= h
        fd[idx] = (ref.LOSSES[loss](yp, t)[0] - ref.LOSSES[loss](ym, t)[0]) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_reference_sgd_momentum_by_hand():
    p = np.array([1.0])
    opt = ref.SGD(0.1, momentum=0.9, dampening=0.5, weight_decay=0.0, nesterov=False)
    opt.step([p], [np.array([2.0])])  # buf = 2
    assert p[0] == pytest.approx(1.0 - 0.2)
    opt.step([p], [np.array([2.0])])  # buf = 0.9*2 + 0.5*2 = 2.8
    assert p[0] == pytest.approx(0.8 - 0.28)
    q = np.array([1.0])
    nest = ref.SGD(0.1, momentum=0.5, weight_decay=0.1, nesterov=True)
    nest.step([q], [np.array([1.0])])  # g = 1.1, buf = 1.1, step g + 0.5 buf = 1.65
    assert q[0] == pytest.approx(1.0 - 0.165)


def test_reference_adam_and_nadam_first_step_by_hand():
    p = np.array([1.0, -1.0])
    g = np.array([0.3, -2.0])
    ref.Adam(lr=0.01).step([p], [g])
    # first Adam step: m_hat = g, v_hat = g^2 -> lr * g / (|g| + eps)
    np.testing.assert_allclose(p, [1.0 - 0.01 * 0.3 / (0.3 + 1e-8), -1.0 + 0.01 * 2 / (2 + 1e-8)],
                               rtol=1e-14)
    q = np.array([1.0])
    ref.Nadam(lr=0.01).step([q], [np.array([0.5])])
    b1, psi = 0.9, 4e-3
    mu1 = b1 * (1 - 0.5 * 0.96 ** psi)
    mu2 = b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    m1 = 0.1 * 0.5
    denom = math.sqrt(0.001 * 0.25 / (1 - 0.999)) + 1e-8
    expected = 1.0 - 0.01 * (1 - mu1) / (1 - mu1) * 0.5 / denom \
        - 0.01 * mu2 / (1 - mu1 * mu2) * m1 / denom
    assert q[0] == pytest.approx(expected, rel=1e-14)


def test_reference_regularization_gradient():
    W = np.array([[1.0, -2.0], [0.0, 3.0]])
    value, (g,) = ref.regularization([W], l1=0.1, l2=0.01)
    assert value == pytest.approx(0.1 * 6 + 0.01 * 14)
    np.testing.assert_allclose(g, 0.1 * np.sign(W) + 0.02 * W)
