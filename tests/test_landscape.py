"""ef.landscape.shift_scan (seed 002's exploreLandscape) against a NumPy Euler unroll."""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest

SPIRAL_A = np.array([[-0.1, -1.0], [1.0, -0.1]])
K = 5  # Euler steps per interval, as the seed


@pytest.fixture(scope="module")
def spiral():
    return ef.data.spiral_ode()


def seed_start(bias: bool = False) -> ef.Dense:
    """The seed's LinearODE start: weights uniform in [0, 1) (th.rand), seeded."""
    rng = np.random.default_rng(1)
    layer = ef.Dense(2, 2, bias=bias)
    layer.W = rng.random((2, 2))
    if bias:
        layer.b = rng.random(2)
    return layer


def euler_model(layer: ef.Dense) -> ef.NeuralODE:
    return ef.NeuralODE(layer, "euler", steps_per_interval=K)


# ----------------------------------------------------------------------------- NumPy reference


def euler_flow(W, b, z, ta, tb, k=K):
    """k equal explicit Euler steps of dz/dt = W z + b from ta to tb (the last step lands
    on tb, as the documented schedule)."""
    h = (tb - ta) / k
    for j in range(k):
        step = (tb - (ta + j * h)) if j == k - 1 else h
        z = z + step * (W @ z + b)
    return z


def window_loss_ref(W, b, data, t, window=1):
    """Mean over windows of mean((z(t[i+w]) - data[i+w])^2), from data[i] at t[i]."""
    b = np.zeros(W.shape[0]) if b is None else b
    losses = []
    for i in range(t.size - window):
        z = data[i]
        for j in range(i, i + window):
            z = euler_flow(W, b, z, t[j], t[j + 1])
        losses.append(np.mean((z - data[i + window]) ** 2))
    return float(np.mean(losses))


def trajectory_loss_ref(W, b, data, t):
    b = np.zeros(W.shape[0]) if b is None else b
    z, total = data[0], 0.0
    for j in range(t.size - 1):
        z = euler_flow(W, b, z, t[j], t[j + 1])
        total += np.sum((z - data[j + 1]) ** 2)
    return total / data.size


def euler_fixed_point(t):
    """The matrix A_h that Euler with k steps of h/k learns exactly: (I + h/k A_h)^k = e^{hA},
    i.e. A_h = (k/h)(e^{(h/k) A} - I), with e^{sA} = e^{-0.1 s} R(s) for the spiral's A."""
    s = (t[1] - t[0]) / K
    c, sn = np.cos(s), np.sin(s)
    expm = np.exp(-0.1 * s) * np.array([[c, -sn], [sn, c]])
    return (expm - np.eye(2)) / s


def params_bytes(model):
    return [p.tobytes() for p in model.field.parameters()]


# ----------------------------------------------------------------------------- the losses


@pytest.mark.parametrize("window", [1, 3])
def test_alpha_zero_is_the_current_window_loss(spiral, window):
    t, ys = spiral
    layer = seed_start()
    scan = ef.landscape.shift_scan(euler_model(layer), ys, t, [0.0], window=window)
    expected = window_loss_ref(layer.W, None, ys, t, window)
    np.testing.assert_allclose(scan.loss, [expected], rtol=1e-12, atol=0)
    assert scan.loss_retrained is None and scan.retrained is None
    assert not scan.failed.any()


def test_alpha_zero_is_the_current_trajectory_loss(spiral):
    t, ys = spiral
    layer = seed_start(bias=True)
    scan = ef.landscape.shift_scan(euler_model(layer), ys, t, [0.0], loss="trajectory")
    expected = trajectory_loss_ref(layer.W, layer.b, ys, t)
    np.testing.assert_allclose(scan.loss, [expected], rtol=1e-12, atol=0)


def test_mean_loss_agrees_with_loss_and_gradient(spiral):
    t, ys = spiral
    model = ef.NeuralODE(seed_start(), "rk4", steps_per_interval=3)
    windows = [model.loss_and_gradient(ys[i], ys[i + 2], t[i:i + 3])[0]
               for i in range(t.size - 2)]
    assert ef.landscape.mean_loss(model, ys, t, window=2) == pytest.approx(
        np.mean(windows), rel=1e-13)


@pytest.mark.parametrize("bias", [False, True])
def test_shift_of_every_parameter(spiral, bias):
    t, ys = spiral
    layer = seed_start(bias)
    alphas = np.array([-3.0, -0.5, 0.25, 2.0])
    scan = ef.landscape.shift_scan(euler_model(layer), ys, t, alphas)
    b = layer.b if bias else None
    expected = [window_loss_ref(layer.W + a, None if b is None else b + a, ys, t)
                for a in alphas]
    np.testing.assert_allclose(scan.loss, expected, rtol=1e-11, atol=0)


@pytest.mark.parametrize("column", [0, 1])
def test_shift_of_one_column(spiral, column):
    t, ys = spiral
    layer = seed_start(bias=True)
    alphas = np.array([-2.0, 0.5, 1.5])
    scan = ef.landscape.shift_scan(euler_model(layer), ys, t, alphas, column=column)
    assert scan.column == column
    expected = []
    for a in alphas:
        W = layer.W.copy()
        W[:, column] += a  # the bias does not move
        expected.append(window_loss_ref(W, layer.b, ys, t))
    np.testing.assert_allclose(scan.loss, expected, rtol=1e-11, atol=0)


def test_column_is_the_seeds_flat_indices():
    # seed: changeTheta(column=0) adds alpha to entries 0 and 2 of the flattened 2x2 weight
    # of nn.Linear (row-major, (out, in)); column=1 to entries 1 and 3.
    layer = ef.Dense(2, 2)
    d0, db = ef.landscape.shift_direction(layer, 0)
    assert np.flatnonzero(d0.ravel()).tolist() == [0, 2] and not db.any()
    d1, _ = ef.landscape.shift_direction(layer, 1)
    assert np.flatnonzero(d1.ravel()).tolist() == [1, 3]
    every = ef.landscape.shift_direction(layer)
    assert all(np.all(d == 1.0) for d in every)


