"""The ensemble's one-kernel Euler window (small_euler_window_lanes).

An Euler fit of an ensemble whose field is one Dense layer d -> d, or Dense d -> h, an
activation and Dense h -> d, with d and h in 1..4, runs each window (forward steps, MSE
loss, backward) for four members at a time in registers. Every member must still go
through its separate fit's arithmetic: the references are the general lanes sweep
(``_core._set_lanes_euler_window(False)``), which runs the per-layer kernels, and the
members' separate ``NeuralODE.fit`` calls; both are compared bit for bit, so a change of
the kernel's rounding (a contraction into a multiply-add, another order of a sum) fails.
"""

from __future__ import annotations

import contextlib

import eulerflow as ef
import numpy as np
import pytest
from conftest import ACTIVATIONS, act_id
from eulerflow import _core


@contextlib.contextmanager
def kernel_runs(monkeypatch, expected: bool):
    """Checks that every ensemble fit inside took (or did not take) the kernel."""
    seen = []
    fit = _core.node_ensemble_fit

    def spy(*args, **kwargs):
        out = fit(*args, **kwargs)
        seen.append(out[3])
        return out

    monkeypatch.setattr(_core, "node_ensemble_fit", spy)
    yield
    monkeypatch.setattr(_core, "node_ensemble_fit", fit)
    assert seen and all(s == expected for s in seen), seen


@contextlib.contextmanager
def general_sweep():
    _core._set_lanes_euler_window(False)
    try:
        yield
    finally:
        _core._set_lanes_euler_window(True)


def field_maker(d, hidden, act, bias):
    """make(i): member i's field, its parameters drawn from its own seed."""

    def make(i):
        if hidden == 0:
            net = ef.Dense(d, d, bias=bias)
        else:
            name, kw = act
            net = ef.Sequential([ef.Dense(d, hidden, bias=bias), ef.Activation(name, **kw),
                                 ef.Dense(hidden, d, bias=bias)])
        rng = np.random.default_rng(1000 * d + 100 * hidden + 10 * bias + i)
        for p in net.parameters():
            p[...] = 0.7 * rng.standard_normal(p.shape)
        return net

    return make


def problem(d, T=9, seed=0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.05, 0.15, T))  # uneven intervals: the step sizes differ
    data = rng.standard_normal((T, d)) * 0.5
    return data, t


def fit_ensemble(make_field, n, data, t, lrs, seeds, stepping, **kw):
    ens = ef.Ensemble(lambda i: ef.NeuralODE(make_field(i), "euler", **stepping), n)
    hist = ens.fit(data, t, optimizer=ef.optim.SGD(1e-2, momentum=0.9), lr=lrs, seed=seeds, **kw)
    return hist.loss, [[p.copy() for p in m.field.parameters()] for m in ens.members]


def assert_same_bits(a, b):
    (loss_a, params_a), (loss_b, params_b) = a, b
    np.testing.assert_array_equal(loss_a, loss_b)
    for pa, pb in zip(params_a, params_b, strict=True):
        for x, y in zip(pa, pb, strict=True):
            np.testing.assert_array_equal(x, y)


def kernel_and_general(monkeypatch, make_field, n, data, t, stepping, **kw):
    lrs = np.geomspace(3e-3, 3e-2, n)
    seeds = [3 * i + 1 for i in range(n)]
    with kernel_runs(monkeypatch, True):
        fast = fit_ensemble(make_field, n, data, t, lrs, seeds, stepping, **kw)
    with general_sweep(), kernel_runs(monkeypatch, False):
        general = fit_ensemble(make_field, n, data, t, lrs, seeds, stepping, **kw)
    return fast, general, lrs, seeds


def separate_fits(make_field, n, data, t, lrs, seeds, stepping, **kw):
    losses, params = [], []
    for i in range(n):
        net = make_field(i)
        hist = ef.NeuralODE(net, "euler", **stepping).fit(
            data, t, optimizer=ef.optim.SGD(lrs[i], momentum=0.9), seed=seeds[i], **kw)
        losses.append(hist.loss)
        params.append([p.copy() for p in net.parameters()])
    return np.stack(losses, axis=1), params


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_linear_fields_every_width(monkeypatch, d, bias):
    data, t = problem(d)
    make = field_maker(d, 0, None, bias)
    stepping = {"steps_per_interval": 3}
    fast, general, lrs, seeds = kernel_and_general(monkeypatch, make, 5, data, t, stepping,
                                                   epochs=3)
    assert_same_bits(fast, general)
    assert_same_bits(fast, separate_fits(make, 5, data, t, lrs, seeds, stepping, epochs=3))


@pytest.mark.parametrize("act", ACTIVATIONS, ids=act_id)
@pytest.mark.parametrize("bias", [False, True])
def test_every_activation_and_width(monkeypatch, act, bias):
    for d in range(1, 5):
        data, t = problem(d, seed=d)
        for hidden in range(1, 5):
            make = field_maker(d, hidden, act, bias)
            stepping = {"steps_per_interval": 2}
            fast, general, lrs, seeds = kernel_and_general(monkeypatch, make, 5, data, t,
                                                           stepping, epochs=2)
            assert_same_bits(fast, general)
            assert np.all(np.isfinite(fast[0]))
    # and against the separate fits, for one shape
    sep = separate_fits(make, 5, data, t, lrs, seeds, stepping, epochs=2)
    assert_same_bits(fast, sep)


