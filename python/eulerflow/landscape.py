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

Random-direction scans (Li et al. 2018)
---------------------------------------
:func:`scan_1d` and :func:`scan_2d` look at the landscape of *any model with a loss*
around its current parameters :math:`\theta_0`,

.. math:: \ell(\alpha) = L(\theta_0 + \alpha d), \qquad
          \ell(\alpha, \beta) = L(\theta_0 + \alpha d_1 + \beta d_2),

along directions that are random Gaussian draws rescaled filter by filter to the
weights they move (:func:`random_direction`, Li, Xu, Taylor, Studer and Goldstein,
"Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018), so that landscapes of
networks whose weights have different scales can be compared. Here a *model* is

- anything with ``model.parameters()``: the list of its parameter arrays, which the
  scan moves **in place** (writes into them) and restores bit for bit at the end,
  also when the loss raises; the loss is then a callable ``loss(model) -> float``;
- or an eulerflow network (:class:`eulerflow.Module`) with data ``(X, Y)`` and a loss
  name (``"mse"``, ``"half_se"``, ``"cross_entropy"``, defined as in
  :meth:`eulerflow.Module.fit`, without its ``l1``/``l2`` penalties), evaluated
  natively. A float64 chain of :class:`eulerflow.Dense` and
  :class:`eulerflow.Activation` layers (a :func:`eulerflow.mlp`) is evaluated without
  touching its parameters, the whole grid in one native call split over the thread
  pool (:func:`eulerflow.set_num_threads`; the losses do not depend on the thread
  count): per point, each Dense layer's weights :math:`W_0 + \alpha D_1 + \beta D_2`,
  then the network's own forward kernels and loss. When the first layer has more
  inputs than there are stacks :math:`(W_0, D_1, D_2)`, its products with the data are
  computed once instead, by linearity: :math:`(W_0 + \alpha D_1 + \beta D_2) X = W_0 X
  + \alpha D_1 X + \beta D_2 X`. Other networks are evaluated point by point, one
  native forward each.
"""

from __future__ import annotations

import copy
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from ._errors import DivergenceError
from ._validate import nonneg_int, positive_int, real_array, seed_value
from .ode import IntegrationError
from .optim import SGD, Optimizer

__all__ = ["Scan1D", "Scan2D", "ShiftScan", "mean_loss", "normalize_direction",
           "random_direction", "scan_1d", "scan_2d", "shift_direction", "shift_scan"]

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


# ============================================================================= random directions

_NORMALIZATIONS = ("filter", "layer", None)
_BIAS_MODES = ("zero", "normalize")
_DATA_LOSSES = ("mse", "half_se", "cross_entropy")


def _model_parameters(model: Any) -> list[np.ndarray]:
    """``model.parameters()``, checked: a non-empty list of floating NumPy arrays."""
    get = getattr(model, "parameters", None)
    if not callable(get):
        raise TypeError("model must have a parameters() method returning its parameter arrays "
                        f"(e.g. an eulerflow network), got {type(model).__name__}")
    params = list(get())
    if not params:
        raise ValueError(f"model has no parameters to move ({type(model).__name__}.parameters() "
                         "is empty)")
    for k, p in enumerate(params):
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            what = (f"dtype {p.dtype}" if isinstance(p, np.ndarray) else type(p).__name__)
            raise TypeError(f"model.parameters()[{k}] must be a floating NumPy array that the "
                            f"scan can write into, got {what}")
        if not p.flags.writeable:
            raise ValueError(f"model.parameters()[{k}] (shape {p.shape}) is read-only: the scan "
                             "moves the parameters in place")
    return params


def _check_direction(direction: Any, params: list[np.ndarray], name: str) -> list[np.ndarray]:
    """One direction: a sequence of finite real arrays with the parameters' shapes."""
    if isinstance(direction, np.ndarray) or not isinstance(direction, Sequence):
        raise TypeError(f"{name} must be a list of arrays, one per model parameter, got "
                        f"{type(direction).__name__}")
    if len(direction) != len(params):
        shapes = [p.shape for p in params]
        raise ValueError(f"{name} must hold {len(params)} arrays (one per parameter, shapes "
                         f"{shapes}), got {len(direction)}")
    checked = []
    for k, (d, p) in enumerate(zip(direction, params, strict=True)):
        d = real_array(d, f"{name}[{k}]", np.float64, allow_empty=p.size == 0)
        if d.shape != p.shape:
            raise ValueError(f"{name}[{k}] must have the shape of parameter {k} {p.shape}, "
                             f"got {d.shape}")
        checked.append(np.array(d, dtype=np.float64, copy=True))
    return checked


def _check_normalization(normalization: Any, biases: Any) -> None:
    if normalization not in _NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}")
    if biases not in _BIAS_MODES:
        raise ValueError(f"biases must be one of {_BIAS_MODES}, got {biases!r}")


