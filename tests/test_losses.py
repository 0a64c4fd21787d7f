"""The three losses, their gradients and the Keras-style L1/L2 terms, seen through fit().

A fit of one full-batch epoch records the loss before its step (hist.loss[0]) and moves
every parameter by -lr * gradient, so both are compared with the reference and with
central finite differences of the recorded loss.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from conftest import assert_all_close, assert_close, build_pair
from reference import nn_reference as ref

SPEC = [("dense", 3, 5), ("act", "tanh", {}), ("res", "average", 0.1,
                                               [("dense", 5, 5), ("act", "elu", {})]),
        ("dense", 5, 4)]


def _targets(loss, n=9, k=4, seed=0):
    rng = np.random.default_rng(seed)
    if loss == "cross_entropy":
        return rng.integers(0, k, n)
    if loss == "cross_entropy_prob":
        return rng.dirichlet(np.ones(k), n)
    return rng.standard_normal((n, k))


def _loss_name(case):
    return "cross_entropy" if case.startswith("cross_entropy") else case


# eulerflow refuses lr = 0; a step of 1e-300 * gradient moves no parameter by an ulp, so
# the recorded (pre-step) loss of such a fit is the loss of the current parameters.
TINY_LR = 1e-300


def _one_epoch(net, X, Y, loss, lr, **kw):
    return net.fit(X, Y, loss=loss, optimizer=ef.optim.SGD(lr), epochs=1,
                   batch_size=X.shape[0], shuffle=False, **kw)


CASES = ["mse", "half_se", "cross_entropy", "cross_entropy_prob"]


@pytest.mark.parametrize("case", CASES)
def test_loss_value_and_one_step_match_reference(case):
    net, rnet = build_pair(ef, SPEC, seed=1)
    X = np.random.default_rng(2).standard_normal((9, 3))
    Y = _targets(case)
    loss = _loss_name(case)

    rvalue, _, rgrads = ref.batch_loss(rnet, X, Y, loss)
    hist = _one_epoch(net, X, Y, loss, lr=TINY_LR)
    assert isinstance(hist.loss, np.ndarray) and hist.loss.dtype == np.float64
    assert hist.loss.shape == (1,)
    assert_close(hist.loss[0], rvalue)
    assert_all_close(net.parameters(), rnet.parameters(), rtol=0, atol=0)  # unchanged

    _one_epoch(net, X, Y, loss, lr=0.5)
    expected = [p - 0.5 * g for p, g in zip(rnet.parameters(), rgrads, strict=True)]
    assert_all_close(net.parameters(), expected, what="parameter")


def test_loss_definitions_on_hand_made_numbers():
    """A 1-layer identity net outputs its bias: the losses of known outputs, by hand."""
    net = ef.Sequential([ef.Dense(1, 2, seed=0)])
    net.parameters()[0][...] = 0.0
    net.parameters()[1][...] = [1.0, 3.0]
    X = np.zeros((2, 1))
    Y = np.array([[0.0, 1.0], [2.0, 3.0]])  # errors (1, 2), (-1, 0)
    assert _one_epoch(net, X, Y, "mse", TINY_LR).loss[0] == pytest.approx((1 + 4 + 1 + 0) / 4)
    assert _one_epoch(net, X, Y, "half_se", TINY_LR).loss[0] == pytest.approx((5 / 2 + 1 / 2) / 2)
    # logits (1, 3) for both rows; targets 0 and 1
    lse = np.log(np.exp(1.0) + np.exp(3.0))
    ce = _one_epoch(net, X, np.array([0, 1]), "cross_entropy", TINY_LR).loss[0]
    assert ce == pytest.approx(((lse - 1) + (lse - 3)) / 2, rel=1e-14)


def test_cross_entropy_one_hot_targets_equal_index_targets():
    net, _ = build_pair(ef, SPEC, seed=3)
    X = np.random.default_rng(4).standard_normal((9, 3))
    labels = _targets("cross_entropy", seed=5)
    one_hot = np.eye(4)[labels]
    net2, _ = build_pair(ef, SPEC, seed=3)
    h1 = _one_epoch(net, X, labels, "cross_entropy", 0.3)
    h2 = _one_epoch(net2, X, one_hot, "cross_entropy", 0.3)
    assert_close(h1.loss, h2.loss)
    assert_all_close(net.parameters(), net2.parameters())


def test_cross_entropy_is_stable_for_huge_logits():
    net = ef.Sequential([ef.Dense(2, 3, seed=0)])
    rnet = ref.Sequential([ref.Dense(np.zeros((3, 2)), np.zeros(3))])
    W = np.array([[900.0, -400.0], [-800.0, 1000.0], [850.0, 950.0]])
    b = np.array([10.0, -5.0, 3.0])
    for p, rp, v in zip(net.parameters(), rnet.parameters(), (W, b), strict=True):
        p[...] = v
        rp[...] = v
    X = np.array([[1.0, 0.5], [-1.0, 2.0], [0.3, 0.3]])
    Y = np.array([0, 2, 1])
    rvalue, _, rgrads = ref.batch_loss(rnet, X, Y, "cross_entropy")
    hist = _one_epoch(net, X, Y, "cross_entropy", 1e-3)
    assert np.isfinite(hist.loss[0])
    assert_close(hist.loss[0], rvalue)
    expected = [p - 1e-3 * g for p, g in zip(rnet.parameters(), rgrads, strict=True)]
    assert_all_close(net.parameters(), expected)


def test_cross_entropy_records_accuracy():
    net, rnet = build_pair(ef, SPEC, seed=6)
    X = np.random.default_rng(7).standard_normal((12, 3))
    Y = _targets("cross_entropy", n=12, seed=8)
    hist = net.fit(X, Y, loss="cross_entropy", optimizer=ef.optim.SGD(0.5), epochs=4,
                   batch_size=4, shuffle=False)
    expected = ref.fit(rnet, X, Y, "cross_entropy", ref.SGD(0.5), epochs=4, batch_size=4)
    assert set(hist.metrics) >= {"accuracy"}
    assert_close(hist.metrics["accuracy"], expected["accuracy"])
    assert_close(hist.loss, expected["loss"])
    assert 0 < expected["accuracy"].max() < 1  # the comparison is not trivial


@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.02), (0.003, 0.05)])
def test_l1_l2_regularization_matches_reference(l1, l2):
    spec = [("dense", 3, 5), ("act", "tanh", {}), ("dense", 5, 4, False),
            ("res", "add", 0.1, [("dense", 4, 4), ("act", "relu", {})]), ("dense", 4, 2)]
    net, rnet = build_pair(ef, spec, seed=9)
    X = np.random.default_rng(10).standard_normal((8, 3))
    Y = np.random.default_rng(11).standard_normal((8, 2))
    rvalue, _, rgrads = ref.batch_loss(rnet, X, Y, "mse", l1=l1, l2=l2)
    plain, _, _ = ref.batch_loss(rnet, X, Y, "mse")
    hist = _one_epoch(net, X, Y, "mse", 0.2, l1=l1, l2=l2)
    assert rvalue > plain
    assert_close(hist.loss[0], rvalue)
    expected = [p - 0.2 * g for p, g in zip(rnet.parameters(), rgrads, strict=True)]
    assert_all_close(net.parameters(), expected)


def test_regularization_leaves_biases_alone():
    net = ef.Sequential([ef.Dense(1, 1, seed=0)])
    net.parameters()[0][...] = 2.0
    net.parameters()[1][...] = 3.0
    X = np.zeros((1, 1))  # output = bias = 3, target 3: data loss and gradient are zero
    Y = np.full((1, 1), 3.0)
    hist = _one_epoch(net, X, Y, "mse", 0.1, l1=0.5, l2=0.25)
    assert hist.loss[0] == pytest.approx(0.5 * 2 + 0.25 * 4)
    W, b = net.parameters()
    assert W[0, 0] == pytest.approx(2.0 - 0.1 * (0.5 + 2 * 0.25 * 2))
    assert b[0] == 3.0


@pytest.mark.parametrize("case", CASES + ["l1l2"])
def test_loss_gradient_matches_finite_differences_of_the_loss(case):
    spec = [("dense", 2, 3), ("act", "atan", {}), ("dense", 3, 3)]
    net, _ = build_pair(ef, spec, seed=12)
    X = np.random.default_rng(13).standard_normal((5, 2))
    kw = {"l1": 0.01, "l2": 0.03} if case == "l1l2" else {}
    loss = "mse" if case == "l1l2" else _loss_name(case)
    Y = _targets("mse" if case == "l1l2" else case, n=5, k=3, seed=14)

    def value():
        return _one_epoch(net, X, Y, loss, TINY_LR, **kw).loss[0]

    before = [np.array(p, copy=True) for p in net.parameters()]
    _one_epoch(net, X, Y, loss, 1.0, **kw)
    grads = [b - np.array(p) for b, p in zip(before, net.parameters(), strict=True)]
    for p, b in zip(net.parameters(), before, strict=True):
        p[...] = b
    h = 1e-6
    for p, g in zip(net.parameters(), grads, strict=True):
        fd = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = value()
            p[idx] = old - h
            down = value()
            p[idx] = old
            fd[idx] = (up - down) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
