"""Figures for the seed experiments.

This is the only eulerflow module that uses matplotlib, and it imports it inside the
functions, so ``import eulerflow`` stays light and ``eulerflow.plot`` can be imported
without a display. Every plotting function draws into ``ax`` when one is given and
otherwise creates a new figure with ``layout="constrained"``; it returns the
:class:`matplotlib.figure.Figure` it drew on.

Scripts that only save files should select a non-interactive backend first
(``matplotlib.use("Agg")``), as ``eulerflow demo`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "class_colors",
    "classification_map",
    "components",
    "convergence",
    "depth_convergence",
    "extrapolation",
    "fact_losses",
    "figure_grid",
    "gaussian_lowpass",
    "grid_heatmap",
    "grouped_loss_curves",
    "history",
    "landscape",
    "layers_comparison",
    "loglog_slope",
    "loss_curves",
    "node_fit",
    "output_map",
    "particles",
    "particles_animation",
    "scatter_classes",
    "softmax",
    "step_losses",
    "trajectories_3d",
    "weights_image",
    "work_precision",
]


# ----------------------------------------------------------------------------- helpers


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``(figure, ax)``: the given axes and its figure, or a new constrained figure."""
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _as_1d_float(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _check_points(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate 2-D points ``X (n, 2)`` and integer labels ``y (n,)``."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.dtype.kind not in "iuf":
        raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[1] != 2 or X.shape[0] == 0:
        raise ValueError(f"X must have shape (n, 2) with n >= 1, got {X.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"y must hold integer class indices, got dtype {y.dtype}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X {X.shape}, got {y.shape}")
    if y.min() < 0:
        raise ValueError(f"y must hold class indices >= 0, got min {y.min()}")
    return X.astype(np.float64, copy=False), y.astype(np.int64, copy=False)


def _check_grid(grid: Any) -> int:
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"grid must be an integer >= 2, got {grid!r}")
    return int(grid)


def _bounds(X: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float]:
    """A square window around the points, ``margin`` times the larger span on each side."""
    lo = X.min(axis=0)
    hi = X.max(axis=0)
    centre = (lo + hi) / 2
    half = max(float((hi - lo).max()) / 2, 1e-12) * (1 + 2 * margin)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _grid_points(bounds: Sequence[float], grid: int) -> np.ndarray:
    """``grid*grid`` points, row ``i*grid + j`` at ``(x_j, y_i)`` (image order, origin lower)."""
    x0, x1, y0, y1 = (float(v) for v in bounds)
    gx, gy = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    return np.column_stack([gx.ravel(), gy.ravel()])


def softmax(z: Any) -> np.ndarray:
    r"""Row-wise softmax, stabilised by the row maximum.

    .. math:: \operatorname{softmax}(z)_i = \frac{e^{z_i - m}}{\sum_j e^{z_j - m}},
              \qquad m = \max_j z_j .
    """
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: One marker per class, so that classes stay apart in grey (cycled beyond 8 classes).
_CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<")


def class_colors(k: int) -> np.ndarray:
    """``k`` distinct RGB colours, shape ``(k, 3)``: matplotlib's tab10, then an HSV wheel."""
    from matplotlib import colormaps
    from matplotlib.colors import hsv_to_rgb

    if k <= 10:
        return np.asarray(colormaps["tab10"].colors[:k], dtype=np.float64)
    hues = np.arange(k) / k
    return hsv_to_rgb(np.column_stack([hues, np.full(k, 0.75), np.full(k, 0.85)]))


def gaussian_lowpass(values: Any, sigma: float) -> np.ndarray:
    r"""Gaussian low-pass filter of a 1-D signal, in NumPy (no SciPy).

    .. math:: s_i = \sum_{m=-R}^{R} w_m\, v_{i+m}, \qquad
              w_m = \frac{e^{-m^2 / (2\sigma^2)}}{\sum_{m'} e^{-m'^2 / (2\sigma^2)}},
              \qquad R = \lfloor 4\sigma + 1/2 \rfloor,

    with the signal mirrored at both ends (``v_{-1} = v_0``), which is what
    ``scipy.ndimage.gaussian_filter1d(values, sigma)`` computes with its defaults.
    ``sigma`` is in samples; ``sigma = 0`` returns a copy.
    """
    v = _as_1d_float("values", values)
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    radius = int(4.0 * sigma + 0.5)
    if v.size == 0 or radius == 0:
        return v.copy()
    m = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (m / sigma) ** 2)
    w /= w.sum()
    padded = np.pad(v, radius, mode="symmetric")
    return np.convolve(padded, w, mode="valid")


def _dense_parameters(net: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``[(W, b or None), ...]`` of every Dense layer, in order, from ``net.parameters()``.

    A Dense layer's ``W`` is the only 2-D parameter and its bias, when it has one, is the
    1-D parameter right after it, so the pairs are read off the flat list.
    """
    params = [np.asarray(p) for p in net.parameters()]
    pairs: list[tuple[np.ndarray, np.ndarray | None]] = []
    i = 0
    while i < len(params):
        W = params[i]
        if W.ndim != 2:
            raise ValueError(f"expected a 2-D weight matrix at parameters()[{i}], got {W.shape}")
        b = None
        if i + 1 < len(params) and params[i + 1].ndim == 1 and params[i + 1].size == W.shape[0]:
            b = params[i + 1]
            i += 1
        pairs.append((W, b))
        i += 1
    return pairs


#: Line styles cycled over curves that could otherwise only be told apart by colour.
_LINE_STYLES = ("-", "--", "-.", ":")


# ----------------------------------------------------------------------------- training


def history(hist: Any, ax: Axes | None = None, label: str | None = None) -> Figure:
    """Loss per epoch on a log scale, and the accuracy (right axis) when it was recorded.

    ``hist`` is an :class:`eulerflow.History` (its ``loss`` and ``metrics["accuracy"]``
    are used) or a 1-D array of losses.
    """
    losses = _as_1d_float("hist.loss", getattr(hist, "loss", hist))
    metrics = getattr(hist, "metrics", None) or {}
    fig, ax = _new_axes(ax, (6.0, 4.0))
    epochs = np.arange(1, losses.size + 1)
    lines = ax.plot(epochs, losses, color="C0", label=label or "loss")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title("Training loss per epoch")
    ax.grid(True, which="major", alpha=0.3)
    if "accuracy" in metrics:
        acc = _as_1d_float("hist.metrics['accuracy']", metrics["accuracy"])
        ax2 = ax.twinx()
        lines += ax2.plot(
            np.arange(1, acc.size + 1), 100 * acc, color="C1", ls="--", alpha=0.8,
            label="accuracy",
        )
        ax2.set_ylabel("accuracy (%)")
        ax2.set_ylim(min(float(100 * acc.min()), 90.0) - 2, 101)
        ax.set_title("Training loss and accuracy per epoch")
        ax.legend(lines, [ln.get_label() for ln in lines], loc="center right")
    elif label is not None:
        ax.legend()
    return fig


def fact_losses(
    losses: Any,
    ax: Axes | None = None,
    smooth: float | None = None,
    title: str | None = None,
) -> Figure:
    r"""Per-fact losses of online learning (seed 001) on a log scale.

    ``losses`` is a 1-D array (as returned by ``net.learn``) or a mapping
    ``{label: losses}`` for several runs. With ``smooth=sigma`` every raw curve is drawn
    faintly and a Gaussian low-pass of it (``sigma`` facts wide) on top. The filter acts
    on :math:`\log_{10}` of the loss, i.e. it is a running geometric mean, so the
    smoothed curve runs through the raw one on the log axis. Losses of exactly 0 leave
    gaps in the raw curve (and count as the smallest positive loss in the low-pass).
    """
    series = dict(losses) if isinstance(losses, Mapping) else {None: losses}
    fig, ax = _new_axes(ax, (7.0, 4.0))
    for i, (label, values) in enumerate(series.items()):
        v = _as_1d_float("losses", values)
        positive = v > 0
        raw = np.where(positive, v, np.nan)  # a log axis cannot show 0: leave a gap
        facts = np.arange(v.size)
        colour = f"C{i % 10}"
        style = _LINE_STYLES[i % len(_LINE_STYLES)]  # runs stay apart in grey too
        name = "loss" if label is None else str(label)
        if smooth and positive.any():
            ax.plot(facts, raw, color=colour, lw=0.6, alpha=0.35, label=f"{name} (raw)")
            floor = v[positive].min()  # exact zeros count as the smallest loss seen
            lowpass = 10.0 ** gaussian_lowpass(np.log10(np.maximum(v, floor)), smooth)
            ax.plot(facts, lowpass, color=colour, lw=1.8, ls=style, label=f"{name} (low-pass)")
        else:
            ax.plot(facts, raw, color=colour, lw=1.0, ls=style, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("fact (one SGD step each)")
    ax.set_ylabel(r"loss $\|y - \mathrm{expected}\|^2/2$ (log scale)")
    default = "Per-fact loss of online learning"
    if smooth:
        default += f"\nraw (faint) and Gaussian low-pass, sigma = {smooth:g} facts"
    ax.set_title(title or default)
    ax.grid(True, which="major", alpha=0.3)
    if len(series) > 1 or smooth or None not in series:
        ax.legend(fontsize="small")
    return fig


# ----------------------------------------------------------------------------- classification


def scatter_classes(
    X: Any, y: Any, ax: Axes | None = None, title: str | None = None, legend: bool = True
) -> Figure:
    """The points ``X (n, 2)`` coloured by their class ``y (n,)``."""
    X, y = _check_points(X, y)
    k = int(y.max()) + 1
    colours = class_colors(k)
    fig, ax = _new_axes(ax, (5.0, 5.0))
    for j in range(k):
        pts = X[y == j]
        ax.scatter(
            pts[:, 0], pts[:, 1], s=14, color=colours[j], edgecolors="black",
            linewidths=0.3, marker=_CLASS_MARKERS[j % len(_CLASS_MARKERS)], label=f"class {j}",
        )
    bounds = _bounds(X)
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title or f"{k} classes, {X.shape[0]} points")
    if legend:
        ax.legend(fontsize="small", loc="best")
    return fig


def classification_map(
    net: Any,
    X: Any,
    y: Any,
    ax: Axes | None = None,
    grid: int = 200,
    bounds: Sequence[float] | None = None,
    title: str | None = None,
    legend: bool = True,
) -> Figure:
    r"""Class-probability map of a classifier with the data on top (seed 004).

    The network's outputs ``z`` (logits, one per class) are evaluated on a ``grid x grid``
    lattice covering the data; each pixel gets the colours :math:`c_j` of the classes
    mixed by their probabilities,

    .. math:: \mathrm{rgb} = \tfrac12 \mathbf 1 + \tfrac12 \sum_j p_j c_j, \qquad
              p = \operatorname{softmax}(z),

    (lightened halfway to white so the points stand out): pure colours where the network
    is sure, blends along the decision boundaries. ``bounds = (x0, x1, y0, y1)`` defaults
    to a square around the data. The title reports the accuracy on ``(X, y)``.
    """
    X, y = _check_points(X, y)
    grid = _check_grid(grid)
    bounds = _bounds(X) if bounds is None else tuple(float(v) for v in bounds)
    z_data = np.asarray(net(X))
    if z_data.ndim != 2 or z_data.shape[1] < 2:
        raise ValueError(
            f"net must output one logit per class, shape (n, k) with k >= 2; got {z_data.shape}"
        )
    k = z_data.shape[1]
    if y.max() >= k:
        raise ValueError(f"y holds class {y.max()} but the network has only {k} outputs")
    accuracy = float(np.mean(z_data.argmax(axis=1) == y))

    probs = softmax(np.asarray(net(_grid_points(bounds, grid))))
    colours = class_colors(k)
    rgb = 0.5 + 0.5 * (probs @ colours)
    fig, ax = _new_axes(ax, (5.5, 5.0))
    ax.imshow(
        rgb.reshape(grid, grid, 3), origin="lower", extent=bounds, interpolation="bilinear"
    )
    for j in range(k):
        pts = X[y == j]
        ax.scatter(
            pts[:, 0], pts[:, 1], s=12, color=colours[j], edgecolors="black",
            linewidths=0.3, marker=_CLASS_MARKERS[j % len(_CLASS_MARKERS)], label=f"class {j}",
        )
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title or f"Class probabilities (accuracy {100 * accuracy:.1f}%)")
    if legend:
        ax.legend(fontsize="small", loc="best", framealpha=0.8)
    return fig


def output_map(
    net: Any,
    X: Any,
    Y: Any,
    ax: Axes | None = None,
    grid: int = 200,
    bounds: Sequence[float] | None = None,
    title: str | None = None,
) -> Figure:
    """Output of a one-output network over the plane, with the 0.5 level and the data.

    Meant for XOR-like problems: ``X (n, 2)`` inputs, ``Y (n,)`` or ``(n, 1)`` targets.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2 or Y.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, 2) and Y (n,) or (n, 1); got {X.shape} and {Y.shape}")
    grid = _check_grid(grid)
    bounds = _bounds(X, margin=0.25) if bounds is None else tuple(float(v) for v in bounds)
    out = np.asarray(net(_grid_points(bounds, grid)))
    if out.ndim != 2 or out.shape[1] != 1:
        raise ValueError(f"net must have one output, got outputs of shape {out.shape}")
    out = out.reshape(grid, grid)
    from matplotlib.colors import TwoSlopeNorm

    fig, ax = _new_axes(ax, (5.5, 4.5))
    # 0.5 (the decision level) sits mid-scale; a sequential map, dark for 0 and light
    # for 1, reads in grey too (the dashed contour marks the level itself).
    norm = TwoSlopeNorm(vcenter=0.5, vmin=min(0.0, float(out.min())),
                        vmax=max(1.0, float(out.max())))
    image = ax.imshow(out, origin="lower", extent=bounds, cmap="viridis", norm=norm)
    fig.colorbar(image, ax=ax, label="network output")
    gx = np.linspace(bounds[0], bounds[1], grid)
    gy = np.linspace(bounds[2], bounds[3], grid)
    if out.min() < 0.5 < out.max():
        ax.contour(gx, gy, out, levels=[0.5], colors="black", linestyles="--", linewidths=1)
    # light targets on the dark low side, dark targets on the light high side
    for value, marker, face, edge in ((0.0, "o", "white", "black"), (1.0, "s", "black", "white")):
        sel = np.isclose(Y, value)
        if sel.any():
            ax.scatter(
                X[sel, 0], X[sel, 1], s=90, marker=marker, color=face,
                edgecolors=edge, linewidths=1.2, label=f"target {value:g}", zorder=3,
            )
    ax.plot([], [], color="black", ls="--", lw=1, label="output = 0.5")
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title or "Network output")
    ax.legend(fontsize="small", loc="upper center", framealpha=0.9, ncols=3)
    return fig


