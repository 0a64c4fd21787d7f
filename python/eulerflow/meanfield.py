"""Mean-field two-layer ReLU networks as interacting particles (seed 003;
Chizat & Bach 2018, global convergence of over-parameterized two-layer networks
as Wasserstein gradient flows).

A network holds m particles ``(a_j, w_j, b_j)`` in dimension d and computes
``f(x) = (1/m) sum_j a_j relu(w_j . x + b_j)``. Training is plain minibatch SGD
on ``mean_i (f(x_i) - y_i)^2 / 2`` with its exact gradient (the 1/m of the
output included, and relu'(0) = 1 as the seed writes it), run wholly in the C++
core. With this mean-field scaling each particle moves by O(lr/m) per step, so
the learning rate that moves particles at a given speed grows with m.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from . import _core
from ._validate import nonneg_int, positive_int, real_array, real_scalar, seed_value

__all__ = ["TwoLayerReLU", "Run"]


class Run:
    """The record of a training run: ``snapshots`` (k, m, d + 2) holds every
    particle's ``(a, w, b)`` at the start and every ``snapshot_every`` steps,
    ``steps`` the step count of each snapshot, and ``test_loss`` (or, for ``fit``,
    the training loss) at each snapshot."""

    def __init__(self, snapshots: np.ndarray, loss: np.ndarray, steps: np.ndarray, name: str):
        self.snapshots, self.steps = snapshots, steps
        setattr(self, name, loss)
        self.loss_name = name

    @property
    def loss(self) -> np.ndarray:
        """The loss at each snapshot (test loss or training loss)."""
        return getattr(self, self.loss_name)

    def positions(self) -> np.ndarray:
        """The particles in the plane as the seed draws them: ``a_j * w_j``,
        shape (k, m, d)."""
        return self.snapshots[:, :, :1] * self.snapshots[:, :, 1:-1]

    def __repr__(self) -> str:
        k, m, r = self.snapshots.shape
        return (f"Run({k} snapshots of {m} particles in d={r - 2}, final {self.loss_name} "
                f"{self.loss[-1]:.4g})")


class TwoLayerReLU:
    """``f(x) = (1/m) sum_j a_j relu(w_j . x + b_j)`` from arrays ``a`` (m,),
    ``w`` (m, d), ``b`` (m,); ``net.a``, ``net.w``, ``net.b`` are the network's own
    writable arrays."""

    def __init__(self, a, w, b):
        w = real_array(w, "w", np.float64, ndim=(2,))
        a = real_array(a, "a", np.float64, ndim=(1,))
        b = real_array(b, "b", np.float64, ndim=(1,))
        if a.shape[0] != w.shape[0] or b.shape[0] != w.shape[0]:
            raise ValueError(f"a (m,), w (m, d) and b (m,) must agree on m, got shapes {a.shape}, "
                             f"{w.shape}, {b.shape}")
        self.a = np.array(a, dtype=np.float64, order="C")
        self.w = np.array(w, dtype=np.float64, order="C")
        self.b = np.array(b, dtype=np.float64, order="C")
        self._busy = threading.Lock()

    @contextmanager
    def _using(self):
        """One training call at a time (step, fit, fit_teacher): a second thread
        is refused, never interleaved. Evaluation only reads and takes no claim."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this TwoLayerReLU is already running in another thread; use one "
                               "network per thread (copy() it)")
        try:
            yield
        finally:
            self._busy.release()

    @property
    def m(self) -> int:
        """The number of particles (hidden neurons)."""
        return int(self.w.shape[0])

    @property
    def d(self) -> int:
        """The input dimension."""
        return int(self.w.shape[1])

    # --- construction as seed 003 ----------------------------------------------------
    @classmethod
    def _draw(cls, m, d, seed, radius: float) -> TwoLayerReLU:
        m = positive_int(m, "m")
        d = positive_int(d, "d")
        rng = np.random.default_rng(seed_value(seed) if seed is not None else None)
        a, w, b = np.empty(m), np.empty((m, d)), np.empty(m)
        for j in range(m):  # the seed's draw order: a, then w, then b, neuron by neuron
            a[j] = rng.normal()
            w[j] = rng.normal(size=d)
            b[j] = rng.normal()
        norm = np.sqrt(np.sum(w**2, axis=1) + b**2) / radius
        return cls(a, w / norm[:, None], b / norm)

    @classmethod
    def random(cls, m: int, d: int, seed: int | None = None) -> TwoLayerReLU:
        """A teacher as seed 003 draws it: ``a ~ N(0, 1)``, ``(w, b) ~ N(0, I)``
        scaled to unit norm (``a`` untouched)."""
        return cls._draw(m, d, seed, 1.0)

    @classmethod
    def small_sphere(cls, m: int, d: int, radius: float, seed: int | None = None) -> TwoLayerReLU:
        """A student started on a small sphere: as :meth:`random` with ``(w_j, b_j)``
        of norm ``radius``."""
        radius = real_scalar(radius, "radius", min_value=0.0, min_inclusive=False)
        return cls._draw(m, d, seed, radius)

    def copy(self) -> TwoLayerReLU:
        """An independent copy of the particles."""
        return TwoLayerReLU(self.a.copy(), self.w.copy(), self.b.copy())

    def __repr__(self) -> str:
        return f"TwoLayerReLU(m={self.m}, d={self.d})"

    # --- evaluation ------------------------------------------------------------------
    def _inputs(self, X, name: str = "X") -> tuple[np.ndarray, bool]:
        X = real_array(X, name, np.float64, ndim=(1, 2))
        single = X.ndim == 1
        X = X.reshape(1, -1) if single else X
        if X.shape[1] != self.d:
            raise ValueError(f"{name} must have {self.d} features (the network's d), got shape "
                             f"{X.shape}")
        return np.ascontiguousarray(X), single

    def _step_inputs(self, x, steps: int, batch: int) -> np.ndarray:
        """fit_teacher's given inputs as (steps * batch, d) C-contiguous float64 rows."""
        want = (steps, batch, self.d)
        arr = real_array(x, "x", np.float64, ndim=(2, 3), contiguous=True)
        if arr.shape not in (want, (steps * batch, self.d)):
            raise ValueError(f"x must have shape (steps, batch, d) = {want} or (steps * batch, "
                             f"d) = {(steps * batch, self.d)}, got {arr.shape}")
        return arr.reshape(steps * batch, self.d)

    def _targets(self, Y, n: int) -> np.ndarray:
        Y = real_array(Y, "Y", np.float64, ndim=(1, 2)).reshape(-1)
        if Y.shape[0] != n:
            raise ValueError(f"Y must have one value per row of X ({n}), got {Y.shape[0]}")
        return np.ascontiguousarray(Y)

    def __call__(self, x) -> np.ndarray:
        """``f(x)`` for x of shape (n, d) -> (n,), or (d,) -> a float."""
        X, single = self._inputs(x, "x")
        out = _core.meanfield_forward(self.a, self.w, self.b, X)  # reads only: no claim
        return float(out[0]) if single else out

    def loss(self, X, Y) -> float:
        """``mean_i (f(x_i) - y_i)^2 / 2``."""
        X, _ = self._inputs(X)
        Y = self._targets(Y, X.shape[0])
        return float(0.5 * np.mean((self(X) - Y) ** 2))

    # --- training --------------------------------------------------------------------
    def step(self, X, Y, lr: float) -> float:
        """One SGD update on the batch ``(X, Y)``; returns the batch loss before it."""
        X, _ = self._inputs(X)
        Y = self._targets(Y, X.shape[0])
        lr = real_scalar(lr, "lr", min_value=0.0)
        with self._using():
            return float(_core.meanfield_step(self.a, self.w, self.b, X, Y, lr))

    def fit_teacher(self, teacher: TwoLayerReLU, steps: int, batch: int = 20, lr: float = 0.5,
                    snapshot_every: int = 10, seed: int = 0, n_test: int = 1000,
                    x=None) -> Run:
        """Trains in place on fresh standard Gaussian inputs labelled by ``teacher``:
        ``steps`` SGD steps of ``batch`` samples drawn from a generator seeded by
        ``seed``. ``run.snapshots[0]`` is the start, then one snapshot every
        ``snapshot_every`` steps (0: start and end only); ``run.test_loss`` is the
        loss on ``n_test`` held-out Gaussian samples (drawn from ``seed + 1``) at
        each snapshot. With ``x`` (``(steps, batch, d)`` or ``(steps * batch, d)``)
        the steps learn from those inputs instead of drawing them, still labelled
        by the teacher step by step (``teacher_samples(teacher, steps * batch,
        seed)[0]`` gives the inputs drawn otherwise: the same bits)."""
        _check_teacher(teacher, self.d)
        steps, batch, snapshot_every, n_test = _teacher_schedule(steps, batch, snapshot_every,
                                                                n_test, self.d)
        lr = real_scalar(lr, "lr", min_value=0.0)
        seed = seed_value(seed)
        if x is not None:
            x = self._step_inputs(x, steps, batch)
        x_test, y_test = _held_out_set(teacher, seed, n_test)
        with self._using():
            result = _core.meanfield_fit_teacher(
                self.a, self.w, self.b, teacher.a, teacher.w, teacher.b, steps, batch, lr,
                int(snapshot_every), seed, x_test, y_test, x)
        self._check(result, lr)
        return _run_of(result, snapshot_every or steps, "test_loss")

    def fit(self, X, Y, lr: float, batch: int = 20, epochs: int = 1, shuffle: bool = False,
            seed: int = 0, snapshot_every: int = 0) -> Run:
        """SGD over a given data set: consecutive batches of ``batch`` rows (in a
        seeded shuffled order with ``shuffle=True``), ``epochs`` passes. The run's
        ``loss`` is the training loss at each snapshot."""
        X, _ = self._inputs(X)
        Y = self._targets(Y, X.shape[0])
        lr = real_scalar(lr, "lr", min_value=0.0)
        batch, epochs, snapshot_every, every = _data_schedule(batch, epochs, snapshot_every,
                                                              X.shape[0])
        with self._using():
            result = _core.meanfield_fit(
                self.a, self.w, self.b, X, Y, lr, batch, epochs, bool(shuffle), seed_value(seed),
                int(snapshot_every))
        self._check(result, lr)
        return _run_of(result, every, "train_loss")

    @staticmethod
    def _check(result: tuple, lr: float) -> None:
        diverged, bad = result[3], result[4]
        if diverged:
            from ._errors import DivergenceError

            raise DivergenceError(f"mean-field training diverged at step {bad}: the loss became "
                                  f"non-finite; try a smaller learning rate than lr={lr}",
                                  epoch=0, batch=int(bad))


