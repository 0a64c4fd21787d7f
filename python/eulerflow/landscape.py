r"""Loss landscapes around a model's parameters (seed 002's ``exploreLandscape``).

A *scan* moves the parameters :math:`\theta_0` of a model's field along a direction
:math:`d` and measures the loss there,

.. math:: \ell(\alpha) = L(\theta_0 + \alpha d), \qquad \alpha \in \{\alpha_1, \dots\},

optionally after retraining from :math:`\theta_0 + \alpha d`. Seed 002 shifts every
parameter of its linear Neural ODE by the same :math:`\alpha` (:math:`d = \mathbf 1`)
or only one column of its weight matrix, and retrains from there, to see whether the
minimum it found is global. :func:`shift_scan` is that experiment;
:func:`shift_direction` builds the seed's directions, and any other direction (a
random one, a Hessian eigenvector) can be passed to :func:`shift_scan` as
``direction=``.

A *model* here is anything with

- ``model.field``: an eulerflow network (its ``parameters()`` are the arrays moved);
- ``model.trajectory(z0, t)``: the states at the times ``t`` from ``z0``, for the loss;
- ``model.fit(data, t, epochs=, optimizer=, window=, seed=)``: only when retraining,

which :class:`eulerflow.NeuralODE` is. The model's parameters are restored bit for
bit when a scan ends, also when it ends with an exception.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import DivergenceError
from ._validate import nonneg_int, positive_int, real_array, seed_value
from .ode import IntegrationError
from .optim import SGD, Optimizer

__all__ = ["ShiftScan", "mean_loss", "shift_direction", "shift_scan"]

_LOSSES = ("window", "trajectory")


@dataclass(frozen=True)
class ShiftScan:
    r"""The result of :func:`shift_scan`.

    Attributes
    ----------
    alphas : ndarray, shape (k,)
        The shifts :math:`\alpha`, in the order given.
    loss : ndarray, shape (k,)
        :math:`L(\theta_0 + \alpha d)`: the loss right after the shift, before any
        retraining. ``inf`` where the shifted model could not be evaluated (its
        integration overflowed or exceeded ``max_steps``).
    loss_retrained : ndarray, shape (k,), or None
        The loss after ``retrain_epochs`` epochs of training from
        :math:`\theta_0 + \alpha d`; ``inf`` where that training diverged or its
        integration failed. ``None`` when ``retrain_epochs == 0``.
    retrained : list of list of ndarray, or None
        The parameters reached by each retraining (copies, in the order of
        ``field.parameters()``); ``None`` when ``retrain_epochs == 0``.
    failed : ndarray of bool, shape (k,)
        True where a loss is ``inf`` because evaluation or retraining failed.
    column : int or None
        The shifted column of the first weight matrix, or None (every parameter, or a
        custom ``direction``).
    loss_kind : str
        ``"window"`` or ``"trajectory"`` (see :func:`mean_loss`).
    retrain_epochs : int
    window : int
    seconds : float
        Wall time of the whole scan.
    """

    alphas: np.ndarray
    loss: np.ndarray
    loss_retrained: np.ndarray | None
    retrained: list[list[np.ndarray]] | None
    failed: np.ndarray
    column: int | None
    loss_kind: str
    retrain_epochs: int
    window: int
    seconds: float

    @property
    def best(self) -> tuple[float, float]:
        """``(alpha, loss)`` of the lowest finite loss (after retraining when there was
        retraining); ``(nan, nan)`` if no loss is finite."""
        values = self.loss if self.loss_retrained is None else self.loss_retrained
        finite = np.isfinite(values)
        if not finite.any():
            return float("nan"), float("nan")
        i = int(np.argmin(np.where(finite, values, np.inf)))
        return float(self.alphas[i]), float(values[i])


# ----------------------------------------------------------------------------- checks


def _field_parameters(model: Any) -> list[np.ndarray]:
    field = getattr(model, "field", None)
    if field is None or not callable(getattr(field, "parameters", None)):
        raise TypeError("model must have a .field network with .parameters() (e.g. an "
                        f"eulerflow.NeuralODE), got {type(model).__name__}")
    params = list(field.parameters())
    if not params:
        raise ValueError("model.field has no parameters to shift")
    return params


def _series(data: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
    t = real_array(t, "t", np.float64, ndim=(1,))
    data = real_array(data, "data", np.float64, ndim=(2,))
    if t.size < 2:
        raise ValueError(f"t needs at least two times, got shape {t.shape}")
    if data.shape[0] != t.size:
        raise ValueError(f"data has {data.shape[0]} rows but t has {t.size} times "
                         f"(data shape {data.shape}, t shape {t.shape})")
    return np.ascontiguousarray(data), np.ascontiguousarray(t)


def _window(window: Any, n_times: int) -> int:
    window = positive_int(window, "window")
    if window >= n_times:
        raise ValueError(f"window must be smaller than the series: window={window} with "
                         f"{n_times} times")
    return window


def _loss_kind(loss: Any) -> str:
    if not isinstance(loss, str) or loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
    return loss


# ----------------------------------------------------------------------------- pieces


def shift_direction(field: Any, column: int | None = None) -> list[np.ndarray]:
    r"""Seed 002's shift directions, one array per ``field.parameters()`` entry.

    - ``column=None``: :math:`d = \mathbf 1`, every parameter moves by :math:`\alpha`
      (weights and biases of every layer).
    - ``column=j``: :math:`d` is 1 on column ``j`` of the first weight matrix
      :math:`W` (shape ``(n_out, n_in)``, ``y = x W^T + b``) and 0 elsewhere, so
      :math:`W_{:,j} \mathrel{+}= \alpha`: the weights that multiply input feature
      ``j``. This is the seed's ``changeTheta(column=j)``, which adds :math:`\alpha`
      to the entries ``j`` and ``j + 2`` of the flattened 2x2 ``weight`` of
      ``nn.Linear``, i.e. to ``weight[0, j]`` and ``weight[1, j]``.
    """
    params = list(field.parameters()) if hasattr(field, "parameters") else None
    if not params:
        raise TypeError("field must be a network with parameters(), got "
                        f"{type(field).__name__}")
    if column is None:
        return [np.ones_like(p) for p in params]
    if isinstance(column, bool) or not isinstance(column, (int, np.integer)):
        raise TypeError(f"column must be an int or None, got {type(column).__name__}")
    first = next((i for i, p in enumerate(params) if p.ndim == 2), None)
    if first is None:
        raise ValueError("column needs a weight matrix, but the field has no 2-D parameter")
    n_in = params[first].shape[1]
    if not 0 <= column < n_in:
        raise ValueError(f"column must lie in [0, {n_in}) for the first weight matrix of shape "
                         f"{params[first].shape}, got {column}")
    direction = [np.zeros_like(p) for p in params]
    direction[first][:, int(column)] = 1.0
    return direction


def mean_loss(model: Any, data: Any, t: Any, window: int = 1, loss: str = "window") -> float:
    r"""The loss of ``model`` on the series ``data`` (shape ``(n, D)``) at times ``t``.

    ``loss="window"`` (what :meth:`eulerflow.NeuralODE.fit` minimises): the mean over
    the :math:`N = n - w` windows of the MSE between the state reached from
    ``data[i]`` over :math:`t_i, \dots, t_{i+w}` and ``data[i+w]``,

    .. math:: L_w(\theta) = \frac1N \sum_{i=0}^{N-1} \frac1D
              \bigl\| \Phi_\theta(x_i;\, t_i \to t_{i+w}) - x_{i+w} \bigr\|^2 .

    ``loss="trajectory"`` (what seed 002 plots after retraining): one trajectory from
    ``data[0]`` over all of ``t``, compared with every point,

    .. math:: L_{\mathrm{traj}}(\theta) = \frac1{nD} \sum_{i=0}^{n-1}
              \bigl\| \Phi_\theta(x_0;\, t_0 \to t_i) - x_i \bigr\|^2 .

    Evaluated with ``model.trajectory``, one call per window. Returns ``inf`` when a
    state overflows; lets :class:`eulerflow.IntegrationError` propagate.
    """
    data, t = _series(data, t)
    window = _window(window, t.size)
    loss = _loss_kind(loss)
    with np.errstate(over="ignore", invalid="ignore"):
        if loss == "trajectory":
            zs = np.asarray(model.trajectory(data[0], t))
            value = float(np.mean((zs - data) ** 2))
        else:
            n = t.size - window
            total = 0.0
            for i in range(n):
                z = np.asarray(model.trajectory(data[i], t[i:i + window + 1]))[-1]
                total += float(np.mean((z - data[i + window]) ** 2))
            value = total / n
    return value if np.isfinite(value) else float("inf")


def _safe_loss(model, data, t, window, loss) -> float:
    try:
        return mean_loss(model, data, t, window, loss)
    except IntegrationError:
        return float("inf")


# ----------------------------------------------------------------------------- the scan


def shift_scan(
    model: Any,
    data: Any,
    t: Any,
    alphas: Any,
    column: int | None = None,
    retrain_epochs: int = 0,
    optimizer: Optimizer | None = None,
    window: int = 1,
    seed: int = 0,
    *,
    direction: Sequence[Any] | None = None,
    loss: str = "window",
) -> ShiftScan:
    r"""Seed 002's ``exploreLandscape``: the loss along a line through the parameters.

    For each :math:`\alpha` in ``alphas``, the parameters :math:`\theta_0` of
    ``model.field`` (as they are when the scan starts) are set to

    .. math:: \theta(\alpha) = \theta_0 + \alpha\, d,

    with :math:`d` from :func:`shift_direction` (``column=None``: every parameter
    moves by :math:`\alpha`; ``column=j``: only column ``j`` of the first weight
    matrix) or the given ``direction``. The scan records
    :math:`\ell(\alpha) = L(\theta(\alpha))` with :math:`L` from :func:`mean_loss`
    (``loss="window"``: the mean window loss that ``fit`` minimises, over windows of
    ``window`` intervals; ``loss="trajectory"``: the seed's plotted measure). With
    ``retrain_epochs > 0`` it then trains ``model.fit(data, t, epochs=retrain_epochs,
    optimizer=..., window=window, seed=seed)`` from :math:`\theta(\alpha)` and records
    :math:`L` again: the seed retrains 500 epochs to ask whether every start reaches
    the same minimum. Each retraining uses a copy of ``optimizer`` with a fresh state
    (default: the seed's ``SGD(lr=1e-2, momentum=0.95)``); ``optimizer`` itself is not
    touched. The same ``seed`` shuffles the windows of every retraining.

    Near a minimum :math:`\theta_0` (:math:`\nabla L = 0`) the scan is a parabola,

    .. math:: \ell(\alpha) = L(\theta_0) + \tfrac12 \alpha^2\, d^\top \nabla^2 L\, d
              + O(\alpha^3),

    whose curvature is the Hessian along :math:`d`.

    A shift whose model cannot be evaluated (overflow, or an adaptive integration
    exceeding ``max_steps``) records ``inf``, and so does a retraining that diverges;
    ``failed`` marks them. Every parameter is restored bit for bit when the scan ends,
    normally or by an exception.

    Parameters
    ----------
    model : NeuralODE or compatible
        Has ``.field`` (a network), ``.trajectory(z0, t)`` and, to retrain, ``.fit``.
    data : array_like, shape (n, D)
        The series, ``data[i]`` at ``t[i]``.
    t : array_like, shape (n,)
        Its times.
    alphas : array_like, shape (k,)
        The shifts, finite; any order.
    column : int or None
        Shift only this column of the first weight matrix (the seed's ``column``).
    retrain_epochs : int
        Epochs of training after each shift (0: none, the landscape itself).
    optimizer : eulerflow.optim.Optimizer or None
        Configuration of each retraining (copied, fresh state).
    window : int
        Intervals per window, ``1 <= window < n``, for the loss and the retraining.
    seed : int
        Seed of the retrainings' window shuffling.
    direction : sequence of arrays, keyword-only
        A custom :math:`d`, one array per ``field.parameters()`` entry with its
        shape; excludes ``column``.
    loss : {"window", "trajectory"}, keyword-only
        Which :func:`mean_loss` to record.

    Returns
    -------
    ShiftScan

    Examples
    --------
    >>> import numpy as np, eulerflow as ef
    >>> t, ys = ef.data.spiral_ode()
    >>> model = ef.NeuralODE(ef.Dense(2, 2, bias=False, seed=0), "rk4", steps_per_interval=5)
    >>> scan = ef.landscape.shift_scan(model, ys, t, np.linspace(-1, 1, 5))
    >>> scan.loss.shape
    (5,)
    """
    begin = time.perf_counter()
    params = _field_parameters(model)
    data, t = _series(data, t)
    alphas = real_array(alphas, "alphas", np.float64, ndim=(1,)).copy()
    retrain_epochs = nonneg_int(retrain_epochs, "retrain_epochs")
    window = _window(window, t.size)
    seed = seed_value(seed)
    loss = _loss_kind(loss)
    if optimizer is None:
        optimizer = SGD(lr=1e-2, momentum=0.95)
    if not isinstance(optimizer, Optimizer):
        raise TypeError("optimizer must be an eulerflow.optim optimizer or None, got "
                        f"{type(optimizer).__name__}")
    if retrain_epochs and not callable(getattr(model, "fit", None)):
        raise TypeError(f"retraining needs model.fit; {type(model).__name__} has none")
    if direction is not None:
        if column is not None:
            raise ValueError("give column or direction, not both")
        direction = list(direction)
        if len(direction) != len(params):
            raise ValueError(f"direction must hold {len(params)} arrays (one per parameter), "
                             f"got {len(direction)}")
        checked = []
        for k, (d, p) in enumerate(zip(direction, params, strict=True)):
            d = real_array(d, f"direction[{k}]", np.float64)
            if d.shape != p.shape:
                raise ValueError(f"direction[{k}] must have the shape of parameter {k} "
                                 f"{p.shape}, got {d.shape}")
            checked.append(d)
        direction = checked
    else:
        direction = shift_direction(model.field, column)

    theta0 = [p.copy() for p in params]
    n = alphas.size
    before = np.empty(n)
    after = np.empty(n) if retrain_epochs else None
    reached: list[list[np.ndarray]] | None = [] if retrain_epochs else None
    failed = np.zeros(n, dtype=bool)
    try:
        for k, alpha in enumerate(alphas):
            for p, p0, d in zip(params, theta0, direction, strict=True):
                np.add(p0, alpha * d, out=p)
            before[k] = _safe_loss(model, data, t, window, loss)
            failed[k] = not np.isfinite(before[k])
            if not retrain_epochs:
                continue
            opt = copy.copy(optimizer)
            opt.reset()
            try:
                model.fit(data, t, epochs=retrain_epochs, optimizer=opt, window=window,
                          seed=seed)
                after[k] = _safe_loss(model, data, t, window, loss)
            except (DivergenceError, IntegrationError):
                after[k] = np.inf
            failed[k] |= not np.isfinite(after[k])
            reached.append([p.copy() for p in params])
    finally:
        for p, p0 in zip(params, theta0, strict=True):
            p[...] = p0
    return ShiftScan(alphas, before, after, reached, failed, column, loss, retrain_epochs,
                     window, time.perf_counter() - begin)
