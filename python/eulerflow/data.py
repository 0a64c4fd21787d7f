"""Small synthetic data sets for the seed experiments.

Every data set is a pair ``(X, Y)`` of NumPy arrays whose rows are samples. Random data
sets take a ``seed`` and draw from ``np.random.default_rng(seed)`` only, so the same
seed gives the same bits on the same machine.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._validate import positive_int, real_scalar

__all__ = ["spiral_classes", "xor"]


def _check_seed(seed: object) -> None:
    """Accept what ``np.random.default_rng`` accepts as a seed, refuse the rest by name."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"seed must be None, a non-negative integer or a numpy Generator, "
            f"got {type(seed).__name__} {seed!r}"
        )
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def spiral_classes(
    n_per_class: int = 100, k: int = 3, noise: float = 0.2, seed: object = 0
) -> tuple[np.ndarray, np.ndarray]:
    r"""Points on ``k`` interleaved spiral arms, one class per arm (seed 004).

    Class :math:`j \in \{0, \dots, k-1\}` has ``n_per_class`` points :math:`i = 0, \dots,
    n_0 - 1` with

    .. math::

        r_i = \frac{i}{n_0 - 1}, \qquad
        t_i = 4j + \frac{4 i}{n_0 - 1} + \sigma \varepsilon_i, \qquad
        x_i = (r_i \sin t_i,\; r_i \cos t_i),

    where :math:`\varepsilon_i \sim \mathcal N(0, 1)` and :math:`\sigma` is ``noise``:
    the radius grows linearly from 0 to 1 while the angle sweeps 4 radians, shifted by
    4 radians per class, with Gaussian noise on the angle only. The seed notebook stores
    class ``j`` at rows ``n0*(j-1) ... n0*j - 1`` (negative indices for ``j = 0``); here
    class ``j`` fills rows ``j*n0 ... (j+1)*n0 - 1``.

    Parameters
    ----------
    n_per_class : int
        Points per class, ``n_0 >= 1`` (with one point, ``r = 0``).
    k : int
        Number of classes, ``k >= 1``.
    noise : float
        Standard deviation of the angular noise, ``>= 0``.
    seed : int, None or numpy.random.Generator
        Seed of ``np.random.default_rng``; the noise is drawn class after class.

    Returns
    -------
    X : ndarray, shape (n_per_class * k, 2), float64
        The points.
    y : ndarray, shape (n_per_class * k,), int64
        Class index of each point, ``y[j*n0:(j+1)*n0] == j``.

    Examples
    --------
    >>> X, y = spiral_classes(100, 3, noise=0.2, seed=0)
    >>> X.shape, y.shape, int(y.max())
    ((300, 2), (300,), 2)
    """
    n0 = positive_int(n_per_class, "n_per_class")
    k = positive_int(k, "k")
    noise = real_scalar(noise, "noise", min_value=0.0)
    _check_seed(seed)
    rng = np.random.default_rng(seed)

    X = np.empty((n0 * k, 2), dtype=np.float64)
    y = np.empty(n0 * k, dtype=np.int64)
    r = np.linspace(0.0, 1.0, n0)
    for j in range(k):
        rows = slice(j * n0, (j + 1) * n0)
        t = np.linspace(4.0 * j, 4.0 * (j + 1), n0) + noise * rng.standard_normal(n0)
        X[rows, 0] = r * np.sin(t)
        X[rows, 1] = r * np.cos(t)
        y[rows] = j
    return X, y


def xor() -> tuple[np.ndarray, np.ndarray]:
    r"""The four points of the XOR truth table.

    .. math::

        Y = x_1 \oplus x_2 = x_1 + x_2 - 2 x_1 x_2, \qquad x \in \{0, 1\}^2 .

    No straight line separates the two classes, so a network needs a hidden layer
    (seed 001).

    Returns
    -------
    X : ndarray, shape (4, 2), float64
        ``[[0, 0], [0, 1], [1, 0], [1, 1]]``.
    Y : ndarray, shape (4, 1), float64
        ``[[0], [1], [1], [0]]``.
    """
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = (X[:, :1] + X[:, 1:] - 2.0 * X[:, :1] * X[:, 1:]).astype(np.float64)
    return X, Y
