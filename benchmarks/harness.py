"""A tiny timing harness shared by the workloads in ``benchmarks/``.

Every workload prints one JSON line per (workload, implementation) on stdout::

    {"workload": "w4_spiral_classify", "impl": "eulerflow", "seconds": 4.1e-06,
     "units": "iteration", "n_units": 10000, "repeats": 5,
     "quality": {"loss": 0.123, "accuracy": 0.98}, "notes": "...",
     "flops_per_unit": 117000.0, "other_load": 0.02}

``seconds`` is the median over the timed repeats of (wall time of one repeat / n_units),
measured after an untimed warm-up. ``other_load`` is the CPU-seconds per second that OTHER
processes used during the timed repeats (from /proc/stat minus this process's CPU time): on
a 2-core machine anything above ~0.2 means the numbers are skewed by other work. A peer
that cannot be imported still gets a line, with ``seconds`` null and ``notes`` starting
with ``"skipped:"``. Human-readable summaries go to stderr so that stdout stays one JSON
object per line.
"""

from __future__ import annotations

import os

# The machine sets these and they slow NumPy down; clear them before NumPy is imported.
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

import gc  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402

SKIPPED = "skipped: "


def optional_import(name: str) -> tuple[Any | None, str]:
    """Import module ``name``; return ``(module, "")`` or ``(None, reason)``.

    Any exception counts as "not available" (a half-built native module raises more than
    ImportError), and the reason says what happened.
    """
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # noqa: BLE001 - report whatever stopped the import
        return None, f"{name} not importable ({type(exc).__name__}: {exc})"


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NumPy scalars to Python, non-finite floats to strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def emit(record: dict[str, Any]) -> dict[str, Any]:
    """Print one record as a JSON line on stdout (flushed) and return it."""
    print(json.dumps(_jsonable(record)), flush=True)
    return record


def make_record(
    workload: str,
    impl: str,
    *,
    seconds: float | None,
    units: str,
    n_units: int,
    repeats: int,
    quality: dict[str, Any] | None = None,
    notes: str = "",
    flops_per_unit: float | None = None,
) -> dict[str, Any]:
    record = {
        "workload": workload,
        "impl": impl,
        "seconds": seconds,
        "units": units,
        "n_units": n_units,
        "repeats": repeats,
        "quality": dict(quality or {}),
        "notes": notes,
    }
    if flops_per_unit is not None:
        record["flops_per_unit"] = flops_per_unit
    return record


def skip(workload: str, impl: str, reason: str, *, units: str = "") -> dict[str, Any]:
    """Record (and print) a peer that was not run."""
    return emit(make_record(workload, impl, seconds=None, units=units, n_units=0, repeats=0,
                            notes=SKIPPED + reason))


def failed(workload: str, impl: str, exc: BaseException, *, units: str = "",
           n_units: int = 0) -> dict[str, Any]:
    """Record (and print) an implementation that raised instead of giving a time."""
    return emit(make_record(workload, impl, seconds=None, units=units, n_units=n_units, repeats=0,
                            notes=f"failed: {type(exc).__name__}: {exc}"))


def time_repeats(
    run: Callable[[], Any],
    *,
    repeats: int = 5,
    warmup: Callable[[], Any] | None = None,
    budget_s: float = float("inf"),
) -> tuple[list[float], Any]:
    """Time ``run()`` ``repeats`` times after one untimed ``warmup()`` call.

    ``warmup`` defaults to ``run`` itself; pass a shorter run for slow implementations.
    The first timed repeat always happens; later ones stop once the timed total would
    exceed ``budget_s`` (so a slow peer gets fewer repeats, never fewer units of work).
    The garbage collector is off while timing. Returns ``(wall times, result of the
    last run)``.
    """
    (warmup or run)()
    times: list[float] = []
    result = None
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    global last_other_load
    busy0, own0, wall0 = _machine_busy_seconds(), time.process_time(), time.perf_counter()
    try:
        for _ in range(max(1, repeats)):
            if times and sum(times) + statistics.median(times) > budget_s:
                break
            start = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    busy1, own1, wall1 = _machine_busy_seconds(), time.process_time(), time.perf_counter()
    last_other_load = None
    if busy0 is not None and busy1 is not None and wall1 > wall0:
        last_other_load = round(max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall1 - wall0), 2)
    return times, result


# CPU-seconds per second that OTHER processes used while the last time_repeats ran
last_other_load: float | None = None


def _machine_busy_seconds() -> float | None:
    """CPU-seconds the whole machine has spent busy (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def measure(
    workload: str,
    impl: str,
    run: Callable[[], Any],
    *,
    units: str,
    n_units: int,
    quality: Callable[[Any], dict[str, Any]] | None = None,
    repeats: int = 5,
    warmup: Callable[[], Any] | None = None,
    budget_s: float = float("inf"),
    notes: str = "",
    flops_per_unit: float | None = None,
) -> dict[str, Any]:
    """Time ``run`` (which does ``n_units`` units of work) and print its record.

    ``seconds`` is the median time of one unit. ``quality(result)`` turns the result of the
    last timed run into the quality dict; it is computed after the clock stops. An
    exception is reported as a record with ``seconds`` null, so one failing implementation
    does not hide the others.
    """
    try:
        times, result = time_repeats(run, repeats=repeats, warmup=warmup, budget_s=budget_s)
        figures = quality(result) if quality is not None else {}
    except Exception as exc:  # noqa: BLE001 - report, keep benchmarking the others
        return failed(workload, impl, exc, units=units, n_units=n_units)
    seconds = statistics.median(times) / n_units
    record = make_record(workload, impl, seconds=seconds, units=units, n_units=n_units,
                         repeats=len(times), quality=figures, notes=notes,
                         flops_per_unit=flops_per_unit)
    record["other_load"] = last_other_load
    return emit(record)


def ratio_lines(records: Iterable[dict[str, Any]], reference: str = "eulerflow") -> list[str]:
    """Lines 'peer: X.Yx' = peer seconds / reference seconds (> 1: the reference is faster)."""
    records = list(records)
    ref = next((r for r in records if r["impl"] == reference and r["seconds"]), None)
    if ref is None:
        return [f"no timing for {reference}: no ratios"]
    lines = []
    for r in records:
        if r["impl"] == reference:
            continue
        if not r["seconds"]:
            lines.append(f"{reference} vs {r['impl']}: n/a ({r['notes']})")
            continue
        ratio = r["seconds"] / ref["seconds"]
        lines.append(f"{reference} vs {r['impl']}: speed-up {ratio:.1f}x"
                     f" ({ref['seconds']:.3g} s vs {r['seconds']:.3g} s per {r['units']})")
    return lines


def print_ratios(records: Iterable[dict[str, Any]], reference: str = "eulerflow") -> None:
    """Print the ratios of ``ratio_lines`` on stderr."""
    for line in ratio_lines(records, reference):
        print(line, file=sys.stderr, flush=True)


def selected(impl: str, only: list[str] | None) -> bool:
    """True if ``impl`` is wanted: no filter, or one of the filters is a prefix of it."""
    return not only or any(impl.startswith(o) for o in only)


def any_selected(impls: Iterable[str], only: list[str] | None) -> bool:
    """True if any of ``impls`` is wanted (see ``selected``)."""
    return any(selected(impl, only) for impl in impls)
