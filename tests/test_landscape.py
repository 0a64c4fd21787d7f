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
