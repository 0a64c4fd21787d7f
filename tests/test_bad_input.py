"""Bad input is refused with ValueError/TypeError whose message names the argument."""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest

NET_IN, NET_OUT = 2, 3


@pytest.fixture
def net():
    return ef.mlp([NET_IN, 4, NET_OUT], "tanh", seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, NET_IN)), rng.standard_normal((6, NET_OUT))


def _fit(net, X, Y, **kw):
    args = {"loss": "mse", "optimizer": ef.optim.SGD(0.1), "epochs": 1, "batch_size": 4,
            "shuffle": False}
    args.update(kw)
    return net.fit(X, Y, **args)


# --- forward ------------------------------------------------------------------------------

X_NAME = r"(?i)\bx\b|input"


@pytest.mark.parametrize("x", [np.zeros((2, 2, NET_IN)), np.float64(1.0), np.zeros((1, 1, 1, 2))],
                         ids=["3d", "0d", "4d"])
def test_forward_wrong_ndim(net, x):
    with pytest.raises(ValueError, match=X_NAME):
        net(x)


@pytest.mark.parametrize("shape", [(5, 3), (5, 1), (3,), (1,)])
def test_forward_wrong_feature_count_names_the_sizes(net, shape):
    with pytest.raises(ValueError, match=X_NAME) as info:
        net(np.ones(shape))
    assert str(shape[-1]) in str(info.value) and str(NET_IN) in str(info.value)