def _rescaled(d: np.ndarray, p: np.ndarray, axis: tuple[int, ...] | None) -> np.ndarray:
    """``d`` with each slice (over ``axis``) rescaled to the norm of the same slice of
    ``p``; a slice of ``d`` with norm zero stays zero."""
    p64 = p.astype(np.float64)
    dn = np.sqrt(np.sum(d * d, axis=axis, keepdims=True))
    pn = np.sqrt(np.sum(p64 * p64, axis=axis, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(dn > 0, pn / np.where(dn > 0, dn, 1.0), 0.0)
    return d * scale


def normalize_direction(
    model: Any,
    direction: Sequence[Any],
    normalization: str | None = "filter",
    biases: str = "zero",
) -> list[np.ndarray]:
    r"""Rescale a direction in parameter space to the model's weights (Li et al. 2018).

    ``direction`` holds one array per ``model.parameters()`` entry, with its shape.
    With ``normalization="filter"`` (Li et al.'s filter normalization), every array
    :math:`d` of a parameter :math:`\theta` with two or more dimensions is rescaled
    slice by slice along its first axis,

    .. math:: d_i \leftarrow \frac{\lVert \theta_i \rVert}{\lVert d_i \rVert}\, d_i ,

    where for an eulerflow :class:`~eulerflow.Dense` weight :math:`W` of shape
    ``(n_out, n_in)`` (``y = x W^T + b``) the slice :math:`i` is **row** :math:`i`: the
    incoming weights of output neuron :math:`i`, the analogue of a convolution filter
    (an array ``(out, in, kh, kw)`` is normalized per output channel the same way).
    With ``normalization="layer"`` each such array is rescaled as a whole,
    :math:`d \leftarrow d\, \lVert\theta\rVert / \lVert d\rVert`; with ``None`` it is
    left as it is. Norms are Frobenius norms; a slice of :math:`d` with norm zero
    stays zero, and a slice of :math:`\theta` with norm zero makes its slice of
    :math:`d` zero.

    One-dimensional parameters (the biases of Dense layers) follow ``biases``:

    - ``"zero"`` (default, as Li et al., who ignore biases and batch-norm parameters by
      default): their direction is zero, the scan does not move them;
    - ``"normalize"``: each bias vector counts as a single filter and is rescaled to
      the norm of the bias, :math:`d_b \leftarrow d_b \lVert b\rVert / \lVert d_b
      \rVert` (kept as it is when ``normalization=None``). Li et al.'s code instead
      sets :math:`d_b = b` when biases are included; pass such a direction yourself
      if that is wanted.

    Parameters
    ----------
    model : object with ``parameters()``
        The model whose current parameters set the scales.
    direction : sequence of array_like
        One finite array per parameter, with its shape.
    normalization : {"filter", "layer", None}
    biases : {"zero", "normalize"}

    Returns
    -------
    list of ndarray (float64)
        A new direction; ``direction`` itself is not modified.
    """
    _check_normalization(normalization, biases)
    params = _model_parameters(model)
    dirs = _check_direction(direction, params, "direction")
    out = []
    for d, p in zip(dirs, params, strict=True):
        if p.ndim <= 1:
            if biases == "zero":
                d = np.zeros_like(d)
            elif normalization is not None:
                d = _rescaled(d, p, None)
        elif normalization == "filter":
            d = _rescaled(d, p, tuple(range(1, p.ndim)))
        elif normalization == "layer":
            d = _rescaled(d, p, None)
        out.append(d)
    return out


def random_direction(
    model: Any,
    seed: int = 0,
    normalization: str | None = "filter",
    biases: str = "zero",
) -> list[np.ndarray]:
    r"""A random direction in the model's parameter space, filter-normalized.

    Draws :math:`d \sim \mathcal N(0, I)` with the shapes of ``model.parameters()``
    (one ``numpy.random.default_rng(seed).standard_normal(shape)`` per parameter, in
    their order) and rescales it with :func:`normalize_direction`: by default each row
    of each weight matrix (the incoming weights of one output neuron) gets the norm of
    the same row of the weights, and the biases are not moved (Li et al. 2018). The
    scan functions draw their second direction with ``seed + 1``.

    Parameters
    ----------
    model : object with ``parameters()``
    seed : int
        Seed of the Gaussian draw, in ``[0, 2**64)``.
    normalization : {"filter", "layer", None}
        See :func:`normalize_direction`.
    biases : {"zero", "normalize"}
        See :func:`normalize_direction`.

    Returns
    -------
    list of ndarray (float64)
        One array per parameter, with its shape.

    Examples
    --------
    >>> import numpy as np, eulerflow as ef
    >>> net = ef.mlp([2, 15, 3], "atan", seed=0)
    >>> d = ef.landscape.random_direction(net, seed=1)
    >>> W = net.parameters()[0]
    >>> bool(np.allclose(np.linalg.norm(d[0], axis=1), np.linalg.norm(W, axis=1)))
    True
    >>> bool(np.all(d[1] == 0))   # the first bias
    True
    """
    seed = seed_value(seed)
    _check_normalization(normalization, biases)
    params = _model_parameters(model)
    rng = np.random.default_rng(seed)
    raw = [rng.standard_normal(p.shape) for p in params]
    return normalize_direction(model, raw, normalization, biases)


# ============================================================================= scan results


@dataclass(frozen=True)
class Scan1D:
    r"""The result of :func:`scan_1d`: the loss along one line through the parameters.

    Attributes
    ----------
    alphas : ndarray, shape (k,)
        The steps :math:`\alpha`, in the order given.
    loss : ndarray, shape (k,)
        :math:`L(\theta_0 + \alpha_j d)`; ``inf`` where the loss was not finite.
    origin_loss : float
        :math:`L(\theta_0)`, the loss of the model as it was (``inf`` if not finite).
    direction : list of ndarray
        :math:`d`, one float64 array per parameter.
    normalization : str or None
        ``"filter"``, ``"layer"`` or None for a random direction; ``"given"`` when the
        direction was passed in.
    loss_name : str
        ``"mse"``, ``"half_se"``, ``"cross_entropy"``, or ``"callable"``.
    evaluation : str
        How the losses were computed: ``"batched"`` (a Dense/Activation float64
        network, many grid points per native call, parameters untouched),
        ``"forward"`` (one native forward per point) or ``"callable"``.
    seconds : float
        Wall time of the scan.
    """

    alphas: np.ndarray
    loss: np.ndarray
    origin_loss: float
    direction: list[np.ndarray]
    normalization: str | None
    loss_name: str
    evaluation: str
    seconds: float

    @property
    def minimum(self) -> tuple[float, float]:
        """``(alpha, loss)`` of the lowest finite loss on the grid; ``(nan, nan)`` if none
        is finite."""
        finite = np.isfinite(self.loss)
        if not finite.any():
            return float("nan"), float("nan")
        j = int(np.argmin(np.where(finite, self.loss, np.inf)))
        return float(self.alphas[j]), float(self.loss[j])


@dataclass(frozen=True)
class Scan2D:
    r"""The result of :func:`scan_2d`: the loss on a plane through the parameters.

    Attributes
    ----------
    alphas : ndarray, shape (nx,)
        Steps along the first direction (the x axis of a plot).
    betas : ndarray, shape (ny,)
        Steps along the second direction (the y axis).
    loss : ndarray, shape (ny, nx)
        ``loss[i, j]`` :math:`= L(\theta_0 + \alpha_j d_1 + \beta_i d_2)`, rows along
        ``betas``: the layout of ``matplotlib``'s ``contour(alphas, betas, loss)``;
        ``inf`` where the loss was not finite.
    origin_loss : float
        :math:`L(\theta_0)`.
    directions : tuple of two lists of ndarray
        :math:`(d_1, d_2)`.
    normalization : str or None
        As in :class:`Scan1D`.
    loss_name : str
        As in :class:`Scan1D`.
    evaluation : str
        As in :class:`Scan1D`.
    seconds : float
        Wall time of the scan.
    """

    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    origin_loss: float
    directions: tuple[list[np.ndarray], list[np.ndarray]]
    normalization: str | None
    loss_name: str
    evaluation: str
    seconds: float

    @property
    def minimum(self) -> tuple[float, float, float]:
        """``(alpha, beta, loss)`` of the lowest finite loss on the grid; all nan if none
        is finite."""
        finite = np.isfinite(self.loss)
        if not finite.any():
            return float("nan"), float("nan"), float("nan")
        i, j = np.unravel_index(int(np.argmin(np.where(finite, self.loss, np.inf))),
                                self.loss.shape)
        return float(self.alphas[j]), float(self.betas[i]), float(self.loss[i, j])

    @property
    def cosine(self) -> float:
        r""":math:`\cos` of the angle between :math:`d_1` and :math:`d_2` (all parameters
        flattened); random directions in many dimensions are nearly orthogonal, in a small
        network less so."""
        a = np.concatenate([d.ravel() for d in self.directions[0]])
        b = np.concatenate([d.ravel() for d in self.directions[1]])
        na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
        return float(a @ b) / (na * nb) if na > 0 and nb > 0 else float("nan")


# ============================================================================= objectives
#
# An objective evaluates L(theta_0 + sum_k c_k d_k) for a block of coefficient rows
# C = [[1, c_1, ..., c_K], ...] of shape (m, 1 + K). Three kinds:
#   _Batched   an eulerflow float64 chain of Dense and Activation layers with data and a
#              named loss: no Python step per point, parameters untouched;
#   _Forward   any eulerflow network with data: parameters set in place, one native
#              forward per point, the same vectorized loss;
#   _Callable  any model with parameters() and a callable loss(model).


def _data_loss(z: np.ndarray, target: np.ndarray, loss: str) -> np.ndarray:
    """Losses of a block of outputs ``z`` (m, k, n), feature-major (one output per row of
    n samples), against ``target``: (k, n) values, or (n,) class labels, or (k, n)
    probabilities for cross entropy. Returns (m,), each defined as in Module.fit. The
    reductions over the k outputs run row by row (NumPy reduces a middle axis slowly)."""
    m, k, n = z.shape
    if loss in ("mse", "half_se"):
        e = z - target
        e *= e
        total = e.reshape(m, -1).sum(axis=1)
        return total / (k * n) if loss == "mse" else total / (2.0 * n)
    zmax = z[:, 0].copy()
    for j in range(1, k):
        np.maximum(zmax, z[:, j], out=zmax)
    e = z - zmax[:, None, :]
    np.exp(e, out=e)
    lse = e[:, 0].copy()
    for j in range(1, k):
        lse += e[:, j]
    np.log(lse, out=lse)
    lse += zmax  # logsumexp per sample, (m, n)
    if target.ndim == 1:  # class labels: z[:, target[i], i] at flat index target[i]*n + i
        lse -= np.take(z.reshape(m, -1), target * n + np.arange(n), axis=1)
        return lse.sum(axis=1) / n
    per = (target * (lse[:, None, :] - z)).sum(axis=1)
    return per.sum(axis=1) / n


def _finite_or_inf(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.inf)


def _chain_layers(module: Any) -> list[Any] | None:
    """The Dense and Activation layers of a plain chain, in order, or None when the
    network holds anything else (a residual block, a Map, a penalty layer)."""
    from .nn import Activation, Dense, Sequential

    if isinstance(module, (Dense, Activation)):
        return [module]
    if type(module) is Sequential:
        out: list[Any] = []
        for layer in module.layers:
            inner = _chain_layers(layer)
            if inner is None:
                return None
            out.extend(inner)
        return out
    return None


def _pre_activation(layer: Any, h: np.ndarray) -> np.ndarray:
    """An activation before the first Dense layer, applied to the data ``h``
    (features, n) once for all points, by the core's kernel (the network's forward).
    A private copy of the layer runs it: its native cache is ours."""
    from .nn import Activation

    twin = Activation(layer.name, **layer.params)
    return np.asarray(twin(h.reshape(-1, 1))).reshape(h.shape)


class _Batched:
    r"""An eulerflow float64 chain of Dense and Activation layers on data (X, Y).

    The parameters are never written: every Dense layer enters as the stack
    ``[theta_0, d_1, ..., d_K]`` of its weights (and biases), and the core
    (``_core._landscape_losses``, cpp/src/landscape.cpp) evaluates every grid point
    in one call, split over the thread pool: per point, each layer's weights
    :math:`W(c) = \sum_k c_k W_k` (left to right), the chain's forward with the
    network's own kernels, the loss of :meth:`eulerflow.Module.fit`. The first Dense
    layer comes either as its products with the data, :math:`Q_k = W_k X + b_k`,
    combined per point as :math:`\sum_k c_k Q_k` (linearity: cheaper when the layer
    has more inputs than there are stacks), or as a Dense layer on the data, like the
    others (when it has at most ``1 + K`` inputs, e.g. the 2 inputs of W4 with 2
    directions). Feature-major layout, ``(features, samples)``.
    """

    evaluation = "batched"

    def __init__(self, layers, params, dirs, X, target, loss):
        from .nn import LOSSES

        index = {id(p): k for k, p in enumerate(params)}

        def stack(arr):
            k = index[id(arr)]
            return np.stack([params[k].astype(np.float64)] + [d[k] for d in dirs])

        terms = 1 + len(dirs)
        h = np.ascontiguousarray(X.T)  # (features, n), shared by every point
        first = next(i for i, layer in enumerate(layers) if hasattr(layer, "W"))
        for layer in layers[:first]:  # activations before the first Dense act on X, once
            h = _pre_activation(layer, h)
        self.ops: list[tuple] = []
        for i, layer in enumerate(layers[first:]):
            if not hasattr(layer, "W"):
                self.ops.append(layer._items()[0])  # (1, code, p1, p2), as the network's
                continue
            n_out, n_in = layer.W.shape
            W = stack(layer.W)
            b = None if layer.b is None else stack(layer.b)
            if i == 0 and n_in > terms:
                # linearity: the products with the data, once for all points
                Q = np.matmul(W, h)  # (1+K, out, n)
                if b is not None:
                    Q += b[:, :, None]
                self.Q, self.width = Q.reshape(terms, -1), n_out
            else:
                if i == 0:  # the data itself is the input of the first op
                    self.Q, self.width = h.reshape(1, -1), n_in
                self.ops.append((0, W.reshape(terms, -1), b, n_out, n_in))
        self.target = target
        self.loss = LOSSES[loss]

    def __call__(self, coeffs: np.ndarray) -> np.ndarray:
        return _core._landscape_losses(self.Q, self.width, self.ops, self.loss, self.target,
                                       coeffs)


class _InPlace:
    """Moves the parameters in place, point by point: theta = p0 + c_1 d_1 + ... + c_K d_K,
    evaluated left to right in float64 on all parameters at once (flattened), then
    stored in each parameter's dtype."""

    def __init__(self, params, dirs):
        self.params = params
        self.theta0 = [p.copy() for p in params]
        self.flat0 = np.concatenate([p.ravel().astype(np.float64) for p in params])
        self.flat_dirs = [np.concatenate([x.ravel() for x in d]) for d in dirs]
        ends = np.cumsum([p.size for p in params])
        self.pieces = [(int(e - p.size), int(e), p.shape) for e, p in zip(ends, params,
                                                                             strict=True)]
        self.value = np.empty_like(self.flat0)
        self.step = np.empty_like(self.flat0)

    def move(self, c: np.ndarray) -> None:
        value, step = self.value, self.step
        np.multiply(c[1], self.flat_dirs[0], out=step)
        np.add(self.flat0, step, out=value)
        for ck, d in zip(c[2:], self.flat_dirs[1:], strict=True):
            np.multiply(ck, d, out=step)
            value += step
        for p, (lo, hi, shape) in zip(self.params, self.pieces, strict=True):
            p[...] = value[lo:hi].reshape(shape)

    def restore(self) -> None:
        for p, p0 in zip(self.params, self.theta0, strict=True):
            p[...] = p0


class _Forward(_InPlace):
    """Any eulerflow network on data (X, Y): one native forward per point."""

    evaluation = "forward"

    def __init__(self, model, params, dirs, X, target, loss):
        super().__init__(params, dirs)
        # X is checked and in the network's dtype: call the core without re-checking it
        self.native = model._native()
        self.X, self.target, self.loss = X, target, loss

    def __call__(self, coeffs: np.ndarray) -> np.ndarray:
        out = np.empty(coeffs.shape[0])
        with np.errstate(all="ignore"):
            for i, c in enumerate(coeffs):
                self.move(c)
                z = np.asarray(self.native.forward(self.X), dtype=np.float64)
                out[i] = _data_loss(z.T[None], self.target, self.loss)[0]
        return _finite_or_inf(out)


class _Callable(_InPlace):
    """Any model with parameters() and a callable loss(model) -> float."""

    evaluation = "callable"

    def __init__(self, model, params, dirs, fn):
        super().__init__(params, dirs)
        self.model, self.fn = model, fn

    def __call__(self, coeffs: np.ndarray) -> np.ndarray:
        out = np.empty(coeffs.shape[0])
        for i, c in enumerate(coeffs):
            self.move(c)
            value = self.fn(self.model)
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.reshape(()).item()
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError("the loss callable must return a real number, got "
                                f"{type(value).__name__}")
            out[i] = float(value)
        return _finite_or_inf(out)


def _objective(model: Any, objective: Any, loss: str | None, params, dirs):
    """The evaluator for ``objective``: a callable ``loss(model)`` or data ``(X, Y)``."""
    from .nn import Module

    if callable(objective):
        if loss is not None:
            raise ValueError(f"loss={loss!r} names a built-in loss for data (X, Y); a callable "
                             "objective is its own loss: leave loss=None")
        return _Callable(model, params, dirs, objective), "callable"
    if not isinstance(objective, (tuple, list)) or len(objective) != 2:
        raise TypeError("objective must be a callable loss(model) -> float or a pair (X, Y), "
                        f"got {type(objective).__name__}")
    if not isinstance(model, Module):
        raise TypeError("data (X, Y) needs an eulerflow network; for "
                        f"{type(model).__name__} pass a callable loss(model) -> float")
    loss = "mse" if loss is None else loss
    if not isinstance(loss, str) or loss not in _DATA_LOSSES:
        raise ValueError(f"loss must be one of {_DATA_LOSSES}, got {loss!r}")
    X = real_array(objective[0], "X", model.dtype, ndim=(2,))
    if model.in_features is not None and X.shape[1] != model.in_features:
        raise ValueError(f"X has {X.shape[1]} features but the network expects "
                         f"{model.in_features} (X shape {X.shape})")
    X = np.ascontiguousarray(X)
    Yc = model._targets(objective[1], loss, X.shape[0], X.shape[1])
    if Yc.ndim == 1:
        target = np.ascontiguousarray(Yc, dtype=np.intp)
    else:
        target = np.ascontiguousarray(np.asarray(Yc, dtype=np.float64).T)
    layers = _chain_layers(model)
    if layers is not None and model.dtype == np.float64:
        return _Batched(layers, params, dirs, X, target, loss), loss
    return _Forward(model, params, dirs, X, target, loss), loss


def _steps(values: Any, name: str) -> np.ndarray:
    return np.array(real_array(values, name, np.float64, ndim=(1,)), dtype=np.float64, copy=True)


def _run(evaluator, coeffs: np.ndarray) -> np.ndarray:
    """Evaluate, restoring the parameters whatever happens."""
    try:
        return evaluator(coeffs)
    finally:
        if isinstance(evaluator, _InPlace):
            evaluator.restore()


# ============================================================================= the scans


def scan_1d(
    model: Any,
    objective: Any,
    alphas: Any,
    direction: Sequence[Any] | None = None,
    *,
    loss: str | None = None,
    seed: int = 0,
    normalization: str | None = "filter",
    biases: str = "zero",
) -> Scan1D:
    r"""The loss along a line through the model's parameters: :math:`L(\theta_0 + \alpha d)`.

    :math:`\theta_0` are the parameters as they are when the scan starts; ``direction``
    is :math:`d` (one array per ``model.parameters()`` entry, used as given), or, when
    None, :func:`random_direction` ``(model, seed, normalization, biases)``: a Gaussian
    direction, filter-normalized (Li et al. 2018). Near a minimum the scan is the
    parabola :math:`L(\theta_0) + \tfrac12 \alpha^2 d^\top \nabla^2 L\, d`.

    Parameters
    ----------
    model : eulerflow network, or any object with ``parameters()``
        The arrays of ``parameters()`` are moved in place and restored bit for bit at
        the end, also when the loss raises (a float64 chain of Dense and Activation
        layers with data is evaluated without writing them at all).
    objective : callable or (X, Y)
        A callable ``loss(model) -> float`` evaluated at each point, or data ``(X, Y)``
        for an eulerflow network, with the loss named by ``loss``.
    alphas : array_like, shape (k,)
        The steps, finite, in any order.
    direction : sequence of arrays, optional
        :math:`d`; default: a random filter-normalized direction.
    loss : {"mse", "half_se", "cross_entropy"}, keyword-only
        With data: the loss as :meth:`eulerflow.Module.fit` defines it (default
        ``"mse"``), without l1/l2 penalties. Must be None with a callable objective.
    seed, normalization, biases : keyword-only
        For the random direction (see :func:`random_direction`); unused when
        ``direction`` is given.

    Returns
    -------
    Scan1D
        Non-finite losses are recorded as ``inf``.

    Examples
    --------
    >>> import numpy as np, eulerflow as ef
    >>> X, y = ef.data.spiral_classes(100, 3, 0.2, seed=0)
    >>> net = ef.mlp([2, 15, 3], "atan", seed=0)
    >>> scan = ef.landscape.scan_1d(net, (X, y), np.linspace(-1, 1, 21),
    ...                             loss="cross_entropy", seed=1)
    >>> scan.loss.shape
    (21,)
    """
    begin = time.perf_counter()
    params = _model_parameters(model)
    alphas = _steps(alphas, "alphas")
    if direction is None:
        direction = random_direction(model, seed, normalization, biases)
        label = normalization
    else:
        direction = _check_direction(direction, params, "direction")
        label = "given"
    evaluator, loss_name = _objective(model, objective, loss, params, [direction])
    coeffs = np.ones((alphas.size + 1, 2))
    coeffs[:-1, 1] = alphas
    coeffs[-1, 1] = 0.0  # the origin, last
    values = _run(evaluator, coeffs)
    return Scan1D(alphas, values[:-1], float(values[-1]), direction, label, loss_name,
                  evaluator.evaluation, time.perf_counter() - begin)


def scan_2d(
    model: Any,
    objective: Any,
    alphas: Any,
    betas: Any,
    directions: Sequence[Sequence[Any]] | None = None,
    *,
    loss: str | None = None,
    seed: int = 0,
    normalization: str | None = "filter",
    biases: str = "zero",
) -> Scan2D:
    r"""The loss on a plane through the model's parameters, on a grid (Li et al. 2018).

    .. math:: \ell(\alpha, \beta) = L(\theta_0 + \alpha d_1 + \beta d_2)

    for every :math:`\alpha` in ``alphas`` and :math:`\beta` in ``betas``.
    ``directions=(d1, d2)`` are used as given; when None, :math:`d_1` and :math:`d_2`
    are :func:`random_direction` with seeds ``seed`` and ``seed + 1``
    (filter-normalized Gaussian directions by default).
    Draw a contour plot with :func:`eulerflow.plot.landscape_2d`.

    For an eulerflow float64 chain of Dense and Activation layers with data (e.g. an
    :func:`eulerflow.mlp`), the whole grid is one native call with no Python step per
    point, split over the thread pool (:func:`eulerflow.set_num_threads`; every thread
    count gives the same bits): per point, each Dense layer's weights
    :math:`W_0 + \alpha D_1 + \beta D_2`, then the network's own forward (activations
    included) and loss. A first layer with more inputs than the three stacks is applied
    to the data once instead, by linearity (:math:`W_0 X, D_1 X, D_2 X`). Other models
    are evaluated point by point (parameters moved in place, one
    native forward, or one call of the loss callable per point).

    Parameters
    ----------
    model : eulerflow network, or any object with ``parameters()``
        Moved in place and restored bit for bit at the end, also on an exception.
    objective : callable or (X, Y)
        ``loss(model) -> float``, or data for an eulerflow network (see :func:`scan_1d`).
    alphas : array_like, shape (nx,)
        Steps along :math:`d_1` (the x axis), finite.
    betas : array_like, shape (ny,)
        Steps along :math:`d_2` (the y axis), finite.
    directions : pair of sequences of arrays, optional
        :math:`(d_1, d_2)`, each one array per parameter with its shape.
    loss : {"mse", "half_se", "cross_entropy"}, keyword-only
        With data (default ``"mse"``); None with a callable objective.
    seed, normalization, biases : keyword-only
        For the random directions; unused when ``directions`` is given.

    Returns
    -------
    Scan2D
        ``loss`` has shape ``(len(betas), len(alphas))``; ``loss[i, j]`` is at
        ``(alphas[j], betas[i])``. Non-finite losses are recorded as ``inf``.

    Examples
    --------
    >>> import numpy as np, eulerflow as ef
    >>> X, y = ef.data.spiral_classes(100, 3, 0.2, seed=0)
    >>> net = ef.mlp([2, 15, 3], "atan", seed=0)
    >>> grid = np.linspace(-1, 1, 51)
    >>> scan = ef.landscape.scan_2d(net, (X, y), grid, grid, loss="cross_entropy", seed=1)
    >>> scan.loss.shape, scan.evaluation
    ((51, 51), 'batched')
    """
    begin = time.perf_counter()
    params = _model_parameters(model)
    alphas = _steps(alphas, "alphas")
    betas = _steps(betas, "betas")
    if directions is None:
        seed = seed_value(seed)
        if seed + 1 >= 2**64:
            raise ValueError(f"seed must be below 2**64 - 1 (the second direction uses seed + 1), "
                             f"got {seed}")
        d1 = random_direction(model, seed, normalization, biases)
        d2 = random_direction(model, seed + 1, normalization, biases)
        label = normalization
    else:
        if isinstance(directions, np.ndarray) or not isinstance(directions, Sequence):
            raise TypeError("directions must be a pair (d1, d2) of lists of arrays, got "
                            f"{type(directions).__name__}")
        if len(directions) != 2:
            raise ValueError(f"directions must be a pair (d1, d2), got {len(directions)} items")
        d1 = _check_direction(directions[0], params, "directions[0]")
        d2 = _check_direction(directions[1], params, "directions[1]")
        label = "given"
    evaluator, loss_name = _objective(model, objective, loss, params, [d1, d2])
    nx, ny = alphas.size, betas.size
    coeffs = np.ones((nx * ny + 1, 3))
    coeffs[:-1, 1] = np.tile(alphas, ny)
    coeffs[:-1, 2] = np.repeat(betas, nx)
    coeffs[-1, 1:] = 0.0  # the origin, last
    values = _run(evaluator, coeffs)
    return Scan2D(alphas, betas, values[:-1].reshape(ny, nx), float(values[-1]), (d1, d2), label,
                  loss_name, evaluator.evaluation, time.perf_counter() - begin)
