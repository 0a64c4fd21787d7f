"""dtypes, memory layouts, seeds and threads: same numbers whatever the input's form."""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from conftest import ACTIVATIONS, act_id, assert_all_close, assert_close, copy_parameters


def _net(dtype=np.float64, act="tanh", kw=None, seed=0):
    kw = kw or {}
    return ef.Sequential([
        ef.Dense(3, 6, seed=seed, dtype=dtype), ef.Activation(act, **kw),
        ef.Residual(ef.Sequential([ef.Dense(6, 6, seed=seed + 1, dtype=dtype),
                                   ef.Activation(act, **kw)]), mode="step", h=0.2),
        ef.Dense(6, 2, seed=seed + 2, dtype=dtype),
    ])


@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
def test_float32_network_agrees_with_float64(act):
    n32 = _net(np.float32, act[0], act[1])
    n64 = _net(np.float64, act[0], act[1])
    for p in n32.parameters():
        assert p.dtype == np.float32
    copy_parameters(n32, n64)  # float32 values are exact in float64
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    gy = rng.standard_normal((8, 2)).astype(np.float32)
    y32 = n32(x)
    assert y32.dtype == np.float32
    assert_close(y32, n64(x), rtol=1e-5, atol=1e-6)
    g32 = n32.backward(gy)
    assert g32.dtype == np.float32
    assert_close(g32, n64.backward(gy), rtol=1e-5, atol=1e-6)
    assert_all_close(n32.gradients(), n64.gradients(), rtol=1e-5, atol=1e-5)
    for g in n32.gradients():
        assert g.dtype == np.float32


def test_float32_mlp_and_fit_agree_with_float64():
    n32 = ef.mlp([3, 8, 2], "tanh", seed=0, dtype=np.float32)
    n64 = ef.mlp([3, 8, 2], "tanh", seed=0)
    copy_parameters(n32, n64)
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    h32 = n32.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.05, momentum=0.5), epochs=5,
                  batch_size=5, shuffle=False)
    h64 = n64.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.05, momentum=0.5), epochs=5,
                  batch_size=5, shuffle=False)
    assert h32.loss.dtype == np.float64
    assert_close(h32.loss, h64.loss, rtol=1e-5, atol=1e-6)
    assert_all_close(n32.parameters(), n64.parameters(), rtol=1e-5, atol=1e-5)
    for p in n32.parameters():
        assert p.dtype == np.float32


def test_float64_input_to_float32_network_is_converted():
    net = _net(np.float32)
    x = np.random.default_rng(2).standard_normal((5, 3))
    np.testing.assert_array_equal(net(x), net(x.astype(np.float32)))


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.int8, np.uint16,
                                   np.float16])
def test_real_inputs_of_any_dtype_are_converted(dtype):
    net = _net()
    x = (np.random.default_rng(3).standard_normal((5, 3)) * 4).astype(dtype)
    np.testing.assert_array_equal(net(x), net(x.astype(np.float64)))
    net(x)
    gy = np.ones((5, 2), dtype=dtype)
    np.testing.assert_array_equal(net.backward(gy), net.backward(gy.astype(np.float64)))


def _layouts(a):
    """The same values as C-order, Fortran-order, strided views and a reversed view."""
    wide = np.zeros((a.shape[0] * 2, a.shape[1] * 3))
    wide[::2, ::3] = a
    rev = np.ascontiguousarray(a[::-1])[::-1]
    return {"fortran": np.asfortranarray(a), "strided": wide[::2, ::3], "reversed": rev,
            "transposed": np.ascontiguousarray(a.T).T}


def test_non_contiguous_inputs_give_the_same_bits():
    net = _net()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 3))
    gy = rng.standard_normal((7, 2))
    y = net(x)
    gx = net.backward(gy)
    grads = [g.copy() for g in net.gradients()]
    states = net.hidden_states(x)
    for name, xv in _layouts(x).items():
        assert not xv.flags.c_contiguous or name == "reversed"
        np.testing.assert_array_equal(net(xv), y, err_msg=name)
        np.testing.assert_array_equal(net.backward(_layouts(gy)[name]), gx, err_msg=name)
        for g, e in zip(net.gradients(), grads, strict=True):
            np.testing.assert_array_equal(g, e, err_msg=name)
        for s, e in zip(net.hidden_states(xv), states, strict=True):
            np.testing.assert_array_equal(s, e, err_msg=name)
    column = np.zeros((3, 5))
    column[:, 2] = x[3]
    np.testing.assert_array_equal(net(column[:, 2]), net(x[3]))


