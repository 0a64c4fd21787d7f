"""Ensembles: many copies of one small model trained in one native call.

What ``jax.vmap`` gives JAX users: ``Ensemble(make, n)`` builds ``n`` members with
``make(i)`` (each its own seed, initial scale, ...) and ``fit`` trains them all at
once, member ``i`` with its own learning rate ``lr[i]`` and shuffling seed
``seed[i]``. Inside the core every array holds the ``n`` members side by side, one
per SIMD lane, so the tiny work of one member (a 2 x 2 field on one window) runs
as wide vector operations. Each member goes through exactly the operations of its
own separate ``fit``, in the same order: it ends **bit-identical** to it.

Members are either :class:`eulerflow.NeuralODE` models with fixed-step methods,
trained by backprop through the solver with :meth:`Ensemble.fit`, or float64 networks,
trained online on the same facts with :meth:`Ensemble.learn` (seed 001's ``learn``:
one SGD step per fact), both made of ``Dense`` and ``Activation`` layers (``ef.Dense``,
``ef.mlp``, a ``Sequential`` of those), in lanes. Network members also train by
mini-batches with :meth:`Ensemble.fit` (``fit(X, Y, ...)``, as :meth:`Module.fit`): there
the batch already fills the SIMD lanes inside each member, so the members run whole on a
pool of threads instead, one native call for all of them, each member bit-identical to
its own ``fit`` whatever the number of threads.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from . import _core
from ._errors import DivergenceError
from ._training import check_callbacks, epoch_hook
from ._validate import positive_int, real_array, seed_value
from .history import History
from .nn import Module
from .node import FIXED_METHODS, NeuralODE, _training_options
from .optim import Optimizer

__all__ = ["Ensemble", "EnsembleDivergenceWarning", "EnsembleHistory"]


class EnsembleDivergenceWarning(RuntimeWarning):
    """Some members of an ensemble diverged (the others trained on)."""


@dataclass(frozen=True)
class EnsembleHistory:
    """The record of :meth:`Ensemble.fit`.

    Attributes
    ----------
    loss : ndarray, shape (epochs, n)
        ``loss[e, i]``: member i's mean window loss of epoch e (NaN from the epoch a
        member diverged in).
    lr : ndarray, shape (n,)
        Each member's learning rate.
    seeds : ndarray, shape (n,)
        Each member's shuffling seed.
    bad_epoch : ndarray, shape (n,)
        The epoch a member diverged in, or -1.
    metrics : dict
        Network members trained with ``loss="cross_entropy"``: ``"accuracy"`` of shape
        (epochs, n).
    """

    loss: np.ndarray
    lr: np.ndarray
    seeds: np.ndarray
    bad_epoch: np.ndarray
    metrics: dict = field(default_factory=dict)

    @property
    def diverged(self) -> np.ndarray:
        """Boolean mask of the members that diverged."""
        return self.bad_epoch >= 0

    def member(self, i: int) -> History:
        """Member ``i``'s losses as a :class:`~eulerflow.History` (the epochs before it
        diverged)."""
        stop = int(self.bad_epoch[i]) if self.bad_epoch[i] >= 0 else self.loss.shape[0]
        return History(self.loss[:stop, i], {k: v[:stop, i] for k, v in self.metrics.items()})


def _call_make(make: Callable, i: int):
    try:
        takes_index = len(inspect.signature(make).parameters) >= 1
    except (TypeError, ValueError):
        takes_index = True
    return make(i) if takes_index else make()


def _lane_layout(field) -> tuple[list[tuple], list[np.ndarray]]:
    """The core's lanes description of a field: layers with parameter offsets."""
    spec, params, width, offset = [], [], field.in_features, 0
    seen = set()
    for item in field._items():
        if item[0] == 0:  # Dense: (0, W, b, gW, gb, l1, l2)
            W, b = item[1], item[2]
            if id(W) in seen:
                raise ValueError("ensemble members cannot share a Dense layer between two places")
            seen.add(id(W))
            n_out, n_in = W.shape
            w_off = offset
            offset += W.size
            params.append(W)
            b_off = offset
            if b is not None:
                offset += b.size
                params.append(b)
            spec.append(("dense", n_in, n_out, b is not None, w_off, b_off))
            width = n_out
        elif item[0] == 1:  # Activation: (1, code, p1, p2)
            spec.append(("act", int(item[1]), float(item[2]), float(item[3]), int(width)))
        else:
            raise ValueError("ensemble fields are made of Dense and Activation layers only, got "
                             f"{field!r}")
    return spec, params