@pytest.mark.parametrize("n", [1, 3, 4, 8, 9])
def test_member_counts_full_and_partial_groups(monkeypatch, n):
    data, t = problem(2, T=12, seed=n)
    make = field_maker(2, 3, ("tanh", {}), True)
    stepping = {"steps_per_interval": 5}
    fast, general, lrs, seeds = kernel_and_general(monkeypatch, make, n, data, t, stepping,
                                                   epochs=3)
    assert_same_bits(fast, general)
    assert_same_bits(fast, separate_fits(make, n, data, t, lrs, seeds, stepping, epochs=3))


@pytest.mark.parametrize("kw", [{"window": 3, "batch_size": 4}, {"window": 2, "batch_size": 1},
                                {"window": 1, "batch_size": 5}])
def test_windows_of_several_intervals_and_batches(monkeypatch, kw):
    data, t = problem(3, T=15, seed=7)
    make = field_maker(3, 2, ("elu", {}), True)
    stepping = {"steps_per_interval": 2}
    fast, general, lrs, seeds = kernel_and_general(monkeypatch, make, 6, data, t, stepping,
                                                   epochs=3, **kw)
    assert_same_bits(fast, general)
    assert_same_bits(fast, separate_fits(make, 6, data, t, lrs, seeds, stepping, epochs=3,
                                         **kw))


@pytest.mark.parametrize("stepping", [{"step_size": 0.1}, {}])
def test_step_size_and_one_step_per_interval(monkeypatch, stepping):
    t = np.linspace(0.0, 3.0, 13)  # every interval takes the same number of steps
    data = np.random.default_rng(3).standard_normal((13, 2)) * 0.5
    make = field_maker(2, 4, ("softplus", {}), False)
    fast, general, lrs, seeds = kernel_and_general(monkeypatch, make, 5, data, t, stepping,
                                                   epochs=2)
    assert_same_bits(fast, general)
    assert_same_bits(fast, separate_fits(make, 5, data, t, lrs, seeds, stepping, epochs=2))


def test_step_sizes_of_long_runs_computed_window_by_window(monkeypatch):
    # more than 2**20 step sizes: the ensemble computes each window's as it comes
    # instead of keeping the table (as NeuralODE.fit does)
    t = np.linspace(0.0, 2.0, 1100)
    data = np.c_[np.cos(t), np.sin(t)] * 0.5
    make = field_maker(2, 0, None, False)
    stepping = {"steps_per_interval": 1000}
    fast, general, lrs, seeds = kernel_and_general(monkeypatch, make, 2, data, t, stepping,
                                                   epochs=1)
    assert_same_bits(fast, general)
    assert_same_bits(fast, separate_fits(make, 2, data, t, lrs, seeds, stepping, epochs=1))


def test_a_diverging_member_is_frozen_as_in_the_general_sweep(monkeypatch):
    data, t = problem(2, T=12, seed=11)
    make = field_maker(2, 2, ("relu", {}), True)
    lrs = [1e-2, 80.0, 5e-3, 2e-2, 1e-3]
    runs = []
    for kernel in (True, False):
        with contextlib.ExitStack() as stack:
            if not kernel:
                stack.enter_context(general_sweep())
            stack.enter_context(kernel_runs(monkeypatch, kernel))
            stack.enter_context(pytest.warns(ef.ensemble.EnsembleDivergenceWarning))
            runs.append(fit_ensemble(make, 5, data, t, lrs, [5] * 5, {"steps_per_interval": 3},
                                     epochs=6))
    assert np.isnan(runs[0][0][-1, 1]) and np.all(np.isfinite(runs[0][0][:, [0, 2, 3, 4]]))
    assert_same_bits(runs[0], runs[1])


def test_other_methods_and_shapes_take_the_general_sweep(monkeypatch):
    data, t = problem(2, T=8)
    for method, net in (("heun", lambda i: ef.Dense(2, 2, seed=i)),  # two stages
                        ("euler", lambda i: ef.mlp([2, 5, 2], "tanh", seed=i)),  # hidden 5
                        ("euler", lambda i: ef.mlp([2, 3, 3, 2], "tanh", seed=i))):  # 3 Dense
        with kernel_runs(monkeypatch, False):
            ef.Ensemble(lambda i, net=net, method=method: ef.NeuralODE(
                net(i), method, steps_per_interval=2), 3).fit(data, t, epochs=1)


def test_the_w1_setting():
    """Seed 002's LinearODE (W1): the kernel's shape, equal to the separate fits."""
    t, data = ef.data.spiral_ode()
    make = field_maker(2, 0, None, False)
    lrs, seeds = np.geomspace(2e-3, 2e-2, 7), [0] * 7
    stepping = {"steps_per_interval": 5}
    fast = fit_ensemble(make, 7, data, t, lrs, seeds, stepping, epochs=2)
    assert_same_bits(fast, separate_fits(make, 7, data, t, lrs, seeds, stepping, epochs=2))