def test_fit_with_non_contiguous_and_integer_data_gives_the_same_bits():
    rng = np.random.default_rng(5)
    X = rng.integers(-3, 4, (12, 3))
    Y = rng.standard_normal((12, 2))
    reference = _net(seed=3)
    h = reference.fit(X.astype(np.float64), Y, loss="mse", optimizer=ef.optim.Adam(0.01),
                      epochs=3, batch_size=5, shuffle=True, seed=2)
    for name in ("fortran", "strided", "transposed"):
        net = _net(seed=3)
        hn = net.fit(_layouts(X)[name], _layouts(Y)[name], loss="mse",
                     optimizer=ef.optim.Adam(0.01), epochs=3, batch_size=5, shuffle=True,
                     seed=2)
        np.testing.assert_array_equal(hn.loss, h.loss, err_msg=name)
        for p, q in zip(net.parameters(), reference.parameters(), strict=True):
            np.testing.assert_array_equal(p, q, err_msg=name)


def test_cross_entropy_accepts_any_integer_label_dtype():
    X, y = ef.data.spiral_classes(10, 3, 0.2, seed=0)
    results = []
    for labels in (y, y.astype(np.int32), y.astype(np.uint8), np.asfortranarray(y),
                   np.repeat(y, 2)[::2]):
        net = ef.mlp([2, 4, 3], "tanh", seed=0)
        hist = net.fit(X, labels, loss="cross_entropy", optimizer=ef.optim.SGD(0.1), epochs=2,
                       batch_size=7, shuffle=False)
        results.append((hist.loss, net.parameters()))
    for loss, params in results[1:]:
        np.testing.assert_array_equal(loss, results[0][0])
        for p, q in zip(params, results[0][1], strict=True):
            np.testing.assert_array_equal(p, q)


def test_same_seed_same_bits_different_seed_different_bits():
    for make in (lambda s: ef.Dense(4, 3, seed=s), lambda s: ef.mlp([2, 5, 5, 1], seed=s),
                 lambda s: ef.Dense(4, 3, seed=s, dtype=np.float32)):
        a, b, c = make(0), make(0), make(1)
        for p, q, r in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
            np.testing.assert_array_equal(p, q)
            assert not np.array_equal(p, r)
    # seed=None draws fresh weights
    assert not np.array_equal(ef.Dense(4, 3).W, ef.Dense(4, 3).W)


def test_shuffled_fit_is_reproducible_and_depends_on_the_seed():
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((30, 3)), rng.standard_normal((30, 2))
    runs = {}
    for key, seed in (("a", 0), ("b", 0), ("c", 1)):
        net = _net(seed=4)
        hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.Nadam(), epochs=3, batch_size=4,
                       shuffle=True, seed=seed)
        runs[key] = (hist.loss, [p.copy() for p in net.parameters()])
    np.testing.assert_array_equal(runs["a"][0], runs["b"][0])
    for p, q in zip(runs["a"][1], runs["b"][1], strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(runs["a"][0], runs["c"][0])
    # shuffling does change the order of the batches
    net = _net(seed=4)
    unshuffled = net.fit(X, Y, loss="mse", optimizer=ef.optim.Nadam(), epochs=3, batch_size=4,
                         shuffle=False)
    assert not np.array_equal(runs["a"][0], unshuffled.loss)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((257, 3)), rng.standard_normal((257, 2))
    old = ef.get_num_threads()
    results = []
    try:
        for n in (1, 3, 4):
            ef.set_num_threads(n)
            assert ef.get_num_threads() == n
            net = ef.Sequential([ef.Dense(3, 64, seed=0), ef.Activation("tanh"),
                                 ef.Dense(64, 2, seed=1)])
            hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.Adam(0.01), epochs=2,
                           batch_size=256, shuffle=True, seed=0)
            net(X)
            gx = net.backward(np.ones((257, 2)))
            results.append((hist.loss, net.parameters(), gx))
    finally:
        ef.set_num_threads(old)
    for loss, params, gx in results[1:]:
        np.testing.assert_array_equal(loss, results[0][0])
        np.testing.assert_array_equal(gx, results[0][2])
        for p, q in zip(params, results[0][1], strict=True):
            np.testing.assert_array_equal(p, q)


def test_mixed_dtype_network_is_refused():
    with pytest.raises((TypeError, ValueError), match="dtype|float"):
        ef.Sequential([ef.Dense(2, 3, dtype=np.float32), ef.Dense(3, 1)])


@pytest.mark.parametrize("make", [lambda: ef.optim.Adam(0.01), lambda: ef.optim.Nadam(0.01),
                                  lambda: ef.optim.SGD(0.05, momentum=0.9, nesterov=True)],
                         ids=["adam", "nadam", "nesterov"])
def test_float32_optimizers_agree_with_float64(make):
    n32 = ef.mlp([3, 8, 2], "atan", seed=1, dtype=np.float32)
    n64 = ef.mlp([3, 8, 2], "atan", seed=1)
    copy_parameters(n32, n64)
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    kw = {"loss": "mse", "epochs": 3, "batch_size": 8, "shuffle": False}
    h32 = n32.fit(X, Y, optimizer=make(), **kw)
    h64 = n64.fit(X, Y, optimizer=make(), **kw)
    assert_close(h32.loss, h64.loss, rtol=1e-5, atol=1e-6)
    assert_all_close(n32.parameters(), n64.parameters(), rtol=1e-4, atol=1e-5)
