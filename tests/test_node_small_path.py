"""The Neural ODE small-network path (issue 9, item 4).

Backprop through a fixed-step method with a field made of Dense and activation layers no
wider than 16 runs on a tape of every stage's layer values (NeuralOde::window_gradient_small)
instead of recomputing the network in the reverse sweep. It must give the general sweep's
results bit for bit: the reference is ``gradient="checkpoint"``, which always takes the
general forward and reverse steps (and equals backprop bit for bit there).
"""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest

FIXED = ("euler", "midpoint", "heun", "rk4", "rk38")
ACTS = ("relu", "leaky_relu", "elu", "tanh", "atan", "sigmoid", "softplus", "identity")

Z0 = np.array([0.7, -0.4])
TARGET = np.array([0.1, 0.5])
T3 = np.array([0.0, 0.4, 0.9, 1.5])


def both_gradients(net, method, z0=Z0, target=TARGET, t=T3, **stepping):
    model = ef.NeuralODE(net, method, **stepping)
    small = model.loss_and_gradient(z0, target, t, gradient="backprop")
    general = model.loss_and_gradient(z0, target, t, gradient="checkpoint")
    return small, general


def assert_same_bits(small, general):
    assert small[0] == general[0]
    for gs, gg in zip(small[1], general[1], strict=True):
        np.testing.assert_array_equal(gs, gg)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("method", FIXED)
def test_small_path_equals_the_general_sweep_bit_for_bit(act, method):
    net = ef.mlp([2, 5, 2], act, seed=4)
    small, general = both_gradients(net, method, steps_per_interval=3)
    assert_same_bits(small, general)
    assert np.abs(small[1][0]).max() > 0  # a gradient that could have differed


@pytest.mark.parametrize("sizes", [[2, 2], [2, 16, 16, 2], [3, 7, 3], [1, 4, 1]])
@pytest.mark.parametrize("stepping", [{"steps_per_interval": 1}, {"step_size": 0.013}])
def test_small_path_widths_and_step_rules(sizes, stepping):
    d = sizes[0]
    rng = np.random.default_rng(sum(sizes))
    net = ef.mlp(sizes, "tanh", seed=1)
    small, general = both_gradients(net, "rk4", z0=rng.standard_normal(d),
                                    target=rng.standard_normal(d), **stepping)
    assert_same_bits(small, general)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("bias", [False, True])
def test_fixed_width_kernels_equal_the_general_sweep_on_many_random_windows(d, bias):
    # Dense layers of widths 1..4 run unrolled kernels; a contraction of their sums into
    # multiply-adds other than the general kernel's shows only on some inputs (an unrolled
    # forward once fused 0 of 3000 W1 windows differently in 41), so draw many
    rng = np.random.default_rng(10 * d + bias)
    t = np.array([0.0, 0.1])
    for h in range(1, 5):
        for trial in range(60):
            layers = [ef.Dense(d, h, bias=bias), ef.Activation("tanh"), ef.Dense(h, d, bias=bias)]
            net = ef.Sequential(layers) if trial % 2 else ef.Dense(d, d, bias=bias)
            for p in net.parameters():
                p[...] = rng.standard_normal(p.shape)
            small, general = both_gradients(net, "euler", z0=rng.standard_normal(d),
                                            target=rng.standard_normal(d), t=t,
                                            steps_per_interval=5)
            assert_same_bits(small, general)


@pytest.mark.parametrize("act", ACTS)
def test_euler_window_kernel_equals_the_general_sweep_for_every_activation(act):
    # Euler on d -> d or d -> h -> d with d, h <= 4 runs the whole window in one kernel
    # (small_euler_window) whose solver products must stay unfused like node.cpp's
    rng = np.random.default_rng(len(act))
    for d in range(1, 5):
        for h in range(1, 5):
            net = ef.Sequential([ef.Dense(d, h), ef.Activation(act), ef.Dense(h, d)])
            for p in net.parameters():
                p[...] = rng.standard_normal(p.shape)
            for _ in range(8):
                small, general = both_gradients(net, "euler", z0=rng.standard_normal(d),
                                                target=rng.standard_normal(d), t=T3,
                                                step_size=0.07)
                assert_same_bits(small, general)


def test_linear_field_without_bias_and_wider_nets_that_take_the_general_path():
    # W1's field, and a 17-wide hidden layer (beyond the small path: general both ways)
    for net in (ef.Dense(2, 2, bias=False, seed=3), ef.mlp([2, 17, 2], "relu", seed=2)):
        small, general = both_gradients(net, "euler", steps_per_interval=5)
        assert_same_bits(small, general)


@pytest.mark.parametrize("field", ["mlp", "linear", "mlp_tanh_bias_free"])
def test_w1_training_equals_checkpoint_training_bit_for_bit(field):
    # fit keeps the small path's view of the layers from window to window and epoch to
    # epoch; the checkpointed gradient resolves nothing ahead and takes the general sweep
    def make():
        if field == "mlp":
            return ef.mlp([2, 4, 2], "relu", seed=0)
        if field == "linear":
            return ef.Dense(2, 2, bias=False, seed=0)
        return ef.Sequential([ef.Dense(2, 3, bias=False, seed=1), ef.Activation("tanh"),
                              ef.Dense(3, 2, bias=False, seed=2)])

    t, data = ef.data.spiral_ode()
    runs = []
    for how in ("backprop", "checkpoint"):
        net = make()
        hist = ef.NeuralODE(net, "euler", steps_per_interval=5).fit(
            data, t, epochs=3, optimizer=ef.optim.SGD(1e-2, momentum=0.95), window=1,
            batch_size=1, seed=0, gradient=how)
        runs.append((np.asarray(hist.loss), [p.copy() for p in net.parameters()]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_finite_loss_leaves_the_gradient_untouched_like_the_general_path():
    net = ef.Dense(2, 2, bias=False, seed=0)
    for p in net.parameters():
        p[...] = 1e200
    small, general = both_gradients(net, "euler", steps_per_interval=4)
    assert not np.isfinite(small[0]) and not np.isfinite(general[0])
