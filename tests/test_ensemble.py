"""ef.Ensemble: N Neural ODEs trained in one native call, one per SIMD lane; each
member must end bit-identical to its own separate fit."""

import warnings

import eulerflow as ef
import numpy as np
import pytest
from eulerflow.ensemble import EnsembleDivergenceWarning

A = np.array([[-0.1, -1.0], [1.0, -0.1]])


@pytest.fixture(scope="module")
def spiral():
    t = np.linspace(0.0, 10.0, 30)
    data = ef.odeint(ef.fields.Linear(A), np.array([0.6, 0.3]), t, method="rk4", step_size=0.01)
    return data, t


FIELDS = {
    "linear": lambda i: ef.Dense(2, 2, bias=False, seed=i),
    "affine": lambda i: ef.Dense(2, 2, seed=i),
    "relu": lambda i: ef.mlp([2, 4, 2], activation="relu", seed=i),
    "tanh": lambda i: ef.mlp([2, 5, 3, 2], activation="tanh", seed=i),
}
OPTIMIZERS = {
    "sgd-momentum": lambda: ef.optim.SGD(1e-2, momentum=0.95),
    "sgd-nesterov": lambda: ef.optim.SGD(1e-2, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd": lambda: ef.optim.SGD(1e-2),
    "adam": lambda: ef.optim.Adam(1e-2),
    "nadam": lambda: ef.optim.Nadam(2e-3),
}


def _separate(make, i, lr, optimizer, data, t, **kw):
    model = make(i)
    opt = optimizer()
    opt.lr = lr
    hist = model.fit(data, t, optimizer=opt, **kw)
    return model, hist


def _assert_members_equal_separate(ens, hist, make, optimizer, data, t, lrs, seeds, **kw):
    for i in range(len(ens)):
        model, sep = _separate(make, i, lrs[i], optimizer, data, t, seed=seeds[i], **kw)
        np.testing.assert_array_equal(hist.loss[:, i], sep.loss, err_msg=f"member {i} losses")
        for p, q in zip(ens.members[i].field.parameters(), model.field.parameters(), strict=True):
            np.testing.assert_array_equal(p, q, err_msg=f"member {i} parameters")


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_members_are_bit_identical_to_separate_fits(spiral, method, field, opt):
    data, t = spiral
    n = 5  # not a multiple of the SIMD width: a partial vector of lanes
    lrs = np.geomspace(2e-3, 2e-2, n)
    seeds = [7 * i + 1 for i in range(n)]

    def make(i):
        return ef.NeuralODE(FIELDS[field](i), method=method, steps_per_interval=2)

    ens = ef.Ensemble(make, n)
    kw = dict(epochs=3, window=2, batch_size=3)
    hist = ens.fit(data, t, optimizer=OPTIMIZERS[opt](), lr=lrs, seed=seeds, **kw)
    assert hist.loss.shape == (3, n)
    _assert_members_equal_separate(ens, hist, make, OPTIMIZERS[opt], data, t, lrs, seeds, **kw)


@pytest.mark.parametrize("n", [1, 4, 9, 17])
def test_any_member_count_and_the_w1_setting(spiral, n):
    """Seed 002's LinearODE: Euler with 5 steps per interval, windows of one interval,
    SGD lr=1e-2 momentum 0.95, one window per step; the same seed for every member."""
    data, t = spiral

    def make(i):
        return ef.NeuralODE(ef.Dense(2, 2, bias=False, seed=100 + i), steps_per_interval=5)

    ens = ef.Ensemble(make, n)
    hist = ens.fit(data, t, epochs=4, seed=3)
    lrs = np.full(n, 1e-2)
    _assert_members_equal_separate(ens, hist, make, OPTIMIZERS["sgd-momentum"], data, t, lrs,
                                   [3] * n, epochs=4)


def test_step_size_on_a_uniform_grid_and_one_step_per_interval(spiral):
    data, t = spiral
    for kwargs in ({"step_size": 0.1}, {}):
        def make(i, kwargs=kwargs):
            return ef.NeuralODE(ef.mlp([2, 3, 2], "tanh", seed=i), method="heun", **kwargs)

        ens = ef.Ensemble(make, 3)
        hist = ens.fit(data, t, epochs=2, seed=[1, 2, 3], lr=[1e-3, 2e-3, 3e-3])
        _assert_members_equal_separate(ens, hist, make, OPTIMIZERS["sgd-momentum"], data, t,
                                       [1e-3, 2e-3, 3e-3], [1, 2, 3], epochs=2)


def test_the_ensemble_learns_the_spiral_matrix(spiral):
    data, t = spiral
    ens = ef.Ensemble(lambda i: ef.NeuralODE(ef.Dense(2, 2, bias=False, seed=i),
                                             steps_per_interval=5), 4)
    hist = ens.fit(data, t, epochs=300, lr=[2e-3, 5e-3, 1e-2, 2e-2], seed=0)
    assert np.all(hist.loss[-1] < 1e-3 * hist.loss[0])
    for m in ens.members:  # the Euler bias of seed 002 stays small with 5 steps
        np.testing.assert_allclose(m.field.W, A, atol=0.05)


def test_a_diverging_member_is_frozen_and_named(spiral):
    data, t = spiral
    lrs = [1e-2, 50.0, 5e-3]

    def make(i):
        return ef.NeuralODE(ef.Dense(2, 2, seed=i), steps_per_interval=2)

    ens = ef.Ensemble(make, 3)
    with pytest.warns(EnsembleDivergenceWarning, match=r"member 1 \(lr=50\)"):
        hist = ens.fit(data, t, epochs=3, lr=lrs, seed=5)
    assert list(hist.diverged) == [False, True, False]
    assert np.all(np.isnan(hist.loss[hist.bad_epoch[1]:, 1]))
    # the healthy members are untouched by it
    for i in (0, 2):
        model, sep = _separate(make, i, lrs[i], OPTIMIZERS["sgd-momentum"], data, t, seed=5,
                               epochs=3)
        np.testing.assert_array_equal(hist.loss[:, i], sep.loss)
    # the diverged member stops where its separate fit raises, with the same weights
    model = make(1)
    with pytest.raises(ef.DivergenceError) as info:
        model.fit(data, t, epochs=3, optimizer=ef.optim.SGD(50.0, momentum=0.95), seed=5)
    assert info.value.epoch == hist.bad_epoch[1]
    np.testing.assert_array_equal(hist.member(1).loss, info.value.history.loss)
    for p, q in zip(ens.members[1].field.parameters(), model.field.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_every_member_diverging_raises(spiral):
    data, t = spiral
    ens = ef.Ensemble(lambda i: ef.NeuralODE(ef.Dense(2, 2, seed=i)), 2)
    with pytest.raises(ef.DivergenceError, match="every member"):
        ens.fit(data, t, epochs=5, lr=[1e3, 1e4])


def test_callbacks_see_every_members_loss_and_can_stop(spiral):
    data, t = spiral
    seen = []

    def cb(epoch, losses):
        seen.append((epoch, losses.copy()))
        return epoch == 1

    ens = ef.Ensemble(lambda i: ef.NeuralODE(ef.Dense(2, 2, seed=i)), 3)
    hist = ens.fit(data, t, epochs=10, callbacks=[cb])
    assert hist.loss.shape == (2, 3)
    assert [e for e, _ in seen] == [0, 1]
    np.testing.assert_array_equal(seen[1][1], hist.loss[1])


def test_bad_input_is_refused_clearly(spiral):
    data, t = spiral
    with pytest.raises(TypeError, match="make"):
        ef.Ensemble(3, 2)
    with pytest.raises(TypeError, match="NeuralODE models or eulerflow networks"):
        ef.Ensemble(lambda i: "a model", 2)
    with pytest.raises(TypeError, match="not a NeuralODE"):
        ef.Ensemble(lambda i: ef.NeuralODE(ef.Dense(2, 2)) if i == 0 else ef.Dense(2, 2), 2)
    with pytest.raises(TypeError, match="float64"):
        ef.Ensemble(lambda i: ef.Dense(2, 2, dtype=np.float32), 2)
    with pytest.raises(ValueError, match="the same model for two members"):
        net = ef.Dense(2, 2)
        ef.Ensemble(lambda i: net, 2)
    with pytest.raises(TypeError, match="NeuralODE members train with fit"):
        ef.Ensemble(lambda i: ef.NeuralODE(ef.Dense(2, 2)), 2).learn((data, data), 0.1)
    with pytest.raises(ValueError, match="differs from member 0"):
        ef.Ensemble(lambda i: ef.NeuralODE(ef.mlp([2, 3 + i, 2])), 2)
    with pytest.raises(ValueError, match="fixed-step"):
        ef.Ensemble(lambda i: ef.NeuralODE(ef.Dense(2, 2), method="dopri5"), 2)
    with pytest.raises(ValueError, match="Dense and Activation"):
        ef.Ensemble(lambda i: ef.NeuralODE(ef.Sequential([ef.Residual(ef.Dense(2, 2))])), 2)
    with pytest.raises(ValueError, match="n"):
        ef.Ensemble(lambda i: ef.NeuralODE(ef.Dense(2, 2)), 0)
    ens = ef.Ensemble(lambda: ef.NeuralODE(ef.Dense(2, 2)), 3)
    with pytest.raises(ValueError, match=r"lr .*one per member \(3\).*shape \(2,\)"):
        ens.fit(data, t, epochs=1, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="lr must be positive"):
        ens.fit(data, t, epochs=1, lr=[0.1, -0.2, 0.1])
    with pytest.raises(ValueError, match=r"data must have shape .* = \(30, 2\), got \(30, 1\)"):
        ens.fit(data[:, :1], t, epochs=1)
    with pytest.raises(ValueError, match="window"):
        ens.fit(data, t, epochs=1, window=30)
    uneven = np.concatenate([np.linspace(0, 1, 5), [1.25, 2.0]])
    ens2 = ef.Ensemble(lambda: ef.NeuralODE(ef.Dense(2, 2), step_size=0.25), 2)
    with pytest.raises(ValueError, match="steps_per_interval"):
        ens2.fit(np.zeros((uneven.size, 2)), uneven, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ens.fit(data, t, epochs=1)  # a healthy run warns about nothing


NETS = {
    "dense": lambda i: ef.Dense(3, 2, seed=i),
    "tanh": lambda i: ef.mlp([3, 5, 2], "tanh", seed=i),
    "elu-deep": lambda i: ef.mlp([3, 6, 4, 2], "elu", seed=i),
    "relu-nobias": lambda i: ef.Sequential([ef.Dense(3, 4, bias=False, seed=i),
                                            ef.Activation("relu"), ef.Dense(4, 2, seed=i + 50)]),
}


@pytest.mark.parametrize("arch", list(NETS))
def test_online_learning_members_are_bit_identical_to_separate_learn(arch):
    """Seed 001's online learning at 9 rates in one call; the largest rates diverge,
    each at the fact where its own learn raises, with the same weights."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 3))
    Y = np.c_[X[:, 1] - X[:, 0], np.tanh(X[:, 2])]
    lrs = np.geomspace(1e-3, 5.0, 9)
    ens = ef.Ensemble(NETS[arch], 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EnsembleDivergenceWarning)
        hist = ens.learn((X, Y), lrs)
    assert hist.loss.shape == (150, 9)
    for i in range(9):
        net = NETS[arch](i)
        try:
            losses = net.learn((X, Y), lrs[i])
            np.testing.assert_array_equal(hist.loss[:, i], losses)
            assert hist.bad_epoch[i] == -1
        except ef.DivergenceError as exc:
            assert hist.bad_epoch[i] == exc.batch
            assert np.all(np.isnan(hist.loss[exc.batch + 1:, i]))
        for p, q in zip(ens.members[i].parameters(), net.parameters(), strict=True):
            np.testing.assert_array_equal(p, q)


def test_the_learning_bench_sweep_runs_as_one_ensemble_with_the_same_potentials():
    net = ef.Sequential([ef.Dense(2, 3, seed=0), ef.Activation("elu"), ef.Dense(3, 2, seed=1)])
    bench = ef.bench.LearningBench(net, lambda v: v[::-1], seed=3)
    lrs = np.geomspace(1e-3, 300.0, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        swept = bench.sweep_lr(lrs, n=80)
        singles = [bench.learning_potential(80, lr) for lr in lrs]
    np.testing.assert_array_equal(swept.potential, singles)
    assert swept.diverged.any() and not swept.diverged.all()
