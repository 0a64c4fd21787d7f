r"""A bench for online learning experiments (seed 001's ``NNBench``, done right).

A :class:`LearningBench` holds a network, the function it should learn (the *ideal*)
and a seed. It draws reproducible facts :math:`(x, \mathrm{ideal}(x))` with
:math:`x \sim \mathcal N(0, I)`, lets the network learn them online (one plain SGD
step per fact on :math:`\tfrac12\|\mathrm{net}(x) - y\|^2`, in the C++ core), and
keeps a checkpoint of the weights so that every experiment can start from the same
point:

.. code-block:: python

    bench = LearningBench(ef.Dense(2, 2, seed=0), lambda v: v[::-1], seed=3)
    losses = bench.learn(100, lr=0.1)         # per-fact losses; the net has learned
    bench.rollback()                          # back to the weights of the checkpoint
    bench.learning_potential(100, lr=0.1)     # -log(loss of the last fact); net untouched
    result = bench.sweep_lr(np.geomspace(1e-3, 1, 20), n=100)
    lam = bench.sharpness(n=100)              # top Hessian eigenvalue of the mean loss
    plot_lr_sweep(result, sharpness=lam)      # potential vs lr, 2/lambda_max marked
    knobs = bench.knobs(n=100, lr=0.1)        # sliders for lr and n, reseed, low-pass

Gradient descent is the explicit Euler method on the gradient flow
:math:`\dot\theta = -\nabla L(\theta)`; near a minimum with Hessian :math:`H` it is
stable only for :math:`\mathrm{lr} < 2/\lambda_{\max}(H)`, which :meth:`sharpness`
measures.

Plotting (:func:`plot_lr_sweep`, :meth:`LearningBench.knobs`) imports matplotlib on
first use only.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import DivergenceError
from ._files import atomic_savez, read_npz
from ._validate import positive_int, real_array, real_scalar, seed_value
from .nn import Module

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["DivergenceWarning", "Knobs", "LearningBench", "SweepResult", "plot_lr_sweep"]

_FORMAT = "eulerflow-bench-checkpoint"
_VERSION = 1


class DivergenceWarning(RuntimeWarning):
    """Warned when a learning run measured by :class:`LearningBench` diverges (its loss
    became NaN or infinite, or its weights overflowed); the run is reported as a
    learning potential of ``-inf``."""


@dataclass(frozen=True)
class SweepResult:
    r"""The result of :meth:`LearningBench.sweep_lr`.

    Attributes
    ----------
    lrs : ndarray, shape (k,)
        The learning rates, in the order given.
    potential : ndarray, shape (k,)
        The learning potential :math:`-\log(\text{loss of the last fact})` at each
        rate; ``-inf`` where the run diverged, ``+inf`` where the last loss was 0.
    final_loss : ndarray, shape (k,)
        The loss of the last fact (taken before its step); where the run diverged,
        the loss of the fact where it did (``inf`` or ``nan``, or a finite loss if
        that fact's step overflowed the weights).
    diverged : ndarray of bool, shape (k,)
        Which runs diverged.
    n : int
        The number of facts each run learned.
    seed : int
        The seed of the facts.
    """

    lrs: np.ndarray
    potential: np.ndarray
    final_loss: np.ndarray
    diverged: np.ndarray
    n: int
    seed: int

    @property
    def best_lr(self) -> float:
        """The learning rate of the highest potential among the runs that did not
        diverge (nan if every run diverged)."""
        ok = ~self.diverged
        if not ok.any():
            return float("nan")
        return float(self.lrs[ok][np.argmax(self.potential[ok])])

    def plot(self, sharpness: float | None = None, ax: Axes | None = None) -> Figure:
        """Draws the sweep with :func:`plot_lr_sweep`; returns the Figure."""
        return plot_lr_sweep(self, sharpness=sharpness, ax=ax)


class LearningBench:
    r"""A network, the function it should learn, and reproducible facts to learn it from.

    Parameters
    ----------
    net : eulerflow.Module
        The network; it is trained in place, and ``checkpoint``/``rollback`` save and
        restore its ``parameters()``. A checkpoint is taken at construction.
    ideal : callable
        The function to learn. ``ideal(x)`` takes one input ``x`` of shape
        ``(n_in,)`` and returns the expected output, shape ``(n_out,)`` (a scalar
        when ``n_out == 1``). With ``vectorized=True`` it takes all inputs at once,
        ``X`` of shape ``(n, n_in)``, and returns shape ``(n, n_out)``.
    seed : int
        Seed of the facts: ``x ~ N(0, I)`` drawn by ``numpy.random.default_rng(seed)``.
    n_in : int, optional
        The input width, needed only when the network does not fix it
        (``net.in_features`` is None); when both are given they must agree.
    lr : float
        The learning rate used when a method is called without one.
    vectorized : bool
        Whether ``ideal`` takes a whole batch of inputs.

    Notes
    -----
    The loss of a fact is :math:`\tfrac12\|\mathrm{net}(x) - \mathrm{ideal}(x)\|^2`
    (fit's ``"half_se"`` for one sample). Facts are drawn row by row from one
    generator, so ``facts(m)`` is the first ``m`` rows of ``facts(n)`` for ``m < n``.
    """

    def __init__(self, net: Module, ideal: Callable, seed: int = 0, *, n_in: int | None = None,
                 lr: float = 0.1, vectorized: bool = False):
        if not isinstance(net, Module):
            raise TypeError(f"net must be an eulerflow network, got {type(net).__name__}")
        if not callable(ideal):
            raise TypeError(f"ideal must be a callable, got {type(ideal).__name__}")
        if not net.parameters():
            raise ValueError("net has no parameters to learn with")
        if n_in is not None:
            n_in = positive_int(n_in, "n_in")
        if net.in_features is not None:
            if n_in is not None and n_in != net.in_features:
                raise ValueError(f"n_in={n_in} but the network expects {net.in_features} "
                                 "input features")
            n_in = net.in_features
        if n_in is None:
            raise ValueError("the network does not fix its input width: pass n_in")
        self.net = net
        self.ideal = ideal
        self.vectorized = bool(vectorized)
        #: Width of the facts' inputs.
        self.n_in: int = n_in
        #: Width of the facts' expected outputs (that of the network's output).
        self.n_out: int = net.out_features if net.out_features is not None else n_in
        self.lr = real_scalar(lr, "lr", min_value=0.0, min_inclusive=False)
        self._seed = seed_value(seed)
        self._saved: list[np.ndarray] = []
        self.checkpoint()
        self.facts(1)  # check ideal now rather than in the middle of an experiment

    # --- facts ---------------------------------------------------------------
    @property
    def seed(self) -> int:
        """The seed of the facts (change it with :meth:`reseed`)."""
        return self._seed

    def reseed(self, seed: int | None = None) -> int:
        """Sets the seed of the facts (``None``: the current seed plus one, as seed 001's
        reset button); returns the new seed."""
        self._seed = self._seed + 1 if seed is None else seed_value(seed)
        return self._seed

    def facts(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` facts of the current seed: ``(X, Y)`` with ``X`` of shape
        ``(n, n_in)`` drawn from ``N(0, I)`` and ``Y = ideal(X)`` row by row, shape
        ``(n, n_out)``, both float64. Same seed, same facts."""
        n = positive_int(n, "n")
        X = np.random.default_rng(self._seed).standard_normal((n, self.n_in))
        if self.vectorized:
            Y = self._expected(self.ideal(X), (n, self.n_out), "ideal(X)", X.shape)
        else:
            Y = np.empty((n, self.n_out))
            for i in range(n):
                Y[i] = self._expected(self.ideal(X[i]), (self.n_out,), "ideal(x)", X[i].shape)
        return X, Y

    def _expected(self, value: Any, shape: tuple[int, ...], name: str,
                  x_shape: tuple[int, ...]) -> np.ndarray:
        y = real_array(value, name, np.float64, allow_empty=True)
        if y.shape != shape and not (shape[-1] == 1 and y.shape == shape[:-1]):
            raise ValueError(f"{name} must return shape {shape} for a network with "
                             f"{self.n_out} output(s), got shape {y.shape} (x shape {x_shape})")
        return y.reshape(shape)

    # --- checkpoints ---------------------------------------------------------
    def checkpoint(self, path=None) -> None:
        """Remembers the network's parameters (a copy in memory); with ``path`` also
        writes them to that .npz file, atomically (temporary file, fsync, rename)."""
        self._saved = [p.copy() for p in self.net.parameters()]
        if path is not None:
            arrays = {"format": np.array(_FORMAT),
                      "version": np.array(_VERSION, dtype=np.int64),
                      "count": np.array(len(self._saved), dtype=np.int64)}
            arrays.update({f"p{i}": p for i, p in enumerate(self._saved)})
            atomic_savez(path, arrays)

    def rollback(self, path=None) -> None:
        """Restores the parameters bit for bit: those of the last :meth:`checkpoint`,
        or with ``path`` those of a checkpoint file (which must match the network's
        parameters in number, shape and dtype; anything else is refused with
        ``ValueError``). The in-memory checkpoint is left as it was."""
        params = self.net.parameters()
        saved = self._saved if path is None else self._read(path, params)
        for p, s in zip(params, saved, strict=True):
            np.copyto(p, s)

    def _read(self, path, params: list[np.ndarray]) -> list[np.ndarray]:
        what = "eulerflow bench checkpoint"
        data = read_npz(path, what)
        fmt = data.get("format")
        if fmt is None or fmt.shape != () or str(fmt) != _FORMAT:
            raise ValueError(f"{path} is not a valid {what}: format is not {_FORMAT!r}")
        version = data.get("version")
        if version is None or version.shape != () or int(version) != _VERSION:
            raise ValueError(f"{path} is not a valid {what}: unknown version")
        expected = {"format", "version", "count"} | {f"p{i}" for i in range(len(params))}
        if set(data) != expected or int(data["count"]) != len(params):
            raise ValueError(f"{path} holds {len(set(data) - {'format', 'version', 'count'})} "
                             f"parameter arrays but the network has {len(params)}")
        out = []
        for i, p in enumerate(params):
            s = data[f"p{i}"]
            if s.shape != p.shape or s.dtype != p.dtype:
                raise ValueError(f"{path}: parameter p{i} has shape {s.shape} and dtype "
                                 f"{s.dtype}, the network's has shape {p.shape} and dtype "
                                 f"{p.dtype}")
            out.append(s)
        return out

    # --- learning ------------------------------------------------------------
    def _lr(self, lr) -> float:
        if lr is None:
            return self.lr
        return real_scalar(lr, "lr", min_value=0.0, min_inclusive=False)

    def _run(self, X: np.ndarray, Y: np.ndarray, lr: float) -> tuple[np.ndarray, int]:
        """One SGD step per fact in the core; returns the losses up to the first
        non-finite one and the index of the fact where the run diverged (-1 if it did
        not): the first non-finite loss, or the last fact if its step overflowed the
        weights. The network keeps the result."""
        dt = self.net.dtype
        X = np.ascontiguousarray(X, dtype=dt)
        Y = np.ascontiguousarray(Y, dtype=dt)
        losses, bad = self.net._native().learn(X, Y, lr)
        bad = int(bad)
        if bad < 0 and not all(np.isfinite(p).all() for p in self.net.parameters()):
            bad = len(losses) - 1
        return (losses if bad < 0 else losses[: bad + 1]), bad

    def learn(self, n: int = 100, lr: float | None = None) -> np.ndarray:
        """Learns the first ``n`` facts online, one plain SGD step of rate ``lr`` per
        fact (``net.learn``), and returns the ``n`` per-fact losses, each taken before
        its step. The network keeps what it learned (see :meth:`rollback`). A loss
        that becomes NaN or infinite raises :class:`eulerflow.DivergenceError`."""
        lr = self._lr(lr)
        X, Y = self.facts(n)
        losses, bad = self._run(X, Y, lr)
        if bad >= 0:
            raise DivergenceError(f"online learning diverged at fact {bad} of {n}: "
                                  f"{_what_diverged(losses[bad])}; try a smaller learning rate "
                                  f"than lr={lr}", epoch=0, batch=bad, loss=float(losses[bad]))
        return losses

    def _potential(self, X: np.ndarray, Y: np.ndarray, lr: float) -> tuple[float, float, int]:
        """(potential, final loss, index of divergence or -1), rolling back afterwards."""
        stash = [p.copy() for p in self.net.parameters()]
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                losses, bad = self._run(X, Y, lr)
        finally:
            for p, s in zip(self.net.parameters(), stash, strict=True):
                np.copyto(p, s)
        if bad >= 0:
            return -math.inf, float(losses[bad]), bad
        final = float(losses[-1])
        return _potential_of(final), final, -1

    def learning_potential(self, n: int = 100, lr: float | None = None) -> float:
        """How well ``n`` facts are learned at rate ``lr``: ``-log`` of the loss of the
        last fact (natural log, loss taken before its step), as seed 001. Higher is
        better; ``+inf`` if that loss is exactly 0. The network's parameters are left
        as they were. Never NaN: a run whose loss becomes NaN or infinite (or whose
        weights overflow) gives ``-inf`` and a :class:`DivergenceWarning` naming
        ``lr``."""
        lr = self._lr(lr)
        X, Y = self.facts(n)
        potential, loss, bad = self._potential(X, Y, lr)
        if bad >= 0:
            warnings.warn(f"online learning diverged at lr={lr:g} (fact {bad} of {n}: "
                          f"{_what_diverged(loss)}); learning potential -inf",
                          DivergenceWarning, stacklevel=2)
        return potential

    def sweep_lr(self, lrs, n: int = 100) -> SweepResult:
        """The learning potential of ``n`` facts at every learning rate in ``lrs``
        (1-D, positive), each run starting from the current parameters, which are
        left as they were. Diverging runs give ``-inf`` and one
        :class:`DivergenceWarning` naming their rates. Returns a :class:`SweepResult`."""
        lrs_arr = real_array(lrs, "lrs", np.float64, ndim=(1,), allow_empty=True)
        if lrs_arr.size == 0:
            raise ValueError(f"lrs is empty (shape {lrs_arr.shape}): give at least one rate")
        if (lrs_arr <= 0).any():
            raise ValueError(f"lrs must all be > 0, got {lrs_arr[lrs_arr <= 0][0]:g} "
                             f"(lrs shape {lrs_arr.shape})")
        X, Y = self.facts(n)
        runs = self._ensemble_runs(X, Y, lrs_arr)
        if runs is None:  # a network the lanes cannot hold: one run per rate
            runs = [self._potential(X, Y, float(lr)) for lr in lrs_arr]
        potential = np.array([r[0] for r in runs])
        final = np.array([r[1] for r in runs])
        diverged = np.array([r[2] >= 0 for r in runs], dtype=bool)
        if diverged.any():
            bad = ", ".join(f"{lr:g}" for lr in lrs_arr[diverged])
            warnings.warn(f"online learning diverged at lr={bad}; learning potential -inf "
                          "there", DivergenceWarning, stacklevel=2)
        return SweepResult(lrs_arr.copy(), potential, final, diverged, n, self._seed)

    def _ensemble_runs(self, X: np.ndarray, Y: np.ndarray, lrs: np.ndarray):
        """Every rate's run as one member of an :class:`eulerflow.Ensemble` (one native
        call, each member bit-identical to its own run), as ``_potential`` would give
        them; None when the network is not made of float64 Dense and Activation layers."""
        from .ensemble import Ensemble, EnsembleDivergenceWarning

        try:
            ens = Ensemble(lambda: copy.deepcopy(self.net), lrs.size)
        except (TypeError, ValueError):
            return None
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", EnsembleDivergenceWarning)
            try:
                hist = ens.learn((X, Y), lrs)
            except DivergenceError as exc:  # every rate diverged
                hist = exc.history
        runs = []
        for i, member in enumerate(ens.members):
            bad = int(hist.bad_epoch[i])
            if bad < 0 and not all(np.isfinite(p).all() for p in member.parameters()):
                bad = X.shape[0] - 1  # the last step overflowed the weights
            if bad >= 0:
                runs.append((-math.inf, float(hist.loss[bad, i]), bad))
            else:
                final = float(hist.loss[-1, i])
                runs.append((_potential_of(final), final, -1))
        return runs

    # --- sharpness -----------------------------------------------------------
    def loss_gradient(self, X, Y) -> tuple[float, np.ndarray]:
        r"""The mean loss :math:`L = \frac1n \sum_i \tfrac12\|\mathrm{net}(x_i) - y_i\|^2`
        over the rows of ``X`` (n, n_in) and ``Y`` (n, n_out), and its exact gradient
        with respect to all parameters, flattened in ``parameters()`` order (one
        forward and one backward pass of the network)."""
        X = real_array(X, "X", self.net.dtype, ndim=(2,))
        out = self.net(X)
        Y = real_array(Y, "Y", self.net.dtype, ndim=(2,))
        if Y.shape != out.shape:
            raise ValueError(f"Y must have shape {out.shape} to match the network's "
                             f"output, got {Y.shape}")
        n = out.shape[0]
        err = out - Y
        self.net.backward(err / n)
        grad = np.concatenate([g.ravel() for g in self.net.gradients()]).astype(np.float64)
        loss = 0.5 * float(np.sum(err.astype(np.float64) ** 2)) / n
        return loss, grad

    def sharpness(self, n: int = 100, iters: int = 1000, tol: float = 1e-10, seed: int = 0,
                  eps: float | None = None, return_vector: bool = False):
        r"""The top eigenvalue :math:`\lambda_{\max}` of the Hessian of the mean loss
        :math:`L(\theta) = \frac1n \sum_{i<n} \tfrac12\|\mathrm{net}(x_i) - y_i\|^2`
        over the first ``n`` facts (the loss of ``fit(loss="half_se")`` with one
        full batch), with respect to all parameters.

        Power iteration on Hessian-vector products, each by a central difference of
        exact gradients (forward and backward passes of the network):

        .. math:: H v \approx \frac{\nabla L(\theta + h v) - \nabla L(\theta - h v)}{2h},
                  \qquad h = \varepsilon \max(1, \|\theta\|),

        with ``eps`` :math:`= \varepsilon` (default: the cube root of the dtype's
        machine epsilon), exact up to rounding when the loss is quadratic. The
        iteration stops when the Rayleigh quotient changes by at most ``tol``
        relative, or after ``iters`` products (then a ``RuntimeWarning``). Power
        iteration finds the eigenvalue of largest magnitude; when that one is
        negative, a second iteration on :math:`H - \lambda I` finds the largest.
        The start vector is drawn from ``numpy.random.default_rng(seed)``.

        Full-batch gradient descent on :math:`L` is the explicit Euler method on the
        gradient flow and is stable near a minimum only for
        :math:`\mathrm{lr} < 2/\lambda_{\max}`. The parameters are left bit for bit as
        they were.

        Returns
        -------
        float, or (float, ndarray)
            :math:`\lambda_{\max}`; with ``return_vector=True`` also its unit
            eigenvector, flattened in ``parameters()`` order.
        """
        iters = positive_int(iters, "iters")
        tol = real_scalar(tol, "tol", min_value=0.0)
        seed = seed_value(seed)
        X, Y = self.facts(n)
        params = self.net.parameters()
        theta = [p.copy() for p in params]
        flat = np.concatenate([t.ravel() for t in theta]).astype(np.float64)
        if eps is None:
            eps = float(np.cbrt(np.finfo(self.net.dtype).eps))
        eps = real_scalar(eps, "eps", min_value=0.0, min_inclusive=False)
        h = eps * max(1.0, float(np.linalg.norm(flat)))
        sizes = [p.size for p in params]
        offsets = np.cumsum([0] + sizes)

        def set_params(vec: np.ndarray) -> None:
            for i, p in enumerate(params):
                p[...] = vec[offsets[i]:offsets[i + 1]].reshape(p.shape)

        def hvp(v: np.ndarray) -> np.ndarray:
            set_params(flat + h * v)
            g_plus = self.loss_gradient(X, Y)[1]
            set_params(flat - h * v)
            g_minus = self.loss_gradient(X, Y)[1]
            return (g_plus - g_minus) / (2 * h)

        rng = np.random.default_rng(seed)
        try:
            lam, vec, ok = _power_iteration(hvp, rng.standard_normal(flat.size), iters, tol)
            if ok and lam < 0:
                mu, vec, ok = _power_iteration(lambda v: hvp(v) - lam * v,
                                               rng.standard_normal(flat.size), iters, tol)
                lam = mu + lam
        finally:
            for p, t in zip(params, theta, strict=True):
                np.copyto(p, t)
        if not ok:
            warnings.warn(f"sharpness: power iteration did not reach tol={tol:g} in "
                          f"iters={iters} Hessian-vector products; lambda_max ~ {lam:.6g}",
                          RuntimeWarning, stacklevel=2)
        return (lam, vec) if return_vector else lam

    # --- pictures ------------------------------------------------------------
    def knobs(self, n: int = 100, lr: float | None = None, *, lr_range=None,
              n_max: int | None = None, smooth: float = 3.0) -> Knobs:
        """The interactive knobs plot of seed 001; see :class:`Knobs`."""
        return Knobs(self, n=n, lr=lr, lr_range=lr_range, n_max=n_max, smooth=smooth)

    def __repr__(self) -> str:
        return (f"LearningBench({self.net!r}, ideal={getattr(self.ideal, '__name__', 'ideal')}, "
                f"seed={self.seed}, n_in={self.n_in}, n_out={self.n_out}, lr={self.lr:g})")


def _potential_of(final_loss: float) -> float:
    """Seed 001's learning potential -ln(loss of the last fact); +inf for a zero loss."""
    return math.inf if final_loss == 0.0 else -math.log(final_loss)


def _what_diverged(loss: float) -> str:
    """How a run diverged, from the loss of the fact where it did."""
    if np.isfinite(loss):
        return f"its step overflowed the weights (loss before it {loss:.6g})"
    return f"the loss became {loss}"


def _power_iteration(matvec: Callable[[np.ndarray], np.ndarray], v0: np.ndarray, iters: int,
                     tol: float) -> tuple[float, np.ndarray, bool]:
    """The eigenvalue of largest magnitude of a symmetric operator, its unit vector,
    and whether the Rayleigh quotient settled to ``tol`` (relative) within ``iters``."""
    v = v0 / np.linalg.norm(v0)
    lam_prev = math.nan
    lam = 0.0
    for _ in range(iters):
        w = matvec(v)
        lam = float(v @ w)
        norm = float(np.linalg.norm(w))
        if norm == 0.0:  # v is in the null space; so is everything it reaches
            return 0.0, v, True
        v = w / norm
        if abs(lam - lam_prev) <= tol * abs(lam):
            return lam, v, True
        lam_prev = lam
    return lam, v, False


# ----------------------------------------------------------------------------- plots


def plot_lr_sweep(result: SweepResult, sharpness: float | None = None,
                  ax: Axes | None = None) -> Figure:
    r"""The learning potential :math:`-\log(\text{loss of the last fact})` against the
    learning rate (log scale), from :meth:`LearningBench.sweep_lr`.

    Diverged runs (potential ``-inf``) are marked with red crosses at the bottom of
    the axes. With ``sharpness`` :math:`= \lambda_{\max}` (from
    :meth:`LearningBench.sharpness`), a vertical line marks :math:`2/\lambda_{\max}`,
    the largest stable rate of full-batch gradient descent on the mean loss. Draws
    into ``ax`` when given, else a new figure; returns the Figure.
    """
    if not isinstance(result, SweepResult):
        raise TypeError(f"result must be a SweepResult, got {type(result).__name__}")
    if sharpness is not None:
        if isinstance(sharpness, bool) or not isinstance(sharpness, numbers.Real):
            raise TypeError(f"sharpness must be a real number, got {type(sharpness).__name__}")
        if not (math.isfinite(sharpness) and sharpness > 0):
            raise ValueError(f"sharpness must be a finite number > 0, got {sharpness}")
    from .plot import _new_axes

    fig, ax = _new_axes(ax, (6.5, 4.2))
    lrs, pot = result.lrs, result.potential
    order = np.argsort(lrs)
    shown = np.where(np.isfinite(pot), pot, np.nan)[order]
    ax.plot(lrs[order], shown, "o-", color="C0", ms=4, lw=1.4,
            label=f"learning potential ({result.n} facts)")
    ax.set_xscale("log")
    if result.diverged.any():
        ax.plot(lrs[result.diverged], np.zeros(int(result.diverged.sum())), "x", color="C3",
                ms=8, mew=2, transform=ax.get_xaxis_transform(), clip_on=False,
                label="diverged (potential -inf)")
    if sharpness is not None:
        ax.axvline(2.0 / sharpness, color="k", ls="--", lw=1.2,
                   label=rf"$2/\lambda_{{\max}}$ = {2.0 / sharpness:.3g} (full-batch GD limit)")
    finite = shown[np.isfinite(shown)]
    symlog = finite.size and (finite.max() - finite.min()) > 200
    if symlog:  # a blow-up to huge losses would squash the peak: linear near 0, log beyond
        ax.set_yscale("symlog", linthresh=20.0)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(r"learning potential $-\ln(\mathrm{loss\ of\ last\ fact})$"
                  + (" (symlog)" if symlog else ""))
    ax.set_title(f"Online learning: potential vs learning rate (seed {result.seed})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def _weights_array(net: Module) -> np.ndarray:
    """All Dense layers as ``[W^T; b]`` side by side (bias as the last row, NaN padding
    and one NaN column between layers), as :func:`eulerflow.plot.weights_image`."""
    from .plot import _dense_parameters

    pairs = _dense_parameters(net)
    n_rows = max(W.shape[1] for W, _ in pairs) + 1
    blocks = []
    for W, b in pairs:
        block = np.full((n_rows, W.shape[0]), np.nan)
        block[: W.shape[1]] = W.T
        if b is not None:
            block[-1] = b
        if blocks:
            blocks.append(np.full((n_rows, 1), np.nan))
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


class Knobs:
    r"""Seed 001's interactive knobs plot: online learning redrawn as you turn knobs.

    Built by :meth:`LearningBench.knobs`. The figure shows the per-fact losses of
    ``bench.learn(n, lr)`` on a log scale (title: the learning rate, the number of
    facts and the largest loss), and the network's Dense weights after learning as
    an image (``[W^T; b]`` per layer, bias last). The knobs:

    - ``lr_slider``: :math:`\log_{10}` of the learning rate, over ``lr_range``
      (default ``(lr/100, 100 lr)``); its text shows the rate itself;
    - ``n_slider``: the number of facts, 1 to ``n_max`` (default ``max(1000, n)``);
    - ``reseed_button``: new facts (the bench's seed plus one);
    - ``filter_radio``: ``"raw"`` or ``"low-pass"``, a Gaussian low-pass of
      :math:`\log_{10}` of the losses, ``smooth`` facts wide
      (:func:`eulerflow.plot.gaussian_lowpass`, NumPy only).

    Every change rolls the network back to the bench's checkpoint and learns again,
    so each curve starts from the same weights; afterwards the network holds the
    weights learned in the run shown (``bench.rollback()`` restores the checkpoint).
    A diverging run is drawn up to its last finite loss and named in the title; the
    loss axis stops at 1e200.
    Keep a reference to this object while the figure is in use: the widgets respond
    only while they are alive. Call ``matplotlib.pyplot.show()`` to interact.
    """

    #: The curves the radio buttons choose between.
    FILTERS = ("raw", "low-pass")

    def __init__(self, bench: LearningBench, n: int = 100, lr: float | None = None, *,
                 lr_range=None, n_max: int | None = None, smooth: float = 3.0):
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FormatStrFormatter
        from matplotlib.widgets import Button, RadioButtons, Slider

        if not isinstance(bench, LearningBench):
            raise TypeError(f"bench must be a LearningBench, got {type(bench).__name__}")
        n = positive_int(n, "n")
        lr = bench._lr(lr)
        n_max = max(1000, n) if n_max is None else positive_int(n_max, "n_max")
        if n > n_max:
            raise ValueError(f"n={n} is larger than n_max={n_max}")
        if lr_range is None:
            lr_range = (lr / 100, lr * 100)
        try:
            lo, hi = lr_range
        except (TypeError, ValueError):
            raise ValueError(f"lr_range must be a pair (low, high), got {lr_range!r}") from None
        lo = real_scalar(lo, "lr_range[0]", min_value=0.0, min_inclusive=False)
        hi = real_scalar(hi, "lr_range[1]", min_value=lo, min_inclusive=False)
        if not lo <= lr <= hi:
            raise ValueError(f"lr={lr:g} lies outside lr_range=({lo:g}, {hi:g})")
        self.smooth = real_scalar(smooth, "smooth", min_value=0.0)
        self.bench = bench
        self.filter = "raw"
        #: The per-fact losses of the run shown (up to the first non-finite one).
        self.losses = np.empty(0)
        #: Index of the fact whose loss became non-finite, or None.
        self.diverged_at: int | None = None

        fig = plt.figure(figsize=(10.0, 6.4))
        self.figure = fig
        self.ax = fig.add_axes((0.42, 0.31, 0.54, 0.57))
        self.weights_ax = fig.add_axes((0.05, 0.53, 0.2, 0.35))
        self._cbar_ax = fig.add_axes((0.26, 0.53, 0.012, 0.35))
        radio_ax = fig.add_axes((0.05, 0.27, 0.2, 0.14))
        lr_ax = fig.add_axes((0.42, 0.15, 0.44, 0.035))
        n_ax = fig.add_axes((0.42, 0.09, 0.44, 0.035))
        button_ax = fig.add_axes((0.81, 0.015, 0.14, 0.05))

        (self.line,) = self.ax.plot([], [], color="C0", lw=1.6)
        self.ax.set_yscale("log")
        self.ax.set_xlabel("fact (one SGD step each)")
        self.ax.set_ylabel(r"loss $\|\mathrm{net}(x) - y\|^2/2$ (log scale)")
        self.ax.grid(True, which="major", alpha=0.3)
        self._image = self.weights_ax.imshow(_weights_array(bench.net), cmap="RdBu_r",
                                             aspect="auto")
        self.weights_ax.set_facecolor("0.82")
        self.weights_ax.set_title("weights $[W^T; b]$ after learning", fontsize="small")
        self.weights_ax.set_xlabel("output units, by layer", fontsize="small")
        self.weights_ax.set_ylabel("inputs, bias last", fontsize="small")
        self.weights_ax.set_xticks([])
        self.weights_ax.set_yticks([])
        fig.colorbar(self._image, cax=self._cbar_ax, format=FormatStrFormatter("%.2g"))
        self._cbar_ax.tick_params(labelsize="x-small")

        self.lr_slider = Slider(lr_ax, "learning rate", math.log10(lo), math.log10(hi),
                                valinit=math.log10(lr))
        self.n_slider = Slider(n_ax, "facts n", 1, n_max, valinit=n, valstep=1, valfmt="%d")
        self.reseed_button = Button(button_ax, "reseed facts", hovercolor="0.95")
        self.filter_radio = RadioButtons(radio_ax, self.FILTERS, active=0)
        radio_ax.set_title("loss curve", fontsize="small")

        self.lr_slider.on_changed(self._on_slider)
        self.n_slider.on_changed(self._on_slider)
        self.reseed_button.on_clicked(self.reseed)
        self.filter_radio.on_clicked(self.set_filter)
        self.update()

    @property
    def lr(self) -> float:
        """The learning rate of the slider, ``10 ** lr_slider.val``."""
        return float(10.0 ** self.lr_slider.val)

    @property
    def n(self) -> int:
        """The number of facts of the slider."""
        return int(round(self.n_slider.val))

    def curve(self) -> np.ndarray:
        """The losses as drawn: the raw losses of the run, or their low-pass."""
        v = self.losses[np.isfinite(self.losses)]
        if self.filter == "raw" or v.size == 0:
            return v.copy()
        from .plot import gaussian_lowpass

        positive = v > 0
        floor = v[positive].min() if positive.any() else 1e-300
        return 10.0 ** gaussian_lowpass(np.log10(np.maximum(v, floor)), self.smooth)

    def update(self, _value: Any = None) -> None:
        """Rolls the network back to the checkpoint, learns ``n`` facts at ``lr`` and
        redraws (the callback of every knob)."""
        bench, lr, n = self.bench, self.lr, self.n
        bench.rollback()
        X, Y = bench.facts(n)
        with np.errstate(over="ignore", invalid="ignore"):
            losses, bad = bench._run(X, Y, lr)
        self.losses = losses
        self.diverged_at = bad if bad >= 0 else None
        y = self.curve()
        x = np.arange(y.size)
        self.line.set_data(x, np.where(y > 0, y, np.nan))
        self.ax.set_xlim(0, max(n - 1, 1))
        positive = y[y > 0]
        if positive.size:
            low, high = float(positive.min()), float(positive.max())
            # a log axis needs finite decades on both sides: keep clear of overflow
            self.ax.set_ylim(max(low / 1.5, 1e-200), min(high * 1.5, 1e200))
        big = float(np.max(losses[np.isfinite(losses)], initial=-np.inf))
        head = f"Online learning, seed {bench.seed}: lr = {lr:.3g}, n = {n}"
        if self.diverged_at is None:
            self.ax.set_title(f"{head}\nmax loss {big:.4g}", color="black")
        else:
            self.ax.set_title(f"{head}\ndiverged at fact {bad}; max finite loss {big:.4g}",
                              color="C3")
        self.lr_slider.valtext.set_text(f"{lr:.3g}")
        image = _weights_array(bench.net)
        finite = image[np.isfinite(image)]
        self._image.set_data(np.where(np.isfinite(image), image, np.nan))
        vmax = float(np.abs(finite).max()) if finite.size else 1.0
        self._image.set_clim(-(vmax or 1.0), vmax or 1.0)
        self.figure.canvas.draw_idle()

    def _on_slider(self, _value: float) -> None:
        self.update()

    def reseed(self, _event: Any = None) -> None:
        """New facts: the bench's seed plus one, then :meth:`update` (the reseed button)."""
        self.bench.reseed()
        self.update()

    def set_filter(self, label: str) -> None:
        """``"raw"`` or ``"low-pass"``, then :meth:`update` (the radio buttons)."""
        if label not in self.FILTERS:
            raise ValueError(f"filter must be one of {self.FILTERS}, got {label!r}")
        self.filter = label
        self.update()

    def save(self, path, dpi: int = 100) -> None:
        """Writes the figure to ``path`` (PNG unless the suffix names another format)."""
        self.figure.savefig(path, dpi=dpi)

    def close(self) -> None:
        """Closes the figure."""
        import matplotlib.pyplot as plt

        plt.close(self.figure)