def test_custom_direction(spiral):
    t, ys = spiral
    layer = seed_start()
    d = np.array([[1.0, -2.0], [0.5, 0.0]])
    scan = ef.landscape.shift_scan(euler_model(layer), ys, t, [0.3], direction=[d])
    np.testing.assert_allclose(scan.loss, [window_loss_ref(layer.W + 0.3 * d, None, ys, t)],
                               rtol=1e-11, atol=0)


# ----------------------------------------------------------------------------- restoring


def test_parameters_restored_bit_for_bit(spiral):
    t, ys = spiral
    layer = seed_start(bias=True)
    model = euler_model(layer)
    arrays = model.field.parameters()
    before = params_bytes(model)
    opt = ef.optim.SGD(lr=5e-3, momentum=0.9)
    scan = ef.landscape.shift_scan(model, ys, t, [-1.0, 0.0, 0.7], column=1, retrain_epochs=20,
                                   optimizer=opt)
    assert params_bytes(model) == before
    # the very same arrays (the network's storage), not replacements
    assert all(p is q for p, q in zip(model.field.parameters(), arrays, strict=True))
    # the caller's optimizer is untouched: no state was attached to it
    assert opt.buffers is None and opt.step_count == 0
    # the retrained parameters did move
    assert not np.array_equal(scan.retrained[1][0], layer.W)


def test_parameters_restored_after_an_exception(spiral):
    t, ys = spiral
    layer = seed_start()
    model = euler_model(layer)
    before = params_bytes(model)

    class Interrupting:
        field = model.field
        calls = 0

        def trajectory(self, z0, t):
            Interrupting.calls += 1
            if Interrupting.calls > 150:  # inside the second shift
                raise KeyboardInterrupt
            return model.trajectory(z0, t)

    with pytest.raises(KeyboardInterrupt):
        ef.landscape.shift_scan(Interrupting(), ys, t, [1.0, 2.0, 3.0])
    assert params_bytes(model) == before


# ----------------------------------------------------------------------------- shape near a minimum


def test_loss_is_quadratic_near_the_minimum(spiral):
    """At Euler's own minimiser A_h the window loss is ~0 and the scan a parabola
    L(alpha) = c alpha^2 + O(alpha^3), c = d^T H d / 2 > 0."""
    t, ys = spiral
    layer = ef.Dense(2, 2, bias=False)
    layer.W = euler_fixed_point(t)
    model = euler_model(layer)
    alphas = np.linspace(-1e-3, 1e-3, 9)
    for column in (None, 0, 1):
        scan = ef.landscape.shift_scan(model, ys, t, alphas, column=column)
        centre = scan.loss[4]
        assert centre < 1e-22  # the data's own error (dopri5 at 1e-12) squared
        assert np.all(scan.loss[alphas != 0] > 1e3 * centre)
        c2, c1, c0 = np.polyfit(alphas, scan.loss, 2)
        fitted = np.polyval([c2, c1, c0], alphas)
        assert c2 > 0
        assert np.max(np.abs(fitted - scan.loss)) < 1e-3 * scan.loss.max()
        # the vertex sits at the minimum: |c1| tiny against the curvature times the range
        assert abs(c1 / (2 * c2)) < 1e-3 * alphas.max()
        ratio = scan.loss[alphas != 0] / alphas[alphas != 0] ** 2
        assert ratio.max() / ratio.min() < 1.01


def test_euler_minimiser_is_the_closed_form(spiral):
    """Training the seed's LinearODE with Euler at 5 steps ends at A_h (biased), not at A."""
    t, ys = spiral
    layer = seed_start()
    model = euler_model(layer)
    model.fit(ys, t, epochs=2000, optimizer=ef.optim.SGD(1e-2, momentum=0.95))
    np.testing.assert_allclose(layer.W, euler_fixed_point(t), rtol=0, atol=1e-9)
    assert abs(layer.W[0, 0] - SPIRAL_A[0, 0]) > 9e-3  # the bias of Euler's method


# ----------------------------------------------------------------------------- retraining


def test_retraining_is_a_fresh_fit_from_the_shifted_start(spiral):
    t, ys = spiral
    layer = seed_start()
    opt = ef.optim.SGD(lr=1e-2, momentum=0.95)
    opt_used = ef.optim.SGD(lr=1e-2, momentum=0.95)
    euler_model(ef.Dense(2, 2, bias=False, seed=3)).fit(ys, t, epochs=2, optimizer=opt_used)
    assert opt_used.step_count > 0  # it carries state, which the scan must not inherit
    alphas = [-1.0, 2.0]
    scan = ef.landscape.shift_scan(euler_model(layer), ys, t, alphas, retrain_epochs=30,
                                   optimizer=opt_used, seed=7)
    for k, a in enumerate(alphas):
        twin = ef.Dense(2, 2, bias=False)
        twin.W = layer.W + a
        m = euler_model(twin)
        m.fit(ys, t, epochs=30, optimizer=ef.optim.SGD(lr=1e-2, momentum=0.95), seed=7)
        assert np.array_equal(scan.retrained[k][0], twin.W)
        assert scan.loss_retrained[k] == ef.landscape.mean_loss(m, ys, t)
        assert scan.loss_retrained[k] < scan.loss[k]
    assert opt.buffers is None


