"""Narrow networks on large batches split their samples across threads (issue 9,
deliverable 3, "W2 with large batches"): a Dense layer's forward pass and input gradient
are computed by ranges of samples, each sample's output alone, and the residual blocks'
element-wise combinations by ranges of elements; the weight and bias gradients, sums over
the samples, stay on the calling thread in their order. So a training must give the same
bits on any thread count, and the bits of the same network's pieces on a small batch."""
import eulerflow as ef
import numpy as np
import pytest


@pytest.fixture
def threads():
    before = ef.get_num_threads()
    yield ef.set_num_threads
    ef.set_num_threads(before)


def w2_net(width=3, depth=6, mode="average", dtype=np.float64):
    """Seed 000's residual tower (W2's shape, shallower)."""
    layers = [ef.Dense(7, width, seed=0, dtype=dtype), ef.Activation("elu")]
    for i in range(depth):
        layers.append(ef.Residual(ef.Sequential([ef.Dense(width, width, seed=i + 1, dtype=dtype),
                                                 ef.Activation("elu")]), mode=mode))
    # a nested Sequential: a plain block (its output copied through)
    layers += [ef.Sequential([ef.Dense(width, 3, seed=99, dtype=dtype), ef.Activation("elu")])]
    return ef.Sequential(layers)


def train(n, threads_n, set_threads, mode="average", width=3, dtype=np.float64):
    set_threads(threads_n)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, 7)).astype(dtype)
    Y = rng.standard_normal((n, 3)).astype(dtype)
    net = w2_net(width, mode=mode, dtype=dtype)
    hist = net.fit(X, Y, epochs=3, batch_size=n, optimizer=ef.optim.Nadam(0.01), shuffle=False)
    return [p.copy() for p in net.parameters()], np.asarray(hist.loss), net(X[:1000])


@pytest.mark.parametrize("mode", ("average", "step"))
@pytest.mark.parametrize("n", (45_000, 100_003))
def test_full_batch_training_is_the_same_on_any_thread_count(n, mode, threads):
    ref = train(n, 1, threads, mode)
    for k in (2, 3):
        got = train(n, k, threads, mode)
        for a, b in zip(got[0], ref[0], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{k} threads, n={n}, {mode}")
        np.testing.assert_array_equal(got[1], ref[1])
        np.testing.assert_array_equal(got[2], ref[2])


def test_float32_large_batch_is_the_same_on_any_thread_count(threads):
    ref = train(60_000, 1, threads, dtype=np.float32)
    got = train(60_000, 2, threads, dtype=np.float32)
    for a, b in zip(got[0], ref[0], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_split_forward_gives_each_sample_its_own_output(threads):
    """The forward pass of a large batch on two threads, sample by sample against the same
    network on batches of one and of 37 (which run on one thread)."""
    threads(2)
    net = w2_net(width=5)
    X = np.random.default_rng(2).standard_normal((50_000, 7))
    Y = net(X)
    idx = [0, 1, 63, 64, 127, 24_999, 25_000, 49_999]
    for i in idx:
        np.testing.assert_array_equal(net(X[i]), Y[i])
    np.testing.assert_array_equal(net(X[1000:1037]), Y[1000:1037])
