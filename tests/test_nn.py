"""Forward, backward, parameters and hidden states against the NumPy reference.

Every activation and every residual mode is compared to tests/reference/nn_reference.py
to 1e-12, and the gradients are checked against central finite differences.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from conftest import ACTIVATIONS, act_id, assert_all_close, assert_close, build_pair
from reference import nn_reference as ref

BLOCKS = {
    "plain": lambda a: [("dense", 4, 4), a],
    "average": lambda a: [("res", "average", 0.1, [("dense", 4, 4), a])],
    "add": lambda a: [("res", "add", 0.1, [("dense", 4, 4), a])],
    "step": lambda a: [("res", "step", 0.37, [("dense", 4, 4), a, ("dense", 4, 4)])],
    "nested": lambda a: [
        ("res", "step", 0.5, [("seq", [("dense", 4, 4), a]),
                              ("res", "average", 0.1, [("dense", 4, 4, False), a])]),
        ("seq", [("dense", 4, 4), a]),
    ],
}


def _spec(act, block):
    a = ("act", act[0], act[1])
    return [("dense", 3, 4), a] + BLOCKS[block](a) + [("dense", 4, 2)]


def _forward_backward_hidden(net, x, gy):
    y = net(x)
    gx = net.backward(gy)
    grads = [np.array(g, copy=True) for g in net.gradients()]
    return y, gx, grads


@pytest.mark.parametrize("block", list(BLOCKS))
@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_network_matches_reference(act, block):
    net, rnet = build_pair(ef, _spec(act, block), seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 3)) * 2
    gy = rng.standard_normal((7, 2))

    y, gx, grads = _forward_backward_hidden(net, x, gy)
    ry = rnet.forward(x)
    rgx = rnet.backward(gy)
    assert y.shape == (7, 2) and y.dtype == np.float64
    assert_close(y, ry)
    assert gx.shape == x.shape
    assert_close(gx, rgx)
    assert_all_close(grads, rnet.gradients(), what="gradient")

    states = net.hidden_states(x)
    rstates = rnet.hidden_states(x)
    assert len(states) == len(rstates) == len(rnet.layers) + 1
    assert_close(states[0], x, rtol=0, atol=0)
    assert_all_close(states, rstates, what="hidden state")


@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_activation_values_and_derivatives_on_a_grid(act):
    name, kw = act
    # includes the kinks (0) and values past softplus' threshold and sigmoid's saturation
    x = np.concatenate([np.linspace(-40, 40, 161), [0.0, -0.0, 1e-300, -1e-300, 0.75, 10.0]])
    x = x.reshape(-1, 1) * np.ones((1, 3))
    gy = np.random.default_rng(0).standard_normal(x.shape)
    layer = ef.Activation(name, **kw)
    f, df = ref.activation_functions(name, **kw)
    assert_close(layer(x), f(x))
    assert_close(layer.backward(gy), gy * df(x))
    assert layer.parameters() == []


def test_activation_defaults_are_torchs():
    x = np.linspace(-3, 3, 13).reshape(1, -1)
    assert_close(ef.Activation("leaky_relu")(x), ef.Activation("leaky_relu", slope=0.01)(x),
                 rtol=0, atol=0)
    assert_close(ef.Activation("elu")(x), ef.Activation("elu", alpha=1.0)(x), rtol=0, atol=0)
    f, _ = ref.activation_functions("softplus", beta=1.0, threshold=20.0)
    z = np.array([[-5.0, 0.0, 19.0, 21.0]])
    assert_close(ef.Activation("softplus")(z), f(z))


def test_map_layer_matches_reference():
    spec = [("dense", 3, 4), ("map", np.sin, np.cos), ("dense", 4, 2)]
    net, rnet = build_pair(ef, spec, seed=8)
    x = np.random.default_rng(9).standard_normal((6, 3))
    gy = np.random.default_rng(10).standard_normal((6, 2))
    y, gx, grads = _forward_backward_hidden(net, x, gy)
    assert_close(y, rnet.forward(x))
    assert_close(gx, rnet.backward(gy))
    assert_all_close(grads, rnet.gradients())


def test_residual_default_is_euler_step_with_h_0_1():
    rng = np.random.default_rng(5)
    d = ef.Dense(3, 3, seed=1)
    x = rng.standard_normal((4, 3))
    fx = x @ d.W.T + d.b
    assert_close(ef.Residual(d)(x), x + 0.1 * fx)
    assert_close(ef.Residual(d, mode="average")(x), (fx + x) / 2)
    assert_close(ef.Residual(d, mode="add")(x), x + fx)
    assert_close(ef.Residual(d, mode="step", h=0.25)(x), x + 0.25 * fx)


def test_dense_computes_x_wt_plus_b_and_sums_gradients_over_the_batch():
    d = ef.Dense(3, 2, seed=0)
    assert d.W.shape == (2, 3) and d.b.shape == (2,)
    W = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    b = np.array([0.25, -4.0])
    d.W[...] = W
    d.b[...] = b
    x = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 1.0]])
    np.testing.assert_array_equal(d(x), [[1.0 - 3.0 + 0.25, -1.0 - 4.0],
                                         [2.0 + 2.0 + 3.0 + 0.25, -2.0 + 0.5 - 4.0]])
    gy = np.array([[1.0, 2.0], [3.0, -1.0]])
    gx = d.backward(gy)
    np.testing.assert_array_equal(gx, gy @ W)
    gW, gb = d.gradients()
    np.testing.assert_array_equal(gW, gy.T @ x)
    np.testing.assert_array_equal(gb, [4.0, 1.0])


def test_dense_without_bias():
    d = ef.Dense(4, 3, bias=False, seed=0)
    assert d.b is None
    assert len(d.parameters()) == 1 and d.parameters()[0].shape == (3, 4)
    x = np.random.default_rng(0).standard_normal((5, 4))
    assert_close(d(x), x @ d.W.T)


def test_dense_default_init_is_torch_linear_uniform():
    d = ef.Dense(100, 200, seed=0)
    bound = 1 / np.sqrt(100)
    for p in (d.W, d.b):
        assert p.dtype == np.float64
        assert np.all(np.abs(p) <= bound)
    assert np.abs(d.W).max() > 0.99 * bound  # uniform up to the bound, not a normal draw
    assert abs(d.W.mean()) < 0.01 * bound * 3
    # the variance of U(-k, k) is k^2/3
    assert d.W.var() == pytest.approx(bound**2 / 3, rel=0.05)
    assert np.unique(d.W).size == d.W.size


def test_mlp_matches_hand_written_forward():
    net = ef.mlp([3, 5, 4, 2], "tanh", seed=0)
    params = net.parameters()
    assert [p.shape for p in params] == [(5, 3), (5,), (4, 5), (4,), (2, 4), (2,)]
    W0, b0, W1, b1, W2, b2 = params
    for W, n_in in ((W0, 3), (W1, 5), (W2, 4)):
        assert np.all(np.abs(W) <= 1 / np.sqrt(n_in))
    x = np.random.default_rng(0).standard_normal((6, 3)) * 3
    expected = np.tanh(np.tanh(x @ W0.T + b0) @ W1.T + b1) @ W2.T + b2  # last layer linear
    assert_close(net(x), expected)
    states = net.hidden_states(x)
    assert_close(states[0], x, rtol=0, atol=0)
    assert_close(states[-1], expected)


def test_mlp_without_bias_and_default_activation_relu():
    net = ef.mlp([2, 6, 1], seed=1, bias=False)
    W0, W1 = net.parameters()
    x = np.random.default_rng(1).standard_normal((5, 2))
    assert_close(net(x), np.maximum(x @ W0.T, 0) @ W1.T)


def test_mlp_layers_get_different_initial_weights():
    net = ef.mlp([4, 4, 4, 4], "tanh", seed=0)
    Ws = net.parameters()[::2]
    assert not np.array_equal(Ws[0], Ws[1])
    assert not np.array_equal(Ws[1], Ws[2])


def test_single_sample_1d_input():
    net, rnet = build_pair(ef, _spec(("elu", {}), "step"), seed=2)
    X = np.random.default_rng(3).standard_normal((4, 3))
    y1 = net(X[1])
    assert y1.shape == (2,)
    assert_close(y1, rnet.forward(X[1:2])[0])
    assert_close(y1, net(X)[1], rtol=1e-14, atol=1e-15)


def test_rows_are_independent():
    net, _ = build_pair(ef, _spec(("tanh", {}), "nested"), seed=2)
    X = np.random.default_rng(3).standard_normal((9, 3))
    Y = net(X)
    for i in range(9):
        assert_close(net(X[i:i + 1])[0], Y[i], rtol=1e-14, atol=1e-15)


def test_gradients_are_those_of_the_last_backward():
    net, rnet = build_pair(ef, _spec(("sigmoid", {}), "average"), seed=6)
    rng = np.random.default_rng(7)
    x1, x2 = rng.standard_normal((5, 3)), rng.standard_normal((3, 3))
    g1, g2 = rng.standard_normal((5, 2)), rng.standard_normal((3, 2))
    net(x1)
    net.backward(g1)
    net(x2)
    gx = net.backward(g2)
    rnet.forward(x2)
    assert_close(gx, rnet.backward(g2))
    assert_all_close(net.gradients(), rnet.gradients())
    # calling backward twice after one forward does not accumulate
    net.backward(g2)
    assert_all_close(net.gradients(), rnet.gradients())


def test_forward_does_not_modify_its_input():
    net, _ = build_pair(ef, _spec(("relu", {}), "add"), seed=2)
    x = np.random.default_rng(3).standard_normal((4, 3))
    x0 = x.copy()
    net(x)
    net.backward(np.ones((4, 2)))
    np.testing.assert_array_equal(x, x0)


def test_parameters_are_the_weights():
    net = ef.mlp([2, 3, 1], "tanh", seed=0)
    x = np.array([[0.5, -1.0]])
    params = net.parameters()
    assert len(params) == 4 and len({id(p) for p in params}) == 4
    assert all(p.flags.writeable for p in params)
    params[-1][...] = 10.0  # output bias, written through the list obtained earlier
    W0, b0, W1, _ = net.parameters()
    assert_close(net(x), np.tanh(x @ W0.T + b0) @ W1.T + 10.0)
    net.parameters()[2][...] = 0.0
    np.testing.assert_array_equal(net(x), [[10.0]])


def test_parameters_and_gradients_of_nested_containers_in_order():
    spec = [("dense", 2, 3), ("res", "step", 0.1, [("dense", 3, 3), ("act", "tanh", {})]),
            ("seq", [("dense", 3, 4, False), ("seq", [("dense", 4, 1)])])]
    net, _ = build_pair(ef, spec)
    assert [p.shape for p in net.parameters()] == [(3, 2), (3,), (3, 3), (3,), (4, 3), (1, 4),
                                                   (1,)]
    net(np.ones((2, 2)))
    net.backward(np.ones((2, 1)))
    assert [g.shape for g in net.gradients()] == [p.shape for p in net.parameters()]


# ---------------------------------------------------------------------------------------
# Finite differences: independent of the reference
# ---------------------------------------------------------------------------------------


def _finite_difference_check(net, x, gy, h=1e-6, rtol=1e-6, atol=1e-8):
    """dL/dx and dL/dp from backward vs central differences of L = sum(gy * net(x))."""
    x = x.copy()
    net(x)
    gx = np.array(net.backward(gy), copy=True)
    grads = [np.array(g, copy=True) for g in net.gradients()]

    def objective():
        return float(np.sum(gy * net(x)))

    for p, g in [(x, gx)] + list(zip(net.parameters(), grads, strict=True)):
        fd = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = objective()
            p[idx] = old - h
            down = objective()
            p[idx] = old
            fd[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=rtol, atol=atol)


FD_ACTIVATIONS = [a for a in ACTIVATIONS if a[1].get("threshold") is None]


@pytest.mark.parametrize("act", FD_ACTIVATIONS, ids=act_id)
def test_gradients_match_finite_differences(act):
    net, _ = build_pair(ef, _spec(act, "nested"), seed=11)
    rng = np.random.default_rng(12)
    _finite_difference_check(net, rng.standard_normal((4, 3)), rng.standard_normal((4, 2)))


@pytest.mark.parametrize("mode", ["average", "add", "step"])
def test_residual_gradients_match_finite_differences(mode):
    net, _ = build_pair(ef, [("dense", 2, 3), ("res", mode, 0.3, [("dense", 3, 3),
                                                                 ("act", "atan", {})]),
                             ("act", "softplus", {}), ("dense", 3, 2)], seed=13)
    rng = np.random.default_rng(14)
    _finite_difference_check(net, rng.standard_normal((5, 2)), rng.standard_normal((5, 2)))


def test_map_gradients_match_finite_differences():
    net = ef.Sequential([ef.Dense(2, 3, seed=0), ef.Map(lambda u: u**3, lambda u: 3 * u**2),
                         ef.Dense(3, 1, seed=1)])
    rng = np.random.default_rng(15)
    _finite_difference_check(net, rng.standard_normal((4, 2)), rng.standard_normal((4, 1)))


def test_shared_layer_is_listed_once_and_its_gradient_sums_both_uses():
    d = ef.Dense(3, 3, seed=0)
    net = ef.Sequential([d, ef.Activation("tanh"), d])
    assert len(net.parameters()) == 2
    rng = np.random.default_rng(16)
    _finite_difference_check(net, rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))


# ---------------------------------------------------------------------------------------
# Sizes that exercise every chunk and tail of the vectorized kernels
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 32, 33, 64, 67, 200])
def test_wide_layers_and_large_batches_match_reference(n):
    spec = [("dense", 3, 37), ("act", "atan", {}), ("dense", 37, 9), ("act", "softplus", {}),
            ("res", "average", 0.1, [("dense", 9, 9), ("act", "tanh", {})]),
            ("dense", 9, 129, False), ("act", "elu", {}), ("dense", 129, 5)]
    net, rnet = build_pair(ef, spec, seed=n)
    rng = np.random.default_rng(n + 1)
    x = rng.standard_normal((n, 3))
    gy = rng.standard_normal((n, 5))
    y, gx, grads = _forward_backward_hidden(net, x, gy)
    assert_close(y, rnet.forward(x))
    assert_close(gx, rnet.backward(gy))
    assert_all_close(grads, rnet.gradients(), what="gradient")


def _ulps(got, want):
    """Distance in units in the last place of ``want``."""
    return np.abs(got - want) / np.spacing(np.abs(want))


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a[0] not in ("identity", "relu")],
                         ids=act_id)
def test_activation_values_are_accurate_to_a_few_ulps(act):
    """The core evaluates exp/log/tanh/atan itself: compare with libm over all magnitudes."""
    name, kw = act
    mag = np.concatenate([np.logspace(-300, 3, 3000), np.linspace(0, 40, 4001)[1:]])
    x = np.concatenate([mag, -mag]).reshape(-1, 1)
    f, df = ref.activation_functions(name, **kw)
    layer = ef.Activation(name, **kw)
    want = f(x)
    got = layer(x)
    normal = np.abs(want) > 1e-290  # results in the subnormal range may flush
    assert np.max(_ulps(got[normal], want[normal])) <= 4
    assert np.all(np.abs(got[~normal]) <= 1e-290)
    gx = layer.backward(np.ones_like(x))
    assert_close(gx, df(x), rtol=1e-13, atol=1e-15)


def test_hidden_states_of_single_modules_and_single_samples():
    d = ef.Dense(3, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    states = d.hidden_states(x)
    assert len(states) == 2
    np.testing.assert_array_equal(states[0], x)
    assert_close(states[1], x @ d.W.T + d.b)
    net = ef.mlp([3, 4, 2], "tanh", seed=0)
    one = net.hidden_states(x[2])
    batch = net.hidden_states(x)
    assert len(one) == len(batch)
    for s, t in zip(one, batch, strict=True):
        assert s.shape == t.shape[1:]
        assert_close(s, t[2], rtol=1e-14, atol=1e-15)