def test_failures_record_inf(spiral):
    t, ys = spiral
    # an adaptive integration that needs more than max_steps at a huge shift
    model = ef.NeuralODE(seed_start(), "dopri5", max_steps=50)
    scan = ef.landscape.shift_scan(model, ys, t, [0.0, 500.0])
    assert np.isfinite(scan.loss[0]) and scan.loss[1] == np.inf
    assert scan.failed.tolist() == [False, True]
    # a retraining that diverges
    scan = ef.landscape.shift_scan(euler_model(seed_start()), ys, t, [0.0, 30.0],
                                   retrain_epochs=5, optimizer=ef.optim.SGD(lr=100.0))
    assert scan.loss_retrained[1] == np.inf and scan.failed[1]
    assert scan.best[0] == 0.0 and np.isfinite(scan.best[1])


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"alphas": [[0.0, 1.0]]}, ValueError, "alphas must be 1-D"),
        ({"alphas": []}, ValueError, "alphas is empty"),
        ({"alphas": [0.0, np.nan]}, ValueError, "alphas contains 1 NaN"),
        ({"alphas": [1j]}, TypeError, "alphas must hold real numbers"),
        ({"alphas": ["1"]}, TypeError, "alphas must hold real numbers"),
        ({"column": 2}, ValueError, r"column must lie in \[0, 2\)"),
        ({"column": -1}, ValueError, "column must lie"),
        ({"column": 0.0}, TypeError, "column must be an int"),
        ({"column": True}, TypeError, "column must be an int"),
        ({"column": 0, "direction": [np.ones((2, 2))]}, ValueError, "column or direction"),
        ({"direction": [np.ones((2, 2)), np.ones(2)]}, ValueError, "must hold 1 arrays"),
        ({"direction": [np.ones((2, 3))]}, ValueError, r"direction\[0\] must have the shape"),
        ({"retrain_epochs": -1}, ValueError, "retrain_epochs must be >= 0"),
        ({"retrain_epochs": 2.0}, TypeError, "retrain_epochs must be an int"),
        ({"window": 0}, ValueError, "window must be positive"),
        ({"window": 100}, ValueError, "window must be smaller than the series"),
        ({"optimizer": "sgd"}, TypeError, "optimizer must be an eulerflow.optim optimizer"),
        ({"seed": -1}, ValueError, "seed must be in"),
        ({"loss": "mse"}, ValueError, "loss must be one of"),
        ({"t": np.linspace(0, 1, 50)}, ValueError, "data has 100 rows but t has 50 times"),
        ({"data": np.ones(100)}, ValueError, "data must be 2-D"),
        ({"data": np.full((100, 2), np.inf)}, ValueError, "data contains 200 NaN"),
    ],
)
def test_bad_arguments_are_refused(spiral, kwargs, error, match):
    t, ys = spiral
    model = euler_model(seed_start())
    before = params_bytes(model)
    args = {"data": ys, "t": t, "alphas": [0.0, 1.0], **kwargs}
    with pytest.raises(error, match=match):
        ef.landscape.shift_scan(model, **args)
    assert params_bytes(model) == before


def test_model_without_a_field_is_refused(spiral):
    t, ys = spiral
    with pytest.raises(TypeError, match="model must have a .field network"):
        ef.landscape.shift_scan(object(), ys, t, [0.0])

    class NoFit:
        field = ef.Dense(2, 2)

        def trajectory(self, z0, t):  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(TypeError, match="retraining needs model.fit"):
        ef.landscape.shift_scan(NoFit(), ys, t, [0.0], retrain_epochs=1)


def test_data_of_the_wrong_width_is_refused(spiral):
    t, ys = spiral
    model = euler_model(seed_start())
    with pytest.raises(ValueError, match="z0 must have 2 values per state"):
        ef.landscape.shift_scan(model, np.ones((100, 3)), t, [0.0])


# ============================================================================= random directions,
# scan_1d and scan_2d (Li et al. 2018)

import conftest  # noqa: E402
from eulerflow import _core  # noqa: E402
from reference import nn_reference as ref  # noqa: E402

LOSS_NAMES = ["mse", "half_se", "cross_entropy"]


def w4_net(seed: int = 0) -> ef.Sequential:
    """Seed 004's classifier: 2-15-3, atan after both layers, standard normal weights."""
    net = ef.Sequential([ef.Dense(2, 15), ef.Activation("atan"), ef.Dense(15, 3),
                         ef.Activation("atan")])
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        p[...] = rng.standard_normal(p.shape)
    return net


@pytest.fixture(scope="module")
def spiral3():
    return ef.data.spiral_classes(30, 3, 0.2, seed=0)


def w4_loss_ref(params, X, y):
    """A plain NumPy forward and mean cross entropy, as a user writes it."""
    W1, b1, W2, b2 = params
    z = np.arctan(np.arctan(X @ W1.T + b1) @ W2.T + b2)
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def moved(params, d1, a, d2=None, b=0.0):
    if d2 is None:
        return [p + a * u for p, u in zip(params, d1, strict=True)]
    return [p + a * u + b * v for p, u, v in zip(params, d1, d2, strict=True)]


def all_bytes(model):
    return [p.tobytes() for p in model.parameters()]


# ----------------------------------------------------------------------------- directions


def test_filter_normalization_rows_have_the_weights_norms():
    net = ef.mlp([3, 7, 5, 2], "tanh", seed=0)
    params = net.parameters()
    d = ef.landscape.random_direction(net, seed=3)
    assert [x.shape for x in d] == [p.shape for p in params]
    for x, p in zip(d, params, strict=True):
        assert x.dtype == np.float64
        if p.ndim == 2:  # rows: the incoming weights of each output neuron
            np.testing.assert_allclose(np.linalg.norm(x, axis=1), np.linalg.norm(p, axis=1),
                                       rtol=1e-14)
        else:  # biases are not moved (Li et al.'s default)
            assert np.all(x == 0)
    # the rows keep the directions of the Gaussian draw
    gen = np.random.default_rng(3)
    raw = [gen.standard_normal(p.shape) for p in params]
    for x, r in zip(d[::2], raw[::2], strict=True):
        cos = np.sum(x * r, axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(r, axis=1))
        np.testing.assert_allclose(cos, 1.0, rtol=1e-14)


