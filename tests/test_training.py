"""Training end to end: the seed problems are learned, learn() and callbacks behave."""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest
from conftest import assert_all_close, assert_close, build_pair
from reference import nn_reference as ref


def test_xor_is_learned():
    X, Y = ef.data.xor()
    net = ef.mlp([2, 8, 1], "tanh", seed=0)
    hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.Adam(lr=0.05), epochs=2000,
                   batch_size=4, shuffle=False)
    assert isinstance(hist, ef.History)
    assert hist.loss.shape == (2000,)
    out = net(X)
    assert np.mean((out - Y) ** 2) < 1e-3
    assert hist.loss[-1] < 1e-3
    np.testing.assert_array_equal(np.round(out), Y)
    assert hist.loss[0] > 0.05  # it did start from a net that did not know XOR


def test_spiral_classes_seed_004_reaches_95_percent():
    X, y = ef.data.spiral_classes(100, 3, 0.2, seed=0)
    net = ef.mlp([2, 15, 3], "atan", seed=0)
    hist = net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(1.0), epochs=3000,
                   batch_size=300, shuffle=False)
    accuracy = np.mean(np.argmax(net(X), axis=1) == y)
    assert accuracy > 0.95
    assert hist.metrics["accuracy"].shape == (3000,)
    assert hist.metrics["accuracy"][0] < 0.7 and hist.metrics["accuracy"][-1] > 0.95
    assert hist.loss[-1] < 0.5 * hist.loss[0]


def test_full_batch_epoch_accuracy_is_that_of_the_pre_step_outputs():
    X, y = ef.data.spiral_classes(20, 3, 0.2, seed=2)
    net = ef.mlp([2, 6, 3], "tanh", seed=1)
    before = np.mean(np.argmax(net(X), axis=1) == y)
    hist = net.fit(X, y, loss="cross_entropy", optimizer=ef.optim.SGD(0.5), epochs=1,
                   batch_size=60, shuffle=False)
    assert hist.metrics["accuracy"][0] == pytest.approx(before, abs=1e-15)


def test_learn_matches_reference_online_loop():
    spec = [("dense", 3, 4), ("act", "sigmoid", {}), ("dense", 4, 2)]
    net, rnet = build_pair(ef, spec, seed=1)
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    facts = [(X[i], Y[i]) for i in range(6)]
    losses = net.learn(facts, 0.3)
    expected = ref.learn(rnet, facts, 0.3)
    assert isinstance(losses, np.ndarray) and losses.dtype == np.float64
    assert losses.shape == (6,)
    assert_close(losses, expected)
    assert_all_close(net.parameters(), rnet.parameters())


def test_learn_accepts_arrays_and_iterators_alike():
    spec = [("dense", 2, 3), ("act", "tanh", {}), ("dense", 3, 1)]
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((5, 2)), rng.standard_normal((5, 1))
    a, rnet = build_pair(ef, spec, seed=4)
    b, _ = build_pair(ef, spec, seed=4)
    la = a.learn((X, Y), 0.1)
    lb = b.learn(((x, t) for x, t in zip(X, Y, strict=True)), 0.1)
    assert_close(la, ref.learn(rnet, zip(X, Y, strict=True), 0.1))
    np.testing.assert_array_equal(la, lb)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_learn_losses_decrease_on_a_repeated_fact():
    net = ef.mlp([2, 4, 1], "tanh", seed=0)
    x, t = np.array([0.3, -0.2]), np.array([0.7])
    losses = net.learn([(x, t)] * 20, 0.2)
    assert np.all(np.diff(losses) < 0)
    y = net(x)
    assert 0.5 * np.sum((y - t) ** 2) < losses[-1]


def test_callbacks_see_every_epoch_and_can_stop():
    X, Y = ef.data.xor()
    seen = []

    def cb(epoch, loss):
        seen.append((epoch, loss))
        return epoch == 2

    net = ef.mlp([2, 4, 1], "tanh", seed=0)
    hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1), epochs=10, batch_size=2,
                   shuffle=False, callbacks=[cb])
    assert [e for e, _ in seen] == [0, 1, 2]
    assert hist.loss.shape == (3,)
    np.testing.assert_array_equal([v for _, v in seen], hist.loss)
    # the stopped run equals a 3-epoch run
    other = ef.mlp([2, 4, 1], "tanh", seed=0)
    other.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1), epochs=3, batch_size=2,
              shuffle=False)
    for p, q in zip(net.parameters(), other.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_callback_returning_none_does_not_stop():
    X, Y = ef.data.xor()
    calls = []
    net = ef.mlp([2, 4, 1], "tanh", seed=0)
    hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1), epochs=4, batch_size=4,
                   callbacks=(lambda e, v: calls.append(e),))
    assert calls == [0, 1, 2, 3] and hist.loss.shape == (4,)


