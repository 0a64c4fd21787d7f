"""Plain NumPy reference for seed 003's mean-field two-layer ReLU network.

Transcribed from the seed's ``Neuron`` / ``Network`` classes, independently of eulerflow's
C++ core, keeping the seed's structure (one sample at a time, then the batch mean):

* ``Neuron.__init__`` draws ``a = normal()``, ``w = normal(size=d)``, ``b = normal()`` in
  that order, neuron after neuron, and divides ``(w, b)`` by the norm of ``(b, w)``;
  ``Network.small_sphere(R)`` then rescales ``(w, b)`` to norm ``R``. ``a`` is untouched.
  The seed used NumPy's global legacy generator; here the same calls go to
  ``np.random.default_rng(seed)``;
* ``output(x) = mean_j a_j relu(w_j . x + b_j)`` and ``loss(x, y) = (output(x) - y)^2 / 2``;
* ``grad(x, y)``, with ``r = output(x) - y``, ``s_j = relu(z_j)``, ``ds_j = drelu(z_j)``
  (``drelu(0) = 1``, as the seed writes ``if x >= 0``)::

      ga_j = r s_j / m,   gb_j = r a_j ds_j / m,   gw_j = gb_j x ;

* ``batch_step(X, Y, tau)`` averages ``grad`` over the rows of the batch and moves every
  parameter by ``-tau`` times that mean.
"""

from __future__ import annotations

import numpy as np


def relu(z: float) -> float:
    return z if z >= 0 else 0.0


def drelu(z: float) -> float:
    return 1.0 if z >= 0 else 0.0


def draw(m: int, d: int, seed: int, radius: float | None = None):
    """``(a, w, b)`` as seed 003's ``Network(m)`` (then ``small_sphere(radius)``) draws them,
    from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    a, w, b = np.empty(m), np.empty((m, d)), np.empty(m)
    for j in range(m):  # Neuron.__init__
        aj = rng.normal()
        wj = rng.normal(size=d)
        bj = rng.normal()
        norm = np.linalg.norm(np.concatenate([np.array([bj]), wj]), 2)
        a[j], w[j], b[j] = aj, wj / norm, bj / norm
    if radius is not None:  # Network.small_sphere
        for j in range(m):
            norm = 1.0 / radius * np.linalg.norm(np.concatenate([np.array([b[j]]), w[j]]), 2)
            w[j], b[j] = w[j] / norm, b[j] / norm
    return a, w, b


def output(a, w, b, x) -> float:
    """``mean_j a_j relu(w_j . x + b_j)`` for one sample ``x (d,)``."""
    return float(np.mean([a[j] * relu(w[j].dot(x) + b[j]) for j in range(len(a))]))


def forward(a, w, b, X) -> np.ndarray:
    """``output`` for every row of ``X (n, d)``."""
    return np.array([output(a, w, b, x) for x in np.asarray(X)])


def loss(a, w, b, X, Y) -> float:
    """The seed's ``test``: mean over the rows of ``(output(x) - y)^2 / 2``."""
    return float(np.mean([0.5 * (output(a, w, b, x) - y) ** 2
                          for x, y in zip(np.asarray(X), np.asarray(Y), strict=True)]))


def grad(a, w, b, x, y):
    """The seed's ``Network.grad`` for one sample: ``(ga (m,), gw (m, d), gb (m,))``."""
    m = len(a)
    r = output(a, w, b, x) - y
    s = np.array([relu(w[j].dot(x) + b[j]) for j in range(m)])
    ds = np.array([drelu(w[j].dot(x) + b[j]) for j in range(m)])
    ga = 1.0 / m * r * s
    gb = 1.0 / m * r * np.array([a[j] * ds[j] for j in range(m)])
    gw = np.array([gb[j] * x for j in range(m)])
    return ga, gw, gb


def batch_grad(a, w, b, X, Y):
    """The mean of ``grad`` over the batch, as ``batch_step`` takes it."""
    parts = [grad(a, w, b, x, y) for x, y in zip(np.asarray(X), np.asarray(Y), strict=True)]
    return tuple(np.mean([p[k] for p in parts], axis=0) for k in range(3))


def batch_step(a, w, b, X, Y, tau):
    """The seed's ``batch_step``: new ``(a, w, b)`` after one SGD step of rate ``tau``."""
    ga, gw, gb = batch_grad(a, w, b, X, Y)
    return a - tau * ga, w - tau * gw, b - tau * gb


def sgd(a, w, b, X, Y, tau, batch, epochs=1):
    """Consecutive batches of ``batch`` rows (the last one shorter when ``batch`` does not
    divide n), ``epochs`` passes, no shuffling. Returns ``(a, w, b)`` and the parameters
    after every step."""
    X, Y = np.asarray(X), np.asarray(Y)
    n = len(X)
    history = []
    for _ in range(epochs):
        for start in range(0, n, batch):
            a, w, b = batch_step(a, w, b, X[start:start + batch], Y[start:start + batch], tau)
            history.append((a, w, b))
    return a, w, b, history
