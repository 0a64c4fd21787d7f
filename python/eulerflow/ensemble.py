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

Members may also be mean-field :class:`eulerflow.meanfield.TwoLayerReLU` networks, of
any widths m (the radius x width grid of seed 003): :meth:`Ensemble.fit_teacher` and
:meth:`Ensemble.fit` run every member's own training on the same pool of threads, each
member bit-identical to its separate ``fit_teacher`` / ``fit``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import _core
from ._errors import DivergenceError
from ._training import check_callbacks, epoch_hook
from ._validate import positive_int, real_array, seed_value
from .history import History
from .meanfield import (
    Run,
    TwoLayerReLU,
    _check_teacher,
    _data_schedule,
    _held_out_set,
    _run_of,
    _teacher_schedule,
)
from .nn import Module
from .node import FIXED_METHODS, NeuralODE, _training_options
from .optim import Optimizer

__all__ = ["Ensemble", "EnsembleDivergenceWarning", "EnsembleHistory"]


class EnsembleDivergenceWarning(RuntimeWarning):
    """Some members of an ensemble diverged (the others trained on)."""


@dataclass(frozen=True)
class EnsembleHistory:
    """The record of :meth:`Ensemble.fit`, :meth:`Ensemble.fit_teacher` and
    :meth:`Ensemble.learn`.

    Attributes
    ----------
    loss : ndarray, shape (epochs, n)
        ``loss[e, i]``: member i's mean window loss of epoch e (NaN from the epoch a
        member diverged in). Mean-field members: ``loss[k, i]`` is member i's loss at
        snapshot k (test loss for ``fit_teacher``, training loss for ``fit``; NaN for
        the snapshots after it diverged).
    lr : ndarray, shape (n,)
        Each member's learning rate.
    seeds : ndarray, shape (n,)
        Each member's shuffling seed.
    bad_epoch : ndarray, shape (n,)
        The epoch a member diverged in, or -1 (mean-field members: the step).
    metrics : dict
        Network members trained with ``loss="cross_entropy"``: ``"accuracy"`` of shape
        (epochs, n).
    runs : list of :class:`~eulerflow.meanfield.Run`
        Mean-field members: each member's run (its snapshots and losses, up to where it
        diverged), as its own ``fit_teacher`` / ``fit`` returns it; empty otherwise.
    """

    loss: np.ndarray
    lr: np.ndarray
    seeds: np.ndarray
    bad_epoch: np.ndarray
    metrics: dict = field(default_factory=dict)
    runs: list = field(default_factory=list)

    @property
    def diverged(self) -> np.ndarray:
        """Boolean mask of the members that diverged."""
        return self.bad_epoch >= 0

    def member(self, i: int) -> History | Run:
        """Member ``i``'s losses as a :class:`~eulerflow.History` (the epochs before it
        diverged); for mean-field members its :class:`~eulerflow.meanfield.Run`."""
        if self.runs:
            return self.runs[i]
        stop = int(self.bad_epoch[i]) if self.bad_epoch[i] >= 0 else self.loss.shape[0]
        return History(self.loss[:stop, i], {k: v[:stop, i] for k, v in self.metrics.items()})


def _call_make(make: Callable, i: int):
    try:
        takes_index = len(inspect.signature(make).parameters) >= 1
    except (TypeError, ValueError):
        takes_index = True
    return make(i) if takes_index else make()


def _distinct(keys: list) -> tuple[list[int], np.ndarray]:
    """The positions of the first occurrence of each distinct key, and every key's index
    among those."""
    firsts, slot = [], {}
    index = np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        if key not in slot:
            slot[key] = len(firsts)
            firsts.append(i)
        index[i] = slot[key]
    return firsts, index