def test_callback_exception_propagates():
    X, Y = ef.data.xor()

    def cb(epoch, loss):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        ef.mlp([2, 4, 1], seed=0).fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1),
                                      epochs=3, callbacks=[cb])


def test_huge_learning_rate_raises_divergence_error_naming_the_epoch():
    X, Y = ef.data.xor()
    net = ef.mlp([2, 8, 1], "relu", seed=0)
    with pytest.raises(ef.DivergenceError, match="epoch") as info:
        net.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(1e30), epochs=50, batch_size=1,
                shuffle=False)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, FloatingPointError)
    message = str(info.value)
    assert "lr" in message or "learning rate" in message


def test_parameter_arrays_obtained_before_fit_see_the_trained_values():
    X, Y = ef.data.xor()
    net = ef.mlp([2, 4, 1], "tanh", seed=0)
    params = net.parameters()
    before = [p.copy() for p in params]
    net.fit(X, Y, loss="mse", optimizer=ef.optim.Adam(lr=0.1), epochs=5, batch_size=4)
    for p, q, b in zip(params, net.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)
        assert not np.array_equal(p, b)


def test_shuffled_epoch_visits_every_sample_once():
    """With parameters that do not move, the mean of equal-sized batch losses is the loss
    of the whole data set (lr = 1e-300 moves no parameter by an ulp; lr = 0 is refused)."""
    spec = [("dense", 3, 4), ("act", "tanh", {}), ("dense", 4, 2)]
    net, rnet = build_pair(ef, spec, seed=5)
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
    hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(1e-300), epochs=3, batch_size=4,
                   shuffle=True, seed=3)
    full, _, _ = ref.batch_loss(rnet, X, Y, "mse")
    assert_close(hist.loss, [full] * 3, rtol=1e-13)


def test_shuffled_full_batch_equals_unshuffled_full_batch():
    spec = [("dense", 3, 4), ("act", "elu", {}), ("dense", 4, 2)]
    a, rnet = build_pair(ef, spec, seed=7)
    b, _ = build_pair(ef, spec, seed=7)
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    ha = a.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1), epochs=3, batch_size=10,
               shuffle=True, seed=1)
    hb = b.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1), epochs=3, batch_size=10,
               shuffle=False)
    assert_close(ha.loss, hb.loss)
    assert_all_close(a.parameters(), b.parameters())


def test_history_plot_draws_the_loss():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, Y = ef.data.xor()
    hist = ef.mlp([2, 4, 1], seed=0).fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1),
                                          epochs=5, batch_size=4)
    fig, ax = plt.subplots()
    try:
        out = hist.plot(ax=ax)
        assert out is ax
        ys = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
        assert any(y.shape == hist.loss.shape and np.allclose(y, hist.loss) for y in ys)
    finally:
        plt.close(fig)


def test_fit_through_a_python_map_layer_matches_reference():
    spec = [("dense", 2, 4), ("map", np.sin, np.cos), ("dense", 4, 1)]
    net, rnet = build_pair(ef, spec, seed=9)
    rng = np.random.default_rng(10)
    X, Y = rng.standard_normal((11, 2)), rng.standard_normal((11, 1))
    hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.Adam(0.01), epochs=3, batch_size=4,
                   shuffle=False)
    expected = ref.fit(rnet, X, Y, "mse", ref.Adam(0.01), epochs=3, batch_size=4)
    assert_close(hist.loss, expected["loss"])
    assert_all_close(net.parameters(), rnet.parameters())


def test_exception_in_a_map_function_propagates():
    def fun(u):
        raise ZeroDivisionError("inside map")

    net = ef.Sequential([ef.Dense(2, 2, seed=0), ef.Map(fun, np.cos)])
    with pytest.raises(ZeroDivisionError, match="inside map"):
        net(np.ones((3, 2)))
    X, Y = np.ones((3, 2)), np.ones((3, 2))
    with pytest.raises(ZeroDivisionError, match="inside map"):
        net.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1), epochs=1)


def test_map_returning_the_wrong_shape_is_refused():
    net = ef.Sequential([ef.Dense(2, 2, seed=0), ef.Map(lambda u: u[:, :1], np.cos)])
    with pytest.raises(ValueError, match="(?i)map|shape"):
        net(np.ones((3, 2)))