def test_direction_options():
    net = ef.mlp([3, 7, 2], "relu", seed=1)
    params = net.parameters()
    gen = np.random.default_rng(5)
    raw = [gen.standard_normal(p.shape) for p in params]
    plain = ef.landscape.random_direction(net, 5, normalization=None, biases="normalize")
    for x, r in zip(plain, raw, strict=True):
        assert np.array_equal(x, r)
    plain_zero = ef.landscape.random_direction(net, 5, normalization=None)
    assert np.array_equal(plain_zero[0], raw[0]) and not plain_zero[1].any()
    layer = ef.landscape.random_direction(net, 5, normalization="layer", biases="normalize")
    for x, p, r in zip(layer, params, raw, strict=True):
        np.testing.assert_allclose(np.linalg.norm(x), np.linalg.norm(p), rtol=1e-14)
        np.testing.assert_allclose(x * np.linalg.norm(r) / np.linalg.norm(x), r, rtol=1e-13)
    filt = ef.landscape.random_direction(net, 5, biases="normalize")
    np.testing.assert_allclose(np.linalg.norm(filt[1]), np.linalg.norm(params[1]), rtol=1e-14)
    # same seed, same bits; another seed, another direction
    again = ef.landscape.random_direction(net, 5, biases="normalize")
    assert all(np.array_equal(x, y) for x, y in zip(filt, again, strict=True))
    other = ef.landscape.random_direction(net, 6)
    assert not np.array_equal(other[0], filt[0])


