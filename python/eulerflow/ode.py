"""``odeint`` and ``solve``: explicit Runge-Kutta integration driven by Butcher tableaus,
and the implicit radau5 for stiff problems."""

from __future__ import annotations

import numbers

import numpy as np

from . import _core
from ._validate import positive_int, real_array, real_scalar
from .fields import NativeField
from .nn import Module

__all__ = ["odeint", "solve", "Solution", "IntegrationError", "METHODS", "FIXED_METHODS",
           "ADAPTIVE_METHODS", "EXPLICIT_METHODS", "IMPLICIT_METHODS", "tableau"]

IntegrationError = _core.IntegrationError
IntegrationError.__doc__ = (
    "An integration that could not reach the last time: max_steps exceeded, a step size "
    "that underflowed (often a stiff problem), or a solution that became non-finite. "
    "The message names the time reached and the step size.")

#: The explicit Runge-Kutta methods, each a Butcher tableau (see :func:`tableau`).
EXPLICIT_METHODS = tuple(_core.tableau_names())
#: The implicit methods for stiff problems: ``radau5`` (Radau IIA, order 5, L-stable).
IMPLICIT_METHODS = ("radau5",)
#: Every method name odeint accepts.
METHODS = EXPLICIT_METHODS + IMPLICIT_METHODS
#: The adaptive methods (error estimate, rtol/atol).
ADAPTIVE_METHODS = tuple(m for m in EXPLICIT_METHODS
                         if _core.tableau_info(m)["adaptive"]) + IMPLICIT_METHODS
#: The fixed-step methods (step_size, or one step per output interval).
FIXED_METHODS = tuple(m for m in METHODS if m not in ADAPTIVE_METHODS)


def tableau(method: str) -> dict:
    """The Butcher tableau of an explicit ``method``: ``a`` (s, s), ``b``, ``c``,
    ``b_err`` (b minus the embedded weights), ``b_err3`` (b minus the second, third-order
    embedded weights of dopri8; empty for the others), ``order``, ``error_order``,
    ``fsal``."""
    _check_method(method)
    if method not in EXPLICIT_METHODS:
        raise ValueError(f"{method!r} is implicit: tableau() describes the explicit methods "
                         f"{EXPLICIT_METHODS}")
    info = dict(_core.tableau_info(method))
    s = info["stages"]
    info["a"] = np.array(info["a"]).reshape(s, s)
    for key in ("b", "c", "b_err", "b_err3"):
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


def _with_jacobian(field, jac, method: str, batched: bool):
    """The core field with the user's Jacobian ``jac(t, y)`` attached (radau5 only)."""
    if jac is None:
        return field
    if method not in IMPLICIT_METHODS:
        raise ValueError(f"jac is used by the implicit methods {IMPLICIT_METHODS} (Newton's "
                         f"matrix); the explicit method {method!r} takes no Jacobian")
    if not callable(jac):
        raise TypeError(f"jac must be a callable jac(t, y) returning the Jacobian df/dy, got "
                        f"{type(jac).__name__}")
    return _core.PyJacobianField(field, jac, batched)