def _threads(threads: int | None) -> int:
    """The threads of a pool of members: the cores this process may use by default."""
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    return positive_int(threads, "threads")


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
        Every member must have the same architecture and solver settings; mean-field
        :class:`~eulerflow.meanfield.TwoLayerReLU` members only the same input dimension
        d (their widths m may differ).
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
        if isinstance(first, TwoLayerReLU):
            kind = TwoLayerReLU
        elif isinstance(first, NeuralODE):
            kind = NeuralODE
        elif isinstance(first, Module):
            kind = Module
            if first.dtype != np.float64:
                raise TypeError(f"ensemble networks must be float64, got {first.dtype}")
        else:
            raise TypeError("Ensemble members must be eulerflow.NeuralODE models or eulerflow "
                            "networks (Sequential, Dense or meanfield.TwoLayerReLU), got "
                            f"{type(first).__name__}")
        for i, m in enumerate(self.members[1:], start=1):
            if not isinstance(m, kind):
                raise TypeError(f"member {i} is a {type(m).__name__}, not a {kind.__name__}")
        if len({id(self._net(m)) for m in self.members}) < n:
            raise ValueError("make returned the same model for two members: build a new one "
                             "in every call (e.g. lambda i: ef.mlp([2, 8, 1], seed=i))")
        if kind is TwoLayerReLU:
            # widths may differ (the radius x width grid); the input dimension may not
            for i, m in enumerate(self.members[1:], start=1):
                if m.d != first.d:
                    raise ValueError(f"member {i} has d={m.d} but member 0 has d={first.d}: an "
                                     "ensemble's mean-field members share the input dimension")
            return
        self._spec, params = _lane_layout(self._net(first))
        shapes = [p.shape for p in params]
        settings = self._settings(first)
        for i, m in enumerate(self.members[1:], start=1):
            spec, ps = _lane_layout(self._net(m))
            same = (spec == self._spec and [p.shape for p in ps] == shapes
                    and self._settings(m) == settings)
            if not same:
                raise ValueError(f"member {i} ({m!r}) differs from member 0 ({first!r}): an "
                                 "ensemble needs one architecture and one solver setting")
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

    def _rates(self, lr, positive: bool = False) -> np.ndarray:
        """One learning rate per member (``lr`` one value or one per member), finite and
        non-negative (positive when ``positive``)."""
        lrs = self._per_member(lr, "lr", float)
        bad = lrs[~np.isfinite(lrs) | ((lrs <= 0) if positive else (lrs < 0))]
        if bad.size:
            kind = "positive" if positive else "non-negative"
            raise ValueError(f"lr must be {kind} and finite, got {bad[:3]}")
        return lrs

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
          see :meth:`_fit_networks`;
        - mean-field members (:class:`~eulerflow.meanfield.TwoLayerReLU`): ``fit(X, Y,
          lr, batch=20, epochs=1, shuffle=False, seed=0, snapshot_every=0,
          threads=None)``, see :meth:`_fit_meanfield`.
        """
        if isinstance(self.members[0], NeuralODE):
            return self._fit_nodes(*args, **kwargs)
        if isinstance(self.members[0], TwoLayerReLU):
            return self._fit_meanfield(*args, **kwargs)
        return self._fit_networks(*args, **kwargs)

    # --- mean-field members ----------------------------------------------------------
    def fit_teacher(self, teacher, steps: int, batch: int = 20, lr=0.5,
                    snapshot_every: int = 10, seed=0, n_test: int = 1000,
                    threads: int | None = None) -> EnsembleHistory:
        """Trains every mean-field member as
        :meth:`~eulerflow.meanfield.TwoLayerReLU.fit_teacher` would, in one native call
        with the GIL released: member i learns from ``teacher`` (one
        :class:`~eulerflow.meanfield.TwoLayerReLU`, or a sequence of one per member) with
        learning rate ``lr[i]`` and sample seed ``seed[i]`` (each one value or one per
        member) and ends bit-identical to ``members[i].fit_teacher(teacher_i, steps,
        batch, lr_i, snapshot_every, seed_i, n_test)``, particles, snapshots and test
        losses alike, whatever the thread count. Members may have different widths m.
        They run on ``threads`` threads (default: the cores this process may use), each
        member whole on one thread, the widest first. Members of one teacher and seed see
        the same samples: those are drawn once for all of them (up to 256 MB of samples
        per call; beyond, members draw their own), which makes an ensemble of small
        students several times cheaper per member than separate runs. A member whose
        loss becomes non-finite stops there as its own run would (its particles as they
        were then; an :class:`EnsembleDivergenceWarning` names it;
        :class:`~eulerflow.DivergenceError` when all diverge). Returns an
        :class:`EnsembleHistory`: ``loss[k, i]`` member i's test loss at snapshot k,
        ``runs[i]`` its :class:`~eulerflow.meanfield.Run`, ``bad_epoch[i]`` the step it
        diverged at (or -1)."""
        self._require(TwoLayerReLU, "fit_teacher")
        d = self.members[0].d
        teachers = self._teachers(teacher, d)
        steps, batch, snapshot_every, n_test = _teacher_schedule(steps, batch, snapshot_every,
                                                                 n_test, d)
        lrs = self._rates(lr)
        seeds = self._per_member(seed, "seed", seed_value).astype(np.uint64)
        threads = _threads(threads)
        # the distinct teachers, and the held-out sets (one per distinct teacher and seed,
        # drawn as each member's own fit_teacher draws it)
        firsts, teacher_index = _distinct([id(t) for t in teachers])
        distinct = [teachers[i] for i in firsts]
        firsts, test_index = _distinct(list(zip(teacher_index.tolist(), seeds.tolist(),
                                                strict=True)))
        tests = [_held_out_set(teachers[i], int(seeds[i]), n_test) for i in firsts]
        with self._claim():
            results = _core.meanfield_fit_teacher_members(
                [(m.a, m.w, m.b) for m in self.members], [(t.a, t.w, t.b) for t in distinct],
                teacher_index, tests, test_index, steps, batch,
                np.ascontiguousarray(lrs), snapshot_every, np.ascontiguousarray(seeds),
                threads)
        return self._meanfield_history(results, lrs, seeds, snapshot_every or steps,
                                       "test_loss")

    def _fit_meanfield(self, X, Y, lr, batch: int = 20, epochs: int = 1, shuffle: bool = False,
                       seed=0, snapshot_every: int = 0,
                       threads: int | None = None) -> EnsembleHistory:
        """Trains every mean-field member as :meth:`~eulerflow.meanfield.TwoLayerReLU.fit`
        would on the same ``X``, ``Y``: member i with learning rate ``lr[i]`` and
        shuffling seed ``seed[i]`` (each one value or one per member), bit-identical to
        ``members[i].fit(X, Y, lr_i, batch, epochs, shuffle, seed_i, snapshot_every)``
        whatever the thread count; threads, divergence and the record as
        :meth:`fit_teacher` (``loss[k, i]`` the training loss at snapshot k)."""
        first = self.members[0]
        X, _ = first._inputs(X)
        Y = first._targets(Y, X.shape[0])
        lrs = self._rates(lr)
        batch, epochs, snapshot_every, every = _data_schedule(batch, epochs, snapshot_every,
                                                              X.shape[0])
        seeds = self._per_member(seed, "seed", seed_value).astype(np.uint64)
        threads = _threads(threads)
        with self._claim():
            results = _core.meanfield_fit_members(
                [(m.a, m.w, m.b) for m in self.members], X, Y, np.ascontiguousarray(lrs), batch,
                epochs, bool(shuffle), np.ascontiguousarray(seeds), snapshot_every, threads)
        return self._meanfield_history(results, lrs, seeds, every, "train_loss")

    def _require(self, kind: type, method: str) -> None:
        if not isinstance(self.members[0], kind):
            raise TypeError(f"Ensemble.{method} trains {kind.__name__} members, got "
                            f"{type(self.members[0]).__name__}")

    def _teachers(self, teacher, d: int) -> list[TwoLayerReLU]:
        """One teacher per member: the one given, or the sequence of one per member."""
        n = len(self)
        if isinstance(teacher, Sequence):
            if len(teacher) != n:
                raise ValueError(f"teacher must be one TwoLayerReLU or one per member ({n}), got "
                                 f"{len(teacher)}")
            teachers = list(teacher)
        else:
            teachers = [teacher] * n
        for i, t in enumerate(teachers):
            _check_teacher(t, d, f"member {i}" if t is not teacher else "every member")
        return teachers

    @contextlib.contextmanager
    def _claim(self):
        """Every mean-field member's claim against a concurrent training of it."""
        with contextlib.ExitStack() as stack:
            for m in self.members:
                stack.enter_context(m._using())
            yield

    def _meanfield_history(self, results: list, lrs: np.ndarray, seeds: np.ndarray, every: int,
                           name: str) -> EnsembleHistory:
        """The record of a mean-field ensemble run: each member's Run, its losses side by
        side (NaN past the snapshots it wrote), the steps members diverged at."""
        runs = [_run_of(r, every, name) for r in results]
        loss = np.full((results[0][1].shape[0], len(self)), np.nan)
        for i, run in enumerate(runs):
            loss[:run.loss.shape[0], i] = run.loss
        bad = np.array([r[4] if r[3] else -1 for r in results], dtype=np.int64)
        hist = EnsembleHistory(loss, lrs, seeds.astype(np.int64), bad, runs=runs)
        self._diverged(bad, lrs, hist, "step")
        return hist

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
        lrs = self._rates(optimizer.lr if lr is None else lr)
        seeds = self._per_member(seed, "seed", seed_value).astype(np.uint64)
        threads = _threads(threads)
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
        lrs = self._rates(optimizer.lr if lr is None else lr, positive=True)
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
            losses, _stopped, bad, _one_kernel = _core.node_ensemble_fit(
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
        if isinstance(first, (NeuralODE, TwoLayerReLU)):
            raise TypeError(f"Ensemble.learn trains networks; {type(first).__name__} members "
                            "train with fit")
        lrs = self._rates(lr)
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
        """Every member's parameters (a NeuralODE member's are its field's, a mean-field
        member's ``[a, w, b]``)."""
        return [[m.a, m.w, m.b] if isinstance(m, TwoLayerReLU) else self._net(m).parameters()
                for m in self.members]

