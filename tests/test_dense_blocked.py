"""The blocked, register-tiled dense-layer products of wide networks and the thread pool.

The blocked kernels must give the bits of the small-layer kernels (the same summation
order per output), on any shape and whatever the thread count; both are compared with
a float64 / longdouble NumPy computation too, and a wide MLP's gradient with finite
differences and the NumPy reference.
"""

from __future__ import annotations

import threading

import eulerflow as ef
import numpy as np
import pytest
from eulerflow import _core

PRODUCTS = {np.float64: _core._dense_products64, np.float32: _core._dense_products32}

# (n_in, n_out, n): odd sizes, tails of every length around the tiles (6 rows x 2
# vectors, 3 x 4 dot products, blocks of 256 inputs), a batch of one, narrow layers
SHAPES = [(37, 13, 1), (37, 13, 3), (29, 70, 7), (29, 70, 8), (29, 70, 9), (33, 40, 15),
          (33, 40, 16), (33, 40, 17), (40, 33, 31), (64, 64, 64), (65, 7, 100), (7, 65, 257),
          (300, 511, 77), (257, 6, 33), (1000, 7, 40), (3, 700, 24), (515, 300, 19)]


@pytest.fixture
def threads():
    """Restores the thread count after a test that changes it."""
    old = ef.get_num_threads()
    yield
    ef.set_num_threads(old)


def _layer(n_in, n_out, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    X = rng.standard_normal((n_in, n)).astype(dtype)
    gY = rng.standard_normal((n_out, n)).astype(dtype)
    return W, b, X, gY


def _bits(a):
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_blocked_products_equal_the_small_layer_kernels_bit_for_bit(shape, dtype):
    W, b, X, gY = _layer(*shape, dtype)
    ref = PRODUCTS[dtype](W, b, X, gY, False)
    new = PRODUCTS[dtype](W, b, X, gY, True)
    for name, r, g in zip(("Y", "gW", "gb", "gX"), ref, new, strict=True):
        assert g.dtype == dtype and g.shape == r.shape, name
        np.testing.assert_array_equal(_bits(g), _bits(r), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(37, 13, 3), (300, 511, 77), (515, 300, 19)],
                         ids=lambda s: "x".join(map(str, s)))
def test_blocked_products_match_a_longdouble_computation(shape, dtype):
    W, b, X, gY = _layer(*shape, dtype)
    Y, gW, gb, gX = PRODUCTS[dtype](W, b, X, gY, True)
    Wl, bl, Xl, gYl = (a.astype(np.longdouble) for a in (W, b, X, gY))
    eps = np.finfo(dtype).eps
    for name, got, want, terms in (("Y", Y, Wl @ Xl + bl[:, None], shape[0]),
                                   ("gW", gW, gYl @ Xl.T, shape[2]),
                                   ("gb", gb, gYl.sum(axis=1), shape[2]),
                                   ("gX", gX, Wl.T @ gYl, shape[1])):
        # each output is a sum of `terms` rounded products: error below terms * eps * sum|.|
        scale = {"Y": np.abs(Wl) @ np.abs(Xl) + np.abs(bl)[:, None],
                 "gW": np.abs(gYl) @ np.abs(Xl.T), "gb": np.abs(gYl).sum(axis=1),
                 "gX": np.abs(Wl.T) @ np.abs(gYl)}[name]
        err = np.abs(got.astype(np.longdouble) - want)
        assert np.all(err <= (terms + 1) * eps * scale), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_products_are_bit_identical_for_1_to_4_threads(dtype, threads):
    W, b, X, gY = _layer(1030, 97, 300, dtype, seed=3)
    runs = []
    for n in (1, 2, 3, 4):
        ef.set_num_threads(n)
        runs.append(PRODUCTS[dtype](W, b, X, gY, True))
    for run in runs[1:]:
        for r, g in zip(runs[0], run, strict=True):
            np.testing.assert_array_equal(_bits(g), _bits(r))


# The FMA variants: x86-64-v3 (AVX2) tiles the products in 6 rows x 2 vectors and the
# weight gradient in 2 x 3 dot products; x86-64-v4 (AVX-512) in 6 x 4 (float32) and 3 x 4.
FMA_VARIANTS = [v for v in _core.isa_available() if v in ("x86-64-v3", "x86-64-v4")]


@pytest.fixture
def restore_isa():
    before = _core.isa_selected()
    yield
    _core.set_isa(before)