def test_zero_rows_and_generic_arrays():
    class Conv:
        """Not an eulerflow network: a (out, in, kh, kw) kernel and a bias."""

        def __init__(self):
            rng = np.random.default_rng(0)
            self.k = rng.standard_normal((4, 2, 3, 3))
            self.k[2] = 0.0  # a dead filter
            self.b = rng.standard_normal(4)

        def parameters(self):
            return [self.k, self.b]

    model = Conv()
    d = ef.landscape.random_direction(model, seed=1)
    norms = np.sqrt((d[0] ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(norms, np.sqrt((model.k ** 2).sum(axis=(1, 2, 3))), rtol=1e-14)
    assert not d[0][2].any() and not d[1].any()
    given = [np.ones((4, 2, 3, 3)), np.zeros(4)]
    n = ef.landscape.normalize_direction(model, given, biases="normalize")
    assert not n[1].any()  # a zero direction stays zero
    assert np.array_equal(given[0], np.ones((4, 2, 3, 3)))  # the input is not modified


# ----------------------------------------------------------------------------- a quadratic problem


def linear_problem(seed=0):
    rng = np.random.default_rng(seed)
    layer = ef.Dense(4, 3, seed=seed)
    X = rng.standard_normal((50, 4))
    Y = rng.standard_normal((50, 3))
    d1 = [rng.standard_normal((3, 4)), rng.standard_normal(3)]
    d2 = [rng.standard_normal((3, 4)), rng.standard_normal(3)]
    return layer, X, Y, d1, d2


def quadratic(layer, X, Y, d1, d2, alphas, betas, loss):
    """The closed form: residual r0 + a r1 + b r2 is affine in (a, b), the loss its
    squared norm, a quadratic with coefficients S_ij = <r_i, r_j>."""
    r = [X @ layer.W.T + layer.b - Y, X @ d1[0].T + d1[1], X @ d2[0].T + d2[1]]
    S = np.array([[np.sum(u * v) for v in r] for u in r])
    a, b = np.meshgrid(alphas, betas)
    total = (S[0, 0] + 2 * a * S[0, 1] + 2 * b * S[0, 2] + a * a * S[1, 1]
             + 2 * a * b * S[1, 2] + b * b * S[2, 2])
    return total / Y.size if loss == "mse" else total / (2 * Y.shape[0])


@pytest.mark.parametrize("loss", ["mse", "half_se"])
@pytest.mark.parametrize("kind", ["batched", "forward", "callable"])
def test_scan_2d_of_a_linear_model_is_the_closed_form_quadratic(loss, kind):
    layer, X, Y, d1, d2 = linear_problem()
    alphas = np.linspace(-2.0, 3.0, 11)
    betas = np.array([-1.5, -0.2, 0.0, 0.7, 4.0])
    if kind == "batched":
        model, objective, name = layer, (X, Y), loss
    elif kind == "forward":  # the identity penalty layer is not a plain chain
        model, objective, name = ef.Sequential([layer, ef.ActivityPenalty()]), (X, Y), loss
    else:
        fn = ref.LOSSES[loss]
        model, objective, name = layer, (lambda m: fn(m(X), Y)[0]), None
    scan = ef.landscape.scan_2d(model, objective, alphas, betas, directions=(d1, d2), loss=name)
    assert scan.evaluation == kind and scan.normalization == "given"
    assert scan.loss_name == (loss if kind != "callable" else "callable")
    expected = quadratic(layer, X, Y, d1, d2, alphas, betas, loss)
    assert scan.loss.shape == (betas.size, alphas.size)
    np.testing.assert_allclose(scan.loss, expected, rtol=1e-12, atol=0)
    origin = quadratic(layer, X, Y, d1, d2, [0.0], [0.0], loss)[0, 0]
    assert scan.origin_loss == pytest.approx(origin, rel=1e-13)


def test_scan_1d_of_a_linear_model_is_a_parabola():
    layer, X, Y, d1, d2 = linear_problem(1)
    alphas = np.array([3.0, -1.0, 0.25, 0.0])  # any order
    scan = ef.landscape.scan_1d(layer, (X, Y), alphas, d1, loss="mse")
    expected = quadratic(layer, X, Y, d1, [np.zeros((3, 4)), np.zeros(3)], alphas, [0.0],
                         "mse")[0]
    np.testing.assert_allclose(scan.loss, expected, rtol=1e-12, atol=0)
    assert scan.loss[3] == pytest.approx(scan.origin_loss, rel=1e-14)
    a, v = scan.minimum
    assert v == scan.loss.min() and a == alphas[np.argmin(scan.loss)]


# ----------------------------------------------------------------------------- against NumPy


def test_scan_2d_equals_a_numpy_scan_on_the_w4_classifier(spiral3):
    X, y = spiral3
    net = w4_net()
    params = [p.copy() for p in net.parameters()]
    alphas = np.array([-0.9, 0.0, 0.35, 1.2])
    betas = np.array([-0.5, 0.25, 1.0])
    scan = ef.landscape.scan_2d(net, (X, y), alphas, betas, loss="cross_entropy", seed=7)
    assert scan.evaluation == "batched" and scan.normalization == "filter"
    d1, d2 = scan.directions
    for u, v in zip(d1, ef.landscape.random_direction(net, 7), strict=True):
        assert np.array_equal(u, v)
    for u, v in zip(d2, ef.landscape.random_direction(net, 8), strict=True):
        assert np.array_equal(u, v)
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            expected = w4_loss_ref(moved(params, d1, a, d2, b), X, y)
            assert scan.loss[i, j] == pytest.approx(expected, rel=1e-12, abs=0)
    assert scan.origin_loss == pytest.approx(w4_loss_ref(params, X, y), rel=1e-12)
    # the 1-D scan is the row beta = 0 of a plane with the same first direction
    line = ef.landscape.scan_1d(net, (X, y), alphas, d1, loss="cross_entropy")
    for j, a in enumerate(alphas):
        assert line.loss[j] == pytest.approx(w4_loss_ref(moved(params, d1, a), X, y), rel=1e-12)


@pytest.mark.parametrize("act", conftest.ACTIVATIONS, ids=conftest.act_id)
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_batched_scan_equals_the_reference_network(act, loss, rng):
    """Every activation, every loss: the batched evaluation of an eulerflow chain against
    the reference NumPy network moved point by point (a model that is not an eulerflow
    network, scanned through the callable protocol)."""
    name, kw = act
    specs = [("act", "tanh", {}), ("dense", 3, 6), ("act", name, kw), ("dense", 6, 4, False),
             ("act", name, kw), ("dense", 4, 3)]
    net, rnet = conftest.build_pair(ef, specs, seed=2)
    X = rng.standard_normal((40, 3))
    if loss == "cross_entropy":
        Y = rng.integers(0, 3, 40) if name != "relu" else rng.dirichlet(np.ones(3), 40)
    else:
        Y = rng.standard_normal((40, 3))
    alphas, betas = np.array([-0.8, 0.0, 0.6]), np.array([-0.3, 0.9])
    scan = ef.landscape.scan_2d(net, (X, Y), alphas, betas, loss=loss, seed=4,
                                biases="normalize")
    assert scan.evaluation == "batched"
    fn = ref.LOSSES[loss]
    twin = ef.landscape.scan_2d(rnet, lambda m: fn(m.forward(X), Y)[0], alphas, betas,
                                directions=scan.directions)
    assert twin.evaluation == "callable"
    np.testing.assert_allclose(scan.loss, twin.loss, rtol=1e-12, atol=1e-14)
    assert scan.origin_loss == pytest.approx(twin.origin_loss, rel=1e-12, abs=1e-14)


def test_forward_and_callable_paths_agree_with_the_batched_one(spiral3):
    X, y = spiral3
    net = w4_net(1)
    grid = np.linspace(-1, 1, 5)
    fast = ef.landscape.scan_2d(net, (X, y), grid, grid, loss="cross_entropy", seed=0)
    wrapped = ef.Sequential([net, ef.ActivityPenalty()])
    slow = ef.landscape.scan_2d(wrapped, (X, y), grid, grid, loss="cross_entropy", seed=0)
    assert slow.evaluation == "forward"
    np.testing.assert_allclose(slow.loss, fast.loss, rtol=1e-13)
    call = ef.landscape.scan_2d(net, lambda m: w4_loss_ref(m.parameters(), X, y), grid, grid,
                                seed=0)
    np.testing.assert_allclose(call.loss, fast.loss, rtol=1e-12)


def test_float32_network_is_scanned_point_by_point(spiral3):
    X, y = spiral3
    net = ef.mlp([2, 8, 3], "atan", seed=0, dtype=np.float32)
    before = all_bytes(net)
    scan = ef.landscape.scan_1d(net, (X, y), [-0.5, 0.0, 0.5], loss="cross_entropy", seed=1)
    assert scan.evaluation == "forward" and np.isfinite(scan.loss).all()
    assert all_bytes(net) == before


def test_grid_layout_rows_are_betas():
    layer, X, Y, d1, d2 = linear_problem(2)
    alphas, betas = np.array([0.0, 1.0, 2.0]), np.array([10.0, -3.0])
    scan = ef.landscape.scan_2d(layer, (X, Y), alphas, betas, directions=(d1, d2))
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            W, c = moved([layer.W, layer.b], d1, a, d2, b)
            assert scan.loss[i, j] == pytest.approx(np.mean((X @ W.T + c - Y) ** 2), rel=1e-12)
    a, b, v = scan.minimum
    assert v == scan.loss.min()
    u = np.concatenate([x.ravel() for x in d1])
    w = np.concatenate([x.ravel() for x in d2])
    assert scan.cosine == pytest.approx(u @ w / np.linalg.norm(u) / np.linalg.norm(w))


# ----------------------------------------------------------------------------- restoring


def test_parameters_restored_bit_for_bit_after_a_scan(spiral3):
    X, y = spiral3
    net = w4_net(2)
    net.parameters()[1][3] = -0.0  # a signed zero must come back as it was
    arrays = net.parameters()
    before = all_bytes(net)
    grid = np.linspace(-2, 2, 7)
    for model in (net, ef.Sequential([net, ef.ActivityPenalty()])):
        ef.landscape.scan_2d(model, (X, y), grid, grid, loss="cross_entropy", seed=1)
        assert all_bytes(net) == before
    ef.landscape.scan_1d(net, lambda m: w4_loss_ref(m.parameters(), X, y), grid, seed=2)
    assert all_bytes(net) == before
    assert all(p is q for p, q in zip(net.parameters(), arrays, strict=True))


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_parameters_restored_when_the_loss_raises(spiral3, error):
    X, y = spiral3
    net = w4_net(3)
    before = all_bytes(net)
    calls = []

    def loss(m):
        calls.append(1)
        if len(calls) == 6:
            raise error("stop")
        return w4_loss_ref(m.parameters(), X, y)

    with pytest.raises(error):
        ef.landscape.scan_2d(net, loss, [-1.0, 0.5, 1.0], [0.0, 2.0], seed=0)
    assert len(calls) == 6
    assert all_bytes(net) == before


def test_non_finite_losses_are_recorded_as_inf():
    layer, X, Y, d1, d2 = linear_problem(3)
    # overflow in the batched evaluation: no warning escapes (warnings are errors here)
    scan = ef.landscape.scan_1d(layer, (X, Y), [0.0, 1e200], d1)
    assert np.isfinite(scan.loss[0]) and scan.loss[1] == np.inf
    values = iter([1.0, np.nan, np.inf, 2.0])
    scan = ef.landscape.scan_1d(layer, lambda m: next(values), [0.0, 1.0, 2.0], d1)
    assert scan.loss.tolist() == [1.0, np.inf, np.inf] and scan.origin_loss == 2.0
    assert scan.minimum == (0.0, 1.0)


# ----------------------------------------------------------------------------- bad arguments


def test_bad_scan_arguments_are_refused(spiral3):
    X, y = spiral3
    net = w4_net()
    before = all_bytes(net)
    data = (X, y)
    shapes = [p.shape for p in net.parameters()]
    good = [np.ones(s) for s in shapes]

    def refused(error, match, *args, **kwargs):
        """scan_1d(*args), or scan_2d when betas are given as a keyword."""
        scan = ef.landscape.scan_2d if "betas" in kwargs else ef.landscape.scan_1d
        with pytest.raises(error, match=match):
            scan(*args, **{"loss": "cross_entropy", **kwargs})
        assert all_bytes(net) == before

    refused(ValueError, r"alphas is empty \(shape \(0,\)\)", net, data, [])
    refused(ValueError, "alphas must be 1-D, got shape", net, data, [[0.0]])
    refused(ValueError, "alphas contains 1 NaN or infinite", net, data, [0.0, np.inf])
    refused(TypeError, "alphas must hold real numbers", net, data, [1j])
    refused(ValueError, "betas is empty", net, data, [0.0], betas=[])
    refused(ValueError, "betas contains 1 NaN", net, data, [0.0], betas=[np.nan])
    refused(ValueError, r"direction must hold 4 arrays \(one per parameter, shapes "
            r"\[\(15, 2\), \(15,\), \(3, 15\), \(3,\)\]\), got 3", net, data, [0.0], good[:3])
    wrong = [good[0], good[1], np.ones((15, 3)), good[3]]
    refused(ValueError, r"direction\[2\] must have the shape of parameter 2 \(3, 15\), got "
            r"\(15, 3\)", net, data, [0.0], wrong)
    bad = [g.copy() for g in good]
    bad[1][0] = np.nan
    refused(ValueError, r"direction\[1\] contains 1 NaN or infinite value\(s\) \(shape \(15,\)\)",
            net, data, [0.0], bad)
    refused(TypeError, "direction must be a list of arrays", net, data, [0.0], np.ones(3))
    refused(ValueError, r"directions must be a pair \(d1, d2\), got 3", net, data, [0.0],
            betas=[0.0], directions=(good, good, good))
    refused(ValueError, r"directions\[1\]\[0\] must have the shape of parameter 0 \(15, 2\), "
            r"got \(2, 15\)", net, data, [0.0], betas=[0.0],
            directions=(good, [np.ones((2, 15))] + good[1:]))
    refused(ValueError, "loss must be one of", net, data, [0.0], loss="nll")
    refused(ValueError, "a callable objective is its own loss", net, lambda m: 0.0, [0.0])
    refused(TypeError, "objective must be a callable loss", net, X, [0.0])
    refused(ValueError, r"X has 3 features but the network expects 2 \(X shape \(90, 3\)\)",
            net, (np.ones((90, 3)), y), [0.0])
    refused(ValueError, "X has 90 rows but Y has 89", net, (X, y[:-1]), [0.0])
    refused(ValueError, r"Y class indices must lie in \[0, 3\)", net, (X, y + 1), [0.0])
    X_nan = X.copy()
    X_nan[5, 1] = np.nan
    refused(ValueError, r"X contains 1 NaN or infinite value\(s\) \(shape \(90, 2\)\)", net,
            (X_nan, y), [0.0])
    refused(ValueError, "normalization must be one of", net, data, [0.0], normalization="unit")
    refused(ValueError, "biases must be one of", net, data, [0.0], biases="keep")
    refused(ValueError, r"seed must be in \[0, 2\*\*64\)", net, data, [0.0], seed=-1)
    refused(ValueError, "seed must be below 2", net, data, [0.0], betas=[0.0], seed=2**64 - 1)

    with pytest.raises(TypeError, match="model must have a parameters"):
        ef.landscape.scan_1d(object(), lambda m: 0.0, [0.0])
    with pytest.raises(TypeError, match="data .X, Y. needs an eulerflow network"):
        ef.landscape.scan_1d(ref.Sequential([ref.Dense(np.ones((2, 2)), None)]), (X, y), [0.0],
                             [np.ones((2, 2))])
    with pytest.raises(ValueError, match="model has no parameters"):
        ef.landscape.scan_1d(ef.Sequential([ef.Activation("tanh")]), (X, X), [0.0])
    with pytest.raises(TypeError, match="the loss callable must return a real number"):
        ef.landscape.scan_1d(net, lambda m: "1.0", [0.0])
    with pytest.raises(TypeError, match=r"model.parameters\(\)\[0\] must be a floating"):
        ef.landscape.random_direction(type("M", (), {"parameters": lambda s: [[1.0]]})())


# ----------------------------------------------------------------------------- figures


def test_landscape_figures(spiral3):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = spiral3
    net = w4_net()
    grid = np.linspace(-1, 1, 9)
    plane = ef.landscape.scan_2d(net, (X, y), grid, grid, loss="cross_entropy", seed=0)
    fig = ef.plot.landscape_2d(plane)
    ax = fig.axes[0]
    assert ax.get_xlabel() == r"$\alpha$ (direction 1)"
    assert ax.get_ylabel() == r"$\beta$ (direction 2)"
    assert "filter-normalized" in ax.get_title()
    assert fig.axes[1].get_ylabel() == "cross-entropy loss (log scale)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("trained model") for t in labels)
    plt.close(fig)
    fig = ef.plot.landscape_2d(plane, log=False, levels=np.linspace(0, 5, 6), lines=False)
    assert fig.axes[1].get_ylabel() == "cross-entropy loss"
    plt.close(fig)
    lines = {f"seed {k}": ef.landscape.scan_1d(net, (X, y), grid, loss="cross_entropy", seed=k)
             for k in (0, 1)}
    fig = ef.plot.landscape_1d(lines)
    assert len(fig.axes[0].get_lines()) == 4  # two curves, two origin stars
    plt.close(fig)
    plt.close(ef.plot.landscape_1d(lines["seed 0"], log=False))
    with pytest.raises(ValueError, match=r"scan.loss must have shape \(len\(betas\), "):
        ef.plot.landscape_2d(type("S", (), {"alphas": grid, "betas": grid[:3],
                                            "loss": plane.loss})())


# ----------------------------------------------------------------------------- the native evaluator
#
# A float64 chain is scanned by one native call (_core._landscape_losses, landscape.cpp):
# per point, each Dense layer's weights from the stacks, the network's forward kernels and
# loss. Its first Dense layer enters as a Dense on the data when it has at most 1 + K
# inputs, else as its stacked products with the data (linearity): the chains below have
# 3 inputs, so one direction takes the linearity form and two directions the direct one.


def numpy_scan(rnet, X, Y, loss, coeffs, dirs):
    """The plain reference: per point, move the reference network's parameters and run
    its NumPy forward and loss."""
    params = rnet.parameters()
    theta0 = [p.copy() for p in params]
    fn = ref.LOSSES[loss]
    out = []
    try:
        for c in coeffs:
            for k, (p, p0) in enumerate(zip(params, theta0, strict=True)):
                p[...] = p0 + sum(ck * d[k] for ck, d in zip(c[1:], dirs, strict=True))
            out.append(fn(rnet.forward(X), Y)[0])
    finally:
        for p, p0 in zip(params, theta0, strict=True):
            p[...] = p0
    return np.array(out)


def loss_targets(kind, rng, n, k):
    if kind == "labels":
        return "cross_entropy", rng.integers(0, k, n)
    if kind == "probabilities":
        return "cross_entropy", rng.dirichlet(np.ones(k), n)
    return kind, rng.standard_normal((n, k))


TARGET_KINDS = ["labels", "probabilities", "mse", "half_se"]


@pytest.mark.parametrize("act", conftest.ACTIVATIONS, ids=conftest.act_id)
@pytest.mark.parametrize("target", TARGET_KINDS)
@pytest.mark.parametrize("n_dirs", [1, 2])
def test_native_scan_equals_a_numpy_per_point_reference(act, target, n_dirs, rng):
    name, kw = act
    specs = [("act", "tanh", {}), ("dense", 3, 6), ("act", name, kw), ("dense", 6, 5, False),
             ("act", name, kw), ("dense", 5, 4), ("act", name, kw)]
    net, rnet = conftest.build_pair(ef, specs, seed=3)
    X = rng.standard_normal((37, 3))  # 37 samples: vector chunks and a remainder
    loss, Y = loss_targets(target, rng, 37, 4)
    alphas = np.array([-1.3, -0.4, 0.0, 0.8, 2.5])
    if n_dirs == 1:
        scan = ef.landscape.scan_1d(net, (X, Y), alphas, loss=loss, seed=5, biases="normalize")
        dirs = [scan.direction]
        coeffs = np.column_stack([np.ones(6), np.append(alphas, 0.0)])
        values = np.append(scan.loss, scan.origin_loss)
    else:
        betas = np.array([-0.7, 0.3, 1.9])
        scan = ef.landscape.scan_2d(net, (X, Y), alphas, betas, loss=loss, seed=5,
                                    biases="normalize")
        dirs = list(scan.directions)
        a, b = np.meshgrid(alphas, betas)
        coeffs = np.column_stack([np.ones(a.size + 1), np.append(a.ravel(), 0.0),
                                  np.append(b.ravel(), 0.0)])
        values = np.append(scan.loss.ravel(), scan.origin_loss)
    assert scan.evaluation == "batched"
    expected = numpy_scan(rnet, X, Y, loss, coeffs, dirs)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-15)


def test_native_scan_of_the_network_forward(spiral3):
    """At the origin the scan is the network's own forward and loss: the same kernels,
    so the same value to the last bits (the loss's summation order aside)."""
    X, y = spiral3
    net = w4_net(4)
    scan = ef.landscape.scan_1d(net, (X, y), [0.0], loss="cross_entropy", seed=0)
    z = net(X)
    expected = ref.cross_entropy(z, y)[0]
    assert scan.origin_loss == pytest.approx(expected, rel=1e-14)
    assert scan.loss[0] == scan.origin_loss


@pytest.mark.parametrize("width", [2, 9])  # direct first layer / linearity
def test_native_scan_has_the_same_bits_for_every_thread_count(width, rng):
    net = ef.mlp([width, 15, 3], "atan", seed=1)
    X = rng.standard_normal((301, width))
    y = rng.integers(0, 3, 301)
    grid = np.linspace(-1.0, 1.0, 23)
    saved = ef.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3, 1):
            ef.set_num_threads(threads)
            scan = ef.landscape.scan_2d(net, (X, y), grid, grid, loss="cross_entropy", seed=2)
            results.append(scan.loss.tobytes() + np.float64(scan.origin_loss).tobytes())
    finally:
        ef.set_num_threads(saved)
    assert all(r == results[0] for r in results)