class Ensemble:
    """``n`` models built by ``make(i)`` (or ``make()``), trained together.

    Parameters
    ----------
    make : callable
        Builds member ``i``: ``make(i)`` if it takes an argument, else ``make()``.
        Every member must have the same architecture and solver settings.
    n : int
        The number of members.

    Attributes
    ----------
    members : list
        The models; ``fit`` trains them in place.
    """

    def __init__(self, make: Callable, n: int):
        if not callable(make):
            raise TypeError(f"make must be callable, got {type(make).__name__}")
        n = positive_int(n, "n")
        self.members = [_call_make(make, i) for i in range(n)]
        first = self.members[0]
        if isinstance(first, NeuralODE):
            kind = NeuralODE
        elif isinstance(first, Module):
            kind = Module
            if first.dtype != np.float64:
                raise TypeError(f"ensemble networks must be float64, got {first.dtype}")
        else:
            raise TypeError("Ensemble members must be eulerflow.NeuralODE models or eulerflow "
                            f"networks, got {type(first).__name__}")
        self._spec, params = _lane_layout(self._net(first))
        shapes = [p.shape for p in params]
        settings = self._settings(first)
        for i, m in enumerate(self.members[1:], start=1):
            if not isinstance(m, kind):
                raise TypeError(f"member {i} is a {type(m).__name__}, not a {kind.__name__}")
            spec, ps = _lane_layout(self._net(m))
            same = (spec == self._spec and [p.shape for p in ps] == shapes
                    and self._settings(m) == settings)
            if not same:
                raise ValueError(f"member {i} ({m!r}) differs from member 0 ({first!r}): an "
                                 "ensemble needs one architecture and one solver setting")
        if len({id(self._net(m)) for m in self.members}) < n:
            raise ValueError("make returned the same model for two members: build a new one "
                             "in every call (e.g. lambda i: ef.mlp([2, 8, 1], seed=i))")
        if kind is NeuralODE and first.method not in FIXED_METHODS:
            raise ValueError(f"ensembles train with the fixed-step methods {FIXED_METHODS}, got "
                             f"{first.method!r}")

    @staticmethod
    def _net(m):
        """The network of a member: a NeuralODE's field, or the member itself."""
        return m.field if isinstance(m, NeuralODE) else m

    @staticmethod
    def _settings(m) -> tuple:
        if not isinstance(m, NeuralODE):
            return ()
        return (m.method, m.step_size, m.steps_per_interval, m.max_steps)

    def _pack(self) -> tuple[np.ndarray, list[list[np.ndarray]]]:
        """The members' parameters side by side: (n_params, n), parameter after parameter."""
        member_params = [self._net(m).parameters() for m in self.members]
        P = np.ascontiguousarray(np.concatenate(
            [np.stack([ps[j].ravel() for ps in member_params], axis=1).ravel()
             for j in range(len(member_params[0]))]))
        return P, member_params

    def _unpack(self, P: np.ndarray, member_params: list[list[np.ndarray]]) -> None:
        """The members' own arrays take the values of the lanes."""
        n, off = len(self), 0
        for j, p in enumerate(member_params[0]):
            block = P[off:off + p.size * n].reshape(p.size, n)
            for i, ps in enumerate(member_params):
                ps[j][...] = block[:, i].reshape(ps[j].shape)
            off += p.size * n

    def _diverged(self, bad: np.ndarray, lrs: np.ndarray, hist, where: str) -> None:
        n = len(self)
        if np.all(bad >= 0):
            raise DivergenceError(f"every member of the ensemble diverged (learning rates "
                                  f"{lrs.min():g} to {lrs.max():g})", epoch=int(bad.min()),
                                  history=hist)
        if np.any(bad >= 0):
            idx = np.flatnonzero(bad >= 0)
            detail = ", ".join(f"member {i} (lr={lrs[i]:g}) at {where} {bad[i]}" for i in idx[:8])
            warnings.warn(f"{idx.size} of {n} ensemble members diverged: {detail}"
                          + (" ..." if idx.size > 8 else ""), EnsembleDivergenceWarning,
                          stacklevel=3)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Ensemble({self.members[0]!r}, n={len(self)})"

    def _per_member(self, value, name: str, kind) -> np.ndarray:
        n = len(self)
        if np.ndim(value) == 0:
            return np.full(n, kind(value))
        arr = np.asarray(value)
        if arr.shape != (n,):
            raise ValueError(f"{name} must be one value or one per member ({n}), got shape "
                             f"{arr.shape}")
        return np.array([kind(v) for v in arr])

    def fit(self, *args, **kwargs) -> EnsembleHistory:
        """Trains every member in one native call, member i bit-identical to its own
        separate training. The arguments follow the members' own ``fit``:

        - NeuralODE members: ``fit(data, t, epochs=500, optimizer=None, window=1,
          batch_size=1, seed=0, lr=None, callbacks=(), progress=None)``, see
          :meth:`_fit_nodes`;
        - network members: ``fit(X, Y, loss="mse", optimizer=None, epochs=1,
          batch_size=32, shuffle=True, seed=0, lr=None, l1=0.0, l2=0.0, threads=None)``,
          see :meth:`_fit_networks`.
        """
        if isinstance(self.members[0], NeuralODE):
            return self._fit_nodes(*args, **kwargs)
        return self._fit_networks(*args, **kwargs)

    def _fit_networks(self, X, Y, loss: str = "mse", optimizer: Optimizer | None = None,
                      epochs: int = 1, batch_size: int = 32, shuffle: bool = True, seed=0,
                      lr=None, l1: float = 0.0, l2: float = 0.0,
                      threads: int | None = None) -> EnsembleHistory:
        """Trains every network member as :meth:`Module.fit` would, on the same ``X``,
        ``Y``: member i with learning rate ``lr[i]`` (one value or one per member;
        default the optimizer's) and shuffling seed ``seed[i]``, each from a fresh
        optimizer state, and ends bit-identical to ``members[i].fit(X, Y, loss,
        optimizer_with_lr_i, epochs, batch_size, shuffle, seed_i, l1, l2)``. The members
        run on ``threads`` threads (default: the cores this process may use), each
        member whole on one thread (its wide layers too: with more than one thread the
        members do not use the pool of :func:`~eulerflow.set_num_threads`), in one native
        call with the GIL released. A member
        whose loss becomes non-finite stops there as its own fit would (an
        :class:`EnsembleDivergenceWarning` names it; :class:`~eulerflow.DivergenceError`
        when all diverge). Returns an :class:`EnsembleHistory` (``metrics["accuracy"]``
        with ``loss="cross_entropy"``)."""
        first = self.members[0]
        X, Yc, cfg, optimizer = first._fit_setup(X, Y, loss, optimizer, epochs, batch_size,
                                                 shuffle, l1, l2)
        lrs = self._per_member(optimizer.lr if lr is None else lr, "lr", float)
        if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
            bad = lrs[(lrs < 0) | ~np.isfinite(lrs)]
            raise ValueError(f"lr must be non-negative and finite, got {bad[:3]}")
        seeds = self._per_member(seed, "seed", seed_value).astype(np.uint64)
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                os.cpu_count() or 1)
        threads = positive_int(threads, "threads")
        nets = [m._native() for m in self.members]
        losses, accs, done, bad = _core.fit_members(
            nets, X, Yc, cfg, optimizer._config(), np.ascontiguousarray(lrs, dtype=np.float64),
            np.ascontiguousarray(seeds), threads)
        epochs_run = int(done.max(initial=0))
        loss_table = np.full((epochs_run, len(self)), np.nan)
        acc_table = np.full((epochs_run, len(self)), np.nan)
        for i, ran in enumerate(done):
            loss_table[:ran, i] = losses[i, :ran]
            acc_table[:ran, i] = accs[i, :ran]
        metrics = {"accuracy": acc_table} if loss == "cross_entropy" else {}
        hist = EnsembleHistory(loss_table, lrs, seeds.astype(np.int64), bad, metrics)
        self._diverged(bad, lrs, hist, "epoch")
        return hist

    def _fit_nodes(self, data, t, epochs: int = 500, optimizer: Optimizer | None = None,
                   window: int = 1, batch_size: int = 1, seed=0, lr=None,
                   callbacks: Iterable[Callable] = (), progress=None) -> EnsembleHistory:
        """Trains every member as :meth:`NeuralODE.fit` would (``gradient="backprop"``)
        in one native call.

        ``optimizer`` gives the update rule (default ``SGD(lr=1e-2, momentum=0.95)``)
        and each member starts from a fresh optimizer state; ``lr`` (one value or one
        per member) overrides its learning rate; ``seed`` (one or one per member)
        seeds each member's shuffling. Member i ends bit-identical to
        ``members[i].fit(data, t, epochs, optimizer_with_lr_i, window, batch_size,
        seed=seed_i)``. A member whose loss becomes non-finite stops there (its
        parameters stay as before the failing step, its later losses are NaN) and
        an :class:`EnsembleDivergenceWarning` names it; when every member diverges,
        :class:`~eulerflow.DivergenceError` is raised. ``callbacks`` are called once
        per epoch as ``cb(epoch, losses)`` with the members' losses; True stops.
        """
        first = self.members[0]
        t = first._times(t)
        data = real_array(data, "data", np.float64, ndim=(2,))
        if data.shape != (t.size, first.dim):
            raise ValueError(f"data must have shape (len(t), d) = ({t.size}, {first.dim}), got "
                             f"{data.shape}")
        window, epochs, batch_size, optimizer = _training_options(t.size, window, epochs,
                                                                   batch_size, optimizer)
        lrs = self._per_member(optimizer.lr if lr is None else lr, "lr", float)
        if not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
            bad = lrs[(lrs <= 0) | ~np.isfinite(lrs)]
            raise ValueError(f"lr must be positive and finite, got {bad[:3]}")
        seeds = self._per_member(seed, "seed", seed_value).astype(np.uint64)
        self._check_steps(t, window)
        callbacks = check_callbacks(callbacks)

        n = len(self)
        P, member_params = self._pack()
        buf1, buf2 = np.zeros_like(P), np.zeros_like(P)
        scalars = _core.OptimScalars()
        with epoch_hook([], progress, epochs, "Ensemble.fit") as bar:
            on_epoch = None
            if callbacks or bar is not None:
                def on_epoch(e, losses):
                    if bar is not None:
                        finite = losses[np.isfinite(losses)]
                        bar(e, float(finite.min()) if finite.size else float("nan"))
                    stop = False
                    for cb in callbacks:
                        stop = bool(cb(e, losses)) or stop
                    return stop
            losses, _stopped, bad = _core.node_ensemble_fit(
                self._spec, P, n, first.method, first.steps_per_interval or 0,
                first.step_size or 0.0, np.ascontiguousarray(data), t, window, batch_size, epochs,
                optimizer._config(), scalars, np.ascontiguousarray(lrs, dtype=np.float64), buf1,
                buf2, np.ascontiguousarray(seeds), on_epoch)
        self._unpack(P, member_params)
        hist = EnsembleHistory(losses, lrs, seeds.astype(np.int64), bad)
        self._diverged(bad, lrs, hist, "epoch")
        return hist

    def learn(self, facts, lr) -> EnsembleHistory:
        """Seed 001's online learning for every member at once: each fact ``(x, y)`` of
        ``facts`` (``(X, Y)`` arrays or an iterable of pairs, as :meth:`Module.learn`)
        makes one plain SGD step of member i with rate ``lr[i]`` (one value or one per
        member) on ``||net(x) - y||^2 / 2``. Member i ends bit-identical to
        ``members[i].learn(facts, lr[i])``. Returns an :class:`EnsembleHistory` whose
        ``loss[s, i]`` is member i's loss of fact s before its step (NaN after a member
        diverged; ``bad_epoch`` then holds the fact it diverged at), and warns like
        :meth:`fit` when members diverge."""
        first = self.members[0]
        if isinstance(first, NeuralODE):
            raise TypeError("Ensemble.learn trains networks; NeuralODE members train with fit")
        lrs = self._per_member(lr, "lr", float)
        if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
            bad = lrs[(lrs < 0) | ~np.isfinite(lrs)]
            raise ValueError(f"lr must be non-negative and finite, got {bad[:3]}")
        X, Y = first._facts(facts)
        P, member_params = self._pack()
        losses, bad = _core.ensemble_learn(self._spec, P, len(self), X, Y,
                                           np.ascontiguousarray(lrs, dtype=np.float64))
        self._unpack(P, member_params)
        hist = EnsembleHistory(losses, lrs, np.zeros(len(self), dtype=np.int64), bad)
        self._diverged(bad, lrs, hist, "fact")
        return hist

    def _check_steps(self, t: np.ndarray, window: int) -> None:
        m = self.members[0]
        spans = np.abs(np.diff(t))
        if m.steps_per_interval:
            k = np.full(spans.size, m.steps_per_interval)
        elif m.step_size:
            k = np.maximum(np.ceil(spans / m.step_size * (1.0 - 1e-9)), 1).astype(np.int64)
            if np.unique(k).size > 1:
                raise ValueError(
                    f"with step_size={m.step_size} the intervals of t need {k.min()} to {k.max()} "
                    "steps; an ensemble's members must step alike: give steps_per_interval")
        else:
            k = np.ones(spans.size, dtype=np.int64)
        if int(k[0]) * window > m.max_steps:
            raise ValueError(f"a window needs {int(k[0]) * window} steps, more than max_steps="
                             f"{m.max_steps}")

    def parameters(self) -> list[list[np.ndarray]]:
        """Every member's parameters (a NeuralODE member's are its field's)."""
        return [self._net(m).parameters() for m in self.members]

