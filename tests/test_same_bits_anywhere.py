"""Same inputs, same bits, wherever the buffers happen to lie in memory.

A loop that both sums and stores is vectorized by GCC behind a runtime aliasing
check; in the FMA-capable builds the vector version and the scalar fallback round
differently, so the result depended on the heap addresses of the buffers (a CI run
caught a fit whose first-epoch loss differed by one ulp between two identical nets).
These tests repeat identical computations while other allocations shift the heap,
and require a single bit pattern.
"""

import eulerflow as ef
import numpy as np
import pytest

REPEATS = 50
DATA_SEEDS = 8  # a rounding difference shows only for some data


def _shifting_heap(rng):
    """Keep a changing set of live allocations of odd sizes, numpy and native."""
    junk = []

    def shift():
        junk.append(np.empty(int(rng.integers(1, 64))))
        junk.append(ef.Dense(int(rng.integers(1, 5)), int(rng.integers(1, 5)), seed=0))
        if len(junk) > 30:
            del junk[: int(rng.integers(1, 10))]

    return shift


def _unique_bits(run, seed=0):
    shift = _shifting_heap(np.random.default_rng(seed))
    seen = set()
    for _ in range(REPEATS):
        shift()
        seen.add(b"".join(np.ascontiguousarray(a).tobytes() for a in run()))
    return len(seen)


def _fit_data(loss, n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    if loss == "labels":
        return X, rng.integers(0, 2, n), "cross_entropy"
    if loss == "cross_entropy":
        return X, rng.dirichlet([1.0, 1.0], n), loss
    return X, rng.standard_normal((n, 2)), loss


NETS = {
    "dense-dense": lambda: ef.Sequential([ef.Dense(3, 3, seed=0), ef.Dense(3, 2, seed=3)]),
    "mlp-tanh": lambda: ef.mlp([3, 5, 2], "tanh", seed=1),
    "residual": lambda: ef.Sequential([
        ef.Dense(3, 3, seed=0), ef.Activation("elu"),
        ef.Residual(ef.Sequential([ef.Dense(3, 3, seed=1), ef.Activation("tanh")]), mode="average"),
        ef.Residual(ef.Dense(3, 3, seed=2), mode="step", h=0.3), ef.Dense(3, 2, seed=3)]),
    "flow-penalty": lambda: ef.Sequential([
        ef.ResidualFlow(ef.mlp([3, 3], seed=0), depth=3, t_end=0.5), ef.Activation("softplus"),
        ef.ActivityPenalty(l1=0.01, l2=0.02), ef.Dense(3, 2, bias=False, seed=1)]),
    "mlp32": lambda: ef.mlp([3, 4, 2], "leaky_relu", seed=0, dtype=np.float32),
}


@pytest.mark.parametrize("n", [2, 3, 6])
@pytest.mark.parametrize("loss", ["mse", "half_se", "cross_entropy", "labels"])
@pytest.mark.parametrize("name", list(NETS))
def test_fit_bits_do_not_depend_on_the_heap(name, loss, n):
    for seed in range(DATA_SEEDS):
        X, Y, kind = _fit_data(loss, n, seed)

        def run(X=X, Y=Y, kind=kind):
            net = NETS[name]()
            hist = net.fit(X, Y, loss=kind, optimizer=ef.optim.SGD(0.05, momentum=0.5),
                           epochs=2, batch_size=4, seed=3, l2=1e-3)
            return [hist.loss, *net.parameters()]

        assert _unique_bits(run, seed) == 1, f"data seed {seed}"


def test_meanfield_bits_do_not_depend_on_the_heap():
    teacher = ef.meanfield.TwoLayerReLU.random(3, 2, seed=1)

    def run():
        student = ef.meanfield.TwoLayerReLU.small_sphere(7, 2, radius=0.1, seed=2)
        result = student.fit_teacher(teacher, steps=30, batch=5, lr=0.5, snapshot_every=10, seed=4)
        return [result.test_loss, student.a, student.w, student.b]

    assert _unique_bits(run) == 1


def test_neural_ode_bits_do_not_depend_on_the_heap():
    t = np.linspace(0.0, 1.0, 6)
    data = np.stack([np.cos(t), np.sin(t)], axis=1)

    def run():
        node = ef.NeuralODE(ef.mlp([2, 3, 2], "tanh", seed=0), method="rk4", step_size=0.05)
        hist = node.fit(data, t, epochs=3, optimizer=ef.optim.Adam(0.01), window=2, seed=1)
        return [hist.loss, *node.field.parameters()]

    assert _unique_bits(run) == 1


@pytest.mark.parametrize("n", [1, 3, 5, 16, 37])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_samples_output_and_gradient_do_not_depend_on_its_batch(n, dtype):
    """Every output is b + w_0 x_0 + w_1 x_1 + ..., term by term with the same
    (fused, where the CPU has FMA) multiply-adds, whether the sample sits in a full
    vector chunk, in the rest of a batch, or alone."""
    net = ef.mlp([3, 7, 5, 2], "tanh", seed=4, dtype=dtype)
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, 3)).astype(dtype)
    gy = rng.standard_normal((n, 2)).astype(dtype)
    out = net(X)
    gx = net.backward(gy)
    for i in range(n):
        np.testing.assert_array_equal(net(X[i:i + 1]), out[i:i + 1])
        np.testing.assert_array_equal(net.backward(gy[i:i + 1]), gx[i:i + 1])
