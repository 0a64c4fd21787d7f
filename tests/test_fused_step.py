"""The fused training step of small float64 chains (cpp/include/eulerflow/fused_step.hpp).

fit() runs a network made only of Dense and activation layers, every width <= 32, on
batches of at least 8 samples, tile by tile through forward, loss and backward, instead of
layer by layer over the whole batch. It must give the general step's results bit for bit
(every sum over the batch kept in the general kernels' order): the general step is
selected with ``_core._set_fused_step(False)``. The fused runs are also compared with the
NumPy reference (tests/reference), which shares no code with either.
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from conftest import assert_all_close, assert_close, build_pair
from eulerflow import _core
from reference import nn_reference as ref

ACTS = ("relu", "leaky_relu", "elu", "tanh", "atan", "sigmoid", "softplus", "identity")
OPTIMIZERS = {
    "sgd": lambda m: m.SGD(0.05),
    "sgd-nesterov": lambda m: m.SGD(0.05, momentum=0.7, nesterov=True, weight_decay=0.01),
    "adam": lambda m: m.Adam(lr=0.01),
    "nadam": lambda m: m.Nadam(lr=0.01),
}


@pytest.fixture(autouse=True)
def _fused_step_restored():
    yield
    _core._set_fused_step(True)


def data(n, d, k, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if loss == "cross_entropy":
        Y = rng.integers(0, k, n)
    elif loss == "cross_entropy_prob":
        Y = rng.dirichlet(np.ones(k), n)
    else:
        Y = rng.standard_normal((n, k))
    return X, Y


def fit_both(specs, X, Y, loss, opt="sgd", seed=1, **kw):
    """(history, parameters) of the fused fit and of the general fit, from the same start."""
    out = []
    for fused in (True, False):
        _core._set_fused_step(fused)
        net, _ = build_pair(ef, specs, seed=seed)
        hist = net.fit(X, Y, loss=loss, optimizer=OPTIMIZERS[opt](ef.optim), **kw)
        out.append((hist, [p.copy() for p in net.parameters()]))
    return out


def assert_same_bits(fused, general):
    (hf, pf), (hg, pg) = fused, general
    np.testing.assert_array_equal(hf.loss, hg.loss)
    for key in hg.metrics:
        np.testing.assert_array_equal(hf.metrics[key], hg.metrics[key])
    for a, b in zip(pf, pg, strict=True):
        np.testing.assert_array_equal(a, b)


def w4_specs(act="atan", width=15, bias=True):
    return [("dense", 2, width, bias), ("act", act, {}), ("dense", width, 3, bias),
            ("act", act, {})]


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", ["mse", "half_se", "cross_entropy", "cross_entropy_prob"])
def test_fused_step_equals_the_general_step_bit_for_bit(act, loss):
    X, Y = data(300, 2, 3, loss)
    fused, general = fit_both(w4_specs(act), X, Y, loss.removesuffix("_prob"), epochs=4,
                              batch_size=300, shuffle=False)
    assert_same_bits(fused, general)
    assert fused[0].loss[-1] != fused[0].loss[0]  # the parameters moved


# batch sizes around the tiles (32 samples), the vector strides (8 and 4) and the
# smallest fused batch (8); batches below 8 (the last one of an epoch) take the general step
@pytest.mark.parametrize("n, batch_size", [(8, 8), (9, 9), (12, 12), (15, 15), (31, 31),
                                           (33, 33), (45, 45), (64, 64), (301, 301),
                                           (100, 16), (103, 25), (50, 7)])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_batch_sizes_tails_and_optimizers(n, batch_size, opt):
    X, Y = data(n, 3, 4, "cross_entropy", seed=n)
    specs = [("dense", 3, 7), ("act", "tanh", {}), ("dense", 7, 5), ("act", "elu", {}),
             ("dense", 5, 4)]
    fused, general = fit_both(specs, X, Y, "cross_entropy", opt, epochs=3,
                              batch_size=batch_size, shuffle=True, seed=2)
    assert_same_bits(fused, general)


@pytest.mark.parametrize("specs", [
    # narrow inputs (dense_backward_impl's other summation branch), no bias
    [("dense", 2, 6, False), ("act", "sigmoid", {}), ("dense", 6, 3, False)],
    # an activation first, two Dense layers in a row, the widest fused layer
    [("act", "tanh", {}), ("dense", 3, 32), ("dense", 32, 32), ("act", "relu", {}),
     ("dense", 32, 2)],
    # one layer
    [("dense", 3, 2)],
    # a 33-wide layer: the general step both ways
    [("dense", 3, 33), ("act", "tanh", {}), ("dense", 33, 2)],
])
def test_layer_arrangements(specs):
    d, k = specs[0][1] if specs[0][0] == "dense" else 3, specs[-1][2]
    X, Y = data(77, d, k, "mse", seed=3)
    fused, general = fit_both(specs, X, Y, "mse", "adam", epochs=3, batch_size=40,
                              shuffle=False, l1=1e-3, l2=1e-2)
    assert_same_bits(fused, general)


@pytest.mark.parametrize("act", ["atan", "softplus"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_fused_fit_matches_the_numpy_reference(act, loss):
    specs = [("dense", 2, 9), ("act", act, {}), ("dense", 9, 3), ("act", act, {})]
    net, rnet = build_pair(ef, specs, seed=4, scale=1.0)
    X, Y = data(70, 2, 3, loss, seed=5)
    hist = net.fit(X, Y, loss=loss, optimizer=ef.optim.SGD(0.2), epochs=5, batch_size=30,
                   shuffle=False)
    expected = ref.fit(rnet, X, Y, loss, ref.SGD(0.2), epochs=5, batch_size=30)
    assert_close(hist.loss, expected["loss"])
    assert_all_close(net.parameters(), rnet.parameters(), what="parameter")


def test_one_fused_step_gives_the_reference_gradient():
    # W4's network on W4's data: one full-batch step of plain SGD with rate 1 moves each
    # parameter by minus its gradient
    specs = w4_specs()
    net, rnet = build_pair(ef, specs, seed=6, scale=1.0)
    X, y = ef.data.spiral_classes(100, 3, 0.2, seed=0)
    start = [p.copy() for p in net.parameters()]
    net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(1.0), epochs=1,
            batch_size=len(y), shuffle=False)
    _, _, grads = ref.batch_loss(rnet, X, y, "cross_entropy")
    for p0, p1, g in zip(start, net.parameters(), grads, strict=True):
        assert_close(p0 - p1, g, rtol=1e-12, atol=1e-14)
        assert np.abs(g).max() > 1e-3


def test_w4_training_is_the_same_either_way():
    X, y = ef.data.spiral_classes(100, 3, 0.2, seed=0)
    fused, general = fit_both(w4_specs(), X, y, "cross_entropy", epochs=200,
                              batch_size=len(y), shuffle=False)
    assert_same_bits(fused, general)
    assert fused[0].metrics["accuracy"][-1] > 0.5


def test_divergence_is_reported_alike():
    X, Y = data(40, 2, 3, "mse", seed=7)
    for fused in (True, False):
        _core._set_fused_step(fused)
        net, _ = build_pair(ef, w4_specs("identity"), seed=1)
        with pytest.raises(ef.DivergenceError) as err:
            net.fit(X, Y * 1e3, loss="mse", optimizer=ef.optim.SGD(1e3), epochs=50,
                    batch_size=40, shuffle=False)
        if fused:
            first = str(err.value)
        else:
            assert str(err.value) == first


def test_float32_networks_take_the_general_step_unchanged():
    X, Y = data(50, 2, 3, "mse", seed=8)
    results = []
    for fused in (True, False):
        _core._set_fused_step(fused)
        net = ef.mlp([2, 8, 3], "tanh", seed=3, dtype=np.float32)
        hist = net.fit(X.astype(np.float32), Y.astype(np.float32), loss="mse",
                       optimizer=ef.optim.SGD(0.1), epochs=3, batch_size=50, shuffle=False)
        results.append((hist, [p.copy() for p in net.parameters()]))
    assert_same_bits(*results)
