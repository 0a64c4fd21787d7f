"""``odeint``: explicit Runge-Kutta integration driven by Butcher tableaus."""

from __future__ import annotations

import numbers

import numpy as np

from . import _core
from ._validate import positive_int, real_array, real_scalar
from .fields import NativeField
from .nn import Module

__all__ = ["odeint", "IntegrationError", "METHODS", "FIXED_METHODS", "ADAPTIVE_METHODS", "tableau"]

IntegrationError = _core.IntegrationError
IntegrationError.__doc__ = (
    "An integration that could not reach the last time: max_steps exceeded, a step size "
    "that underflowed (often a stiff problem), or a solution that became non-finite. "
    "The message names the time reached and the step size.")

#: Every method name odeint accepts.
METHODS = tuple(_core.tableau_names())
#: The adaptive methods (embedded error estimate, rtol/atol).
ADAPTIVE_METHODS = tuple(m for m in METHODS if _core.tableau_info(m)["adaptive"])
#: The fixed-step methods (step_size, or one step per output interval).
FIXED_METHODS = tuple(m for m in METHODS if m not in ADAPTIVE_METHODS)


def tableau(method: str) -> dict:
    """The Butcher tableau of ``method``: ``a`` (s, s), ``b``, ``c``, ``b_err``
    (b minus the embedded weights), ``order``, ``error_order``, ``fsal``."""
    _check_method(method)
    info = dict(_core.tableau_info(method))
    s = info["stages"]
    info["a"] = np.array(info["a"]).reshape(s, s)
    for key in ("b", "c", "b_err"):
        info[key] = np.array(info[key])
    return info


def _check_method(method) -> None:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")


def _field_for(func, d: int, batched: bool):
    if isinstance(func, NativeField):
        if func.dim != d:
            raise ValueError(f"the field has dimension {func.dim} but y0 has {d} values per state")
        return func._core_field
    if isinstance(func, Module):
        if func.dtype != np.float64:
            raise TypeError("a network used as a field must be float64")
        if func.in_features not in (None, d) or func.out_features not in (None, d):
            raise ValueError(f"a network field must map {d} features to {d}, got "
                             f"{func.in_features} -> {func.out_features}")
        return _core.network_field(func._native(), d)
    if callable(func):
        return _core.PyField(func, d, batched)
    raise TypeError(f"func must be a callable f(t, y), a native field or a network, got "
                    f"{type(func).__name__}")


def odeint(func, y0, t, method: str = "dopri5", rtol: float = 1e-7, atol: float = 1e-9,
           step_size: float | None = None, max_steps: int = 100_000, full_output: bool = False):
    """Integrates ``dy/dt = func(t, y)`` from ``y(t[0]) = y0``; returns ``ys`` with
    ``ys.shape == (len(t), *y0.shape)`` and ``ys[0] == y0``.

    ``func`` is a Python callable ``f(t, y)`` (called with ``y`` shaped like ``y0``), a
    native field from ``eulerflow.fields`` or an eulerflow network (an autonomous
    field ``f(y)``); native fields and networks run with no Python call per step.
    ``y0`` has shape (d,) or (batch, d): a batch is one system (a shared step size).
    ``t`` is strictly increasing or strictly decreasing.

    Fixed-step methods (``euler``, ``midpoint``, ``heun``, ``rk4``, ``rk38``) take
    one step per output interval, or steps of ``step_size`` with the last one
    shortened to land exactly on each ``t[i]``. Adaptive methods (``bosh3``,
    ``dopri5``) keep the local error below ``atol + rtol * |y|`` (weighted RMS
    norm) with a PI controller and interpolate the requested times (dopri5:
    Shampine's fourth-order dense output; bosh3: cubic Hermite).

    ``full_output=True`` returns ``(ys, info)`` with ``nfev``, ``nsteps``,
    ``naccepted`` and ``nrejected``. Raises :class:`IntegrationError` when
    ``max_steps`` is exceeded, the step size underflows or the solution becomes
    non-finite; an exception raised inside ``func`` propagates unchanged.
    """
    _check_method(method)
    adaptive = method in ADAPTIVE_METHODS
    y0 = real_array(y0, "y0", np.float64, ndim=(1, 2))
    t = real_array(t, "t", np.float64, ndim=(1,))
    if t.size >= 2:
        dt = np.diff(t)
        if not (np.all(dt > 0) or np.all(dt < 0)):
            raise ValueError("t must be strictly increasing or strictly decreasing (no repeated "
                             f"or out-of-order times); got {t.size} times")
    rtol = real_scalar(rtol, "rtol", min_value=0.0, min_inclusive=False)
    atol = real_scalar(atol, "atol", min_value=0.0, min_inclusive=False)
    if step_size is not None:
        if adaptive:
            raise ValueError(f"step_size applies to the fixed-step methods {FIXED_METHODS}; "
                             f"{method!r} chooses its own steps from rtol and atol")
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Real):
            raise TypeError(f"step_size must be a real number, got {type(step_size).__name__}")
        step_size = real_scalar(step_size, "step_size", min_value=0.0, min_inclusive=False)
    max_steps = positive_int(max_steps, "max_steps")
    batched = y0.ndim == 2
    d = y0.shape[-1]
    batch = y0.shape[0] if batched else 1
    field = _field_for(func, d, batched)
    out, info = _core.odeint(field, np.ascontiguousarray(y0), batch, np.ascontiguousarray(t),
                             method, rtol, atol, float(step_size or 0.0), max_steps)
    ys = out.reshape((t.size, *y0.shape))
    return (ys, dict(info)) if full_output else ys
