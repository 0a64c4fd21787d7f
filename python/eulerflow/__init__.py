"""eulerflow: neural networks as dynamical systems, with a C++ core.

Residual layers as Euler steps, Neural ODEs trained through their solver, and
training itself as a flow. The public API is re-exported here; ``_core`` is
the private native module.
"""

from __future__ import annotations

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without a build
    if "EULERFLOW_ISA" in str(exc):  # the core is there: the variable names no variant it runs
        raise
    raise ImportError(
        "eulerflow's native core (eulerflow._core) is missing: did you forget to compile? "
        "Install with `pip install .` (or `pip install -e .` for development)."
    ) from exc

from . import bench, data, fields, landscape, meanfield, optim
from ._config import show_config
from ._errors import DivergenceError
from ._sweep import SweepError, sweep
from ._sweep import grid as sweep_grid
from ._threads import get_num_threads, set_num_threads
from .ensemble import Ensemble
from .history import History
from .io import load, save
from .nn import (
    Activation,
    ActivityPenalty,
    Dense,
    Map,
    Module,
    Residual,
    ResidualFlow,
    Sequential,
    mlp,
)
from .node import NeuralODE
from .ode import IntegrationError, Solution, odeint, solve

__version__ = "0.1.0"


def __getattr__(name: str):
    # matplotlib-based modules load on first use, keeping `import eulerflow` light
    if name in ("plot", "demos"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eulerflow' has no attribute {name!r}")

__all__ = [
    "Activation",
    "ActivityPenalty",
    "Dense",
    "DivergenceError",
    "Ensemble",
    "History",
    "IntegrationError",
    "Map",
    "Module",
    "NeuralODE",
    "Residual",
    "ResidualFlow",
    "Sequential",
    "Solution",
    "SweepError",
    "bench",
    "data",
    "fields",
    "get_num_threads",
    "landscape",
    "load",
    "meanfield",
    "mlp",
    "odeint",
    "optim",
    "plot",
    "save",
    "set_num_threads",
    "show_config",
    "solve",
    "sweep",
    "sweep_grid",
    "__version__",
]
