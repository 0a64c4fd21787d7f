"""ef.Ensemble.fit for network members: mini-batch training of many networks in one
native call, members spread over threads; each member must end bit-identical to its own
``Module.fit`` whatever the thread count."""

import warnings

import eulerflow as ef
import numpy as np
import pytest
from eulerflow.ensemble import EnsembleDivergenceWarning


@pytest.fixture(scope="module")
def spiral():
    X, y = ef.data.spiral_classes(n_per_class=40, seed=0)
    return X, y


def regression_data(n=50, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] ** 2 - X[:, 0]])
    return X, Y


OPTIMIZERS = {
    "adam": lambda: ef.optim.Adam(1e-2),
    "sgd-momentum": lambda: ef.optim.SGD(5e-2, momentum=0.9),
    "nadam": lambda: ef.optim.Nadam(3e-3),
}


def separate_fit(make, i, lr, optimizer, X, Y, seed, **kw):
    net = make(i)
    opt = optimizer()
    opt.lr = lr
    hist = net.fit(X, Y, optimizer=opt, seed=seed, **kw)
    return net, hist


def assert_same_bits(a_params, b_params):
    for a, b in zip(a_params, b_params, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_classifier_members_equal_separate_fits(spiral, opt, threads):
    X, y = spiral
    make = lambda i: ef.mlp([2, 8, 8, 3], "tanh", seed=i)  # noqa: E731
    lrs = np.array([1e-3, 3e-3, 1e-2, 3e-2, 0.1])
    seeds = [0, 1, 2, 3, 4]
    ens = ef.Ensemble(make, 5)
    hist = ens.fit(X, y, loss="cross_entropy", optimizer=OPTIMIZERS[opt](), epochs=6,
                   batch_size=16, seed=seeds, lr=lrs, threads=threads)
    assert hist.loss.shape == (6, 5) and hist.metrics["accuracy"].shape == (6, 5)
    for i in range(5):
        net, h = separate_fit(make, i, lrs[i], OPTIMIZERS[opt], X, y, seeds[i],
                              loss="cross_entropy", epochs=6, batch_size=16)
        assert_same_bits(ens.members[i].parameters(), net.parameters())
        np.testing.assert_array_equal(hist.loss[:, i], h.loss)
        np.testing.assert_array_equal(hist.metrics["accuracy"][:, i], h.metrics["accuracy"])


@pytest.mark.parametrize("loss", ["mse", "half_se"])
@pytest.mark.parametrize("batch_size,shuffle", [(1, True), (7, True), (50, False), (64, True)])
def test_regression_members_equal_separate_fits(loss, batch_size, shuffle):
    X, Y = regression_data()
    make = lambda i: ef.mlp([3, 6, 2], "elu", seed=10 + i)  # noqa: E731
    ens = ef.Ensemble(make, 3)
    hist = ens.fit(X, Y, loss=loss, optimizer=ef.optim.Adam(5e-3), epochs=4,
                   batch_size=batch_size, shuffle=shuffle, seed=7, l1=1e-4, l2=1e-3)
    for i in range(3):
        net, h = separate_fit(make, i, 5e-3, lambda: ef.optim.Adam(5e-3), X, Y, 7, loss=loss,
                              epochs=4, batch_size=batch_size, shuffle=shuffle, l1=1e-4,
                              l2=1e-3)
        assert_same_bits(ens.members[i].parameters(), net.parameters())
        np.testing.assert_array_equal(hist.member(i).loss, h.loss)


def test_probability_targets_and_the_default_optimizer(spiral):
    X, y = spiral
    P = np.eye(3)[y] * 0.9 + 0.1 / 3
    make = lambda i: ef.mlp([2, 5, 3], "relu", seed=i)  # noqa: E731
    ens = ef.Ensemble(make, 4)
    ens.fit(X, P, loss="cross_entropy", epochs=3, seed=[5, 6, 7, 8])
    for i in range(4):
        net = make(i)
        net.fit(X, P, loss="cross_entropy", epochs=3, seed=5 + i)
        assert_same_bits(ens.members[i].parameters(), net.parameters())


def test_thread_count_does_not_change_bits(spiral):
    X, y = spiral
    results = []
    for threads in (1, 2, 5, 16):
        ens = ef.Ensemble(lambda i: ef.mlp([2, 6, 3], "atan", seed=i), 9)
        hist = ens.fit(X, y, loss="cross_entropy", epochs=3, lr=np.linspace(1e-3, 5e-2, 9),
                       seed=np.arange(9), threads=threads)
        results.append((hist.loss, [p.copy() for ps in ens.parameters() for p in ps]))
    for loss, params in results[1:]:
        np.testing.assert_array_equal(loss, results[0][0])
        assert_same_bits(params, results[0][1])


def test_a_diverging_member_stops_as_its_own_fit_and_is_named():
    X, Y = regression_data()
    make = lambda i: ef.mlp([3, 6, 2], "relu", seed=i)  # noqa: E731
    lrs = [1e-2, 1e6, 2e-2]
    ens = ef.Ensemble(make, 3)
    with pytest.warns(EnsembleDivergenceWarning, match=r"member 1 \(lr=1e\+06\)"):
        hist = ens.fit(X, Y, optimizer=ef.optim.SGD(1e-2), epochs=5, lr=lrs)
    assert list(hist.diverged) == [False, True, False]
    assert np.all(np.isnan(hist.loss[int(hist.bad_epoch[1]):, 1]))
    for i in (0, 2):
        net, h = separate_fit(make, i, lrs[i], lambda: ef.optim.SGD(1e-2), X, Y, 0, epochs=5)
        assert_same_bits(ens.members[i].parameters(), net.parameters())
        np.testing.assert_array_equal(hist.loss[:, i], h.loss)
    with pytest.raises(ef.DivergenceError):
        separate_fit(make, 1, lrs[1], lambda: ef.optim.SGD(1e-2), X, Y, 0, epochs=5)


def test_every_member_diverging_raises():
    X, Y = regression_data()
    ens = ef.Ensemble(lambda i: ef.mlp([3, 4, 2], "relu", seed=i), 2)
    with pytest.raises(ef.DivergenceError, match="every member"):
        ens.fit(X, Y, optimizer=ef.optim.SGD(1.0), epochs=3, lr=[1e7, 1e8])


def test_the_ensemble_learns_the_spiral(spiral):
    X, y = spiral
    ens = ef.Ensemble(lambda i: ef.mlp([2, 16, 16, 3], "tanh", seed=i), 4)
    hist = ens.fit(X, y, loss="cross_entropy", optimizer=ef.optim.Adam(1e-2), epochs=300,
                   batch_size=len(y))
    assert np.all(hist.metrics["accuracy"][-1] > 0.9)
    assert np.all(hist.loss[-1] < 0.5 * hist.loss[0])


def test_bad_input_is_refused_clearly(spiral):
    X, y = spiral
    ens = ef.Ensemble(lambda i: ef.mlp([2, 4, 3], seed=i), 3)
    with pytest.raises(ValueError, match=r"lr .*one per member \(3\)"):
        ens.fit(X, y, loss="cross_entropy", lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="lr must be non-negative"):
        ens.fit(X, y, loss="cross_entropy", lr=[0.1, -0.2, 0.1])
    with pytest.raises(ValueError, match="threads"):
        ens.fit(X, y, loss="cross_entropy", threads=0)
    with pytest.raises(ValueError, match=r"X has 3 features but the network expects 2"):
        ens.fit(np.zeros((5, 3)), y[:5], loss="cross_entropy")
    with pytest.raises(ValueError, match="X has 120 rows but Y has 5"):
        ens.fit(X, y[:5], loss="cross_entropy")
    with pytest.raises(ValueError, match="loss must be one of"):
        ens.fit(X, y, loss="hinge")
    with pytest.raises(ValueError, match=r"seed .*one per member"):
        ens.fit(X, y, loss="cross_entropy", seed=[1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ens.fit(X, y, loss="cross_entropy", epochs=1)  # a healthy run warns about nothing
