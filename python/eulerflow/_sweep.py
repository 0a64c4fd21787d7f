"""Sweeps: one function over a grid of points, in parallel, results in grid order.

The local backend runs the points on this machine's cores in joblib's process pool
(loky); ``backend="dask"`` runs them on a Dask cluster through ``dask.distributed``.
Both are optional dependencies, imported only when a sweep needs them.
"""

from __future__ import annotations

import functools
import itertools
import numbers
import os
import pickle
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["SweepError", "grid", "sweep"]

_LOCAL = ("processes", "local")
_BACKENDS = (None, *_LOCAL, "dask")
_ERRORS = ("raise", "return")
_JOBLIB_MIN = (1, 4)  # Parallel(return_as="generator_unordered")
_INSTALL = 'pip install "eulerflow[sweep]"'
_REPR_MAX = 200


class SweepError(RuntimeError):
    """Some grid points of a sweep raised; the others' results are kept.

    Raised by :func:`sweep` (with ``errors="raise"``) once every point has run.

    Attributes
    ----------
    results : list
        One entry per grid point, in grid order: the value ``fn(point)`` returned,
        or None where it raised.
    failures : list of (int, object, BaseException)
        ``(index, point, exception)`` of every failed point, in grid order. An
        exception raised in a worker process is the one it raised, sent back (or a
        RuntimeError naming its type and message if it could not be pickled).
    tracebacks : list of str
        The formatted traceback of each failure, aligned with ``failures`` (the
        exception object of a remote failure no longer carries it).
    """

    def __init__(self, message: str, results: list | None = None,
                 failures: list | None = None, tracebacks: list | None = None):
        super().__init__(message)
        self.results = [] if results is None else results
        self.failures = [] if failures is None else failures
        self.tracebacks = [] if tracebacks is None else tracebacks