def odeint(func, y0, t, method: str = "dopri5", rtol: float = 1e-7, atol: float = 1e-9,
           step_size: float | None = None, max_steps: int = 100_000, full_output: bool = False,
           events=None, jac=None):
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
    ``dopri5``, ``tsit5``, ``dopri8``) keep the local error below ``atol + rtol * |y|``
    (weighted RMS norm) with a PI controller and interpolate the requested times (dopri5:
    Shampine's fourth-order dense output; dopri8: DOP853's seventh-order dense output;
    bosh3, tsit5: cubic Hermite). ``dopri8`` is Hairer's DOP853, the Dormand-Prince
    8(5,3) pair of order 8: 12 evaluations per step, plus 3 for a step with an output
    time inside it; its error is ``err5**2 / sqrt(err5**2 + 0.01 * err3**2)`` of a fifth-
    and a third-order estimate. It is the method for tight tolerances (rtol 1e-9 and
    below, on smooth problems). For stiff problems,
    ``radau5`` is the implicit Radau IIA method of order 5 (L-stable): simplified
    Newton iterations, Hairer's filtered error estimate and predictive step control (as
    Hairer's RADAU5), and between the steps each step's collocation polynomial (degree
    3, RADAU5's continuous extension); dense linear algebra on the whole state, for
    systems of modest size. Its Jacobian ``df/dy`` is ``jac(t, y)`` when given (an array
    (d, d), or (batch, d, d) for ``y0`` of shape (batch, d): one block per state), else
    the native field's analytic one, else finite differences (d evaluations of ``func``
    per Jacobian; networks use finite differences). ``jac`` with an explicit method is
    refused.

    **Fast path**: with a native field (``Lorenz``, ``VanDerPol``, ``Arenstorf``,
    ``Projectile``, ``Linear`` with d <= 4), the fixed-step methods run a loop with the
    field's arithmetic inlined: one state in registers, a batch 16 rows at a time side by
    side in SIMD registers (so a batch costs far less per row than one state); one state
    with ``dopri5``, ``tsit5`` or ``dopri8`` runs its adaptive loop the same way, the
    stages in registers. Its results are bit for bit those of the generic loop, and each
    row of a batch those of its own integration.

        ``full_output=True`` returns ``(ys, info)`` with ``nfev`` (every evaluation of
    ``func``, radau5's finite-difference columns included), ``nsteps``, ``naccepted``
    and ``nrejected``; radau5 adds ``njev``, the Jacobians evaluated. Raises
    :class:`IntegrationError` when ``max_steps`` is exceeded, the step size underflows or
    the solution becomes non-finite; an exception raised inside ``func`` propagates
    unchanged.

    **Per-sample times**: with ``y0`` of shape (batch, d), ``t`` may have shape
    (batch, n_times): row ``r`` is integrated on its own grid ``t[r]`` (each row its own
    adaptive steps), all rows in one native call; ``ys[:, r]`` then holds row ``r`` at
    the times ``t[r]``.

    **Events** (adaptive methods, radau5 included): ``events`` is a callable ``g(t, y)``
    or a list of them, with scipy's conventions: an event happens where ``g`` crosses
    zero, only upwards if ``g.direction > 0``, only downwards if ``< 0``; a
    ``g.terminal = True`` event ends the integration there. Events are located by root
    finding on the dense output of each accepted step. With events, ``(ys, info)`` is
    returned: ``ys`` holds the requested times up to the end (the first terminal event),
    and ``info`` adds ``t_events`` and ``y_events`` (one array per event) and
    ``terminated``. See :func:`solve` for the dense solution itself.
    """
    _check_method(method)
    adaptive = method in ADAPTIVE_METHODS
    y0 = real_array(y0, "y0", np.float64, ndim=(1, 2))
    t = real_array(t, "t", np.float64, ndim=(1, 2))
    if t.ndim == 2:
        return _odeint_rows(func, y0, t, method, rtol, atol, step_size, max_steps, full_output,
                            events, jac)
    _check_times(t, "t")
    if events is not None:
        if not adaptive:
            raise ValueError(f"events need an adaptive method {ADAPTIVE_METHODS}: their "
                             f"times are found on the dense output; got {method!r}")
        sol = solve(func, y0, t, method=method, rtol=rtol, atol=atol, max_steps=max_steps,
                    events=events, jac=jac)
        keep = t.size if not sol.terminated else int(np.sum((t - sol.t[-1]) * np.sign(
            t[-1] - t[0] if t.size > 1 else 1.0) <= 0))
        ys = sol.evaluate(t[:keep])
        info = dict(sol.info, t_events=sol.t_events, y_events=sol.y_events,
                    terminated=sol.terminated)
        return ys, info
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
    field = _with_jacobian(_field_for(func, d, batched), jac, method, batched)
    out, info = _core.odeint(field, np.ascontiguousarray(y0), batch, np.ascontiguousarray(t),
                             method, rtol, atol, float(step_size or 0.0), max_steps)
    ys = out.reshape((t.size, *y0.shape))
    return (ys, dict(info)) if full_output else ys


def _check_times(t: np.ndarray, name: str) -> None:
    if t.size == 2:  # the common [t0, t1]: no array temporaries
        ok = bool(t[1] > t[0] or t[1] < t[0])
    elif t.size > 2:
        dt = np.diff(t)
        ok = bool(np.all(dt > 0) or np.all(dt < 0))
    else:
        ok = True
    if not ok:
        raise ValueError(f"{name} must be strictly increasing or strictly decreasing (no "
                         f"repeated or out-of-order times); got {t.size} times")


def _odeint_rows(func, y0, t, method, rtol, atol, step_size, max_steps, full_output, events,
                 jac):
    """odeint with one time grid per row of a batch (t of shape (batch, n_times))."""
    if events is not None:
        raise ValueError("events take one time grid: t of shape (n_times,), not per-row times")
    if y0.ndim != 2 or t.shape[0] != y0.shape[0]:
        raise ValueError(f"t of shape (batch, n_times) gives each row of y0 its own times: it "
                         f"needs y0 of shape (batch, d) with the same batch; got y0 {y0.shape} "
                         f"and t {t.shape}")
    for r in range(t.shape[0]):
        _check_times(t[r], f"t[{r}]")
    _check_method(method)
    if step_size is not None and method in ADAPTIVE_METHODS:
        raise ValueError(f"step_size applies to the fixed-step methods {FIXED_METHODS}")
    rtol = real_scalar(rtol, "rtol", min_value=0.0, min_inclusive=False)
    atol = real_scalar(atol, "atol", min_value=0.0, min_inclusive=False)
    if step_size is not None:
        step_size = real_scalar(step_size, "step_size", min_value=0.0, min_inclusive=False)
    max_steps = positive_int(max_steps, "max_steps")
    d = y0.shape[1]
    field = _with_jacobian(_field_for(func, d, True), jac, method, True)
    out, info = _core.odeint_rows(field, np.ascontiguousarray(y0), np.ascontiguousarray(t),
                                  method, rtol, atol, float(step_size or 0.0), max_steps)
    ys = out.reshape(t.shape[1], y0.shape[0], d)
    return (ys, dict(info)) if full_output else ys


class Solution:
    """The dense solution of an adaptive integration (:func:`solve`).

    Attributes
    ----------
    t : ndarray, shape (m + 1,)
        The accepted step boundaries, from ``t_span[0]`` to the end (the last time, or
        the first terminal event).
    y : ndarray, shape (m + 1, *y0.shape)
        The states there.
    info : dict
        ``nfev``, ``nsteps``, ``naccepted``, ``nrejected`` (radau5: and ``njev``).
    t_events, y_events : list of ndarray
        Per event function, the times (k,) and states (k, *y0.shape) it fired at.
    terminated : bool
        Whether a terminal event ended the integration.
    """

    def __init__(self, record, shape, info, method, t_final):
        self._record, self._shape, self.info, self.method = record, shape, info, method
        t0 = record.t0[:, 0]
        h = record.h[:, 0]
        self._t0, self._h = t0, h
        self._ends = np.append(t0, t_final)  # each step ends where the next begins
        self.t = self._ends.copy()
        self.y = np.concatenate([record.y0, record.y1[-1:]]).reshape((-1, *shape))
        self.t_events: list[np.ndarray] = []
        self.y_events: list[np.ndarray] = []
        self.terminated = False

    def __repr__(self) -> str:
        return (f"Solution({self.method}, t from {self.t[0]:g} to {self.t[-1]:g}, "
                f"{self.t.size - 1} steps{', terminated by an event' if self.terminated else ''})")

    def _locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step index and theta of each time (which must lie within the solution)."""
        lo, hi = min(self.t[0], self.t[-1]), max(self.t[0], self.t[-1])
        if np.any((t < lo) | (t > hi)) or not np.all(np.isfinite(t)):
            raise ValueError(f"t must lie within the solution's span [{lo:g}, {hi:g}]")
        forward = self.t[-1] >= self.t[0]
        key = self._t0 if forward else -self._t0
        idx = np.searchsorted(key, t if forward else -t, side="right") - 1
        idx = np.clip(idx, 0, self._t0.size - 1)
        theta = (t - self._t0[idx]) / self._h[idx]
        return idx.astype(np.int64), theta

    def evaluate(self, t) -> np.ndarray:
        """The states at the times ``t`` (a number or a 1-D array), shape
        ``(*np.shape(t), *y0.shape)``: the stored state at a step boundary, the step's
        continuous extension inside it (dopri5: Shampine's fourth-order dense output;
        dopri8: DOP853's seventh-order one; bosh3, tsit5: cubic Hermite; radau5: the step's
        collocation polynomial, of degree 3 through its start and its three stage values) -
        the same values :func:`odeint` returns at those times."""
        tt = np.atleast_1d(real_array(t, "t", np.float64, ndim=(0, 1), allow_empty=True))
        out = np.empty((tt.size, self.y[0].size))
        if tt.size:
            idx, theta = self._locate(tt)
            out[...] = self._record.evaluate(np.ascontiguousarray(idx), np.ascontiguousarray(theta))
            # exactly at a step's end: the state the step computed, not the interpolant
            at_end = np.isin(tt, self._ends)
            if np.any(at_end):
                pos = np.searchsorted(self._ends if self.t[-1] >= self.t[0] else -self._ends,
                                      tt[at_end] if self.t[-1] >= self.t[0] else -tt[at_end])
                out[at_end] = self.y.reshape(len(self._ends), -1)[pos]
        return out.reshape((*np.shape(t), *self._shape))

    __call__ = evaluate

    def _truncate(self, t_end: float) -> None:
        forward = self.t[-1] >= self.t[0]
        inside = (self._ends - t_end) * (1 if forward else -1) < 0
        y_end = self.evaluate(t_end)
        self.t = np.append(self._ends[inside], t_end)
        self.y = np.concatenate([self.y[inside], y_end[None]])
        self._ends = self.t.copy()
        self.terminated = True


def _find_events(sol: Solution, events, shape) -> None:
    """Zero crossings of every event function on the solution's steps (Illinois method on
    the dense output); truncates the solution at the first terminal one."""
    funcs = list(events) if isinstance(events, (list, tuple)) else [events]
    for g in funcs:
        if not callable(g):
            raise TypeError(f"events must be callables g(t, y), got {type(g).__name__}")
    ends, states = sol.t, sol.y
    found: list[list[float]] = [[] for _ in funcs]
    stop = None
    for k, g in enumerate(funcs):
        direction = float(getattr(g, "direction", 0.0))
        values = np.array([float(g(float(te), ye)) for te, ye in zip(ends, states, strict=True)])
        for j in range(values.size - 1):
            a, b = values[j], values[j + 1]
            up, down = a < 0 <= b, a > 0 >= b
            if not ((up and direction >= 0) or (down and direction <= 0)):
                continue
            t_root = _root(g, sol, ends[j], ends[j + 1], a, b)
            found[k].append(t_root)
            if getattr(g, "terminal", False):
                if stop is None or abs(t_root - ends[0]) < abs(stop - ends[0]):
                    stop = t_root
                break
    if stop is not None:
        sol._truncate(stop)
    for times in found:
        ts = np.array([te for te in times
                       if stop is None or abs(te - ends[0]) <= abs(stop - ends[0])])
        sol.t_events.append(ts)
        sol.y_events.append(sol.evaluate(ts) if ts.size else np.zeros((0, *shape)))


def _root(g, sol: Solution, ta: float, tb: float, ga: float, gb: float) -> float:
    """The zero of g(t, y(t)) between ta and tb (ga, gb of opposite signs): the Illinois
    variant of regula falsi, to a few ulps of t."""
    if gb == 0.0:
        return tb
    for _ in range(200):
        tm = tb - gb * (tb - ta) / (gb - ga)
        if not (min(ta, tb) <= tm <= max(ta, tb)):
            tm = 0.5 * (ta + tb)
        gm = float(g(tm, sol.evaluate(tm)))
        if gm == 0.0:
            return tm
        if (gm > 0) == (gb > 0):
            tb, gb = tm, gm
            ga *= 0.5
        else:
            ta, ga = tb, gb
            tb, gb = tm, gm
        if abs(tb - ta) <= 4 * np.finfo(float).eps * max(1.0, abs(tb)):
            break
    return tb


def solve(func, y0, t, method: str = "dopri5", rtol: float = 1e-7, atol: float = 1e-9,
          max_steps: int = 100_000, events=None, jac=None) -> Solution:
    """Integrates ``dy/dt = func(t, y)`` over the times ``t`` (their first and last
    matter; at least two, strictly monotone) with an adaptive method and returns the
    dense :class:`Solution`: every accepted step kept, ``sol.evaluate(t)`` anywhere in
    between (the values :func:`odeint` returns at the same times), and the ``events``
    (see :func:`odeint`) in ``sol.t_events`` / ``sol.y_events``. With
    ``method="radau5"`` (stiff problems) the dense output is each step's collocation
    polynomial and ``jac`` may give the Jacobian (see :func:`odeint`). With ``dopri8`` every
    accepted step pays the 3 evaluations of its dense output (15 per step).

    Example::

        sol = ef.solve(ef.fields.VanDerPol(mu=1.0), [2.0, 0.0], [0.0, 10.0])
        sol.evaluate(np.linspace(0.0, 10.0, 1001))   # (1001, 2)
        stiff = ef.solve(ef.fields.VanDerPol(mu=1000.0), [2.0, 0.0], [0.0, 3000.0],
                         method="radau5")             # the field's own Jacobian
    """
    _check_method(method)
    if method not in ADAPTIVE_METHODS:
        raise ValueError(f"solve needs an adaptive method for its dense output "
                         f"{ADAPTIVE_METHODS}, got {method!r}")
    y0 = real_array(y0, "y0", np.float64, ndim=(1, 2))
    t = real_array(t, "t", np.float64, ndim=(1,))
    if t.size < 2:
        raise ValueError(f"t needs at least two times (start and end), got {t.size}")
    _check_times(t, "t")
    rtol = real_scalar(rtol, "rtol", min_value=0.0, min_inclusive=False)
    atol = real_scalar(atol, "atol", min_value=0.0, min_inclusive=False)
    max_steps = positive_int(max_steps, "max_steps")
    batched = y0.ndim == 2
    d = y0.shape[-1]
    field = _with_jacobian(_field_for(func, d, batched), jac, method, batched)
    _out, info, record = _core.solve(field, np.ascontiguousarray(y0), y0.shape[0] if batched
                                     else 1, np.ascontiguousarray(t), method, rtol, atol,
                                     max_steps)
    sol = Solution(record, y0.shape, dict(info), method, float(t[-1]))
    if events is not None:
        _find_events(sol, events, y0.shape)
    return sol
