"""Shared helpers: build an eulerflow network and its NumPy reference twin from one spec."""

from __future__ import annotations

import numpy as np
import pytest
from reference import nn_reference as ref

# A network spec is a list of layer specs:
#   ("dense", n_in, n_out)  or  ("dense", n_in, n_out, bias)
#   ("act", name, {kwargs})
#   ("map", fun, dfun)
#   ("res", mode, h, [layer specs])        # block = Sequential of the inner specs
#   ("seq", [layer specs])

# (name, kwargs) of every activation, with torch defaults and with non-default options.
ACTIVATIONS = [
    ("identity", {}),
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"slope": 0.2}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("tanh", {}),
    ("atan", {}),
    ("sigmoid", {}),
    ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 1.5}),  # some inputs cross the threshold
]


def act_id(param) -> str:
    name, kw = param
    return name + "".join(f"-{k}={v}" for k, v in kw.items())


def _build_layer(ef, spec):
    kind = spec[0]
    if kind == "dense":
        bias = spec[3] if len(spec) > 3 else True
        return ef.Dense(spec[1], spec[2], bias=bias, seed=0), ref.Dense(
            np.zeros((spec[2], spec[1])), np.zeros(spec[2]) if bias else None
        )
    if kind == "act":
        return ef.Activation(spec[1], **spec[2]), ref.Activation(spec[1], **spec[2])
    if kind == "map":
        return ef.Map(spec[1], spec[2]), ref.Map(spec[1], spec[2])
    if kind == "res":
        block_ef, block_ref = _build_seq(ef, spec[3])
        return (
            ef.Residual(block_ef, mode=spec[1], h=spec[2]),
            ref.Residual(block_ref, mode=spec[1], h=spec[2]),
        )
    if kind == "seq":
        return _build_seq(ef, spec[1])
    raise AssertionError(spec)


def _build_seq(ef, specs):
    pairs = [_build_layer(ef, s) for s in specs]
    return ef.Sequential([p[0] for p in pairs]), ref.Sequential([p[1] for p in pairs])


def build_pair(ef, specs, seed=0, scale=1.5):
    """Return (eulerflow net, reference net) holding the same random parameters.

    The parameters are drawn here and written in place into the arrays returned by
    ``net.parameters()`` (which must be the weights themselves), in the contract's
    order [W0, b0, W1, b1, ...].
    """
    net, rnet = _build_seq(ef, specs)
    set_random_parameters(net, rnet, seed, scale)
    return net, rnet


def set_random_parameters(net, rnet, seed=0, scale=1.5):
    rng = np.random.default_rng(seed)
    params, rparams = net.parameters(), rnet.parameters()
    assert len(params) == len(rparams)
    for p, rp in zip(params, rparams, strict=True):
        assert p.shape == rp.shape, (p.shape, rp.shape)
        fan_in = p.shape[1] if p.ndim == 2 else 2
        v = rng.standard_normal(p.shape) * scale / np.sqrt(fan_in)
        p[...] = v
        rp[...] = v


def copy_parameters(src, dst):
    """Copy the parameter values of one eulerflow net into another of the same shape."""
    for p, q in zip(src.parameters(), dst.parameters(), strict=True):
        q[...] = p


def assert_close(actual, expected, rtol=1e-12, atol=1e-12, err_msg=""):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol,
                               err_msg=err_msg)


def assert_all_close(actual_list, expected_list, rtol=1e-12, atol=1e-12, what="array"):
    assert len(actual_list) == len(expected_list)
    for i, (a, e) in enumerate(zip(actual_list, expected_list, strict=True)):
        assert np.shape(a) == np.shape(e), f"{what} {i}: shape {np.shape(a)} != {np.shape(e)}"
        assert_close(a, e, rtol, atol, err_msg=f"{what} {i}")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def each_isa_variant():
    """Runs the test body under every kernel variant this build and CPU have (a generator
    of variant names), restoring the selection afterwards."""
    from eulerflow import _core

    before = _core.isa_selected()

    def variants():
        for v in _core.isa_available():
            _core.set_isa(v)
            yield v

    yield variants
    _core.set_isa(before)