def grid(**axes: Iterable) -> list[dict[str, Any]]:
    """The cartesian product of named axes, as a list of dicts, one per point.

    The order is that of :func:`itertools.product` over the axes in the order they
    are given: the last axis varies fastest. ``ef.sweep_grid(lr=[0.1, 0.01],
    seed=[0, 1])`` is ``[{"lr": 0.1, "seed": 0}, {"lr": 0.1, "seed": 1}, {"lr": 0.01, "seed": 0},
    {"lr": 0.01, "seed": 1}]``.

    Parameters
    ----------
    **axes : iterable
        Each keyword names an axis and gives its values (a list, a range, an array).

    Returns
    -------
    list of dict
        ``prod(len(values))`` points; an axis with no values makes the grid empty.

    Raises
    ------
    ValueError
        If no axis is given.
    TypeError
        If an axis is a string or not iterable.
    """
    if not axes:
        raise ValueError("sweep_grid needs at least one axis, e.g. sweep_grid(lr=[0.1, 0.01])")
    values = []
    for name, axis in axes.items():
        if isinstance(axis, (str, bytes)):
            raise TypeError(f"axis {name!r} must be a sequence of values, got the string "
                            f"{axis!r} (wrap it in a list for a single value)")
        try:
            values.append(list(axis))
        except TypeError:
            raise TypeError(f"axis {name!r} must be iterable, got "
                            f"{type(axis).__name__}") from None
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def sweep(fn: Callable[[Any], Any], grid: Iterable, backend: str | None = None,
          n_jobs: int | None = None, client=None, progress: bool = True,
          errors: str = "raise") -> list:
    """Runs ``fn(point)`` for every point of ``grid`` in parallel; returns the
    results in grid order.

    The results do not depend on the backend, on ``n_jobs`` or on the order in which
    the points finish: each point runs once, in a fresh call, and eulerflow's
    trainings are seeded, so a sweep of them is reproducible bit for bit.

    Parameters
    ----------
    fn : callable
        Called as ``fn(point)``. With processes or Dask it is pickled and sent to the
        workers: define it at module level (a function of ``__main__`` or a notebook
        is sent by value with cloudpickle); its return value must be picklable.
    grid : iterable
        The points, any picklable objects, in the order of the results: a list of
        learning rates, of dicts (see :func:`sweep_grid` for cartesian products), of
        tuples. Read once into a list. A mapping or a string is refused.
    backend : {None, "processes", "local", "dask"}
        None, ``"processes"`` and ``"local"`` (synonyms) run the points on this
        machine's cores in joblib's process pool (loky), or in this process when
        ``n_jobs`` is 1. ``"dask"`` submits them to a Dask cluster. None with a
        ``client`` given means ``"dask"``.
    n_jobs : int or None
        Local backend only: the number of worker processes (at most one per point).
        None uses every core this process may run on; 1 runs the points one after
        the other in this process, with no pickling (for debugging, and the
        reference the parallel runs equal).
    client : dask.distributed.Client, str or None
        Dask backend only: the client to submit to, or a scheduler address
        (``"tcp://127.0.0.1:8786"``) to connect to for the sweep's duration. None
        uses the current default client (the last one created).
    progress : bool
        Show a tqdm progress bar over the points as they finish.
    errors : {"raise", "return"}
        What happens when ``fn`` raises on a point; the other points run to the end
        either way. ``"raise"``: raise :class:`SweepError` afterwards, naming each failed
        point (index, repr, exception type and message) and carrying ``.results``
        (None at the failed indices) and ``.failures``. ``"return"``: return the
        exception object in place of the result.

    Returns
    -------
    list
        ``[fn(point) for point in grid]``, computed in parallel (with
        ``errors="return"``, the exception in place of a failed point's result).

    Raises
    ------
    TypeError
        If ``fn`` is not callable, ``grid`` is not an iterable of points, or
        ``n_jobs`` is not an int.
    ValueError
        If ``grid`` is empty, ``n_jobs`` is not positive, ``backend`` or ``errors``
        is not one of the values above, ``n_jobs`` is given to the Dask backend or
        ``client`` to the local one, or ``backend="dask"`` finds no client.
    ImportError
        If the backend's package is missing (joblib for local processes,
        ``dask[distributed]`` for Dask); ``pip install "eulerflow[sweep]"`` installs
        both.
    SweepError
        If some points raised and ``errors="raise"``.

    Examples
    --------
    >>> def final_loss(lr):
    ...     net = ef.mlp([2, 8, 1], "tanh", seed=0)
    ...     return net.fit(X, Y, optimizer=ef.optim.SGD(lr), epochs=100).loss[-1]
    >>> losses = ef.sweep(final_loss, [0.3, 0.1, 0.03, 0.01])
    >>> points = ef.sweep_grid(lr=[0.1, 0.01], seed=[0, 1, 2])       # 6 dicts
    >>> results = ef.sweep(train, points, backend="dask", client=client)
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    points = _points(grid)
    if not (backend is None or isinstance(backend, str)) or backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {list(_BACKENDS)}, got {backend!r}")
    if errors not in _ERRORS:
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    if n_jobs is not None:
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
            raise TypeError(f"n_jobs must be a positive int or None, got "
                            f"{type(n_jobs).__name__}")
        if n_jobs <= 0:
            raise ValueError(f"n_jobs must be a positive int or None (every core), got {n_jobs}")
        n_jobs = int(n_jobs)
    if backend is None and client is not None:
        backend = "dask"
    if backend == "dask" and n_jobs is not None:
        raise ValueError("n_jobs applies to the local backend; with backend='dask' the "
                         "cluster's workers set the parallelism")
    if backend != "dask" and client is not None:
        raise ValueError(f"client applies to backend='dask', not backend={backend!r}")

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(points), desc="sweep", unit="point", leave=False)
    try:
        if backend == "dask":
            outcomes = _run_dask(fn, points, client, bar)
        else:
            jobs = min(_local_cores() if n_jobs is None else n_jobs, len(points))
            if jobs == 1:
                outcomes = _run_inline(fn, points, bar)
            else:
                outcomes = _run_local(fn, points, jobs, bar)
    finally:
        if bar is not None:
            bar.close()
    return _collect(points, outcomes, errors)


# ----------------------------------------------------------------------------- checks


def _points(grid) -> list:
    if isinstance(grid, Mapping):
        raise TypeError("grid must be a sequence of points, got a mapping; for the cartesian "
                        "product of named axes pass ef.sweep_grid(**axes), e.g. "
                        "ef.sweep_grid(lr=[0.1, 0.01])")
    if isinstance(grid, (str, bytes)):
        raise TypeError(f"grid must be a sequence of points, got the string {grid!r}")
    if isinstance(grid, Sequence):
        points = list(grid)
    else:
        try:
            points = list(grid)
        except TypeError:
            raise TypeError("grid must be an iterable of points, got "
                            f"{type(grid).__name__}") from None
    if not points:
        raise ValueError("grid is empty: nothing to sweep")
    return points


def _local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _short_repr(point) -> str:
    try:
        text = repr(point)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not hide the failure
        text = f"<{type(point).__name__} with a failing repr: {exc!r}>"
    return text if len(text) <= _REPR_MAX else text[:_REPR_MAX - 3] + "..."


# ----------------------------------------------------------------------------- running

# A point's outcome: (index, ok, value or exception, traceback text or None).


def _call_point(fn, index: int, point, portable: bool):
    """Runs one point, catching its exception. In a worker (``portable``) an
    exception that would not survive pickling is replaced by one that does."""
    try:
        return index, True, fn(point), None
    except Exception as exc:  # noqa: BLE001 - reported per point by sweep
        text = traceback.format_exc()
        if portable:
            try:
                pickle.loads(pickle.dumps(exc))
            except Exception:  # noqa: BLE001 - any pickling failure
                exc = RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} "
                                   "(the original exception could not be pickled)")
        return index, False, exc, text


def _run_inline(fn, points: list, bar) -> list:
    outcomes = []
    for i, point in enumerate(points):
        outcomes.append(_call_point(fn, i, point, portable=False))
        if bar is not None:
            bar.update(1)
    return outcomes


def _require_joblib():
    try:
        import joblib
    except ImportError as exc:
        raise ImportError(
            "ef.sweep's local parallel backend needs joblib, which is not installed: "
            f"{_INSTALL} (or pip install joblib); n_jobs=1 runs without it") from exc
    version = tuple(int(p) for p in joblib.__version__.split(".")[:2] if p.isdigit())
    if version < _JOBLIB_MIN:
        raise ImportError(f"ef.sweep needs joblib>=1.4, found {joblib.__version__}: "
                          "pip install -U joblib")
    return joblib


def _run_local(fn, points: list, jobs: int, bar) -> list:
    joblib = _require_joblib()
    call = functools.partial(_call_point, fn, portable=True)
    parallel = joblib.Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    outcomes = []
    for outcome in parallel(joblib.delayed(call)(i, p) for i, p in enumerate(points)):
        outcomes.append(outcome)
        if bar is not None:
            bar.update(1)
    return outcomes


def _require_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "ef.sweep(backend='dask') needs dask.distributed, which is not installed: "
            f'{_INSTALL} (or pip install "dask[distributed]")') from exc
    return distributed


class _Opaque:
    """Hides a point from Dask's traversal of task arguments (a tuple or a dict
    holding callables or keys would otherwise be read as part of the graph)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return _Opaque, (self.value,)


