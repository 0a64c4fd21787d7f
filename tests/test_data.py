"""Data sets against their closed forms."""

from __future__ import annotations

import eulerflow as ef
import numpy as np
import pytest


def test_xor_truth_table():
    X, Y = ef.data.xor()
    assert X.dtype == np.float64 and Y.dtype == np.float64
    assert X.shape == (4, 2) and Y.shape == (4, 1)
    for x, y in zip(X, Y, strict=True):
        assert y[0] == float(bool(x[0]) != bool(x[1]))
    assert {tuple(x) for x in X} == {(0, 0), (0, 1), (1, 0), (1, 1)}


@pytest.mark.parametrize("n0,k", [(100, 3), (7, 5), (1, 2)])
def test_spiral_classes_without_noise_is_the_closed_form(n0, k):
    X, y = ef.data.spiral_classes(n0, k, 0.0, seed=0)
    assert X.shape == (n0 * k, 2) and X.dtype == np.float64
    assert y.shape == (n0 * k,) and y.dtype == np.int64
    r = np.linspace(0, 1, n0)
    for j in range(k):
        t = np.linspace(4 * j, 4 * (j + 1), n0)
        expected = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        got = X[y == j]
        assert got.shape == (n0, 2)
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-15)


def test_spiral_classes_noise_moves_the_angle_only():
    X, y = ef.data.spiral_classes(50, 3, 0.2, seed=0)
    X0, y0 = ef.data.spiral_classes(50, 3, 0.0, seed=0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_allclose(np.hypot(X[:, 0], X[:, 1]), np.hypot(X0[:, 0], X0[:, 1]),
                               atol=1e-15)
    angle = np.arctan2(X[:, 0], X[:, 1])  # x = (r sin t, r cos t)
    angle0 = np.arctan2(X0[:, 0], X0[:, 1])
    d = np.angle(np.exp(1j * (angle - angle0)))[np.hypot(X0[:, 0], X0[:, 1]) > 0]
    assert 0.15 < d.std() < 0.25  # noise 0.2 on the angle
    assert abs(d.mean()) < 0.05


def test_spiral_classes_seeded():
    a = ef.data.spiral_classes(30, 3, 0.2, seed=1)
    b = ef.data.spiral_classes(30, 3, 0.2, seed=1)
    c = ef.data.spiral_classes(30, 3, 0.2, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("kw,name", [({"n_per_class": 0}, "n_per_class"), ({"k": 0}, "k"),
                                     ({"noise": -0.1}, "noise"), ({"noise": np.nan}, "noise")])
def test_spiral_classes_bad_arguments(kw, name):
    with pytest.raises(ValueError, match=name):
        ef.data.spiral_classes(**kw)