@pytest.mark.parametrize("shape", [(0, NET_IN), (0,)])
def test_forward_empty_batch(net, shape):
    with pytest.raises(ValueError, match=X_NAME + "|empty"):
        net(np.ones(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_forward_non_finite(net, bad):
    x = np.ones((3, NET_IN))
    x[1, 1] = bad
    with pytest.raises(ValueError, match=X_NAME):
        net(x)


BAD_DTYPES = {
    "complex": np.ones((3, NET_IN), dtype=np.complex128),
    "complex-zero-imag": np.ones((3, NET_IN)) + 0j,
    "object": np.array([[1.0, 2.0]] * 3, dtype=object),
    "str": np.array([["1.0", "2.0"]] * 3),
    "bytes": np.array([[b"1", b"2"]] * 3),
    "bool": np.ones((3, NET_IN), dtype=bool),
}


@pytest.mark.parametrize("kind", list(BAD_DTYPES))
def test_forward_refuses_non_real_dtypes(net, kind):
    with pytest.raises(TypeError, match=X_NAME + "|dtype"):
        net(BAD_DTYPES[kind])


# --- backward -----------------------------------------------------------------------------


def test_backward_before_forward():
    fresh = ef.mlp([NET_IN, 4, NET_OUT], "tanh", seed=0)
    with pytest.raises((ValueError, RuntimeError), match="(?i)forward"):
        fresh.backward(np.ones((2, NET_OUT)))


@pytest.mark.parametrize("layer", [lambda: ef.Dense(NET_IN, NET_OUT), lambda: ef.Activation("relu"),
                                   lambda: ef.Residual(ef.Dense(NET_IN, NET_IN))])
def test_backward_before_forward_on_single_modules(layer):
    with pytest.raises((ValueError, RuntimeError), match="(?i)forward"):
        layer().backward(np.ones((2, NET_IN)))


@pytest.mark.parametrize("shape", [(5, NET_OUT), (4, NET_OUT + 1), (4,), (4, NET_OUT, 1)])
def test_backward_wrong_shape(net, shape):
    net(np.ones((4, NET_IN)))
    with pytest.raises(ValueError, match=r"(?i)grad|\bgy\b|shape") as info:
        net.backward(np.ones(shape))
    assert "4" in str(info.value)


def test_backward_non_finite_and_bad_dtype(net):
    net(np.ones((4, NET_IN)))
    gy = np.ones((4, NET_OUT))
    gy[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"(?i)grad|\bgy\b|finite|nan"):
        net.backward(gy)
    with pytest.raises(TypeError):
        net.backward(np.ones((4, NET_OUT), dtype=np.complex128))


# --- construction -------------------------------------------------------------------------


def test_sequential_mismatched_sizes_names_them():
    with pytest.raises(ValueError) as info:
        ef.Sequential([ef.Dense(2, 3), ef.Dense(4, 1)])
    assert "3" in str(info.value) and "4" in str(info.value)


def test_sequential_mismatch_across_activations_and_containers():
    with pytest.raises(ValueError, match="3"):
        ef.Sequential([ef.Dense(2, 3), ef.Activation("tanh"), ef.Dense(4, 1)])
    with pytest.raises(ValueError, match="5"):
        ef.Sequential([ef.Sequential([ef.Dense(2, 5), ef.Activation("relu")]),
                       ef.Residual(ef.Dense(3, 3)), ef.Dense(3, 1)])


def test_residual_block_must_keep_the_size():
    with pytest.raises(ValueError):
        r = ef.Residual(ef.Dense(2, 3))
        r(np.ones((1, 2)))


@pytest.mark.parametrize("mode", ["euler", "", "Step"])
def test_residual_bad_mode(mode):
    with pytest.raises(ValueError, match="mode"):
        ef.Residual(ef.Dense(2, 2), mode=mode)


@pytest.mark.parametrize("h", [np.nan, np.inf])
def test_residual_non_finite_step(h):
    with pytest.raises(ValueError, match=r"\bh\b"):
        ef.Residual(ef.Dense(2, 2), mode="step", h=h)


@pytest.mark.parametrize("name", ["relu6", "", "TANH", "soft_plus"])
def test_bad_activation_name(name):
    with pytest.raises(ValueError, match="(?i)activation|" + (name or "name")):
        ef.Activation(name)


def test_bad_activation_name_in_mlp():
    with pytest.raises(ValueError, match="(?i)activation|swish"):
        ef.mlp([2, 3, 1], "swish")


def test_unknown_activation_keyword():
    with pytest.raises((TypeError, ValueError), match="alpha"):
        ef.Activation("tanh", alpha=2.0)


@pytest.mark.parametrize("args", [(0, 3), (3, 0), (-1, 2), (2.5, 3)])
def test_dense_bad_sizes(args):
    with pytest.raises((ValueError, TypeError), match="n_in|n_out"):
        ef.Dense(*args)


def test_dense_bad_dtype():
    with pytest.raises((TypeError, ValueError), match="dtype"):
        ef.Dense(2, 3, dtype=np.int32)


@pytest.mark.parametrize("sizes", [[3], [], [2, 0, 1]])
def test_mlp_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        ef.mlp(sizes)


def test_sequential_refuses_non_modules():
    with pytest.raises(TypeError):
        ef.Sequential([ef.Dense(2, 2), "relu"])


# --- fit ----------------------------------------------------------------------------------


def test_fit_mismatched_lengths(net, data):
    X, Y = data
    with pytest.raises(ValueError, match=r"\bX\b|\bY\b") as info:
        _fit(net, X, Y[:5])
    assert "6" in str(info.value) and "5" in str(info.value)


def test_fit_wrong_feature_counts(net, data):
    X, Y = data
    with pytest.raises(ValueError, match=r"\bX\b"):
        _fit(net, np.ones((6, NET_IN + 1)), Y)
    with pytest.raises(ValueError, match=r"\bY\b"):
        _fit(net, X, np.ones((6, NET_OUT + 1)))
    with pytest.raises(ValueError, match=r"\bY\b"):
        _fit(net, X, np.ones((6, NET_OUT + 1)), loss="cross_entropy")


def test_fit_wrong_ndim(net, data):
    X, Y = data
    with pytest.raises(ValueError, match=r"\bX\b"):
        _fit(net, X[None], Y)
    with pytest.raises(ValueError, match=r"\bY\b"):
        _fit(net, X, Y[None])


def test_fit_empty_data(net):
    with pytest.raises(ValueError, match=r"\bX\b|empty"):
        _fit(net, np.ones((0, NET_IN)), np.ones((0, NET_OUT)))


@pytest.mark.parametrize("where", ["X", "Y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_non_finite_data(net, data, where, bad):
    X, Y = (a.copy() for a in data)
    (X if where == "X" else Y)[2, 1] = bad
    with pytest.raises(ValueError, match=rf"\b{where}\b"):
        _fit(net, X, Y)


@pytest.mark.parametrize("where", ["X", "Y"])
@pytest.mark.parametrize("kind", ["complex", "object", "str", "bool"])
def test_fit_refuses_non_real_dtypes(net, data, where, kind):
    X, Y = data
    bad = {"complex": lambda a: a.astype(np.complex128), "object": lambda a: a.astype(object),
           "str": lambda a: a.astype(str), "bool": lambda a: a > 0}[kind]
    if where == "X":
        X = bad(X)
    else:
        Y = bad(Y)
    with pytest.raises(TypeError, match=rf"\b{where}\b"):
        _fit(net, X, Y)


@pytest.mark.parametrize("labels", [[0, 1, 3, 0, 1, 2], [0, -1, 2, 0, 1, 2]],
                         ids=["too-big", "negative"])
def test_fit_cross_entropy_labels_out_of_range(net, data, labels):
    X, _ = data
    with pytest.raises(ValueError, match=r"\bY\b|label|class"):
        _fit(net, X, np.array(labels), loss="cross_entropy")


def test_fit_cross_entropy_float_labels_are_refused(net, data):
    X, _ = data
    with pytest.raises((TypeError, ValueError), match=r"\bY\b|label|class"):
        _fit(net, X, np.array([0.0, 1.0, 2.0, 0.5, 1.0, 2.0]), loss="cross_entropy")


@pytest.mark.parametrize("loss", ["MSE", "l2", "crossentropy", ""])
def test_fit_bad_loss_name(net, data, loss):
    with pytest.raises(ValueError, match="loss"):
        _fit(net, *data, loss=loss)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_fit_bad_batch_size(net, data, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        _fit(net, *data, batch_size=batch_size)


def test_fit_non_integer_batch_size(net, data):
    with pytest.raises(TypeError, match="batch_size"):
        _fit(net, *data, batch_size=2.5)


def test_fit_bad_epochs(net, data):
    with pytest.raises(ValueError, match="epochs"):
        _fit(net, *data, epochs=-1)


@pytest.mark.parametrize("kw", [{"l1": -0.1}, {"l2": -1.0}, {"l1": np.nan}, {"l2": np.inf}])
def test_fit_bad_regularization(net, data, kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        _fit(net, *data, **kw)


def test_fit_bad_optimizer(net, data):
    with pytest.raises(TypeError, match="optimizer"):
        _fit(net, *data, optimizer="adam")


def test_fit_callbacks_must_be_callable(net, data):
    with pytest.raises(TypeError, match="callback"):
        _fit(net, *data, callbacks=[42])


def test_failed_fit_leaves_the_network_untouched(net, data):
    X, Y = data
    before = [p.copy() for p in net.parameters()]
    Y = Y.copy()
    Y[-1, -1] = np.nan  # in the last batch: nothing may have been trained before the check
    with pytest.raises(ValueError):
        _fit(net, X, Y)
    for p, b in zip(net.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, b)


# --- optimizers ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: ef.optim.SGD(-0.1), lambda: ef.optim.Adam(lr=-1e-3), lambda: ef.optim.Nadam(lr=-1.0),
    lambda: ef.optim.SGD(np.nan), lambda: ef.optim.Adam(lr=np.inf),
], ids=["sgd", "adam", "nadam", "sgd-nan", "adam-inf"])
def test_optimizer_bad_lr(make):
    with pytest.raises(ValueError, match="lr"):
        make()


@pytest.mark.parametrize("make,name", [
    (lambda: ef.optim.SGD(0.1, momentum=-0.5), "momentum"),
    (lambda: ef.optim.SGD(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: ef.optim.SGD(0.1, nesterov=True), "nesterov"),
    (lambda: ef.optim.SGD(0.1, momentum=0.9, dampening=0.5, nesterov=True), "nesterov"),
    (lambda: ef.optim.Adam(betas=(1.0, 0.999)), "beta"),
    (lambda: ef.optim.Adam(betas=(0.9, -0.1)), "beta"),
    (lambda: ef.optim.Adam(eps=-1e-8), "eps"),
    (lambda: ef.optim.Nadam(momentum_decay=-1.0), "momentum_decay"),
    (lambda: ef.optim.Nadam(weight_decay=np.nan), "weight_decay"),
], ids=["momentum", "sgd-wd", "nesterov-no-momentum", "nesterov-dampening", "beta1", "beta2",
        "eps", "momentum-decay", "nadam-wd"])
def test_optimizer_bad_hyperparameters(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# --- learn --------------------------------------------------------------------------------


def test_learn_negative_lr(net):
    with pytest.raises(ValueError, match="lr"):
        net.learn([(np.ones(NET_IN), np.ones(NET_OUT))], -0.1)


def test_learn_bad_facts(net):
    with pytest.raises(ValueError):
        net.learn([(np.ones(NET_IN + 1), np.ones(NET_OUT))], 0.1)
    with pytest.raises(ValueError):
        net.learn([(np.ones(NET_IN), np.ones(NET_OUT + 1))], 0.1)
    with pytest.raises(ValueError):
        net.learn([(np.array([np.nan, 1.0]), np.ones(NET_OUT))], 0.1)
    with pytest.raises(TypeError):
        net.learn([(np.ones(NET_IN, dtype=complex), np.ones(NET_OUT))], 0.1)
    with pytest.raises(ValueError):
        net.learn((np.ones((3, NET_IN)), np.ones((2, NET_OUT))), 0.1)


# --- threads ------------------------------------------------------------------------------


@pytest.mark.parametrize("n,exc", [(0, ValueError), (-2, ValueError), (2.5, TypeError),
                                   ("2", TypeError)])
def test_set_num_threads_bad_values(n, exc):
    old = ef.get_num_threads()
    try:
        with pytest.raises(exc, match=r"\bn\b|thread"):
            ef.set_num_threads(n)
        assert ef.get_num_threads() == old
    finally:
        ef.set_num_threads(old)