@pytest.mark.skipif(not FMA_VARIANTS, reason="no FMA kernel variant on this CPU or build")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_products_give_the_same_bits_under_every_fma_variant(dtype, restore_isa):
    """Each variant's register tiles (different sizes, so different edge tiles) against its
    small-layer kernels and against the other variant: one summation order, one result."""
    shapes = [(300, 511, 77), (1030, 97, 300), (515, 300, 19), (64, 64, 64)]
    first = None
    for variant in FMA_VARIANTS:
        _core.set_isa(variant)
        runs = []
        for shape in shapes:
            W, b, X, gY = _layer(*shape, dtype, seed=4)
            new = PRODUCTS[dtype](W, b, X, gY, True)
            ref = PRODUCTS[dtype](W, b, X, gY, False)
            for name, r, g in zip(("Y", "gW", "gb", "gX"), ref, new, strict=True):
                np.testing.assert_array_equal(_bits(g), _bits(r), err_msg=f"{variant} {name}")
            runs.append(new)
        if first is None:
            first = runs
        for a, b in zip(first, runs, strict=True):
            for r, g in zip(a, b, strict=True):
                np.testing.assert_array_equal(_bits(g), _bits(r), err_msg=variant)


def _wide_net(dtype, seed=0):
    return ef.mlp([200, 96, 80, 10], activation="tanh", seed=seed, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wide_network_forward_gradients_and_training_do_not_depend_on_threads(dtype, threads):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 200))
    y = rng.integers(0, 10, 300)
    runs = []
    for n in (1, 2, 3, 4):
        ef.set_num_threads(n)
        net = _wide_net(dtype)
        out = net(X)
        gx = net.backward(np.ones_like(out))
        grads = [g.copy() for g in net.gradients()]
        hist = net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(0.05, momentum=0.9),
                       epochs=3, batch_size=128, shuffle=True, seed=1)
        runs.append([out, gx, *grads, hist.loss, *net.parameters()])
    for run in runs[1:]:
        for r, g in zip(runs[0], run, strict=True):
            np.testing.assert_array_equal(_bits(g), _bits(r))


