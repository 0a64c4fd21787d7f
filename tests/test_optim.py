"""Optimizers: parameters after N steps of fit(shuffle=False) against the reference.

The reference reproduces torch.optim's single-tensor update code; when torch is
installed the trajectories are also compared with torch.optim itself.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from conftest import assert_all_close, assert_close, build_pair
from reference import nn_reference as ref

OPTIMIZERS = {
    "sgd": (lambda m: m.SGD(0.1), {}),
    "sgd-momentum": (lambda m: m.SGD(0.05, momentum=0.9), {}),
    "sgd-dampening": (lambda m: m.SGD(0.05, momentum=0.8, dampening=0.3), {}),
    "sgd-nesterov": (lambda m: m.SGD(0.05, momentum=0.7, nesterov=True), {}),
    "sgd-weight-decay": (lambda m: m.SGD(0.05, momentum=0.5, weight_decay=0.1), {}),
    "adam": (lambda m: m.Adam(lr=0.01), {}),
    "adam-options": (lambda m: m.Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-6,
                                      weight_decay=0.05), {}),
    "nadam": (lambda m: m.Nadam(lr=0.01), {}),
    "nadam-options": (lambda m: m.Nadam(lr=0.02, betas=(0.85, 0.995), eps=1e-7,
                                        weight_decay=0.03, momentum_decay=0.01), {}),
}

SPEC = [("dense", 3, 6), ("act", "tanh", {}),
        ("res", "step", 0.5, [("dense", 6, 6), ("act", "softplus", {})]),
        ("dense", 6, 2)]


def _data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 0]], axis=1)
    return X, Y


@pytest.mark.parametrize("batch_size", [1, 4, 7, 10, 64])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_fit_matches_reference(opt, batch_size):
    make, _ = OPTIMIZERS[opt]
    net, rnet = build_pair(ef, SPEC, seed=1)
    X, Y = _data()
    hist = net.fit(X, Y, loss="mse", optimizer=make(ef.optim), epochs=3,
                   batch_size=batch_size, shuffle=False)
    expected = ref.fit(rnet, X, Y, "mse", make(ref), epochs=3, batch_size=batch_size)
    assert hist.loss.shape == (3,)
    assert_close(hist.loss, expected["loss"])
    assert_all_close(net.parameters(), rnet.parameters(), what="parameter")
    # the run did move the parameters: the comparison is not trivially satisfied
    start, _ = build_pair(ef, SPEC, seed=1)
    assert not np.allclose(start.parameters()[0], net.parameters()[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("opt", ["sgd-nesterov", "adam-options", "nadam"])
def test_fit_with_cross_entropy_and_regularization_matches_reference(opt):
    make, _ = OPTIMIZERS[opt]
    spec = [("dense", 2, 5), ("act", "atan", {}), ("dense", 5, 3)]
    net, rnet = build_pair(ef, spec, seed=2)
    X, y = ef.data.spiral_classes(10, 3, 0.2, seed=1)
    hist = net.fit(X, y, loss="cross_entropy", optimizer=make(ef.optim), epochs=4,
                   batch_size=8, shuffle=False, l1=0.001, l2=0.01)
    expected = ref.fit(rnet, X, y, "cross_entropy", make(ref), epochs=4, batch_size=8,
                       l1=0.001, l2=0.01)
    assert_close(hist.loss, expected["loss"])
    assert_all_close(net.parameters(), rnet.parameters(), what="parameter")


def test_default_hyperparameters_are_torchs():
    X, Y = _data()
    for make_ef, make_ref in [(ef.optim.Adam, ref.Adam), (ef.optim.Nadam, ref.Nadam)]:
        net, rnet = build_pair(ef, SPEC, seed=3)
        net.fit(X, Y, loss="mse", optimizer=make_ef(), epochs=2, batch_size=5, shuffle=False)
        ref.fit(rnet, X, Y, "mse", make_ref(), epochs=2, batch_size=5)
        assert_all_close(net.parameters(), rnet.parameters())


@pytest.mark.parametrize("opt", ["sgd-momentum", "adam", "nadam-options"])
def test_optimizer_state_persists_across_fit_calls(opt):
    make, _ = OPTIMIZERS[opt]
    X, Y = _data()
    once, _ = build_pair(ef, SPEC, seed=4)
    once.fit(X, Y, loss="mse", optimizer=make(ef.optim), epochs=3, batch_size=4, shuffle=False)
    twice, _ = build_pair(ef, SPEC, seed=4)
    optimizer = make(ef.optim)
    for _ in range(3):
        twice.fit(X, Y, loss="mse", optimizer=optimizer, epochs=1, batch_size=4, shuffle=False)
    for p, q in zip(once.parameters(), twice.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    # a fresh optimizer for each call restarts the momentum: a different trajectory
    fresh, _ = build_pair(ef, SPEC, seed=4)
    for _ in range(3):
        fresh.fit(X, Y, loss="mse", optimizer=make(ef.optim), epochs=1, batch_size=4,
                  shuffle=False)
    assert not np.allclose(fresh.parameters()[0], once.parameters()[0], rtol=1e-9, atol=0)


def test_shuffle_false_batches_are_consecutive_and_include_the_partial_one():
    """With plain SGD and one sample per row, the batch order is visible in the result."""
    net, rnet = build_pair(ef, [("dense", 1, 1)], seed=5)
    X = np.arange(7.0).reshape(-1, 1) / 7
    Y = X**2
    hist = net.fit(X, Y, loss="half_se", optimizer=ef.optim.SGD(0.9), epochs=1, batch_size=3,
                   shuffle=False)
    expected = ref.fit(rnet, X, Y, "half_se", ref.SGD(0.9), epochs=1, batch_size=3)
    assert_close(hist.loss, expected["loss"])
    assert_all_close(net.parameters(), rnet.parameters())
    # the same data in reversed order gives another result
    other, _ = build_pair(ef, [("dense", 1, 1)], seed=5)
    other.fit(X[::-1], Y[::-1], loss="half_se", optimizer=ef.optim.SGD(0.9), epochs=1,
              batch_size=3, shuffle=False)
    assert not np.allclose(other.parameters()[0], net.parameters()[0], rtol=1e-9, atol=0)


# ---------------------------------------------------------------------------------------
# torch.optim itself
# ---------------------------------------------------------------------------------------

TORCH_OPTIMIZERS = {
    "sgd": (lambda: ef.optim.SGD(0.1), lambda t, p: t.optim.SGD(p, lr=0.1, foreach=False)),
    "sgd-momentum": (
        lambda: ef.optim.SGD(0.05, momentum=0.9, dampening=0.2, weight_decay=0.01),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01,
                                 foreach=False)),
    "sgd-nesterov": (
        lambda: ef.optim.SGD(0.05, momentum=0.7, nesterov=True),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.7, nesterov=True, foreach=False)),
    "adam": (
        lambda: ef.optim.Adam(lr=0.01, betas=(0.85, 0.995), eps=1e-7, weight_decay=0.02),
        lambda t, p: t.optim.Adam(p, lr=0.01, betas=(0.85, 0.995), eps=1e-7,
                                  weight_decay=0.02, foreach=False)),
    "nadam": (
        lambda: ef.optim.Nadam(lr=0.01, weight_decay=0.01, momentum_decay=0.006),
        lambda t, p: t.optim.NAdam(p, lr=0.01, weight_decay=0.01, momentum_decay=0.006,
                                   foreach=False)),
}


@pytest.mark.parametrize("opt", list(TORCH_OPTIMIZERS))
def test_trajectory_matches_torch_optim(opt):
    torch = pytest.importorskip("torch")
    make_ef, make_torch = TORCH_OPTIMIZERS[opt]
    old_dtype = torch.get_default_dtype()
    # float64 default dtype: torch then keeps its scalar state (step, NAdam's mu_product)
    # in float64 too, as eulerflow does
    torch.set_default_dtype(torch.float64)
    try:
        net = ef.mlp([3, 5, 2], "tanh", seed=7)
        lin1 = torch.nn.Linear(3, 5)
        lin2 = torch.nn.Linear(5, 2)
        tparams = [lin1.weight, lin1.bias, lin2.weight, lin2.bias]
        with torch.no_grad():
            for tp, p in zip(tparams, net.parameters(), strict=True):
                tp.copy_(torch.from_numpy(np.array(p)))
        X, Y = _data(n=8, seed=8)
        tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
        ef_opt, torch_opt = make_ef(), make_torch(torch, tparams)
        batch = 3
        for _epoch in range(4):
            hist = net.fit(X, Y, loss="mse", optimizer=ef_opt, epochs=1, batch_size=batch,
                           shuffle=False)
            losses = []
            for start in range(0, 8, batch):
                torch_opt.zero_grad()
                out = lin2(torch.tanh(lin1(tX[start:start + batch])))
                loss = torch.nn.functional.mse_loss(out, tY[start:start + batch])
                losses.append(loss.item())
                loss.backward()
                torch_opt.step()
            assert_close(hist.loss[0], np.mean(losses))
            assert_all_close(net.parameters(), [tp.detach().numpy() for tp in tparams],
                             what="parameter")
    finally:
        torch.set_default_dtype(old_dtype)


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    net = ef.Sequential([ef.Dense(4, 5, seed=0)])
    X = rng.standard_normal((6, 4)) * 3
    for Y in (rng.integers(0, 5, 6), rng.dirichlet(np.ones(5), 6)):
        tY = torch.from_numpy(Y)
        z = torch.from_numpy(np.array(net(X))).requires_grad_(True)
        expected = torch.nn.functional.cross_entropy(z, tY)
        hist = net.fit(X, Y, loss="cross_entropy", optimizer=ef.optim.SGD(1e-3), epochs=1,
                       batch_size=6, shuffle=False)
        assert_close(hist.loss[0], expected.item())