def native_w4(rng, n=20, terms=3):
    """A W4 chain as _Batched hands it to the core: data (1, 2 n), Dense 2->15, atan,
    Dense 15->3, atan; stacks of random weights."""
    X = rng.standard_normal((2, n))
    W1, b1 = rng.standard_normal((terms, 30)), rng.standard_normal((terms, 15))
    W2, b2 = rng.standard_normal((terms, 45)), rng.standard_normal((terms, 3))
    atan = (1, ef.nn.ACTIVATIONS["atan"][0], 0.0, 0.0)
    ops = [(0, W1, b1, 15, 2), atan, (0, W2, b2, 3, 15), atan]
    return X.reshape(1, -1), ops, rng.integers(0, 3, n)


def test_native_non_finite_losses_are_inf(rng):
    Q, ops, y = native_w4(rng)
    coeffs = np.array([[1.0, 0.0, 0.0], [1.0, 0.5, -0.5], [1.0, 1e300, 1e300]])
    ce = ef.nn.LOSSES["cross_entropy"]
    good = _core._landscape_losses(Q, 2, ops, ce, y, coeffs)
    assert np.isfinite(good[:2]).all()
    # a NaN in a direction: 0 * NaN is NaN, so every point that uses the stack is inf
    bad = [list(op) for op in ops]
    bad[2][1] = ops[2][1].copy()
    bad[2][1][1, 7] = np.nan
    out = _core._landscape_losses(Q, 2, [tuple(op) for op in bad], ce, y, coeffs)
    assert out.tolist() == [np.inf, np.inf, np.inf]
    # overflow of a linear chain: the squared error is inf
    lin = [(0, np.ones((3, 6)), None, 3, 2)]
    t = np.zeros((3, 20))
    out = _core._landscape_losses(Q, 2, lin, ef.nn.LOSSES["mse"], t,
                                  np.array([[1.0, 0.0, 0.0], [1.0, 1e200, 1e200]]))
    assert np.isfinite(out[0]) and out[1] == np.inf