def _call_opaque(fn, index: int, point: _Opaque):
    return _call_point(fn, index, point.value, portable=True)


def _run_dask(fn, points: list, client, bar) -> list:
    distributed = _require_distributed()
    own = None
    if client is None:
        try:
            client = distributed.default_client()
        except ValueError:
            raise ValueError(
                "backend='dask' found no Dask client: pass client=Client(...) or a scheduler "
                "address, or create a dask.distributed.Client first (it becomes the "
                "default)") from None
    elif isinstance(client, str):
        client = own = distributed.Client(client, set_as_default=False)
    elif not isinstance(client, distributed.Client):
        raise TypeError("client must be a dask.distributed.Client, a scheduler address or "
                        f"None, got {type(client).__name__}")
    try:
        call = functools.partial(_call_opaque, fn)
        futures = [client.submit(call, i, _Opaque(p), pure=False) for i, p in enumerate(points)]
        index = {f.key: i for i, f in enumerate(futures)}
        outcomes = []
        for future, value in distributed.as_completed(futures, with_results=True,
                                                      raise_errors=False):
            if future.status == "finished":
                outcomes.append(value)
            else:  # the task itself failed: fn could not be unpickled there, a worker died
                outcomes.append((index[future.key], False, value, None))
            if bar is not None:
                bar.update(1)
        return outcomes
    finally:
        if own is not None:
            own.close()


# ----------------------------------------------------------------------------- results


def _collect(points: list, outcomes: list, errors: str) -> list:
    results: list = [None] * len(points)
    failures, tracebacks = [], []
    for index, ok, value, text in sorted(outcomes, key=lambda o: o[0]):
        if ok:
            results[index] = value
        else:
            failures.append((index, points[index], value))
            tracebacks.append(text or "".join(traceback.format_exception(value)))
            if errors == "return":
                results[index] = value
    if failures and errors == "raise":
        shown = [f"grid[{i}] = {_short_repr(p)}: {type(e).__name__}: {e}"
                 for i, p, e in failures[:3]]
        more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
        raise SweepError(f"{len(failures)} of {len(points)} grid points failed (the others' "
                         "results are in .results, the failures in .failures): "
                         + "; ".join(shown) + more,
                         results, failures, tracebacks) from failures[0][2]
    return results
