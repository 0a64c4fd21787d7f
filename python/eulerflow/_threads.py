"""Thread-count setting shared by the native kernels."""

from __future__ import annotations

from ._validate import positive_int

__all__ = ["set_num_threads", "get_num_threads"]

_num_threads = 1


def set_num_threads(n: int) -> None:
    """Sets how many threads a single native call may use. Results are
    bit-identical whatever the count. The kernels of this release run each
    network on one thread (its small-network workloads gain nothing from
    more); run several trainings concurrently from Python threads instead,
    the core releases the GIL."""
    global _num_threads
    _num_threads = positive_int(n, "n")


def get_num_threads() -> int:
    """The value given to :func:`set_num_threads` (1 by default)."""
    return _num_threads