def test_native_scan_refuses_bad_shapes(rng):
    Q, ops, y = native_w4(rng)
    coeffs = np.ones((4, 3))
    ce = ef.nn.LOSSES["cross_entropy"]
    call = _core._landscape_losses
    with pytest.raises(ValueError, match=r"coeffs must have shape \(points, 1 \+ K\), got \(3,\)"):
        call(Q, 2, ops, ce, y, np.ones(3))
    with pytest.raises(ValueError, match=r"Q must have shape \(3 or 1, 2 \* n\) for coeffs of "
                       r"shape \(4, 3\), got \(2, 40\)"):
        call(np.ones((2, 40)), 2, ops, ce, y, coeffs)
    with pytest.raises(ValueError, match=r"Q must have shape .* got \(1, 39\)"):
        call(np.ones((1, 39)), 2, ops, ce, y, coeffs)
    with pytest.raises(ValueError, match="width must be positive, got 0"):
        call(Q, 0, ops, ce, y, coeffs)
    wide = [(0, ops[0][1], ops[0][2], 15, 3)] + ops[1:]
    with pytest.raises(ValueError, match=r"ops\[0\] is a dense layer 3 -> 15 but its input "
                       "has 2 features"):
        call(Q, 2, wide, ce, y, coeffs)
    short = ops[:2] + [(0, ops[2][1][:, :44], ops[2][2], 3, 15)] + ops[3:]
    with pytest.raises(ValueError, match=r"ops\[2\] W must have shape \(3, 45\), got \(3, 44\)"):
        call(Q, 2, short, ce, y, coeffs)
    with pytest.raises(ValueError, match=r"ops\[0\] b must have shape \(3, 15\), got \(2, 15\)"):
        call(Q, 2, [(0, ops[0][1], ops[0][2][:2], 15, 2)] + ops[1:], ce, y, coeffs)
    with pytest.raises(ValueError, match=r"ops\[1\] must be \(1, code, p1, p2\)"):
        call(Q, 2, [ops[0], (1, 5)] + ops[2:], ce, y, coeffs)
    with pytest.raises(ValueError, match="unknown activation code 9"):
        call(Q, 2, [ops[0], (1, 9, 0.0, 0.0)] + ops[2:], ce, y, coeffs)
    with pytest.raises(ValueError, match="unknown loss code 3"):
        call(Q, 2, ops, 3, y, coeffs)
    with pytest.raises(ValueError, match=r"labels must have shape \(20,\), got \(19,\)"):
        call(Q, 2, ops, ce, y[:-1], coeffs)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got 3 at 4"):
        call(Q, 2, ops, ce, np.where(np.arange(20) == 4, 3, y), coeffs)
    with pytest.raises(ValueError, match="class labels need the cross-entropy loss"):
        call(Q, 2, ops, ef.nn.LOSSES["mse"], y, coeffs)
    with pytest.raises(ValueError, match=r"targets must have shape \(3, 20\), got \(20, 3\)"):
        call(Q, 2, ops, ef.nn.LOSSES["mse"], np.zeros((20, 3)), coeffs)
    with pytest.raises(TypeError, match="coeffs must hold real numbers, got dtype complex128"):
        call(Q, 2, ops, ce, y, coeffs.astype(complex))
    with pytest.raises(TypeError, match=r"ops\[2\] W must hold real numbers, got dtype bool"):
        call(Q, 2, ops[:2] + [(0, ops[2][1] > 0, ops[2][2], 3, 15)] + ops[3:], ce, y, coeffs)