# ----------------------------------------------------------------------------- weights


def weights_image(
    net: Any, ax: Axes | None = None, annotate: bool | None = None, title: str | None = None
) -> Figure:
    r"""Image of the weights of every Dense layer, bias as an extra row (seed 001).

    Layer :math:`l` with :math:`y = W x + b` is drawn as its augmented matrix

    .. math:: \begin{bmatrix} W^\top \\ b^\top \end{bmatrix}, \qquad
              y = \begin{bmatrix} x^\top & 1 \end{bmatrix}
                  \begin{bmatrix} W^\top \\ b^\top \end{bmatrix},

    one column per output unit and one row per input, the bias last; the layers stand
    side by side, bias rows aligned at the bottom (grey cells are padding), on a
    diverging colour scale centred on 0. Small networks get the values written in the
    cells (``annotate=None`` decides by size).
    """
    pairs = _dense_parameters(net)
    if not pairs:
        raise ValueError("net has no Dense layer (net.parameters() is empty)")
    n_rows = max(W.shape[1] for W, _ in pairs) + 1  # inputs + bias row
    blocks = []
    centres = []
    col = 0
    for W, b in pairs:
        n_out, n_in = W.shape
        block = np.full((n_rows, n_out), np.nan)
        block[:n_in] = W.T
        if b is not None:
            block[-1] = b
        if blocks:
            blocks.append(np.full((n_rows, 1), np.nan))
            col += 1
        blocks.append(block)
        centres.append(col + (n_out - 1) / 2)
        col += n_out
    image = np.concatenate(blocks, axis=1)
    vmax = float(np.nanmax(np.abs(image))) if np.isfinite(image).any() else 1.0
    vmax = vmax or 1.0

    size = (min(12.0, max(4.0, 1.2 + 0.45 * image.shape[1])),
            min(7.0, max(3.0, 1.6 + 0.4 * n_rows)))
    fig, ax = _new_axes(ax, size)
    ax.set_facecolor("0.82")  # cells that are not weights (padding) in grey, apart from 0
    shown = ax.imshow(image, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    fig.colorbar(shown, ax=ax, label="weight value")
    ax.set_xticks(centres)
    ax.set_xticklabels(
        [f"Dense {i + 1}\n{W.shape[1]}→{W.shape[0]}" for i, (W, _) in enumerate(pairs)]
    )
    row_ticks = list(range(n_rows))
    row_labels = [f"in {i}" for i in range(n_rows - 1)] + ["bias"]
    if n_rows > 12:  # keep the labels readable
        keep = sorted(set(range(0, n_rows - 1, max(1, (n_rows - 1) // 6))) | {n_rows - 1})
        row_ticks = keep
        row_labels = [row_labels[i] for i in keep]
    ax.set_yticks(row_ticks)
    ax.set_yticklabels(row_labels)
    ax.set_xlabel("output units, grouped by layer")
    ax.set_ylabel("input (rows of $W^T$), bias last")
    ax.set_title(title or "Dense weights: $W^T$ with the bias as last row")
    if annotate is None:
        annotate = image.size <= 120
    if annotate:
        for (r, c), value in np.ndenumerate(image):
            if np.isfinite(value):
                text = f"{value:.2f}"
                ax.text(
                    c, r, "0.00" if text == "-0.00" else text, ha="center", va="center",
                    fontsize="small",
                    color="white" if abs(value) > 0.6 * vmax else "black",
                )
    return fig


# ----------------------------------------------------------------------------- depth


def layers_comparison(
    runs: Sequence[tuple[str, Any, Any]],
    X: Any,
    y: Any,
    grid: int = 150,
    title: str | None = None,
) -> Figure:
    """Influence of the number of layers: loss curves, final accuracy, maps side by side.

    ``runs`` is a sequence of ``(label, net, history)``, one per architecture trained the
    same way on ``(X, y)``. Top left: every loss curve (log scale); top right: final
    accuracy per architecture with its final loss; bottom: each network's class map.
    """
    import matplotlib.pyplot as plt

    X, y = _check_points(X, y)
    runs = list(runs)
    if not runs:
        raise ValueError("runs must hold at least one (label, net, history)")
    n = len(runs)
    fig = plt.figure(figsize=(max(8.0, 3.4 * n), 7.6), layout="constrained")
    gs = fig.add_gridspec(2, 2 * n, height_ratios=[1.0, 1.15])
    ax_loss = fig.add_subplot(gs[0, :n])
    ax_bar = fig.add_subplot(gs[0, n:])

    labels, accs, finals = [], [], []
    for i, (label, net, hist) in enumerate(runs):
        loss = _as_1d_float("history.loss", getattr(hist, "loss", hist))
        ax_loss.plot(np.arange(1, loss.size + 1), loss, color=f"C{i % 10}", lw=1.0,
                     label=label)
        z = np.asarray(net(X))
        labels.append(label)
        accs.append(100 * float(np.mean(z.argmax(axis=1) == y)))
        finals.append(float(loss[-1]))
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (log scale)")
    ax_loss.set_title("Training loss per epoch")
    ax_loss.grid(True, alpha=0.3)
    ax_loss.legend(fontsize="small", title="layer sizes D")

    positions = np.arange(n)
    bars = ax_bar.bar(positions, accs, color=[f"C{i % 10}" for i in range(n)])
    for rect, acc, final in zip(bars, accs, finals, strict=True):
        ax_bar.annotate(
            f"{acc:.1f}%\nloss {final:.3g}", (rect.get_x() + rect.get_width() / 2, acc),
            xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
            fontsize="small",
        )
    ax_bar.set_xticks(positions)
    ax_bar.set_xticklabels(labels, fontsize="small")
    low = min(accs)
    ax_bar.set_ylim(max(0.0, low - 15), 100 + max(6.0, (100 - low) * 0.35))
    ax_bar.set_yticks([t for t in ax_bar.get_yticks() if 0 <= t <= 100])  # room for the text
    ax_bar.set_xlabel("layer sizes D")
    ax_bar.set_ylabel("final training accuracy (%)")
    ax_bar.set_title("Accuracy and loss after training")

    bounds = _bounds(X)
    for i, (label, net, _) in enumerate(runs):
        ax = fig.add_subplot(gs[1, 2 * i : 2 * i + 2])
        classification_map(net, X, y, ax=ax, grid=grid, bounds=bounds, legend=(i == 0))
        ax.set_title(f"D = {label}\naccuracy {accs[i]:.1f}%", fontsize="medium")
    fig.suptitle(title or "Influence of the number of layers")
    return fig


# ----------------------------------------------------------------------------- ODEs


def _as_states(name: str, values: Any) -> np.ndarray:
    """A trajectory ``(k, d)`` with ``d >= 3`` real columns, as float64."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] < 3 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (k, d) with k >= 1 and d >= 3, got {arr.shape}")
    return arr.astype(np.float64, copy=False)


def trajectories_3d(
    trajectories: Any,
    reference: Any = None,
    ax: Axes | None = None,
    title: str | None = None,
    labels: Sequence[str] = ("x", "y", "z"),
    order: Sequence[int] = (0, 1, 2),
    reference_label: str = "analytic",
    view: tuple[float, float] | None = None,
    markers: bool | None = None,
) -> Figure:
    """Trajectories in 3-D, optionally against a reference curve (seeds 000 and 002).

    ``trajectories`` is one array of states ``(k, d)`` or a mapping ``{label: states}``;
    the first three columns are the position (a state ``(x, y, z, vx, vy, vz)`` is fine).
    ``reference`` (same layout) is drawn last, as a dashed black line labelled
    ``reference_label``. ``order`` says which position column goes on the plot's two
    horizontal axes and on its vertical axis: seed 000 draws ``order=(2, 1, 0)`` so that
    its height ``x`` is vertical; ``labels`` names the columns 0, 1, 2. ``view`` is
    ``(elevation, azimuth)`` in degrees (seed 000: ``(7, 297)``). Each state is marked
    with a dot when ``markers`` is true; ``markers=None`` marks curves of at most 60
    states, so a coarse step shows its steps.
    """
    series = (dict(trajectories) if isinstance(trajectories, Mapping)
              else {None: trajectories})
    if not series:
        raise ValueError("trajectories must hold at least one array of states")
    order = tuple(int(i) for i in order)
    if sorted(order) != [0, 1, 2]:
        raise ValueError(f"order must be a permutation of (0, 1, 2), got {order}")
    labels = tuple(str(v) for v in labels)
    if len(labels) != 3:
        raise ValueError(f"labels must name the 3 position columns, got {len(labels)}")
    if ax is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(8.0, 6.5), layout="constrained")
        ax = fig.add_subplot(projection="3d")
    else:
        fig = ax.figure
    from matplotlib.ticker import MaxNLocator

    a, b, c = order
    for i, (label, values) in enumerate(series.items()):
        states = _as_states("trajectories" if label is None else f"trajectories[{label!r}]",
                            values)
        mark = markers if markers is not None else states.shape[0] <= 60
        ax.plot(states[:, a], states[:, b], states[:, c], color=f"C{i % 10}", lw=1.6,
                marker="o" if mark else None, ms=3.5, label=label)
    if reference is not None:  # last, thin and dashed, so converged curves do not hide it
        ref = _as_states("reference", reference)
        ax.plot(ref[:, a], ref[:, b], ref[:, c], color="black", lw=1.2, ls="--",
                label=reference_label)
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_major_locator(MaxNLocator(4))
    ax.set_xlabel(labels[a])
    ax.set_ylabel(labels[b])
    ax.set_zlabel(labels[c])
    if view is not None:
        ax.view_init(elev=float(view[0]), azim=float(view[1]))
    ax.set_title(title or "Trajectories")
    if reference is not None or None not in series:
        ax.legend(fontsize="small", loc="upper left")
    return fig


def loglog_slope(h: Any, errors: Any, mask: Any = None) -> tuple[float, float]:
    r"""Least-squares line through :math:`(\log_{10} h_i, \log_{10} e_i)`: ``(slope, intercept)``.

    .. math:: \log_{10} e \approx p \log_{10} h + c,

    so :math:`p` is the measured order of a method whose error behaves like
    :math:`C h^p`. Only points selected by ``mask`` (default: all) with a finite,
    positive error enter the fit; with fewer than two such points both are ``nan``.
    Pure NumPy.
    """
    h = _as_1d_float("h", h)
    e = _as_1d_float("errors", errors)
    if e.shape != h.shape:
        raise ValueError(f"errors must have the shape of h {h.shape}, got {e.shape}")
    use = np.isfinite(e) & (e > 0) & (h > 0)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != h.shape:
            raise ValueError(f"mask must have the shape of h {h.shape}, got {m.shape}")
        use &= m
    if use.sum() < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log10(h[use]), np.log10(e[use]), 1)
    return float(slope), float(intercept)


#: One marker per curve, so that curves lying on top of each other stay visible.
_CONVERGENCE_MARKERS = ("o", "s", "^", "x", "D", "v", "+", "P")


def convergence(
    h: Any,
    errors: Any,
    fits: Mapping[str, Any] | None = None,
    orders: Mapping[str, float] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "step size h",
    ylabel: str = "end-point error",
) -> Figure:
    r"""Error against step size on log-log axes, with the fitted slope of each curve.

    ``errors`` maps a label (a method) to its errors at the step sizes ``h`` (or is one
    array). Each curve's slope :math:`p` in :math:`e \approx C h^p` is fitted by
    :func:`loglog_slope` over the points ``fits[label]`` (a boolean mask; default: every
    positive point) and drawn as a dashed line over the fitted range; points left out
    of the fit are hollow. Each curve has its own colour and marker. The legend gives
    the fitted slope and, from ``orders``, the method's nominal order. A curve with
    fewer than two fitted points (e.g. a method exact to rounding on the problem) says
    so with its largest error instead. Errors of exactly 0 cannot be drawn on a log
    axis: they are left out and counted in the legend.
    """
    series = dict(errors) if isinstance(errors, Mapping) else {"error": errors}
    h = _as_1d_float("h", h)
    fits = dict(fits or {})
    orders = dict(orders or {})
    fig, ax = _new_axes(ax, (6.5, 4.8))
    hollow = False
    for i, (label, values) in enumerate(series.items()):
        e = _as_1d_float(f"errors[{label!r}]", values)
        if e.shape != h.shape:
            raise ValueError(f"errors[{label!r}] must have the shape of h {h.shape}, got {e.shape}")
        mask = np.asarray(fits.get(label, np.ones(h.shape, dtype=bool)), dtype=bool)
        if mask.shape != h.shape:
            raise ValueError(
                f"fits[{label!r}] must have the shape of h {h.shape}, got {mask.shape}")
        drawn = np.isfinite(e) & (e > 0)
        used = drawn & mask
        colour = f"C{i % 10}"
        slope, intercept = loglog_slope(h, e, used)
        text = str(label)
        if label in orders:
            text += f" (order {orders[label]:g})"
        if np.isfinite(slope):
            text += f": fitted slope {slope:.2f}"
        else:
            text += f": no slope, max error {np.nanmax(np.abs(e)):.1e}"
        zeros = int(np.sum(e == 0))
        if zeros:
            text += f" ({zeros} exact zero{'s' if zeros > 1 else ''} not drawn)"
        marker = _CONVERGENCE_MARKERS[i % len(_CONVERGENCE_MARKERS)]
        ax.plot(h[drawn], e[drawn], color=colour, lw=1.0, alpha=0.6)
        ax.plot(h[used], e[used], marker, color=colour, ms=6, ls="none", label=text)
        ax.plot(h[drawn & ~mask], e[drawn & ~mask], marker, ms=6, ls="none", mfc="none",
                color=colour)
        hollow = hollow or bool(np.any(drawn & ~mask))
        if np.isfinite(slope):
            hh = np.array([h[used].min(), h[used].max()])
            ax.plot(hh, 10.0 ** (intercept + slope * np.log10(hh)), "--", color=colour,
                    lw=1.2)
    if hollow:
        ax.plot([], [], "o", ms=6, mfc="none", color="0.4", ls="none",
                label="hollow: left out of the fit")
    _finish_loglog(ax, xlabel, ylabel, title or "Convergence: error against step size")
    return fig


def work_precision(
    curves: Mapping[str, tuple[Any, Any]],
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "function evaluations",
    ylabel: str = "end-point error",
) -> Figure:
    """Work-precision diagram: error against cost on log-log axes.

    ``curves`` maps a label (a method) to ``(nfev, errors)``, two arrays of the same
    length (one point per tolerance, in the order they were run); each curve has its own
    colour, marker and line style. Points with an error of exactly 0 cannot be drawn on a
    log axis and are left out. Lower and further left is better: less work for the same
    error.
    """
    fig, ax = _new_axes(ax, (6.5, 4.8))
    styles = ("-", "--", "-.", ":")
    for i, (label, (nfev, errors)) in enumerate(curves.items()):
        n = _as_1d_float(f"curves[{label!r}] nfev", nfev)
        e = _as_1d_float(f"curves[{label!r}] errors", errors)
        if n.shape != e.shape:
            raise ValueError(f"curves[{label!r}]: nfev {n.shape} and errors {e.shape} differ "
                             f"in shape")
        drawn = np.isfinite(e) & (e > 0) & (n > 0)
        ax.plot(n[drawn], e[drawn], styles[i % len(styles)],
                marker=_CONVERGENCE_MARKERS[i % len(_CONVERGENCE_MARKERS)], color=f"C{i % 10}",
                ms=5, lw=1.2, label=str(label))
    _finish_loglog(ax, xlabel, ylabel,
                   title or "Work-precision: error against function evaluations")
    return fig


def _finish_loglog(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    """Log-log axes with their labels, title, grid and legend (convergence and
    work-precision diagrams)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel + " (log scale)")
    ax.set_ylabel(ylabel + " (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")


# ----------------------------------------------------------------------------- Neural ODEs


def figure_grid(
    nrows: int,
    ncols: int,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
    projections: Sequence[str | None] | None = None,
) -> tuple[Figure, list[Axes]]:
    """A new constrained figure with ``nrows x ncols`` axes, for composing the functions
    of this module side by side (each draws into the ``ax`` it is given).

    ``projections`` gives one projection per panel, row by row (``"3d"`` for
    :func:`trajectories_3d`, ``None`` for a plain one). Returns ``(figure, axes)``, the
    axes as a flat list in row order.
    """
    import matplotlib.pyplot as plt

    if nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be >= 1, got {nrows} and {ncols}")
    n = nrows * ncols
    projections = list(projections) if projections is not None else [None] * n
    if len(projections) != n:
        raise ValueError(f"projections must name {n} panels, got {len(projections)}")
    fig = plt.figure(figsize=figsize or (5.5 * ncols, 4.2 * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1, projection=projections[i]) for i in range(n)]
    if title:
        fig.suptitle(title)
    return fig, axes


def loss_curves(
    curves: Mapping[str, Any],
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "epoch",
    ylabel: str = "loss",
    references: Mapping[str, Any] | None = None,
    log: bool = True,
    styles: Mapping[str, str] | None = None,
) -> Figure:
    """Several per-epoch curves on one (log-scale) axis: losses, or any per-epoch measure.

    ``curves`` maps a label to an :class:`eulerflow.History` (its ``loss``) or a 1-D
    array, drawn against epochs 1, 2, ...; ``styles`` optionally gives a curve's line
    style (``"--"`` keeps a curve visible on top of an identical one). ``references``
    maps a label to a constant drawn as a thin dotted horizontal line (a known floor, a
    predicted limit), or to ``(constant, curve_label)`` to draw it in that curve's
    colour. Values that are not positive cannot be drawn on a log axis and leave gaps.
    """
    if not curves:
        raise ValueError("curves must hold at least one curve")
    styles = dict(styles or {})
    fig, ax = _new_axes(ax, (6.5, 4.2))
    colours: dict[str, str] = {}
    for i, (label, values) in enumerate(curves.items()):
        v = _as_1d_float(f"curves[{label!r}]", getattr(values, "loss", values))
        if log:
            v = np.where(v > 0, v, np.nan)
        colours[str(label)] = f"C{i % 10}"
        ax.plot(np.arange(1, v.size + 1), v, color=colours[str(label)], lw=1.4,
                ls=styles.get(label, "-"), label=str(label))
    for j, (label, ref) in enumerate((references or {}).items()):
        if isinstance(ref, tuple):
            value, owner = ref
            if str(owner) not in colours:
                raise ValueError(f"references[{label!r}] names the curve {owner!r}, which "
                                 f"is not among {sorted(colours)}")
            colour = colours[str(owner)]
        else:
            value, colour = ref, f"C{(len(curves) + j) % 10}"
        ax.axhline(float(value), color=colour, ls=":", lw=1.2, label=str(label))
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (log scale)" if log else ""))
    ax.set_title(title or "Training loss per epoch")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def _as_plane_states(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (k, d) with k >= 1 and d >= 2, got {arr.shape}")
    return arr.astype(np.float64, copy=False)


def node_fit(
    data: Any,
    predictions: Any,
    ax: Axes | None = None,
    title: str | None = None,
    labels: Sequence[str] = ("$z_1$", "$z_2$"),
) -> Figure:
    """Predicted against real points in the plane (seed 002's "ODE Net predicted points").

    ``data`` is the series ``(n, d)`` (its first two columns are drawn): the first point
    as a red cross, the others as red dots. ``predictions`` is one trajectory ``(k, d)``
    or a mapping ``{label: trajectory}``, each drawn as a line (the model integrated
    from ``data[0]`` over all the times).
    """
    pts = _as_plane_states("data", data)
    series = (dict(predictions) if isinstance(predictions, Mapping)
              else {"ODE Net fit": predictions})
    fig, ax = _new_axes(ax, (5.6, 5.0))
    ax.scatter(pts[1:, 0], pts[1:, 1], s=16, color="tab:red", alpha=0.55, label="real points",
               zorder=2)
    ax.scatter(pts[0, 0], pts[0, 1], s=80, marker="x", color="darkred", linewidths=2,
               label="first point", zorder=4)
    styles = ("-", "--", ":", "-.")  # identical fits lie on each other: keep them visible
    for i, (label, values) in enumerate(series.items()):
        z = _as_plane_states(f"predictions[{label!r}]", values)
        ax.plot(z[:, 0], z[:, 1], color=f"C{i % 10}", lw=1.6 + 0.4 * (i == 0),
                ls=styles[i % 4], label=str(label), zorder=3)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title or "ODE Net predicted points")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def landscape(
    curves: Mapping[str, Any],
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = r"shift $\alpha$",
    ylabel: str = "mean window loss",
    log: bool = True,
) -> Figure:
    r"""Loss against a parameter shift :math:`\alpha` (seed 002's "Loss x Alpha").

    ``curves`` maps a label to ``(alphas, losses)``, e.g. ``(scan.alphas, scan.loss)``
    of :func:`eulerflow.landscape.shift_scan`. A label ending in ``" (before)"`` is
    drawn thin and dashed in the colour of the label without that ending, so a scan's
    losses before and after retraining pair up. Infinite losses (a shifted model that
    overflowed, a retraining that diverged) are drawn as triangles on the top edge and
    counted in the legend.
    """
    if not curves:
        raise ValueError("curves must hold at least one (alphas, losses) pair")
    fig, ax = _new_axes(ax, (6.5, 4.2))
    colours: dict[str, int] = {}
    for label, pair in curves.items():
        try:
            alphas, losses = pair
        except (TypeError, ValueError):
            raise ValueError(f"curves[{label!r}] must be a pair (alphas, losses)") from None
        a = _as_1d_float(f"curves[{label!r}] alphas", alphas)
        v = _as_1d_float(f"curves[{label!r}] losses", losses)
        if a.shape != v.shape:
            raise ValueError(f"curves[{label!r}]: alphas {a.shape} and losses {v.shape} differ")
        before = str(label).endswith(" (before)")
        base = str(label)[: -len(" (before)")] if before else str(label)
        colour = colours.setdefault(base, len(colours))
        bad = ~np.isfinite(v)
        text = str(label) + (f" ({int(bad.sum())} diverged)" if bad.any() else "")
        shown = np.where(bad | (v <= 0) if log else bad, np.nan, v)
        ax.plot(a, shown, color=f"C{colour % 10}", lw=1.0 if before else 1.6,
                ls="--" if before else "-", marker=None if before else ".", ms=4, label=text)
        if bad.any():
            ax.plot(a[bad], np.ones(int(bad.sum())), "^", color=f"C{colour % 10}", ms=6,
                    transform=ax.get_xaxis_transform(), clip_on=False)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (log scale)" if log else ""))
    ax.set_title(title or "Loss landscape along a shift of the parameters")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def components(
    t: Any,
    trajectories: Mapping[str, Any],
    axes: Sequence[Axes] | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Each component of some trajectories against time, one panel per component.

    ``trajectories`` maps a label to states ``(len(t), d)``; the first is drawn as
    dots (the data), the others as lines. ``axes`` gives the ``d`` panels to draw into
    (default: a new figure with ``d`` stacked panels).
    """
    t = _as_1d_float("t", t)
    if not trajectories:
        raise ValueError("trajectories must hold at least one array of states")
    series = {str(k): np.asarray(v, dtype=np.float64) for k, v in trajectories.items()}
    d = next(iter(series.values())).shape[1]
    for label, z in series.items():
        if z.shape != (t.size, d):
            raise ValueError(f"trajectories[{label!r}] must have shape ({t.size}, {d}), "
                             f"got {z.shape}")
    labels = list(labels) if labels is not None else [f"$z_{i + 1}$" for i in range(d)]
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(d, 1, figsize=(8.0, 1.8 * d + 1.0), sharex=True,
                                 layout="constrained")
        axes = list(np.atleast_1d(axes))
    else:
        axes = list(axes)
        fig = axes[0].figure
    if len(axes) != d:
        raise ValueError(f"axes must hold {d} panels, got {len(axes)}")
    for c, ax in enumerate(axes):
        for i, (label, z) in enumerate(series.items()):
            if i == 0:
                ax.plot(t, z[:, c], ".", color="black", ms=2.5, label=label)
            else:
                ax.plot(t, z[:, c], color=f"C{(i - 1) % 10}", lw=1.4, label=label)
        ax.set_ylabel(labels[c])
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time t")
    axes[0].legend(fontsize="small", loc="best", ncols=len(series))
    if title:
        fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------- depth as time


def depth_convergence(
    depths: Any,
    distances: Mapping[str, Any],
    fits: Mapping[str, Any] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "depth L (residual blocks, step h = 1/L)",
    ylabel: str = "distance",
) -> Figure:
    r"""Distances against the depth of a residual net on log-log axes, with fitted slopes.

    ``distances`` maps a label to one distance per depth in ``depths`` (or to a pair
    ``(depths, distances)`` of its own). Each curve's slope :math:`p` in
    :math:`d \approx C L^p` is fitted by :func:`loglog_slope` over the points
    ``fits[label]`` (a boolean mask; default: all) and drawn dashed over that range;
    the legend gives it. A residual net of ``L`` Euler steps of size ``1/L`` is within
    :math:`O(1/L)` of its ODE flow: a slope of -1. A curve given the slope ``nan``
    (fewer than two points) is drawn without one.
    """
    if not distances:
        raise ValueError("distances must hold at least one curve")
    fits = dict(fits or {})
    fig, ax = _new_axes(ax, (6.5, 4.8))
    for i, (label, values) in enumerate(distances.items()):
        if isinstance(values, tuple) and len(values) == 2:
            L = _as_1d_float(f"distances[{label!r}] depths", values[0])
            d = _as_1d_float(f"distances[{label!r}]", values[1])
        else:
            L = _as_1d_float("depths", depths)
            d = _as_1d_float(f"distances[{label!r}]", values)
        if d.shape != L.shape:
            raise ValueError(f"distances[{label!r}] must have the shape of its depths "
                             f"{L.shape}, got {d.shape}")
        mask = np.asarray(fits.get(label, np.ones(L.shape, dtype=bool)), dtype=bool)
        if mask.shape != L.shape:
            raise ValueError(f"fits[{label!r}] must have the shape of the depths {L.shape}, "
                             f"got {mask.shape}")
        drawn = np.isfinite(d) & (d > 0)
        used = drawn & mask
        colour = f"C{i % 10}"
        slope, intercept = loglog_slope(L, d, used)
        text = str(label) + (f": fitted slope {slope:.2f}" if np.isfinite(slope) else "")
        marker = _CONVERGENCE_MARKERS[i % len(_CONVERGENCE_MARKERS)]
        ax.plot(L[drawn], d[drawn], color=colour, lw=1.0, alpha=0.6)
        ax.plot(L[used], d[used], marker, color=colour, ms=6, ls="none",
                label=text if used.any() else None)
        ax.plot(L[drawn & ~mask], d[drawn & ~mask], marker, color=colour, ms=6, ls="none",
                mfc="none", label=None if used.any() else text + " (not fitted)")
        if np.isfinite(slope):
            LL = np.array([L[used].min(), L[used].max()])
            ax.plot(LL, 10.0 ** (intercept + slope * np.log10(LL)), "--", color=colour, lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel + " (log scale)")
    ax.set_ylabel(ylabel + " (log scale)")
    ax.set_title(title or "Depth as time: distance to the ODE flow against depth")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def extrapolation(
    t: Any,
    predictions: Mapping[str, Any],
    reference: Any,
    t_train: tuple[float, float] = (0.0, 1.0),
    axes: Sequence[Axes] | None = None,
    labels: Sequence[str] = ("x", "y", "z"),
    reference_label: str = "analytic",
    title: str | None = None,
    window: float | None = 1.0,
) -> Figure:
    """Predictions against time inside and beyond the trained range (seed 000's
    "Extrapolation"), one panel per component.

    ``predictions`` maps a label to values ``(len(t), k)`` (their first ``k`` columns
    are drawn, ``k = len(labels)``); ``reference`` ``(len(t), >= k)`` is the truth, drawn
    as a dashed black line. The times of ``t_train`` are shaded: outside them the
    predictions extrapolate. ``axes`` gives the ``k`` panels (default: a new figure with
    ``k`` panels side by side). Each panel shows the reference's range widened by
    ``window`` times its span on either side (``None``: everything); a prediction that
    leaves that window somewhere says so in the legend.
    """
    t = _as_1d_float("t", t)
    if not predictions:
        raise ValueError("predictions must hold at least one curve")
    k = len(labels)
    ref = np.asarray(reference, dtype=np.float64)
    if ref.ndim != 2 or ref.shape[0] != t.size or ref.shape[1] < k:
        raise ValueError(f"reference must have shape ({t.size}, >= {k}), got {ref.shape}")
    series = {}
    for label, values in predictions.items():
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2 or v.shape[0] != t.size or v.shape[1] < k:
            raise ValueError(f"predictions[{label!r}] must have shape ({t.size}, >= {k}), "
                             f"got {v.shape}")
        series[str(label)] = v
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, k, figsize=(4.6 * k, 4.2), layout="constrained")
        axes = list(np.atleast_1d(axes))
    else:
        axes = list(axes)
        fig = axes[0].figure
    if len(axes) != k:
        raise ValueError(f"axes must hold {k} panels, got {len(axes)}")
    styles = ("-", "--", "-.", ":")
    lows, highs = ref[:, :k].min(axis=0), ref[:, :k].max(axis=0)
    pads = np.maximum(highs - lows, 1e-12) * (window if window is not None else 0.0)
    if window is not None:
        for label in list(series):
            v = series[label][:, :k]
            if np.any(~np.isfinite(v) | (v < lows - pads) | (v > highs + pads)):
                series[label + " (leaves the window)"] = series.pop(label)
    for c, ax in enumerate(axes):
        ax.axvspan(float(t_train[0]), float(t_train[1]), color="0.9", zorder=0,
                   label="trained range of t" if c == 0 else None)
        for i, (label, v) in enumerate(series.items()):
            ax.plot(t, v[:, c], color=f"C{i % 10}", lw=1.5, ls=styles[(i // 10) % 4],
                    label=label if c == 0 else None)
        ax.plot(t, ref[:, c], color="black", lw=1.2, ls="--",
                label=reference_label if c == 0 else None)
        if window is not None:
            ax.set_ylim(lows[c] - pads[c], highs[c] + pads[c])
        ax.set_xlabel("time t")
        ax.set_ylabel(labels[c])
        ax.set_title(labels[c])
        ax.grid(True, alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(len(names), 4),
               fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def grouped_loss_curves(
    histories: Mapping[str, Mapping[str, Any]],
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "epoch",
    ylabel: str = "loss",
) -> Figure:
    """Per-epoch losses of runs in groups: one colour per group, one line style per
    variant within a group (e.g. colour = architecture, style = penalty), log scale.

    ``histories`` maps a group label to ``{variant label: History or 1-D array}``; the
    legend reads ``"group, variant"``. Variants keep their style across groups (the
    first variant seen is solid, then dashed, dotted, dash-dotted).
    """
    if not histories:
        raise ValueError("histories must hold at least one group")
    from matplotlib.ticker import MaxNLocator

    fig, ax = _new_axes(ax, (6.5, 4.2))
    styles: dict[str, str] = {}
    cycle = ("-", "--", ":", "-.")
    for i, (group, variants) in enumerate(histories.items()):
        for variant, values in variants.items():
            style = styles.setdefault(str(variant), cycle[len(styles) % len(cycle)])
            v = _as_1d_float(f"histories[{group!r}][{variant!r}]", getattr(values, "loss", values))
            v = np.where(v > 0, v, np.nan)
            label = f"{group}, {variant}" if str(variant) else str(group)
            ax.plot(np.arange(1, v.size + 1), v, color=f"C{i % 10}", ls=style, lw=1.5,
                    label=label)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + " (log scale)")
    ax.set_title(title or "Training loss per epoch")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


# ----------------------------------------------------------------------------- mean-field particles


def _as_particle_path(name: str, values: Any) -> np.ndarray:
    """Particle positions in the plane over time, ``(k, m, 2)`` (a single ``(m, 2)`` is one
    snapshot)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (k, m, 2) (or (m, 2)) with k, m >= 1, "
                         f"got {np.shape(values)}")
    return arr.astype(np.float64, copy=False)


def _particle_limit(positions: np.ndarray, teacher: np.ndarray | None) -> float:
    """Half-width of a square window around the origin holding every point, 10% margin."""
    pts = positions.reshape(-1, 2)
    if teacher is not None:
        pts = np.concatenate([pts, teacher])
    big = float(np.max(np.abs(pts[np.isfinite(pts).all(axis=1)]), initial=0.0))
    return 1.1 * big if big > 0 else 1.0


def _teacher_rays(ax: Axes, teacher: np.ndarray, lim: float, plain: bool = False) -> None:
    """Seed 003's ``display_weights``: a ray from the origin along each teacher ``a w``
    (to the window's edge) and the teacher's points in red."""
    for k, (tx, ty) in enumerate(teacher):
        r = float(np.hypot(tx, ty))
        if r == 0:
            continue
        ax.plot([0.0, 2 * lim * tx / r], [0.0, 2 * lim * ty / r], color="black", lw=1.0,
                zorder=1, label="teacher directions" if k == 0 else None)
    ax.scatter(teacher[:, 0], teacher[:, 1], s=140, color="red", alpha=0.45, zorder=5,
               label="teacher neurons a w" if plain else r"teacher neurons $a\,w$")


def particles(
    positions: Any,
    teacher: Any = None,
    ax: Axes | None = None,
    title: str | None = None,
    lim: float | None = None,
    start_label: str = "start",
    end_label: str = "end",
) -> Figure:
    r"""Mean-field particles in the plane, as seed 003 draws them: each particle at
    :math:`a_j w_j \in \mathbb{R}^2`, its trajectory as a trace that fades into the past,
    and the teacher's neurons as red points on black rays from the origin.

    ``positions`` is ``(k, m, 2)``, e.g. ``run.positions()`` of
    :meth:`eulerflow.meanfield.TwoLayerReLU.fit_teacher`; ``teacher`` is ``(M, 2)``, the
    teacher's ``a[:, None] * w``. ``lim`` is the half-width of the square window (default:
    every point fits).
    """
    from matplotlib.collections import LineCollection

    pos = _as_particle_path("positions", positions)
    tea = None if teacher is None else _as_particle_path("teacher", teacher)[0]
    lim = _particle_limit(pos, tea) if lim is None else float(lim)
    fig, ax = _new_axes(ax, (6.0, 5.6))
    k, m, _ = pos.shape
    if k > 1:
        # one segment per particle and snapshot interval; alpha grows with time
        seg = np.stack([pos[:-1], pos[1:]], axis=2).transpose(1, 0, 2, 3).reshape(-1, 2, 2)
        age = np.tile(np.arange(1, k) / (k - 1), m)
        colours = np.zeros((seg.shape[0], 4))
        colours[:, :3] = (0.12, 0.35, 0.75)
        colours[:, 3] = 0.08 + 0.72 * age**1.5
        ax.add_collection(LineCollection(seg, colors=colours, linewidths=1.2, zorder=2))
        ax.plot([], [], color=(0.12, 0.35, 0.75), alpha=0.5, lw=1.2,
                label="trajectories (fading into the past)")
        ax.scatter(pos[0, :, 0], pos[0, :, 1], s=14, facecolors="none", edgecolors="grey",
                   lw=0.8, zorder=3, label=start_label)
    if tea is not None:
        _teacher_rays(ax, tea, lim)
    size = 22.0 * min(1.0, float(np.sqrt(50.0 / m)))  # many particles: smaller dots
    ax.scatter(pos[-1, :, 0], pos[-1, :, 1], s=max(size, 3.0), color="tab:blue", zorder=4,
               label=end_label)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axhline(0.0, color="grey", lw=0.5, zorder=0)
    ax.axvline(0.0, color="grey", lw=0.5, zorder=0)
    ax.set_xlabel(r"$a_j\, w_{j,1}$")
    ax.set_ylabel(r"$a_j\, w_{j,2}$")
    ax.set_title(title or f"{m} mean-field particles $a_j w_j$")
    ax.legend(fontsize="small", loc="best")
    return fig


def particles_animation(
    positions: Any,
    teacher: Any = None,
    steps: Any = None,
    losses: Any = None,
    frames: int | Sequence[int] = 80,
    tail: int = 12,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 3.9),
    dpi: float = 90.0,
    interval: int = 80,
) -> Any:
    """An animation of the particles of :func:`particles` (left) and of the test loss on
    a log scale with the current step marked (right, when ``losses`` is given).

    ``steps`` (k,) gives the SGD step of every snapshot (default 0, 1, ...);
    ``losses`` (k,) the test loss at each. ``frames`` is a number of frames, taken at
    snapshots spaced evenly in log(1 + step) (the particles move fastest at the start),
    or the snapshot indices themselves. Every frame shows the last ``tail`` frames'
    positions as a fading trace. Returns a :class:`matplotlib.animation.FuncAnimation`;
    save it with ``anim.save(path, writer=matplotlib.animation.PillowWriter(fps=12))``
    at the figure's ``dpi`` (saving at another one re-renders every text at each frame)
    and close its figure, ``plt.close(anim._fig)``.
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import LogFormatter, NullFormatter

    pos = _as_particle_path("positions", positions)
    k, m, _ = pos.shape
    tea = None if teacher is None else _as_particle_path("teacher", teacher)[0]
    st = np.arange(k, dtype=np.float64) if steps is None else _as_1d_float("steps", steps)
    if st.size != k:
        raise ValueError(f"steps must have one value per snapshot ({k}), got {st.size}")
    if isinstance(frames, (int, np.integer)):
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        # evenly spaced in log(1 + step), then pushed apart so that no frame repeats
        n = min(int(frames), k)
        marks = np.log1p(np.maximum(st - st[0], 0.0))
        idx = np.searchsorted(marks, np.linspace(0.0, marks[-1], n)).clip(0, k - 1)
        for f in range(1, n):
            idx[f] = max(idx[f], idx[f - 1] + 1)
        for f in range(n - 1, -1, -1):
            idx[f] = min(idx[f], k - n + f)
    else:
        idx = np.asarray(frames, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= k:
            raise ValueError(f"frames must be snapshot indices in [0, {k}), got {frames!r}")
    lim = _particle_limit(pos, tea)

    with_loss = losses is not None
    fig = plt.figure(figsize=figsize if with_loss else (figsize[1] + 0.6, figsize[1]),
                     dpi=dpi, layout="constrained")
    ax = fig.add_subplot(1, 2 if with_loss else 1, 1)
    if tea is not None:
        _teacher_rays(ax, tea, lim, plain=True)
    trace = LineCollection([], linewidths=1.0, zorder=2)
    ax.add_collection(trace)
    dots = ax.scatter(pos[0, :, 0], pos[0, :, 1], s=18, color="tab:blue", zorder=4,
                      label="particles a w")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    # plain-text labels: every frame redraws the whole figure, and mathtext is slow
    ax.set_xlabel("a w (first coordinate)")
    ax.set_ylabel("a w (second coordinate)")
    ax.legend(fontsize="x-small", loc="lower left")
    head = ax.set_title("")
    if with_loss:
        lv = _as_1d_float("losses", losses)
        if lv.size != k:
            raise ValueError(f"losses must have one value per snapshot ({k}), got {lv.size}")
        lx = fig.add_subplot(1, 2, 2)
        shown = np.where(lv > 0, lv, np.nan)
        lx.plot(st, shown, color="tab:blue", lw=1.2)
        (marker,) = lx.plot([st[0]], [shown[0]], "o", color="tab:red", ms=6)
        lx.set_yscale("log")
        lx.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=True))
        lx.yaxis.set_minor_formatter(NullFormatter())
        lx.set_xlabel("SGD step")
        lx.set_ylabel("test loss (log scale)")
        lx.set_title("Test loss")
        lx.grid(True, which="major", alpha=0.3)
    if title:
        fig.suptitle(title)

    def draw(n: int):
        i = int(idx[n])
        past = idx[max(0, n - tail): n + 1]
        if past.size > 1:
            p = pos[past]
            seg = np.stack([p[:-1], p[1:]], axis=2).transpose(1, 0, 2, 3).reshape(-1, 2, 2)
            age = np.tile(np.arange(1, past.size) / (past.size - 1), m)
            colours = np.zeros((seg.shape[0], 4))
            colours[:, :3] = (0.12, 0.35, 0.75)
            colours[:, 3] = 0.05 + 0.55 * age
            trace.set_segments(seg)
            trace.set_color(colours)
        else:
            trace.set_segments([])
        dots.set_offsets(pos[i])
        text = f"step {int(st[i])}"
        if with_loss:
            marker.set_data([st[i]], [shown[i]])
            text += f", test loss {lv[i]:.2e}"
        head.set_text(text)
        return (trace, dots, head)

    # lay the figure out once, with the first frame's title; every frame is drawn twice
    # when saved, and constrained layout would otherwise be recomputed each time
    draw(0)
    fig.canvas.draw()
    fig.set_layout_engine("none")
    return animation.FuncAnimation(fig, draw, frames=len(idx), interval=interval, blit=False)


def step_losses(
    curves: Mapping[str, Any],
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "SGD step",
    ylabel: str = "test loss",
    log_x: bool = False,
) -> Figure:
    """Losses against the step they were measured at, on a log scale.

    ``curves`` maps a label to ``(steps, losses)`` (e.g. ``(run.steps, run.test_loss)``)
    or to a run with ``steps`` and ``loss``. Values that are not positive leave gaps;
    with ``log_x`` the x axis is logarithmic too and points at x <= 0 are left out.
    """
    if not curves:
        raise ValueError("curves must hold at least one (steps, losses) pair")
    fig, ax = _new_axes(ax, (6.5, 4.2))
    for i, (label, pair) in enumerate(curves.items()):
        if hasattr(pair, "steps") and hasattr(pair, "loss"):
            pair = (pair.steps, pair.loss)
        try:
            s, v = pair
        except (TypeError, ValueError):
            raise ValueError(f"curves[{label!r}] must be a pair (steps, losses)") from None
        s = _as_1d_float(f"curves[{label!r}] steps", s)
        v = _as_1d_float(f"curves[{label!r}] losses", v)
        if s.shape != v.shape:
            raise ValueError(f"curves[{label!r}]: steps {s.shape} and losses {v.shape} differ")
        keep = s > 0 if log_x else np.ones(s.shape, dtype=bool)
        ax.plot(s[keep], np.where(v > 0, v, np.nan)[keep], color=f"C{i % 10}", lw=1.4,
                label=str(label))
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel + (" (log scale)" if log_x else ""))
    ax.set_ylabel(ylabel + " (log scale)")
    ax.set_title(title or "Test loss during training")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def grid_heatmap(
    values: Any,
    rows: Sequence[Any],
    cols: Sequence[Any],
    ax: Axes | None = None,
    title: str | None = None,
    row_label: str = "",
    col_label: str = "",
    colorbar_label: str = "value",
    log: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    fmt: str = "{:.1e}",
    missing: str = "diverged",
) -> Figure:
    """A grid of measurements ``values (len(rows), len(cols))`` as a coloured table with
    each value written in its cell (log colour scale by default). Rows go up the y axis.
    Values outside ``[vmin, vmax]`` take the end colours. Non-finite cells are left white
    and marked with ``missing`` (a diverged run; a threshold never reached)."""
    from matplotlib.colors import LogNorm, Normalize

    v = np.asarray(values, dtype=np.float64)
    if v.shape != (len(rows), len(cols)):
        raise ValueError(f"values must have shape ({len(rows)}, {len(cols)}) (rows, cols), "
                         f"got {v.shape}")
    fig, ax = _new_axes(ax, (5.6, 4.6))
    ok = np.isfinite(v) & ((v > 0) if log else True)
    lo = vmin if vmin is not None else (float(v[ok].min()) if ok.any() else 1.0)
    hi = vmax if vmax is not None else (float(v[ok].max()) if ok.any() else 10.0)
    if hi <= lo:
        hi = lo * 10 if log else lo + 1
    norm = LogNorm(lo, hi) if log else Normalize(lo, hi)
    img = ax.imshow(np.where(ok, v, np.nan), cmap="viridis", norm=norm, origin="lower",
                    aspect="auto")
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            if ok[i, j]:
                frac = norm(v[i, j])
                ax.text(j, i, fmt.format(v[i, j]), ha="center", va="center", fontsize="small",
                        color="black" if frac > 0.55 else "white")
            else:
                ax.text(j, i, missing, ha="center", va="center", fontsize="small")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(title or "")
    fig.colorbar(img, ax=ax, label=colorbar_label + (" (log scale)" if log else ""))
    return fig


# ----------------------------------------------------------------------------- loss landscapes
# (random-direction scans of eulerflow.landscape.scan_1d / scan_2d)

_LOSS_LABELS = {
    "cross_entropy": "cross-entropy loss",
    "mse": "MSE loss",
    "half_se": "half squared error loss",
}


def _loss_label(scan: Any) -> str:
    return _LOSS_LABELS.get(str(getattr(scan, "loss_name", "")), "loss")


def _directions_note(scan: Any) -> str:
    kind = getattr(scan, "normalization", None)
    if kind == "given":
        return "given directions"
    if kind in ("filter", "layer"):
        return f"{kind}-normalized random directions"
    return "random directions"


def landscape_1d(
    scans: Any,
    ax: Axes | None = None,
    log: bool = True,
    title: str | None = None,
) -> Figure:
    r"""Loss along lines through the parameters, from :func:`eulerflow.landscape.scan_1d`.

    ``scans`` is one :class:`~eulerflow.landscape.Scan1D` or a mapping ``label -> Scan1D``
    (e.g. several random directions, or one model before and after training). Each
    curve is :math:`L(\theta_0 + \alpha d)` against :math:`\alpha`; the trained model
    itself (:math:`\alpha = 0`, ``scan.origin_loss``) is marked with a star. Infinite
    losses are left out of the curve. ``log``: logarithmic loss axis.
    """
    if isinstance(scans, Mapping):
        items = list(scans.items())
    else:
        items = [(None, scans)]
    if not items:
        raise ValueError("scans must hold at least one Scan1D")
    fig, ax = _new_axes(ax, (6.5, 4.2))
    for i, (label, scan) in enumerate(items):
        name = "scans" if label is None else f"scans[{label!r}]"
        try:
            a = _as_1d_float(f"{name}.alphas", scan.alphas)
            v = _as_1d_float(f"{name}.loss", scan.loss)
        except AttributeError:
            raise TypeError(f"{name} must be a Scan1D (with .alphas and .loss), got "
                            f"{type(scan).__name__}") from None
        if a.shape != v.shape:
            raise ValueError(f"{name}: alphas {a.shape} and loss {v.shape} differ")
        colour = f"C{i % 10}"
        order = np.argsort(a, kind="stable")
        a, v = a[order], v[order]
        bad = ~np.isfinite(v) | ((v <= 0) if log else False)
        ax.plot(a, np.where(bad, np.nan, v), color=colour, lw=1.6, marker=".", ms=3,
                label=None if label is None else str(label))
        origin = float(getattr(scan, "origin_loss", np.nan))
        if np.isfinite(origin) and (origin > 0 or not log):
            ax.plot([0.0], [origin], marker="*", ms=13, color=colour, mec="black", mew=0.8,
                    ls="none", zorder=4,
                    label=f"trained model (loss {origin:.3g})" if i == 0 else None)
    if log:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:.3g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    first = items[0][1]
    ax.set_xlabel(r"$\alpha$ (step along the direction)")
    ax.set_ylabel(_loss_label(first) + (" (log scale)" if log else ""))
    ax.set_title(title or f"Loss along a line through the parameters\n({_directions_note(first)})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def _colorbar_ticks(lo: float, hi: float, log: bool) -> np.ndarray:
    """Round tick values in [lo, hi]: 1, 2, 5 times powers of ten on a log scale."""
    from matplotlib.ticker import MaxNLocator

    if log:
        first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
        marks = np.array([m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)])
        marks = marks[(marks >= lo * (1 - 1e-9)) & (marks <= hi * (1 + 1e-9))]
        if marks.size < 3:
            marks = np.geomspace(lo, hi, 5)
        return marks
    marks = np.asarray(MaxNLocator(7).tick_values(lo, hi))
    return marks[(marks >= lo) & (marks <= hi)]


def landscape_2d(
    scan: Any,
    ax: Axes | None = None,
    levels: int | Sequence[float] = 30,
    log: bool = True,
    title: str | None = None,
    cmap: str = "viridis",
    lines: bool = True,
) -> Figure:
    r"""Contour plot of a loss landscape from :func:`eulerflow.landscape.scan_2d`.

    Filled contours of :math:`L(\theta_0 + \alpha d_1 + \beta d_2)` over the grid
    ``scan.alphas`` x ``scan.betas`` (``scan.loss`` of shape ``(len(betas),
    len(alphas))``), with thin contour lines on top (``lines``) and a labelled colour
    bar. The trained model (the origin, ``scan.origin_loss``) is marked with a white
    star and the lowest grid point with a red cross. ``levels``: the number of levels
    (geometrically spaced between the smallest and largest finite loss when ``log``,
    evenly otherwise) or their values. Infinite losses are left blank. Axes with equal
    ranges are drawn to equal scale.
    """
    from matplotlib.colors import LogNorm, Normalize

    try:
        a = _as_1d_float("scan.alphas", scan.alphas)
        b = _as_1d_float("scan.betas", scan.betas)
        v = np.asarray(scan.loss, dtype=np.float64)
    except AttributeError:
        raise TypeError("scan must be a Scan2D (with .alphas, .betas and .loss), got "
                        f"{type(scan).__name__}") from None
    if a.size < 2 or b.size < 2:
        raise ValueError(f"a contour plot needs at least 2 alphas and 2 betas, got {a.size} "
                         f"and {b.size}")
    if v.shape != (b.size, a.size):
        raise ValueError(f"scan.loss must have shape (len(betas), len(alphas)) = "
                         f"({b.size}, {a.size}), got {v.shape}")
    ok = np.isfinite(v) & ((v > 0) if log else True)
    if not ok.any():
        raise ValueError("scan.loss holds no finite" + (" positive" if log else "")
                         + " value to draw")
    lo, hi = float(v[ok].min()), float(v[ok].max())
    if hi <= lo:
        hi = lo * 1.001 + (0.0 if log else 1e-12)
    if isinstance(levels, (int, np.integer)) and not isinstance(levels, bool):
        if levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        ticks = np.geomspace(lo, hi, int(levels) + 1) if log else np.linspace(lo, hi,
                                                                             int(levels) + 1)
    else:
        ticks = _as_1d_float("levels", levels)
        if ticks.size < 2 or np.any(np.diff(ticks) <= 0):
            raise ValueError("levels must be increasing and hold at least 2 values")
    norm = LogNorm(ticks[0], ticks[-1]) if log else Normalize(ticks[0], ticks[-1])
    masked = np.ma.masked_where(~ok, v)
    fig, ax = _new_axes(ax, (6.4, 5.2))
    filled = ax.contourf(a, b, masked, levels=ticks, norm=norm, cmap=cmap, extend="neither")
    if lines:
        step = max(1, (ticks.size - 1) // 10)
        ax.contour(a, b, masked, levels=ticks[::step], colors="black", linewidths=0.5,
                   alpha=0.55, norm=norm)
    bar = fig.colorbar(filled, ax=ax, label=_loss_label(scan) + (" (log scale)" if log else ""))
    marks = _colorbar_ticks(ticks[0], ticks[-1], log)
    bar.set_ticks(marks, labels=[f"{t:.3g}" for t in marks])
    bar.minorticks_off()
    i, j = np.unravel_index(int(np.argmin(np.where(ok, v, np.inf))), v.shape)
    ax.plot([a[j]], [b[i]], marker="x", ms=8, mew=1.8, color="red", ls="none", zorder=5,
            label=f"grid minimum (loss {v[i, j]:.3g})")
    origin = float(getattr(scan, "origin_loss", np.nan))
    inside = a.min() <= 0.0 <= a.max() and b.min() <= 0.0 <= b.max()
    if inside:
        text = f"trained model (loss {origin:.3g})" if np.isfinite(origin) else "trained model"
        ax.plot([0.0], [0.0], marker="*", ms=15, color="white", mec="black", mew=1.0,
                ls="none", zorder=6, label=text)
    ax.set_xlim(a.min(), a.max())
    ax.set_ylim(b.min(), b.max())
    if np.isclose(np.ptp(a), np.ptp(b)):
        ax.set_aspect("equal")
    ax.set_xlabel(r"$\alpha$ (direction 1)")
    ax.set_ylabel(r"$\beta$ (direction 2)")
    ax.set_title(title or f"Loss landscape around the trained model\n({_directions_note(scan)})")
    ax.legend(fontsize="small", loc="upper right", framealpha=0.85)
    return fig


__all__ += ["landscape_1d", "landscape_2d"]


def ensemble_lr(hist: Any, ax: Axes | None = None, title: str | None = None) -> Figure:
    """The final loss of every ensemble member against its learning rate (log-log), from
    an :class:`eulerflow.ensemble.EnsembleHistory`; diverged members marked at the top."""
    fig, ax = _new_axes(ax, figsize=(6.5, 4.2))
    lrs = np.asarray(hist.lr, dtype=float)
    final = (np.asarray(hist.loss[-1], dtype=float) if hist.loss.shape[0]
             else np.full(lrs.size, np.nan))
    ok = ~np.asarray(hist.diverged) & np.isfinite(final)
    ax.loglog(lrs[ok], final[ok], "o-", ms=4, label="final epoch loss")
    if np.any(~ok):
        top = np.nanmax(final[ok]) * 10 if np.any(ok) else 1.0
        ax.scatter(lrs[~ok], np.full(int(np.sum(~ok)), top), marker="x", color="tab:red", s=50,
                   label="diverged (frozen)", zorder=3)
    if np.any(ok):
        best = int(np.flatnonzero(ok)[np.argmin(final[ok])])
        ax.axvline(lrs[best], color="gray", ls=":", label=f"best lr = {lrs[best]:.3g}")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("mean window loss, last epoch (log scale)")
    ax.set_title(title or f"Ensemble of {lrs.size}: final loss vs learning rate")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


__all__ += ["ensemble_lr"]