def test_concurrent_fits_in_python_threads_equal_sequential_fits():
    import threading

    rng = np.random.default_rng(11)
    X, Y = rng.standard_normal((300, 3)), rng.standard_normal((300, 2))

    def run(seed, out):
        net = ef.mlp([3, 16, 16, 2], "tanh", seed=seed)
        hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.Nadam(0.01), epochs=20,
                       batch_size=32, shuffle=True, seed=seed)
        out[seed] = (hist.loss, [p.copy() for p in net.parameters()])

    sequential, concurrent = {}, {}
    for s in range(4):
        run(s, sequential)
    threads = [threading.Thread(target=run, args=(s, concurrent)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in range(4):
        np.testing.assert_array_equal(concurrent[s][0], sequential[s][0])
        for p, q in zip(concurrent[s][1], sequential[s][1], strict=True):
            np.testing.assert_array_equal(p, q)


def test_callback_can_evaluate_the_network_being_trained():
    """A callback sees the parameters after its epoch and may run the network on them
    (validation metrics, snapshots of hidden states), as Keras callbacks do."""
    X, Y = ef.data.xor()
    net = ef.mlp([2, 4, 1], "tanh", seed=0)
    seen = []

    def cb(epoch, loss):
        W0, b0, W1, b1 = (p.copy() for p in net.parameters())
        seen.append((net(X).copy(), np.tanh(X @ W0.T + b0) @ W1.T + b1))

    net.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.5), epochs=3, batch_size=2,
            shuffle=False, callbacks=[cb])
    assert len(seen) == 3
    for got, expected in seen:
        assert_close(got, expected)
    assert not np.allclose(seen[0][0], seen[-1][0])


def test_parameters_written_by_a_callback_are_used_by_the_next_epoch():
    X, Y = ef.data.xor()
    net = ef.mlp([2, 4, 1], "tanh", seed=0)

    def cb(epoch, loss):
        if epoch == 0:
            for p in net.parameters():
                p[...] = 0.01

    net.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1), epochs=2, batch_size=4,
            shuffle=False, callbacks=[cb])
    other = ef.mlp([2, 4, 1], "tanh", seed=0)
    for p in other.parameters():
        p[...] = 0.01
    other.fit(X, Y, loss="mse", optimizer=ef.optim.SGD(0.1), epochs=1, batch_size=4,
              shuffle=False)
    for p, q in zip(net.parameters(), other.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def _batch_recorder():
    """A network that outputs its input and records the rows of every batch it sees."""
    seen = []

    def fun(u):
        seen.append(np.array(u[:, 0], copy=True))
        return np.array(u, copy=True)

    d = ef.Dense(2, 2, seed=0)
    d.W[...] = np.eye(2)
    d.b[...] = 0.0
    return ef.Sequential([d, ef.Map(fun, np.ones_like)]), seen


def _fit_and_record(shuffle, seed=0, n=10, batch_size=4, epochs=3):
    net, seen = _batch_recorder()
    X = np.stack([np.arange(n, dtype=float), -np.arange(n, dtype=float)], axis=1)
    # lr = 1e-300 keeps W = I and b = 0 to the last bit, so the map sees the rows of X
    net.fit(X, X + 1.0, loss="mse", optimizer=ef.optim.SGD(1e-300), epochs=epochs,
            batch_size=batch_size, shuffle=shuffle, seed=seed)
    return [b.astype(int).tolist() for b in seen]


def test_unshuffled_batches_are_consecutive_slices():
    batches = _fit_and_record(shuffle=False)
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] * 3


def test_shuffled_batches_are_slices_of_a_fresh_permutation_each_epoch():
    batches = _fit_and_record(shuffle=True, seed=5)
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    epochs = [sum(batches[3 * e:3 * e + 3], []) for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(10))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2]
    assert epochs[0] != list(range(10))
    assert _fit_and_record(shuffle=True, seed=5) == batches
    assert _fit_and_record(shuffle=True, seed=6) != batches


def test_batch_size_larger_than_the_data_is_one_batch():
    assert _fit_and_record(shuffle=False, n=5, batch_size=64, epochs=2) == [[0, 1, 2, 3, 4]] * 2


@pytest.mark.parametrize("use", ["forward", "backward", "hidden_states"])
def test_using_the_network_in_a_callback_does_not_disturb_training(use):
    """The callback runs the network on a batch far bigger than the training batches
    (its workspaces must grow); the training run must end with the same bits."""
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((40, 2)), rng.standard_normal((40, 1))
    big = rng.standard_normal((3000, 2))

    def train(with_callback):
        net = ef.mlp([2, 16, 1], "tanh", seed=0)

        def cb(epoch, loss):
            if use == "hidden_states":
                net.hidden_states(big)
            else:
                net(big)
                if use == "backward":
                    net.backward(np.ones((3000, 1)))

        hist = net.fit(X, Y, loss="mse", optimizer=ef.optim.Adam(0.01), epochs=5, batch_size=8,
                       shuffle=True, seed=1, callbacks=[cb] if with_callback else ())
        return hist.loss, net.parameters()

    loss_a, params_a = train(True)
    loss_b, params_b = train(False)
    np.testing.assert_array_equal(loss_a, loss_b)
    for p, q in zip(params_a, params_b, strict=True):
        np.testing.assert_array_equal(p, q)