# --- shared by the networks' own runs and ensembles of them (eulerflow.Ensemble) --------
def _check_teacher(teacher, d: int, who: str = "the student") -> None:
    """A teacher must be a TwoLayerReLU of the student's dimension."""
    if not isinstance(teacher, TwoLayerReLU):
        raise TypeError(f"teacher must be a TwoLayerReLU, got {type(teacher).__name__}")
    if teacher.d != d:
        raise ValueError(f"teacher has dimension d={teacher.d} but {who} has d={d}")


def _teacher_schedule(steps, batch, snapshot_every, n_test, d: int) -> tuple[int, int, int, int]:
    """``fit_teacher``'s checked ``steps, batch, snapshot_every, n_test``."""
    steps = positive_int(steps, "steps")
    batch = positive_int(batch, "batch")
    snapshot_every = nonneg_int(snapshot_every, "snapshot_every")
    n_test = positive_int(n_test, "n_test")
    if n_test * d > 2**40:
        raise ValueError(f"n_test is too large: {n_test} samples of dimension {d}")
    return steps, batch, snapshot_every, n_test


def _data_schedule(batch, epochs, snapshot_every, n: int) -> tuple[int, int, int, int]:
    """``fit``'s checked ``batch, epochs, snapshot_every`` on ``n`` samples, and the steps
    between its snapshots (all the steps when ``snapshot_every`` is 0)."""
    batch = positive_int(batch, "batch")
    epochs = positive_int(epochs, "epochs")
    snapshot_every = nonneg_int(snapshot_every, "snapshot_every")
    total = epochs * -(-n // min(batch, n))
    return batch, epochs, snapshot_every, snapshot_every or total


def _held_out_set(teacher: TwoLayerReLU, seed: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """``fit_teacher``'s held-out set: ``n_test`` Gaussian inputs drawn from ``seed + 1``
    and the teacher's outputs on them."""
    x_test = _core.normal_samples((seed + 1) % 2**64, n_test * teacher.d).reshape(n_test,
                                                                                 teacher.d)
    return x_test, teacher(x_test)


def _run_of(result: tuple, every: int, name: str) -> Run:
    """The :class:`Run` of a native run's result (snapshots, losses, steps done, diverged,
    bad step, snapshots written): the snapshots it wrote, ``every`` steps apart."""
    snaps, losses, k = result[0], result[1], int(result[5])
    return Run(snaps[:k], losses[:k], np.arange(k) * every, name)


def teacher_samples(teacher: TwoLayerReLU, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` standard Gaussian inputs (seeded) and the teacher's outputs on them."""
    n = positive_int(n, "n")
    X = _core.normal_samples(seed_value(seed), n * teacher.d).reshape(n, teacher.d)
    return X, teacher(X)
