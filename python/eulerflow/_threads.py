"""Thread-count setting shared by the native kernels."""

from __future__ import annotations

from . import _core
from ._validate import positive_int

__all__ = ["set_num_threads", "get_num_threads"]


def set_num_threads(n: int) -> None:
    """Sets how many threads a single native call may use (``n >= 1``).

    The dense layers of wide networks (from about 32 x 32 weights on batches
    of 8 samples) split their matrix products into blocks of independent
    outputs across a persistent pool of ``n`` threads; every output is
    computed the same way whichever thread runs it, so results are
    bit-identical whatever the count. Mean-field students of more than 512
    particles share each ``fit_teacher`` / ``fit`` step's chunks of
    512 particles among the threads, whose sums are added in a fixed order:
    the same bits too. Small networks run on the calling
    thread, where the pool would cost more than it saves. A call made while
    another one uses the pool (e.g. trainings run from several Python
    threads, or ensemble members) runs on its own thread only."""
    _core.set_num_threads(positive_int(n, "n"))


def get_num_threads() -> int:
    """How many threads a native call may use: the value given to
    :func:`set_num_threads`, by default the CPUs available to the process
    (its affinity mask)."""
    return _core.get_num_threads()
