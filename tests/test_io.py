"""save/load: bit-exact round trips, and refusal of foreign, truncated or tampered files."""

from __future__ import annotations

import zipfile

import eulerflow as ef
import numpy as np
import pytest
from conftest import ACTIVATIONS, build_pair


def _every_kind_net():
    specs = [("dense", 3, 5)]
    for name, kw in ACTIVATIONS:
        specs.append(("res", "step", 0.3, [("dense", 5, 5), ("act", name, kw)]))
    specs += [("res", "average", 0.1, [("dense", 5, 5, False), ("act", "elu", {"alpha": 0.7})]),
              ("res", "add", 0.1, [("seq", [("dense", 5, 5), ("act", "tanh", {})])]),
              ("act", "leaky_relu", {"slope": 0.3}), ("dense", 5, 2)]
    net, _ = build_pair(ef, specs, seed=1)
    return net


def _assert_same_network(a, b, x):
    pa, pb = a.parameters(), b.parameters()
    assert len(pa) == len(pb)
    for p, q in zip(pa, pb, strict=True):
        assert p.dtype == q.dtype and p.shape == q.shape
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(a(x), b(x))
    for s, t in zip(a.hidden_states(x), b.hidden_states(x), strict=True):
        np.testing.assert_array_equal(s, t)


def test_round_trip_is_bit_exact(tmp_path):
    net = _every_kind_net()
    x = np.random.default_rng(0).standard_normal((6, 3)) * 2
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = ef.load(path)
    _assert_same_network(net, loaded, x)
    # the loaded network is independent of the original
    loaded.parameters()[0][...] += 1.0
    assert not np.array_equal(net(x), loaded(x))
    # and it trains like the original
    gy = np.ones((6, 2))
    net(x)
    loaded2 = ef.load(str(path))  # a str path works too
    loaded2(x)
    np.testing.assert_array_equal(net.backward(gy), loaded2.backward(gy))


def test_round_trip_of_mlp_float32_and_dense(tmp_path):
    x = np.random.default_rng(1).standard_normal((4, 2))
    for i, net in enumerate([ef.mlp([2, 7, 3], "atan", seed=3),
                             ef.mlp([2, 7, 3], "softplus", seed=3, dtype=np.float32),
                             ef.mlp([2, 4, 3], seed=1, bias=False)]):
        path = tmp_path / f"m{i}.npz"
        net.save(path)
        loaded = ef.load(path)
        _assert_same_network(net, loaded, x)
        assert loaded(x).dtype == net(x).dtype


def test_round_trip_after_training(tmp_path):
    X, Y = ef.data.xor()
    net = ef.mlp([2, 5, 1], "tanh", seed=0)
    net.fit(X, Y, loss="mse", optimizer=ef.optim.Adam(lr=0.05), epochs=20, batch_size=2)
    net.save(tmp_path / "trained.npz")
    _assert_same_network(net, ef.load(tmp_path / "trained.npz"), X)


def test_map_layers_cannot_be_saved(tmp_path):
    net = ef.Sequential([ef.Dense(2, 2), ef.Map(np.sin, np.cos)])
    with pytest.raises(TypeError, match="Map"):
        net.save(tmp_path / "map.npz")


def _saved(tmp_path):
    net = ef.mlp([2, 3, 1], "tanh", seed=0)
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    return path, contents


def test_load_refuses_a_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.arange(6.0).reshape(2, 3), bias=np.zeros(2))
    with pytest.raises(ValueError):
        ef.load(path)


def test_load_refuses_a_file_that_is_not_npz(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello, I am not a model")
    with pytest.raises(ValueError):
        ef.load(path)


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.6, 0.95])
def test_load_refuses_a_truncated_file(tmp_path, fraction):
    path, _ = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError):
        ef.load(path)


def test_load_refuses_a_tampered_shape(tmp_path):
    path, contents = _saved(tmp_path)
    key = next(k for k, v in contents.items() if v.ndim == 2 and v.dtype.kind == "f")
    contents[key] = np.zeros((contents[key].shape[0] + 1, contents[key].shape[1]))
    np.savez(path, **contents)
    with pytest.raises(ValueError):
        ef.load(path)


def test_load_refuses_a_tampered_dtype(tmp_path):
    path, contents = _saved(tmp_path)
    key = next(k for k, v in contents.items() if v.ndim == 2 and v.dtype.kind == "f")
    contents[key] = contents[key].astype(np.complex128)
    np.savez(path, **contents)
    with pytest.raises(ValueError):
        ef.load(path)


def test_load_refuses_a_missing_key(tmp_path):
    path, contents = _saved(tmp_path)
    key = next(k for k, v in contents.items() if v.ndim == 1 and v.dtype.kind == "f")
    del contents[key]
    np.savez(path, **contents)
    with pytest.raises(ValueError):
        ef.load(path)


def test_load_refuses_an_extra_key(tmp_path):
    path, contents = _saved(tmp_path)
    contents["smuggled"] = np.zeros(3)
    np.savez(path, **contents)
    with pytest.raises(ValueError):
        ef.load(path)


_UNPICKLED = []


class _SideEffect:
    def __reduce__(self):
        return (_UNPICKLED.append, ("unpickled!",))


def test_load_never_unpickles(tmp_path):
    path, contents = _saved(tmp_path)
    key = next(iter(contents))
    contents[key] = np.array([_SideEffect()], dtype=object)
    np.savez(path, **contents)
    assert _UNPICKLED == []
    with pytest.raises(ValueError):
        ef.load(path)
    assert _UNPICKLED == []


def test_load_refuses_a_corrupted_member(tmp_path):
    path, _ = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.infolist()[0]
    # flip bytes inside the first member's data: the CRC no longer matches
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    for i in range(start, start + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        ef.load(path)


def test_load_of_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        ef.load(tmp_path / "nope.npz")


def test_round_trip_keeps_tied_weights_tied(tmp_path):
    d = ef.Dense(3, 3, seed=0)
    net = ef.Sequential([d, ef.Activation("tanh"), d])
    net.save(tmp_path / "tied.npz")
    loaded = ef.load(tmp_path / "tied.npz")
    assert len(loaded.parameters()) == 2
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_array_equal(loaded(x), net(x))
    loaded.parameters()[0][...] *= 2  # both uses see the change
    W, b = loaded.parameters()
    np.testing.assert_allclose(loaded(x), np.tanh(x @ W.T + b) @ W.T + b, rtol=1e-14)


def test_load_refuses_a_stored_dense_layer_that_the_architecture_never_uses(tmp_path):
    import json

    net = ef.Sequential([ef.Dense(2, 3, seed=0), ef.Activation("tanh"), ef.Dense(3, 3, seed=1)])
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path) as npz:
        data = dict(npz)
    arch = json.loads(str(data["architecture"]))
    arch["layers"] = arch["layers"][:2] + [{"type": "Activation", "name": "relu", "params": {}}]
    data["architecture"] = np.array(json.dumps(arch))
    np.savez(path, **data)
    with pytest.raises(ValueError, match="never used"):
        ef.load(path)


def test_sgd_with_zero_learning_rate_leaves_the_weights_unchanged():
    X, Y = ef.data.xor()
    net = ef.mlp([2, 3, 1], "tanh", seed=0)
    before = [p.copy() for p in net.parameters()]
    net.fit(X, Y, optimizer=ef.optim.SGD(lr=0.0, momentum=0.9), epochs=3, batch_size=2)
    for b, p in zip(before, net.parameters(), strict=True):
        assert np.array_equal(b, p)