OPTIMIZERS = [ef.optim.SGD(0.05, momentum=0.9, nesterov=True),
              ef.optim.Adam(1e-3, weight_decay=1e-4), ef.optim.Nadam(2e-3)]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=["sgd", "adam", "nadam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_optimizer_step_and_zeroed_gradients_split_over_threads_give_the_same_bits(
        dtype, optimizer, threads):
    """Above 2^17 parameters the optimizer's update and the zeroing of the gradients are
    split across the pool (pieces starting at multiples of 64 values, odd sizes here):
    every thread count gives the bits of one thread."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((96, 301))
    y = rng.integers(0, 7, 96)
    runs = []
    for n in (1, 2, 3):
        ef.set_num_threads(n)
        net = ef.mlp([301, 299, 203, 7], activation="tanh", seed=2, dtype=dtype)
        assert sum(p.size for p in net.parameters()) > 2**17
        hist = net.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=3, batch_size=32,
                       seed=0)
        runs.append([hist.loss, *net.parameters()])
    for run in runs[1:]:
        for r, g in zip(runs[0], run, strict=True):
            np.testing.assert_array_equal(_bits(np.asarray(g)), _bits(np.asarray(r)))


def _numpy_grads(params, X, y):
    """float64 NumPy forward/backward of the tanh MLP with mean softmax cross-entropy."""
    hs, h = [X], X
    layers = len(params) // 2
    for i in range(layers):
        h = h @ params[2 * i].T + params[2 * i + 1]
        h = np.tanh(h) if i < layers - 1 else h
        hs.append(h)
    z = hs[-1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = float(np.mean(-np.log(p[np.arange(len(y)), y])))
    p[np.arange(len(y)), y] -= 1
    g = p / len(y)
    grads = [None] * len(params)
    for i in reversed(range(layers)):
        grads[2 * i] = g.T @ hs[i]
        grads[2 * i + 1] = g.sum(axis=0)
        g = (g @ params[2 * i]) * (1 - hs[i] ** 2) if i > 0 else g @ params[0]
    return loss, grads, g


def _ef_grads(net, X, y):
    z = net(X).astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    gx = net.backward((p / len(y)).astype(net.parameters()[0].dtype))
    return [g.copy() for g in net.gradients()], gx


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_wide_network_gradient_matches_the_numpy_reference(dtype, tol, threads):
    ef.set_num_threads(2)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((64, 200)).astype(dtype)
    y = rng.integers(0, 10, 64)
    net = _wide_net(dtype)
    params = [p.astype(np.float64) for p in net.parameters()]
    grads, gx = _ef_grads(net, X, y)
    _, ref, ref_gx = _numpy_grads(params, X.astype(np.float64), y)
    for g, r in zip([*grads, gx], [*ref, ref_gx], strict=True):
        assert np.max(np.abs(g - r)) <= tol * np.max(np.abs(r))


def test_wide_network_gradient_matches_finite_differences(threads):
    ef.set_num_threads(2)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 200))
    y = rng.integers(0, 10, 40)
    net = _wide_net(np.float64)
    grads, _ = _ef_grads(net, X, y)
    params = [p.copy() for p in net.parameters()]
    h = 1e-6
    for k, (i, j) in enumerate([(0, (5, 17)), (0, (95, 199)), (2, (40, 3)), (3, (79,)),
                                (4, (9, 79)), (1, (12,))]):
        plus = [p.copy() for p in params]
        minus = [p.copy() for p in params]
        plus[i][j] += h
        minus[i][j] -= h
        fd = (_numpy_grads(plus, X, y)[0] - _numpy_grads(minus, X, y)[0]) / (2 * h)
        assert abs(grads[i][j] - fd) <= 1e-7 * max(1.0, abs(fd)), (k, grads[i][j], fd)


def test_concurrent_wide_trainings_from_python_threads_match_serial_ones(threads):
    """Two trainings at once: one gets the pool, the other runs on its own thread; both
    give the bits of a training run alone."""
    ef.set_num_threads(2)
    rng = np.random.default_rng(6)
    X = rng.standard_normal((256, 200))
    y = rng.integers(0, 10, 256)

    def train(seed):
        net = _wide_net(np.float64, seed=seed)
        net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(0.05), epochs=4,
                batch_size=64, shuffle=True, seed=seed)
        return net.parameters()

    alone = [train(s) for s in range(4)]
    together = [None] * 4

    def worker(s):
        together[s] = train(s)

    ts = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for a, b in zip(alone, together, strict=True):
        for p, q in zip(a, b, strict=True):
            np.testing.assert_array_equal(p, q)


def test_default_thread_count_is_the_available_cpus():
    import os
    import subprocess
    import sys

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _core.available_cpus() == cpus
    code = "import eulerflow as ef; print(ef.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == cpus


@pytest.mark.parametrize("peer", ["torch", "jax"])
def test_default_thread_count_and_cpu_mask_survive_importing_and_running_a_peer(peer):
    """W6 measures eulerflow beside PyTorch and JAX: importing and running them (their
    OpenMP, Eigen and XLA thread pools start) leaves the process's CPU mask, and so
    eulerflow's default thread count, at the CPUs the process may use."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec(peer) is None:
        pytest.skip(f"{peer} not installed")
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity masks on this platform")
    run = {"torch": "import torch; torch.set_num_threads(2); (torch.ones(256, 256) @ "
                    "torch.ones(256, 256)).sum().item()",
           "jax": "import jax, jax.numpy as jnp; jax.jit(lambda a: a @ a)(jnp.ones((256, 256)))"
                  ".block_until_ready()"}[peer]
    code = (f"import os; {run}; import eulerflow as ef; "
            "print(len(os.sched_getaffinity(0)), ef.get_num_threads())")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    cpus = len(os.sched_getaffinity(0))
    assert [int(v) for v in out.stdout.split()[-2:]] == [cpus, cpus]


def test_dense_products_refuse_bad_shapes():
    W, b, X, gY = _layer(5, 4, 3, np.float64)
    with pytest.raises(ValueError, match=r"X must have shape \(5, 3\)|X must"):
        _core._dense_products64(W, b, X[:4], gY, True)
    with pytest.raises(ValueError, match=r"gY must have shape \(4, 3\), got \(4, 2\)"):
        _core._dense_products64(W, b, X, gY[:, :2], True)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        _core._dense_products64(W, b[:3], X, gY, True)


def test_wide_ensemble_members_on_threads_equal_separate_fits_on_the_pool(threads):
    """Members on two threads run their wide layers serially (no threads beyond the
    two asked for); a separate fit uses the pool; the bits agree."""
    ef.set_num_threads(2)
    rng = np.random.default_rng(8)
    X = rng.standard_normal((256, 200))
    y = rng.integers(0, 10, 256)
    make = lambda i: _wide_net(np.float64, seed=i)  # noqa: E731
    ens = ef.Ensemble(make, 3)
    ens.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(0.05), epochs=2, batch_size=128,
            seed=[0, 1, 2], threads=2)
    for i in range(3):
        net = make(i)
        net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(0.05), epochs=2,
                batch_size=128, seed=i)
        for p, q in zip(ens.members[i].parameters(), net.parameters(), strict=True):
            np.testing.assert_array_equal(p, q)
