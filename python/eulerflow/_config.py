"""``ef.show_config()``: how the core was built and which kernels run on this CPU."""

from __future__ import annotations

import platform
import sys
from typing import IO, Any

from . import _core
from ._threads import get_num_threads

__all__ = ["show_config"]


def _cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def show_config(file: IO[str] | None = None) -> dict[str, Any]:
    """Prints (to ``file``, default ``sys.stdout``) and returns how eulerflow's core was
    built and which kernel variant runs.

    The hot kernels are compiled for several instruction sets (``baseline`` x86-64,
    ``x86-64-v3`` = AVX2 + FMA, ``x86-64-v4`` = AVX-512) and the best one this CPU runs
    is chosen at import. The environment variable ``EULERFLOW_ISA`` (set before the
    import) forces a lower one, e.g. ``EULERFLOW_ISA=baseline``. The variants give the
    same results up to rounding: fused multiply-adds (``x86-64-v3`` and ``x86-64-v4``,
    which agree bit for bit) round once where the baseline rounds twice.

    Returns a dict with keys ``version``, ``compiler``, ``build_type``, ``flags`` (the
    options eulerflow's build sets for every file), ``file_flags`` (its per-file
    options), ``cpu``, ``cpu_features`` (feature name -> supported, for the features
    that decide the variants), ``kernels`` (``selected``, ``available`` on this CPU,
    ``built`` into this build), ``num_threads`` (:func:`get_num_threads`) and
    ``dtypes`` (the float dtypes networks support, the default first).
    """
    from . import __version__

    build = _core.build_info()
    config: dict[str, Any] = {
        "version": __version__,
        "compiler": build["compiler"],
        "build_type": build["build_type"],
        "flags": build["flags"],
        "file_flags": dict(build["file_flags"]),
        "cpu": _cpu_name(),
        "cpu_features": dict(_core.cpu_features()),
        "kernels": {
            "selected": _core.isa_selected(),
            "available": list(_core.isa_available()),
            "built": list(_core.isa_built()),
        },
        "num_threads": get_num_threads(),
        "dtypes": ["float64", "float32"],
    }
    out = sys.stdout if file is None else file
    k = config["kernels"]
    features = " ".join(
        name if ok else f"-{name}" for name, ok in config["cpu_features"].items()
    ) or "(not x86-64)"
    lines = [
        f"eulerflow {config['version']}",
        f"  compiler:    {config['compiler']} ({config['build_type']})",
        f"  flags:       {config['flags']}",
        *(f"    {files}: {flags}" for files, flags in config["file_flags"].items()),
        f"  cpu:         {config['cpu']}",
        f"  features:    {features}",
        f"  kernels:     {k['selected']} (this CPU runs {', '.join(k['available'])}; "
        f"built: {', '.join(k['built'])})",
        f"  threads:     {config['num_threads']}",
        f"  dtypes:      {', '.join(config['dtypes'])}",
    ]
    print("\n".join(lines), file=out)
    return config
