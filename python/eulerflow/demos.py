"""The seed experiments, as used by ``eulerflow demo`` and the scripts in ``examples/``.

Each demo is a function ``run_<name>(out, quick=False, progress=None)`` that trains,
measures (``time.perf_counter``), writes its PNG figures and ``summary.md`` into the
directory ``out`` and returns a :class:`DemoResult`. :data:`DEMOS` maps demo names to
these functions; :func:`run_all` runs every one of them.

- ``classify`` (seed 004): spiral classification with an ``atan`` MLP trained by
  full-batch gradient descent on the cross-entropy, its class-probability map, and the
  influence of the number of layers.
- ``xor`` (seed 001): a two-layer network fits XOR; online learning, one SGD step per
  fact with ``net.learn``, of the swap map ``v -> (v1, v0)`` by one ``Dense(2, 2)``;
  per-fact losses raw and low-pass; the learned weights as an image.
- ``euler`` (seed 000, with seed 002's fields): the projectile integrated by Euler's
  method at h = 0.1, 0.01, 0.001 against its analytic trajectory (and the seed's own
  hand-written update); measured convergence orders of euler, midpoint and rk4 on the
  projectile, the linear spiral and the Lorenz system; the work-precision of the
  adaptive dopri5, tsit5 and dopri8 on the Arenstorf orbit.
- ``neural-ode`` (seed 002): the seed's LinearODE (with and without bias) and
  NonLinearODE learn the linear spiral through their solver; the matrix learned with
  Euler, rk4 and dopri5 against the truth and Euler's closed-form limit; training from
  the seed's extreme starts; the loss landscape with :func:`eulerflow.landscape.shift_scan`;
  a NonLinearODE learning the Lorenz system.
- ``depth`` (seed 000): deep narrow ELU networks (1, 5, 40 layers of width 3; plain,
  residual average, residual add; with the seed's L1/L2 bias and activity penalties) on
  the projectile; their hidden states and extrapolation; then depth as time made to
  work: :class:`eulerflow.ResidualFlow` converges to the ODE flow of its field at rate
  1/L, and the field it learns transfers beyond the trained time.
- ``meanfield`` (seed 003): a two-layer ReLU student of 20 particles started on a
  small sphere learns a 4-neuron teacher by SGD; the particles ``a_j w_j`` in the plane
  with their fading trajectories and the teacher's rays, an animated GIF, the test loss;
  the seed's open questions (initial radius, number of units, teacher configuration)
  answered by :func:`meanfield_sweep`.

Matplotlib is imported only when figures are drawn (through :mod:`eulerflow.plot`).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import eulerflow as ef
from eulerflow import data

__all__ = [
    "ARENSTORF_MU",
    "ARENSTORF_PERIOD",
    "ARENSTORF_Y0",
    "CONVERGENCE_METHODS",
    "DEMOS",
    "DEPTHS",
    "EULER_STEPS",
    "EXTREME_SHIFTS",
    "FLOW_DEPTHS",
    "MEANFIELD_RADII",
    "MEANFIELD_SAMPLE_SEED",
    "MEANFIELD_STUDENT_SEED",
    "MEANFIELD_TEACHER_SEED",
    "MEANFIELD_TEACHER_SEEDS",
    "MEANFIELD_TEACHER_SIZES",
    "MEANFIELD_WIDTHS",
    "REGULARIZED_WEIGHTS",
    "NODE_SOLVERS",
    "SCALED_Y0",
    "SEED_LINES",
    "SEED_DEPTHS",
    "SEED_FORMS",
    "SEED_PENALTIES",
    "SPIRAL_A",
    "DemoResult",
    "MeanFieldSweep",
    "Trained",
    "TrainedNODE",
    "WORK_PRECISION_METHODS",
    "arenstorf_work_precision",
    "end_point_errors",
    "euler_limit",
    "euler_roots",
    "field_training_set",
    "gradient_memory",
    "fit_mask",
    "layer_path",
    "mass_near_teacher",
    "meanfield_sweep",
    "online_learning",
    "regularized_figure",
    "regularized_node_study",
    "path_distances",
    "run",
    "run_all",
    "run_bench",
    "run_classify",
    "run_depth",
    "run_euler",
    "run_meanfield",
    "run_neural_ode",
    "run_xor",
    "seed_depth_net",
    "seed_node_start",
    "seed_projectile_update",
    "swap_facts",
    "teacher_positions",
    "train_classifier",
    "train_flow",
    "train_node",
    "zero_loss",
]

#: Layer sizes compared in the depth experiment (seed 004's exercise 2).
DEPTHS: tuple[tuple[int, ...], ...] = (
    (2, 15, 3), (2, 15, 15, 3), (2, 8, 8, 8, 3), (2, 4, 5, 8, 4, 3),
)


@dataclass
class DemoResult:
    """What a demo measured and wrote."""

    name: str
    title: str
    numbers: dict[str, float]
    markdown: str
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Trained:
    """A network after training, with its history and the measured training time."""

    net: Any
    history: Any
    seconds: float
    epochs: int

    @property
    def final_loss(self) -> float:
        """Loss of the last epoch (taken before its step, as ``History`` records it)."""
        return float(self.history.loss[-1])


# ----------------------------------------------------------------------------- helpers


def _progress_callbacks(
    total: int, desc: str, progress: bool | None
) -> tuple[tuple[Callable[[int, float], None], ...], Callable[[], None]]:
    """A tqdm bar advanced once per epoch by a ``fit`` callback; ``progress=None`` = on a TTY.

    Returns ``(callbacks, close)``. A disabled bar costs nothing: no callback at all.
    """
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return (), lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="epoch", mininterval=0.2, leave=True)

    def advance(epoch: int, loss: float) -> None:
        bar.update(1)
        if epoch % 100 == 0:
            bar.set_postfix(loss=f"{loss:.3g}", refresh=False)

    return (advance,), bar.close


def _save(fig: Any, path: Path, figures: list[Path]) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120)
    plt.close(fig)
    figures.append(path)


def _accuracy(net: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of points whose largest logit is their class."""
    return float(np.mean(np.asarray(net(X)).argmax(axis=1) == y))


def _n_parameters(net: Any) -> int:
    return int(sum(np.asarray(p).size for p in net.parameters()))


def _array(a: Any) -> str:
    text = np.array2string(np.asarray(a), precision=4, suppress_small=True, separator=", ",
                           max_line_width=1000)
    return " ".join(text.split())  # one line


def _label(sizes: Sequence[int]) -> str:
    return "[" + ",".join(str(s) for s in sizes) + "]"


# ----------------------------------------------------------------------------- experiments


def train_classifier(
    sizes: Sequence[int],
    X: np.ndarray,
    y: np.ndarray,
    *,
    lr: float = 1.0,
    epochs: int = 5000,
    seed: int = 0,
    activation: str = "atan",
    progress: bool | None = None,
) -> Trained:
    """Seed 004's training: ``ef.mlp(sizes, activation)``, cross-entropy, full-batch SGD.

    One gradient step per epoch on the mean loss over all points (``batch_size = n``,
    no shuffling), at learning rate ``lr``.
    """
    net = ef.mlp(list(sizes), activation, seed=seed)
    callbacks, close = _progress_callbacks(epochs, f"mlp {_label(sizes)}", progress)
    start = time.perf_counter()
    try:
        hist = net.fit(
            X, y, loss="cross_entropy", optimizer=ef.optim.SGD(lr), epochs=epochs,
            batch_size=len(X), shuffle=False, callbacks=callbacks,
        )
    finally:
        close()
    return Trained(net, hist, time.perf_counter() - start, epochs)


def swap_facts(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` facts ``(v, (v1, v0))`` with ``v ~ N(0, I_2)`` drawn from ``default_rng(seed)``.

    Seed 001's NNBench draws its training stream from a seeded generator (seed 3) and
    asks: can one affine layer learn the swap of the two coordinates?
    """
    V = np.random.default_rng(seed).standard_normal((n, 2))
    return V, V[:, ::-1].copy()


def online_learning(
    facts: tuple[np.ndarray, np.ndarray], lr: float, seed: int = 0
) -> tuple[Any, np.ndarray, float]:
    """A fresh ``Dense(2, 2, seed=seed)`` learns ``facts`` online (one SGD step per fact).

    Returns ``(layer, per-fact losses, seconds)``; the loss of a fact is
    ``||W v + b - expected||^2 / 2``, taken before its step.
    """
    layer = ef.Dense(2, 2, seed=seed)
    start = time.perf_counter()
    losses = np.asarray(layer.learn(facts, lr))
    return layer, losses, time.perf_counter() - start


# ----------------------------------------------------------------------------- demos


def run_classify(out: str | Path, quick: bool = False, progress: bool | None = None) -> DemoResult:
    """Seed 004: spiral classification, class-probability map, influence of depth."""
    from eulerflow import plot

    begin = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    epochs = 1000 if quick else 5000
    lr = 1.0
    grid = 100 if quick else 200
    figures: list[Path] = []

    X, y = data.spiral_classes(100, 3, noise=0.2, seed=0)
    _save(plot.scatter_classes(X, y, title="Spiral data: 3 classes x 100 points, noise 0.2"),
          out / "spiral_data.png", figures)

    runs: list[tuple[Sequence[int], Trained]] = []
    for sizes in DEPTHS:
        runs.append((sizes, train_classifier(sizes, X, y, lr=lr, epochs=epochs, progress=progress)))
    main = runs[0][1]
    accuracy = _accuracy(main.net, X, y)

    fig = plot.history(main.history)
    fig.axes[0].set_title(f"mlp {_label(DEPTHS[0])}, atan: loss and accuracy per epoch")
    _save(fig, out / "classify_loss.png", figures)
    _save(plot.classification_map(main.net, X, y, grid=grid,
                                  title=f"mlp {_label(DEPTHS[0])}: class probabilities, "
                                        f"accuracy {100 * accuracy:.1f}%"),
          out / "classify_map.png", figures)
    _save(plot.layers_comparison([(_label(s), t.net, t.history) for s, t in runs], X, y,
                                 grid=grid // 2 + 50,
                                 title=f"Influence of the number of layers "
                                       f"(atan, full-batch SGD lr={lr:g}, {epochs} epochs)"),
          out / "classify_depth.png", figures)

    numbers = {
        "final_loss": main.final_loss,
        "accuracy": accuracy,
        "train_seconds": main.seconds,
        "epochs": float(epochs),
    }
    rows = []
    for sizes, t in runs:
        acc = _accuracy(t.net, X, y)
        numbers[f"accuracy_{_label(sizes)}"] = acc
        numbers[f"final_loss_{_label(sizes)}"] = t.final_loss
        rows.append(
            f"| {_label(sizes)} | {len(sizes) - 1} | {_n_parameters(t.net)} | {t.final_loss:.4g} "
            f"| {100 * acc:.1f}% | {t.seconds:.3f} | {1e6 * t.seconds / epochs:.1f} |"
        )
    seconds = time.perf_counter() - begin
    md = "\n".join([
        "# Demo `classify` (seed 004: spiral classification)",
        "",
        "Data: `ef.data.spiral_classes(100, 3, noise=0.2, seed=0)`, 300 points in 3 classes.",
        f"Network `ef.mlp({list(DEPTHS[0])}, \"atan\", seed=0)`, cross-entropy, full-batch "
        f"SGD lr={lr:g}, {epochs} epochs{' (quick mode)' if quick else ''}.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| final loss (last epoch) | {main.final_loss:.4g} |",
        f"| training accuracy | {100 * accuracy:.1f}% |",
        f"| training time | {main.seconds:.3f} s ({1e6 * main.seconds / epochs:.1f} us/epoch) |",
        "",
        "## Influence of the number of layers",
        "",
        f"Every network trained the same way (seed 0, lr={lr:g}, {epochs} epochs).",
        "",
        "| layer sizes D | Dense layers | parameters | final loss | accuracy | time (s) "
        "| us/epoch |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Figures: {', '.join(f'`{p.name}`' for p in figures)}.",
        f"Demo wall time (training and figures): {seconds:.2f} s.",
        "",
    ])
    (out / "summary.md").write_text(md, encoding="utf-8")
    return DemoResult("classify", "spiral classification (seed 004)", numbers, md, figures,
                      seconds)


def run_xor(out: str | Path, quick: bool = False, progress: bool | None = None) -> DemoResult:
    """Seed 001: a two-layer net fits XOR; one affine layer learns the swap map online."""
    from eulerflow import plot

    begin = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []

    # XOR with a 2-2-1 tanh network, full batch, SGD with momentum on seed 001's loss.
    X, Y = data.xor()
    epochs = 500 if quick else 1000
    net = ef.mlp([2, 2, 1], "tanh", seed=0)
    callbacks, close = _progress_callbacks(epochs, "xor mlp [2,2,1]", progress)
    start = time.perf_counter()
    try:
        hist = net.fit(X, Y, loss="half_se", optimizer=ef.optim.SGD(0.2, momentum=0.9),
                       epochs=epochs, batch_size=4, shuffle=False, callbacks=callbacks)
    finally:
        close()
    xor_seconds = time.perf_counter() - start
    predictions = np.asarray(net(X)).reshape(-1)
    xor_error = float(np.max(np.abs(predictions - Y.reshape(-1))))

    fig = plot.history(hist)
    fig.axes[0].set_title("XOR, mlp [2,2,1] tanh: loss per epoch")
    _save(fig, out / "xor_loss.png", figures)
    _save(plot.output_map(net, X, Y, title="XOR: output of the trained 2-2-1 network"),
          out / "xor_output.png", figures)
    _save(plot.weights_image(net, title="XOR network weights ($W^T$, bias last row)"),
          out / "xor_weights.png", figures)

    # Online learning (NNBench): one Dense(2, 2) learns v -> (v1, v0), one step per fact.
    n_facts = 300
    facts = swap_facts(n_facts, seed=3)
    rates = (0.01, 0.03, 0.1)
    curves: dict[str, np.ndarray] = {}
    layers: dict[float, Any] = {}
    timings: dict[float, float] = {}
    for lr in rates:
        layers[lr], curves[f"lr = {lr:g}"], timings[lr] = online_learning(facts, lr)
    identity_layer, identity_losses, _ = online_learning((facts[0], facts[0].copy()), 0.1)
    # Seed 001's first check: a layer without parameters cannot learn; its losses stay put.
    still = ef.Sequential([ef.Activation("identity")])
    still_losses = np.asarray(still.learn(facts, 0.1))
    still_unchanged = bool(np.array_equal(still(facts[0]), facts[0]))
    _save(plot.fact_losses(curves, smooth=5.0,
                           title="Dense(2, 2) learning the swap v -> (v1, v0), one fact per "
                                 "step\nraw (faint) and Gaussian low-pass (sigma = 5 facts)"),
          out / "swap_fact_losses.png", figures)
    swap = layers[0.1]
    _save(plot.weights_image(swap, title="Swap learned online (lr = 0.1): $W^T$ and bias"),
          out / "swap_weights.png", figures)

    numbers = {
        "xor_final_loss": float(hist.loss[-1]),
        "xor_max_abs_error": xor_error,
        "xor_train_seconds": xor_seconds,
        "swap_last_fact_loss": float(curves["lr = 0.1"][-1]),
        "swap_weight_error": float(np.max(np.abs(swap.W - np.array([[0.0, 1.0], [1.0, 0.0]])))),
        "identity_last_fact_loss": float(identity_losses[-1]),
        "no_parameter_net_mean_fact_loss": float(still_losses.mean()),
    }
    rows = []
    for lr in rates:
        losses = curves[f"lr = {lr:g}"]
        potential = -np.log(losses[99]) if losses[99] > 0 else np.inf
        numbers[f"swap_learning_potential_lr{lr:g}"] = float(potential)
        rows.append(
            f"| {lr:g} | {losses[0]:.3g} | {losses[99]:.3g} | {potential:.1f} "
            f"| {losses[-1]:.3g} | {1e6 * timings[lr] / n_facts:.2f} |"
        )
    seconds = time.perf_counter() - begin
    layer_lines = []
    for i, (W, b) in enumerate(plot._dense_parameters(net)):
        layer_lines += [f"Dense {i + 1}: W = {_array(W)}", f"         b = {_array(b)}"]
    md = "\n".join([
        "# Demo `xor` (seed 001: layers, online learning, XOR)",
        "",
        "## XOR",
        "",
        f"`ef.mlp([2, 2, 1], \"tanh\", seed=0)` fitted to `ef.data.xor()` with loss "
        f"`\"half_se\"` (seed 001's ||y - t||^2/2), full batch, SGD lr=0.2 momentum=0.9, "
        f"{epochs} epochs{' (quick mode)' if quick else ''}.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| final loss | {hist.loss[-1]:.3g} |",
        f"| outputs for (0,0), (0,1), (1,0), (1,1) | {_array(predictions)} |",
        f"| largest error | {xor_error:.2g} |",
        f"| training time | {xor_seconds:.4f} s ({1e6 * xor_seconds / epochs:.1f} us/epoch) |",
        "",
        "Learned weights (`y = x @ W.T + b`):",
        "",
        "```",
        *layer_lines,
        "```",
        "",
        "## Online learning of the swap map",
        "",
        f"A fresh `ef.Dense(2, 2, seed=0)` learns {n_facts} facts `(v, (v1, v0))`, "
        "`v ~ N(0, I)` from `default_rng(3)`, with `layer.learn(facts, lr)`: one plain SGD "
        "step per fact on ||W v + b - expected||^2/2. Every rate starts from the same "
        "weights. Learning potential (seed 001) = -ln(loss of fact 100).",
        "",
        "| lr | loss of fact 1 | loss of fact 100 | learning potential "
        f"| loss of fact {n_facts} | us/fact |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Learned at lr=0.1 (the swap is W = [[0, 1], [1, 0]], b = 0):",
        "",
        "```",
        f"W = {_array(swap.W)}",
        f"b = {_array(swap.b)}",
        "```",
        "",
        f"The identity map is learned the same way: last fact loss {identity_losses[-1]:.3g} "
        f"at lr=0.1, W = {_array(identity_layer.W)}.",
        "",
        "A network without parameters, `ef.Sequential([ef.Activation(\"identity\")])`, "
        f"cannot learn the swap: its mean fact loss stays {still_losses.mean():.3g} "
        f"(first {still_losses[:100].mean():.3g} / last {still_losses[-100:].mean():.3g} "
        f"over 100 facts) and it still returns its input: {still_unchanged}.",
        "",
        f"Figures: {', '.join(f'`{p.name}`' for p in figures)}.",
        f"Demo wall time (training and figures): {seconds:.2f} s.",
        "",
    ])
    (out / "summary.md").write_text(md, encoding="utf-8")
    return DemoResult("xor", "layers, online learning and XOR (seed 001)", numbers, md,
                      figures, seconds)


# ----------------------------------------------------------------------------- ODE demo

#: Seed 000's Euler step sizes.
EULER_STEPS: tuple[float, ...] = (0.1, 0.01, 0.001)
#: Methods of the convergence study and their orders.
CONVERGENCE_METHODS: dict[str, int] = {"euler": 1, "midpoint": 2, "rk4": 4}


def seed_projectile_update(h: float, t_end: float = 1.0) -> np.ndarray:
    """Seed 000's hand-written projectile update, states ``(k, 6)`` on ``data.euler_grid``.

    Per step (``dt`` is ``h``, the last one possibly shorter)::

        x  += dt*vx - 9.8*dt**2     vx += -9.8*dt
        y  += dt*vy + 0.1*dt**2     vy += 0.1*dt
        z  += 0.1*dt                vz  = 0.1

    i.e. the position moves with the *updated* velocity, ``x + dt*vx_new``: the
    semi-implicit (symplectic) Euler method, not the explicit Euler method of
    ``data.projectile_euler`` (``x + dt*vx``). Plain NumPy, as the seed wrote it.
    """
    t = data.euler_grid(h, t_end)
    states = np.empty((t.size, 6))
    states[0] = data.PROJECTILE_Y0
    x, y, z, vx, vy, _ = states[0]
    for i, dt in enumerate(np.diff(t), start=1):
        x, y, z = x + dt * vx - 9.8 * dt**2, y + dt * vy + 0.1 * dt**2, z + 0.1 * dt
        vx, vy = vx - 9.8 * dt, vy + 0.1 * dt
        states[i] = (x, y, z, vx, vy, 0.1)
    return states


def end_point_errors(
    field: Any, y0: Any, t_end: float, exact: Any, steps: Sequence[float],
    methods: Sequence[str],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Max-norm error at ``t_end`` of every fixed-step method at every step size.

    Each run is ``ef.odeint(field, y0, [0, t_end], method, step_size=h)``. Returns
    ``(errors, seconds)``: dicts ``{method: array over steps}`` of
    ``max_i |y_i(t_end) - exact_i|`` (``inf`` when the run blew up to non-finite values,
    :class:`eulerflow.IntegrationError`) and of the measured wall time of each run.
    """
    exact = np.asarray(exact, dtype=np.float64)
    errors: dict[str, np.ndarray] = {}
    seconds: dict[str, np.ndarray] = {}
    for method in methods:
        err, sec = [], []
        for h in steps:
            start = time.perf_counter()
            try:
                end = ef.odeint(field, y0, [0.0, t_end], method=method, step_size=float(h),
                                max_steps=int(np.ceil(t_end / h)) + 1)[-1]
                err.append(float(np.max(np.abs(end - exact))))
            except ef.IntegrationError:  # an unstable step size: the state overflowed
                err.append(np.inf)
            sec.append(time.perf_counter() - start)
        errors[method] = np.array(err)
        seconds[method] = np.array(sec)
    return errors, seconds


def fit_mask(errors: Any, floor: float, last: int | None = None) -> np.ndarray:
    """Points that measure an order: errors above ``floor`` (rounding, or the reference's
    own error), and of those only the ``last`` ones (the smallest step sizes, steps in
    decreasing order) when ``last`` is given, to stay in the asymptotic regime."""
    e = np.asarray(errors, dtype=np.float64)
    mask = np.isfinite(e) & (e > floor)
    if last is not None:
        keep = np.flatnonzero(mask)[-last:]
        mask = np.zeros_like(mask)
        mask[keep] = True
    return mask


#: The Arenstorf orbit (Hairer, Norsett & Wanner, Solving ODEs I, II.0): the Earth-Moon
#: mass ratio, the periodic orbit's start and its period.
ARENSTORF_MU: float = 0.012277471
ARENSTORF_Y0: tuple[float, ...] = (0.994, 0.0, 0.0, -2.00158510637908252240537862224)
ARENSTORF_PERIOD: float = 17.0652165601579625588917206249
#: The methods of the work-precision figure.
WORK_PRECISION_METHODS: tuple[str, ...] = ("dopri5", "tsit5", "dopri8")


def arenstorf_work_precision(methods: Sequence[str] = WORK_PRECISION_METHODS,
                             tols: Sequence[float] = tuple(10.0 ** -k for k in range(4, 13)),
                             ) -> dict[str, dict[str, np.ndarray]]:
    """Work against precision on the Arenstorf orbit: for each adaptive ``method`` and
    each ``rtol = atol`` in ``tols``, one ``ef.odeint`` over one period on
    ``ef.fields.Arenstorf()``. Returns, per method, ``{"tol", "nfev", "error"}`` arrays;
    the error is ``|y(T) - y(0)|`` (Euclidean; the orbit is periodic, so it is the
    global error)."""
    field = ef.fields.Arenstorf(ARENSTORF_MU)
    y0 = np.array(ARENSTORF_Y0)
    out = {}
    for m in methods:
        nfev, err = [], []
        for tol in tols:
            ys, info = ef.odeint(field, y0, [0.0, ARENSTORF_PERIOD], method=m, rtol=tol,
                                 atol=tol, max_steps=1_000_000, full_output=True)
            nfev.append(info["nfev"])
            err.append(float(np.linalg.norm(ys[-1] - y0)))
        out[m] = {"tol": np.array(tols, dtype=float), "nfev": np.array(nfev),
                  "error": np.array(err)}
    return out


def _fmt_h(h: float) -> str:
    """``0.5``, ``2^-10``: step sizes that are powers of two read as such."""
    k = -np.log2(h)
    return f"2^-{k:.0f}" if k > 3 and abs(k - round(k)) < 1e-12 else f"{h:g}"


def run_euler(out: str | Path, quick: bool = False, progress: bool | None = None) -> DemoResult:
    """Seed 000: Euler's method on the projectile; convergence orders of euler/midpoint/rk4."""
    from eulerflow import plot

    begin = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    field = ef.fields.Projectile()
    y0 = np.array(data.PROJECTILE_Y0)
    exact_end = field.analytic(y0, [1.0])[-1]
    orders = CONVERGENCE_METHODS
    methods = list(orders)

    # 1. Seed 000's trajectories: Euler at h = 0.1, 0.01, 0.001 and the seed's own update.
    euler_runs = {h: data.projectile_euler(h) for h in EULER_STEPS}
    seed_runs = {h: seed_projectile_update(h) for h in EULER_STEPS}
    curves = {f"Euler, h = {h:g} ({len(s) - 1} steps)": s for h, s in euler_runs.items()}
    curves[f"seed's update, h = {EULER_STEPS[0]:g}"] = seed_runs[EULER_STEPS[0]]
    analytic = field.analytic(y0, np.linspace(0.0, 1.0, 201))
    _save(plot.trajectories_3d(
        curves, reference=analytic, order=(2, 1, 0), view=(7, 297),
        labels=("x (height)", "y (wind)", "z (drift)"),
        title="Projectile from (0, 0, 0) at v = (5, 0, 0.1), t in [0, 1]:\n"
              "explicit Euler steps against the analytic trajectory"),
        out / "euler_trajectories.png", figures)

    # 2. Convergence on the projectile (quadratic in t) and on the linear spiral (seed 002).
    steps = 2.0 ** -np.arange(1, 11)  # 0.5 ... 2^-10 ~ 1e-3
    proj_err, proj_sec = end_point_errors(field, y0, 1.0, exact_end, steps, methods)
    proj_err["seed's update"] = np.array(
        [np.max(np.abs(seed_projectile_update(h)[-1] - exact_end)) for h in steps])
    rounding = 1e-11 * float(np.max(np.abs(exact_end)))
    proj_fit = {m: fit_mask(e, rounding) for m, e in proj_err.items()}
    _save(plot.convergence(
        steps, proj_err, fits=proj_fit, orders={**orders, "seed's update": 1},
        ylabel="max-norm error of the state at t = 1",
        title="Projectile (seed 000): quadratic in t, so midpoint and rk4 are\n"
              "exact to rounding; Euler's error is 4.9 h, the seed's update's too"),
        out / "euler_convergence_projectile.png", figures)

    A = np.array([[-0.1, -1.0], [1.0, -0.1]])
    a0 = np.array([0.6, 0.3])
    c, s_ = np.cos(1.0), np.sin(1.0)
    spiral_exact = np.exp(-0.1) * np.array([[c, -s_], [s_, c]]) @ a0  # expm(A) a0, closed form
    spiral_err, spiral_sec = end_point_errors(ef.fields.Linear(A), a0, 1.0, spiral_exact, steps,
                                              methods)
    spiral_floor = 1e-11 * float(np.max(np.abs(spiral_exact)))
    spiral_fit = {m: fit_mask(e, spiral_floor) for m, e in spiral_err.items()}
    _save(plot.convergence(
        steps, spiral_err, fits=spiral_fit, orders=orders,
        ylabel="max-norm error at t = 1",
        title="Linear spiral (seed 002), a' = A a from (0.6, 0.3):\n"
              "error against the closed form exp(A) a0"),
        out / "euler_convergence_spiral.png", figures)

    # 3. Convergence on the Lorenz system over [0, 1] from (1, 1, 1) (nonlinear).
    lorenz = ef.fields.Lorenz()
    l0 = np.array([1.0, 1.0, 1.0])
    lorenz_ref = ef.odeint(lorenz, l0, [0.0, 1.0], rtol=1e-13, atol=1e-13)[-1]
    check = ef.odeint(lorenz, l0, [0.0, 1.0], method="rk38", step_size=2.0**-17,
                      max_steps=2**17 + 1)[-1]
    ref_error = float(np.max(np.abs(check - lorenz_ref)))
    lorenz_steps = 2.0 ** -np.arange(6, 15 if quick else 17)
    unstable_steps = 2.0 ** -np.arange(4, 6)  # Euler blows up there: in the summary only
    unstable, _ = end_point_errors(lorenz, l0, 1.0, lorenz_ref, unstable_steps, ["euler"])
    lorenz_err, lorenz_sec = end_point_errors(lorenz, l0, 1.0, lorenz_ref, lorenz_steps, methods)
    lorenz_floor = max(100.0 * ref_error, 1e-11 * float(np.max(np.abs(lorenz_ref))))
    lorenz_fit = {m: fit_mask(e, lorenz_floor, last=4) for m, e in lorenz_err.items()}
    _save(plot.convergence(
        lorenz_steps, lorenz_err, fits=lorenz_fit, orders=orders,
        ylabel="max-norm error at t = 1",
        title="Lorenz system (sigma 10, rho 28, beta 8/3) from (1, 1, 1):\n"
              "slopes fitted on the 4 smallest steps above the reference's error"),
        out / "euler_convergence_lorenz.png", figures)

    # 4. A stiff problem: Van der Pol with eps = 1e-3 by radau5, its dense output and events.
    stiff = _stiff_van_der_pol_figure(out / "euler_stiff_van_der_pol.png", figures)
    # 4. Work-precision of the adaptive methods on the Arenstorf orbit, rtol 1e-4 .. 1e-12.
    wp_tols = tuple(10.0 ** -k for k in (range(4, 13) if quick else np.arange(4.0, 12.01, 0.5)))
    wp = arenstorf_work_precision(WORK_PRECISION_METHODS, wp_tols)
    _save(plot.work_precision(
        {f"{m} (order {ef.ode.tableau(m)['order']})": (r["nfev"], r["error"])
         for m, r in wp.items()},
        ylabel="end-point error |y(T) - y(0)|",
        title="Arenstorf orbit over one period, rtol = atol from 1e-4 to 1e-12:\n"
              "end-point error against function evaluations"),
        out / "euler_work_precision.png", figures)

    # Speed of a native integration: the smallest Lorenz step again, warm, best of 3.
    n_steps = int(round(1.0 / lorenz_steps[-1]))
    ns_per_step = {}
    for m in methods:
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            ef.odeint(lorenz, l0, [0.0, 1.0], method=m, step_size=float(lorenz_steps[-1]),
                      max_steps=n_steps + 1)
            best = min(best, time.perf_counter() - start)
        ns_per_step[m] = 1e9 * best / n_steps

    slopes = {
        name: {m: plot.loglog_slope(h, e, fits[m])[0] for m, e in errs.items()}
        for name, h, errs, fits in (
            ("projectile", steps, proj_err, proj_fit),
            ("spiral", steps, spiral_err, spiral_fit),
            ("lorenz", lorenz_steps, lorenz_err, lorenz_fit),
        )
    }

    # ------------------------------------------------------------------ numbers and summary
    numbers: dict[str, float] = {}
    for h in EULER_STEPS:
        numbers[f"euler_error_h{h:g}"] = float(np.max(np.abs(euler_runs[h][-1] - exact_end)))
    for name in ("spiral", "lorenz"):
        for m in methods:
            numbers[f"slope_{name}_{m}"] = slopes[name][m]
    numbers["slope_projectile_euler"] = slopes["projectile"]["euler"]
    for m in methods:
        numbers[f"lorenz_ns_per_step_{m}"] = ns_per_step[m]
    numbers.update(stiff["numbers"])
    for m, r in wp.items():
        numbers[f"work_precision_{m}_nfev_tol1e-12"] = float(r["nfev"][-1])
        numbers[f"work_precision_{m}_error_tol1e-12"] = float(r["error"][-1])
    numbers["projectile_max_error_midpoint_rk4"] = float(
        max(proj_err["midpoint"].max(), proj_err["rk4"].max()))

    traj_rows = []
    for h in EULER_STEPS:
        e_euler = float(np.max(np.abs(euler_runs[h][-1] - exact_end)))
        e_seed = float(np.max(np.abs(seed_runs[h][-1] - exact_end)))
        numbers[f"seed_update_error_h{h:g}"] = e_seed
        traj_rows.append(
            f"| {h:g} | {len(euler_runs[h]) - 1} | {euler_runs[h][-1, 0]:.6f} | {e_euler:.3e} "
            f"| {seed_runs[h][-1, 0]:.6f} | {e_seed:.3e} |")

    def table(name: str, h: np.ndarray, errs: dict[str, np.ndarray],
              fits: dict[str, np.ndarray]) -> list[str]:
        labels = list(errs)
        rows = [
            "| h | " + " | ".join(labels) + " |",
            "|---|" + "---|" * len(labels),
        ]
        for i, hi in enumerate(h):
            cells = [f"{errs[m][i]:.3e}" + ("" if fits[m][i] else "*") for m in labels]
            rows.append(f"| {_fmt_h(hi)} | " + " | ".join(cells) + " |")
        fitted = []
        for m in labels:
            p = slopes[name][m]
            fitted.append(f"{p:.3f}" if np.isfinite(p) else "none (rounding)")
        rows.append("| **fitted slope** | " + " | ".join(f"**{v}**" for v in fitted) + " |")
        return rows

    seconds = time.perf_counter() - begin
    s_sp, s_lo = slopes["spiral"], slopes["lorenz"]
    seed_slope = slopes["projectile"]["seed's update"]
    all_seconds = [*proj_sec.values(), *spiral_sec.values(), *lorenz_sec.values()]
    md = "\n".join([
        "# Demo `euler` (seed 000: Euler's method; convergence orders)",
        "",
        "## The projectile with Euler steps",
        "",
        "State (x, y, z, vx, vy, vz) from (0, 0, 0, 5, 0, 0.1) under "
        "`ef.fields.Projectile()`: gravity -9.8 along x (the height), wind 0.1 along y, "
        "constant drift vz = 0.1 along z. Exact position at t = 1: "
        f"({exact_end[0]:g}, {exact_end[1]:g}, {exact_end[2]:g}).",
        "`ef.data.projectile_euler(h)` runs `ef.odeint(..., method=\"euler\", step_size=h)`: "
        "`x += h vx; vx += -9.8 h`. The seed's hand-written update is "
        "`x += h vx - 9.8 h^2`, which is x + h vx_new: the semi-implicit (symplectic) "
        "Euler method, not the explicit Euler method. Both are first order, with "
        "opposite errors: explicit Euler ends at x(1) = 0.1 + 4.9 h, the seed's update "
        "at 0.1 - 4.9 h. End-point errors are max-norms over the whole state (the "
        "velocities are exact for every method here, so it is the error in x).",
        "",
        "| h | steps | Euler x(1) | Euler error | seed's x(1) | seed's error |",
        "|---|---|---|---|---|---|",
        *traj_rows,
        "",
        "## Convergence: end-point error at t = 1 against h",
        "",
        "Each entry is `max|y(1) - exact|` from "
        "`ef.odeint(field, y0, [0, 1], method, step_size=h)`; the slope is the "
        "least-squares fit of log10(error) on log10(h) over the entries without `*` "
        "(entries with `*` are at the rounding level, or for Lorenz outside the "
        "asymptotic window).",
        "",
        "### Projectile (seed 000)",
        "",
        *table("projectile", steps, proj_err, proj_fit),
        "",
        "Why: the exact solution is a quadratic polynomial in t (constant acceleration). "
        "An explicit Runge-Kutta step of order p reproduces the Taylor expansion of the "
        "solution through h^p; here that expansion stops at h^2, so every method of order "
        ">= 2 (midpoint, rk4) is exact and its error is rounding, at most "
        f"{numbers['projectile_max_error_midpoint_rk4']:.1e} after up to 1024 steps "
        "(no slope to fit). Euler keeps only the h term: each step misses -4.9 h^2 in x, "
        "1/h steps add up to an error of exactly 4.9 h, a slope of "
        f"{slopes['projectile']['euler']:.3f}. The seed's update misses +4.9 h^2 per step "
        f"instead (slope {seed_slope:.3f}); the average of the two "
        "updates, x + h vx - 4.9 h^2, is the exact Taylor step.",
        "",
        "### Linear spiral (seed 002), where the orders show",
        "",
        "`ef.fields.Linear(A)`, A = [[-0.1, -1], [1, -0.1]], a0 = (0.6, 0.3); exact "
        "end point exp(A) a0 = e^-0.1 R(1) a0 in closed form.",
        "",
        *table("spiral", steps, spiral_err, spiral_fit),
        "",
        f"Measured orders: euler {s_sp['euler']:.2f}, midpoint {s_sp['midpoint']:.2f}, "
        f"rk4 {s_sp['rk4']:.2f} (expected 1, 2, 4).",
        "",
        "### Lorenz system (nonlinear, chaotic)",
        "",
        "`ef.fields.Lorenz()` from (1, 1, 1) over [0, 1]. Reference: dopri5 at "
        f"rtol = atol = 1e-13, which agrees with rk38 at h = 2^-17 to {ref_error:.1e}; "
        f"errors below {lorenz_floor:.0e} are not fitted. Large steps are unstable or "
        "pre-asymptotic here (Euler's error at h = "
        + ", ".join(f"{_fmt_h(h)}: {e:.1e}" for h, e in zip(unstable_steps, unstable["euler"],
                                                            strict=True))
        + "), so each slope is fitted on the 4 smallest step sizes above that floor.",
        "",
        *table("lorenz", lorenz_steps, lorenz_err, lorenz_fit),
        "",
        f"Measured orders: euler {s_lo['euler']:.2f}, midpoint {s_lo['midpoint']:.2f}, "
        f"rk4 {s_lo['rk4']:.2f} (expected 1, 2, 4).",
        "",
        "## A stiff problem: Van der Pol with radau5",
        "",
        *stiff["lines"],
        "## Work-precision of the adaptive methods (Arenstorf orbit)",
        "",
        "`ef.fields.Arenstorf()` over one period T from its periodic start "
        "(Hairer, Norsett & Wanner, II.0), `rtol = atol` from 1e-4 to 1e-12; the "
        "end-point error |y(T) - y(0)| against the function evaluations (figure "
        "`euler_work_precision.png`). At 1e-12: "
        + ", ".join(f"{m} {int(r['nfev'][-1])} evaluations for an error of "
                    f"{r['error'][-1]:.1e}" for m, r in wp.items())
        + ". The eighth-order dopri8 (Hairer's DOP853) reaches small errors with far "
        "fewer evaluations than the fifth-order pairs.",
        "",
        "## Timings",
        "",
        "Native fields make no Python call per step. Lorenz, one integration of "
        f"{n_steps} steps over [0, 1] (warm, best of 3): "
        + ", ".join(f"{m} {ns_per_step[m]:.0f} ns/step" for m in methods)
        + ". All "
        f"{sum(v.size for v in all_seconds)} convergence runs: "
        f"{sum(float(v.sum()) for v in all_seconds):.3f} s.",
        "",
        f"Figures: {', '.join(f'`{p.name}`' for p in figures)}.",
        f"Demo wall time (integrations and figures): {seconds:.2f} s"
        f"{' (quick mode: Lorenz steps down to 2^-14 only)' if quick else ''}.",
        "",
    ])
    (out / "summary.md").write_text(md, encoding="utf-8")
    return DemoResult("euler", "Euler's method and convergence orders (seed 000)", numbers, md,
                      figures, seconds)


#: The stiff Van der Pol of the euler demo: y0' = y1, y1' = ((1 - y0^2) y1 - y0) / eps.
STIFF_VDP_EPS = 1e-3


def _stiff_van_der_pol_figure(path: Path, figures: list[Path]) -> dict[str, Any]:
    """radau5 on stiff Van der Pol (eps = 1e-3) over [0, 3] with its Jacobian: the dense
    output as a curve, the accepted steps as points, the downward zero crossings of y0
    (events) marked; returns the numbers and the summary lines."""
    import matplotlib.pyplot as plt

    eps = STIFF_VDP_EPS

    def vdp(t, y):
        return np.array([y[1], ((1 - y[0] ** 2) * y[1] - y[0]) / eps])

    def jac(t, y):
        return np.array([[0.0, 1.0], [(-2.0 * y[0] * y[1] - 1.0) / eps, (1.0 - y[0] ** 2) / eps]])

    def crossing(t, y):
        return y[0]

    crossing.direction = -1
    sol = ef.solve(vdp, [2.0, 0.0], [0.0, 3.0], method="radau5", rtol=1e-6, atol=1e-6, jac=jac,
                   events=crossing)
    tt = np.linspace(0.0, 3.0, 3001)
    yy = sol.evaluate(tt)
    t_ev = sol.t_events[0]
    fig, (ax, ax_h) = plt.subplots(2, 1, figsize=(8.0, 6.2), sharex=True, layout="constrained",
                                   gridspec_kw={"height_ratios": [2.2, 1.0]})
    ax.plot(tt, yy[:, 0], color="C0", lw=1.4, label="y0(t): radau5 dense output")
    ax.plot(sol.t, sol.y[:, 0], "o", ms=3.0, color="C1", mfc="none",
            label=f"accepted steps ({sol.t.size - 1})")
    ax.plot(t_ev, np.zeros_like(t_ev), "kx", ms=9, mew=2.0,
            label=f"events: y0 = 0 downwards ({t_ev.size})")
    ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    ax.set_ylabel("y0")
    ax.set_ylim(-2.6, 2.9)
    ax.legend(loc="upper right", fontsize=8, ncols=3)
    ax.set_title(f"Stiff Van der Pol (eps = {eps:g}) by radau5 with its Jacobian, rtol = atol = "
                 f"1e-6:\n{sol.info['nfev']} evaluations, {sol.info['njev']} Jacobians; "
                 "slow drifts in long steps, fast jumps in short ones", fontsize=10)
    ax_h.semilogy(sol.t[:-1], np.diff(sol.t), ".", ms=3.0, color="C2")
    ax_h.set_ylabel("step size h")
    ax_h.set_xlabel("t")
    _save(fig, path, figures)
    numbers = {"stiff_vdp_nfev": float(sol.info["nfev"]), "stiff_vdp_njev": float(sol.info["njev"]),
               "stiff_vdp_steps": float(sol.t.size - 1)}
    if t_ev.size:
        numbers["stiff_vdp_first_crossing"] = float(t_ev[0])
    lines = [
        f"y0' = y1, y1' = ((1 - y0^2) y1 - y0) / eps with eps = {eps:g} from (2, 0) over "
        "[0, 3]: `ef.solve(f, y0, [0, 3], method=\"radau5\", jac=J, events=crossing)` "
        f"took {sol.t.size - 1} steps, {sol.info['nfev']} evaluations and "
        f"{sol.info['njev']} Jacobians (rtol = atol = 1e-6); y0 crosses 0 downwards at t = "
        + ", ".join(f"{te:.6f}" for te in t_ev) + " (events on the dense output, the "
        "collocation polynomial of each step). Figure `euler_stiff_van_der_pol.png`.",
    ]
    return {"numbers": numbers, "lines": lines}


# ----------------------------------------------------------------------------- Neural ODE demo

#: Seed 002's spiral matrix: dz/dt = A z, a0 = (0.6, 0.3).
SPIRAL_A: np.ndarray = np.array([[-0.1, -1.0], [1.0, -0.1]])
#: Solvers compared on the spiral: ``(method, steps_per_interval)`` (None: adaptive).
NODE_SOLVERS: tuple[tuple[str, int | None], ...] = (
    ("euler", 1), ("euler", 5), ("euler", 20), ("rk4", 5), ("dopri5", None),
)
#: Seed 002's extreme starts: every parameter shifted by these amounts.
EXTREME_SHIFTS: tuple[float, ...] = (-15.0, 18.0)


def seed_node_start(bias: bool = False, seed: int = 1) -> Any:
    """Seed 002's LinearODE start: ``Dense(2, 2)`` with weights (and bias) uniform in
    [0, 1), as the seed's ``th.rand(2, 2)`` (and ``th.rand(2)``), drawn from
    ``numpy.random.default_rng(seed)`` (the seed called ``np.random.seed(1)``)."""
    rng = np.random.default_rng(seed)
    layer = ef.Dense(2, 2, bias=bias)
    layer.W = rng.random((2, 2))
    if bias:
        layer.b = rng.random(2)
    return layer


def _solver_name(method: str, k: int | None) -> str:
    return method if k is None else f"{method}, {k} step{'s' if k > 1 else ''}"


def euler_limit(A: Any, h: float, k: int) -> np.ndarray:
    r"""The matrix that Euler's method with ``k`` steps per interval ``h`` learns exactly.

    A linear Neural ODE :math:`\dot z = M z` integrated by ``k`` Euler steps maps
    :math:`z(t_i)` to :math:`(I + \tfrac hk M)^k z(t_i)`; the data obey
    :math:`z(t_{i+1}) = e^{hA} z(t_i)`. The window loss is zero when
    :math:`(I + \tfrac hk M)^k = e^{hA}`, whose real solution near :math:`A` is

    .. math:: M_h = \frac kh \bigl(e^{\frac hk A} - I\bigr)
              = A + \frac{h}{2k} A^2 + O(h^2),

    so Euler's learned matrix is biased by :math:`\tfrac{h}{2k} A^2`. The matrix
    exponential is integrated by ``ef.odeint`` (dopri5, tolerance 1e-13) on the columns
    of the identity.
    """
    A = np.asarray(A, dtype=np.float64)
    s = float(h) / int(k)
    cols = ef.odeint(ef.fields.Linear(A), np.eye(A.shape[0]), [0.0, s], method="dopri5",
                     rtol=1e-13, atol=1e-13)[-1]
    return (cols.T - np.eye(A.shape[0])) / s


def euler_roots(A: Any, h: float, k: int) -> list[np.ndarray]:
    r"""Every real matrix that Euler's method with ``k`` steps per interval ``h`` fits
    exactly to the flow of a 2x2 ``A`` with complex eigenvalues: the solutions of
    :math:`(I + \tfrac hk M)^k = e^{hA}`.

    With :math:`e^{hA} = V \operatorname{diag}(\lambda, \bar\lambda) V^{-1}`, the
    real ``k``-th roots are :math:`V \operatorname{diag}(\mu_j, \bar\mu_j) V^{-1}`,
    :math:`\mu_j = |\lambda|^{1/k} e^{i(\arg\lambda + 2\pi j)/k}`, ``j = 0..k-1``,
    so there are ``k`` matrices :math:`M_j = \tfrac kh (\text{root}_j - I)`; ``j = 0``
    is :func:`euler_limit`, the others rotate a state by at least a ``1/k`` turn per
    step. Each is a zero of the window loss, a global minimum.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.shape != (2, 2):
        raise ValueError(f"A must be 2x2, got shape {A.shape}")
    P = ef.odeint(ef.fields.Linear(A), np.eye(2), [0.0, float(h)], method="dopri5",
                  rtol=1e-13, atol=1e-13)[-1].T
    lam, V = np.linalg.eig(P)
    if abs(lam[0].imag) == 0.0:
        raise ValueError("A must have complex eigenvalues")
    s = float(h) / int(k)
    roots = []
    for j in range(int(k)):
        mu = np.abs(lam[0]) ** (1.0 / k) * np.exp(1j * (np.angle(lam[0]) + 2 * np.pi * j) / k)
        root = (V @ np.diag([mu, np.conj(mu)]) @ np.linalg.inv(V)).real
        roots.append((root - np.eye(2)) / s)
    return roots


@dataclass
class TrainedNODE:
    """A Neural ODE after ``fit``: the model, its history, the wall time of the fit and,
    when recorded, a copy of the parameters after every epoch."""

    model: Any
    history: Any
    seconds: float
    trace: list[list[np.ndarray]] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return float(self.history.loss[-1])


def train_node(model: Any, ys: np.ndarray, t: np.ndarray, epochs: int, optimizer: Any = None,
               window: int = 1, batch_size: int = 1, seed: int = 0, record: bool = False,
               progress: bool | None = None, desc: str = "NeuralODE") -> TrainedNODE:
    """``model.fit`` timed, with the seed's ``SGD(lr=1e-2, momentum=0.95)`` by default;
    ``record=True`` keeps the parameters after every epoch (one Python call per epoch)."""
    optimizer = optimizer or ef.optim.SGD(1e-2, momentum=0.95)
    trace: list[list[np.ndarray]] = []
    callbacks, close = _progress_callbacks(epochs, desc, progress)
    if record:
        params = model.field.parameters()

        def keep(epoch: int, loss: float) -> None:
            trace.append([p.copy() for p in params])

        callbacks = (*callbacks, keep)
    start = time.perf_counter()
    try:
        hist = model.fit(ys, t, epochs=epochs, optimizer=optimizer, window=window,
                         batch_size=batch_size, seed=seed, callbacks=callbacks)
    finally:
        close()
    return TrainedNODE(model, hist, time.perf_counter() - start, trace)


def _first_below(losses: np.ndarray, level: float) -> int | None:
    """1-based epoch of the first loss below ``level``, or None."""
    hits = np.flatnonzero(np.asarray(losses) < level)
    return int(hits[0]) + 1 if hits.size else None


def _quadratic_curvature(alphas: np.ndarray, losses: np.ndarray) -> tuple[float, float]:
    """``(c, relative residual)`` of the least-squares parabola ``c0 + c1 a + c a^2``."""
    coef = np.polyfit(alphas, losses, 2)
    resid = np.max(np.abs(np.polyval(coef, alphas) - losses)) / np.max(np.abs(losses))
    return float(coef[0]), float(resid)


def _lorenz_field(ys: np.ndarray, sigma: float = 10.0, rho: float = 28.0,
                  beta: float = 8.0 / 3.0) -> np.ndarray:
    x, y, z = ys.T
    return np.column_stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])


#: Penalty weights of the regularized study (``kinetic_energy``, ``jacobian_frobenius``).
REGULARIZED_WEIGHTS = (0.005, 0.005)


def regularized_node_study(epochs: int, weights: tuple[float, float] = REGULARIZED_WEIGHTS,
                           progress: bool | None = None) -> dict[str, TrainedNODE]:
    """The same Neural ODE trained with and without the kinetic-energy and Jacobian
    penalties (Kelly et al. 2020, Finlay et al. 2020): Lorenz (``ef.data.lorenz``, 101
    points on [0, 5], each coordinate normalised), field ``ef.mlp([3, 32, 32, 3], "tanh",
    seed=0)``, dopri5 (rtol 1e-5, atol 1e-7), windows of 3 intervals, 16 per step,
    ``Adam(3e-3)``. Returns {label: TrainedNODE}; ``history.metrics["nfev"]`` holds the
    forward evaluations per epoch and ``["penalty"]`` the mean window penalty."""
    t, ys = data.lorenz(n_points=101, t_end=5.0)
    z = (ys - ys.mean(axis=0)) / ys.std(axis=0)
    kin, jac = weights
    runs = {}
    for label, (k, j) in {"no penalty": (0.0, 0.0),
                          f"kinetic {kin:g} + Jacobian {jac:g}": (kin, jac)}.items():
        model = ef.NeuralODE(ef.mlp([3, 32, 32, 3], "tanh", seed=0), "dopri5", rtol=1e-5,
                             atol=1e-7)
        callbacks, close = _progress_callbacks(epochs, f"regularized: {label}", progress)
        start = time.perf_counter()
        try:
            hist = model.fit(z, t, epochs=epochs, window=3, batch_size=16,
                             optimizer=ef.optim.Adam(3e-3), kinetic_energy=k,
                             jacobian_frobenius=j, callbacks=callbacks)
        finally:
            close()
        runs[label] = TrainedNODE(model, hist, time.perf_counter() - start, [])
    return runs


def gradient_memory(steps: tuple[int, ...] = (16, 128, 1024, 8192, 65536)) -> dict:
    """Scratch bytes and seconds of one window gradient of a Neural ODE (``ef.mlp([2, 16,
    2], "tanh", seed=0)``, rk4 with ``steps`` steps over [0, 1]) for each gradient:
    {"steps": array, "bytes": {how: array}, "seconds": {how: array}, "max_rel_diff":
    {how: float}} (the largest gradient difference from backprop, relative)."""
    net = ef.mlp([2, 16, 2], "tanh", seed=0)
    z0, target, t = np.array([0.5, -0.3]), np.array([0.1, 0.2]), np.array([0.0, 1.0])
    hows = ("backprop", "checkpoint", "adjoint")
    out = {"steps": np.array(steps), "bytes": {h: [] for h in hows},
           "seconds": {h: [] for h in hows}, "max_rel_diff": {h: 0.0 for h in hows}}
    for k in steps:
        model = ef.NeuralODE(net, "rk4", steps_per_interval=k)
        ref = None
        for how in hows:
            start = time.perf_counter()
            _, grads, nbytes = model.loss_and_gradient(z0, target, t, gradient=how)
            out["seconds"][how].append(time.perf_counter() - start)
            out["bytes"][how].append(nbytes)
            flat = np.concatenate([g.ravel() for g in grads])
            ref = flat if ref is None else ref
            diff = float(np.max(np.abs(flat - ref)) / np.max(np.abs(ref)))
            out["max_rel_diff"][how] = max(out["max_rel_diff"][how], diff)
    for key in ("bytes", "seconds"):
        out[key] = {h: np.array(v) for h, v in out[key].items()}
    return out


def regularized_figure(reg: dict[str, TrainedNODE], mem: dict) -> Any:
    """Evaluations per epoch of :func:`regularized_node_study`'s runs beside the scratch
    memory of :func:`gradient_memory`'s gradients; returns the figure."""
    from eulerflow import plot

    fig, (ax_nfev, ax_mem) = plot.figure_grid(
        1, 2, figsize=(13.0, 5.0),
        title="Regularized Neural ODEs and the memory of exact gradients")
    for (label, r), style in zip(reg.items(), ("-", "--"), strict=True):
        nfev = r.history.metrics["nfev"]
        data_loss = r.history.loss[-1] - r.history.metrics["penalty"][-1]
        ax_nfev.plot(np.arange(1, nfev.size + 1), nfev, style,
                     label=f"{label} (final data loss {data_loss:.3f})")
    ax_nfev.set_xlabel("epoch")
    ax_nfev.set_ylabel("field evaluations per epoch (forward)")
    ax_nfev.set_title("Lorenz, mlp([3, 32, 32, 3], tanh), dopri5 rtol 1e-5")
    ax_nfev.set_ylim(bottom=0)
    ax_nfev.legend(loc="lower right", fontsize="small")
    for (how, nbytes), marker in zip(mem["bytes"].items(), ("o", "s", "^"), strict=True):
        ax_mem.loglog(mem["steps"], nbytes, marker=marker, label=how)
    ax_mem.set_xlabel("rk4 steps over the window")
    ax_mem.set_ylabel("scratch memory of one gradient (bytes)")
    ax_mem.set_title("Backprop stores every step; checkpointing one state per level")
    ax_mem.legend(loc="upper left", fontsize="small")
    return fig


def run_neural_ode(out: str | Path, quick: bool = False,
                   progress: bool | None = None) -> DemoResult:
    """Seed 002: Neural ODEs on the linear spiral and on Lorenz; solver bias; extreme
    starts; the loss landscape (``ef.landscape.shift_scan``)."""
    from eulerflow import plot

    begin = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    numbers: dict[str, float] = {}
    seed_epochs = 500                       # the seed's budget
    long_epochs = 1000 if quick else 2000   # long enough for rk4/dopri5 to reach A
    extreme_epochs = 1500 if quick else 3000
    scan_step = 2.0 if quick else 0.5
    scan_epochs = 200 if quick else seed_epochs
    lorenz_epochs = 100 if quick else 300   # per stage: Adam(1e-2), then Adam(1e-3)

    t, ys = data.spiral_ode(SPIRAL_A, (0.6, 0.3), 10.0, 100)
    h = float(t[1] - t[0])

    # ------------------------------------------------------------------ seed 002's three models
    W0 = seed_node_start().W.copy()
    linear = train_node(ef.NeuralODE(seed_node_start(), "euler", steps_per_interval=5),
                        ys, t, seed_epochs, progress=progress, desc="LinearODE")
    biased = train_node(ef.NeuralODE(seed_node_start(bias=True), "euler",
                                     steps_per_interval=5),
                        ys, t, seed_epochs, progress=progress, desc="LinearODE + bias")
    nonlinear = train_node(ef.NeuralODE(ef.mlp([2, 4, 2], "relu", seed=0), "euler",
                                        steps_per_interval=5),
                           ys, t, seed_epochs, progress=progress, desc="NonLinearODE")
    seed_models = {
        "LinearODE, Dense(2, 2, bias=False)": linear,
        "LinearODE with bias, Dense(2, 2)": biased,
        "NonLinearODE, mlp([2, 4, 2], relu)": nonlinear,
    }
    fits = {}
    for label, r in seed_models.items():
        pred = r.model.trajectory(ys[0], t)
        fits[label] = pred
        key = label.split(",")[0].replace(" ", "_").lower()
        numbers[f"{key}_final_loss"] = r.final_loss
        numbers[f"{key}_trajectory_rmse"] = float(np.sqrt(np.mean((pred - ys) ** 2)))
        numbers[f"{key}_train_seconds"] = r.seconds
    fig, (ax_fit, ax_loss) = plot.figure_grid(1, 2, figsize=(12.0, 5.0),
                                              title="Seed 002: Neural ODEs on the spiral "
                                                    f"(Euler, 5 steps per interval, "
                                                    f"{seed_epochs} epochs)")
    plot.node_fit(ys, fits, ax=ax_fit, title="Predicted (from the first point) vs real points")
    plot.loss_curves({k: r.history for k, r in seed_models.items()}, ax=ax_loss,
                     title="Mean window loss per epoch", ylabel="mean window loss (MSE)")
    _save(fig, out / "node_spiral.png", figures)

    # ------------------------------------------------------------------ solver bias: learned A
    solver_runs: dict[str, tuple[str, int | None, TrainedNODE]] = {}
    for method, k in NODE_SOLVERS:
        model = ef.NeuralODE(seed_node_start(), method, steps_per_interval=k)
        solver_runs[_solver_name(method, k)] = (method, k, train_node(
            model, ys, t, long_epochs, record=True, progress=progress,
            desc=_solver_name(method, k)))
    limits = {k: euler_limit(SPIRAL_A, h, k) for m, k in NODE_SOLVERS if m == "euler"}
    errors = {name: np.array([np.max(np.abs(p[0] - SPIRAL_A)) for p in r.trace])
              for name, (_, _, r) in solver_runs.items()}
    refs = {f"closed-form limit M_h, {k} step{'s' if k > 1 else ''}: "
            f"max|M_h - A| = {np.max(np.abs(M - SPIRAL_A)):.2e}":
            (float(np.max(np.abs(M - SPIRAL_A))), _solver_name("euler", k))
            for k, M in limits.items()}
    fig, (ax_err, ax_loss) = plot.figure_grid(
        1, 2, figsize=(13.0, 5.0),
        title="Which matrix does the LinearODE learn? Seed's start, SGD(1e-2, momentum 0.95)")
    dashed = {"dopri5": "--"}  # it lies on rk4's curve
    plot.loss_curves(errors, ax=ax_err, references=refs, styles=dashed,
                     title="Distance to the true A per epoch",
                     ylabel="max |W - A|")
    # eight entries: below the axes, where they hide no curve
    ax_err.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2)
    plot.loss_curves({name: r.history for name, (_, _, r) in solver_runs.items()}, ax=ax_loss,
                     styles=dashed, title="Mean window loss per epoch",
                     ylabel="mean window loss (MSE)")
    _save(fig, out / "node_solvers.png", figures)

    solver_rows = []
    for name, (method, k, r) in solver_runs.items():
        W_seed = r.trace[seed_epochs - 1][0]
        W_end = r.trace[-1][0]
        err_seed = float(np.max(np.abs(W_seed - SPIRAL_A)))
        err_end = float(np.max(np.abs(W_end - SPIRAL_A)))
        key = name.replace(", ", "_").replace(" ", "")
        numbers[f"A_error_{key}_epoch{seed_epochs}"] = err_seed
        numbers[f"A_error_{key}_epoch{long_epochs}"] = err_end
        numbers[f"A00_{key}_epoch{long_epochs}"] = float(W_end[0, 0])
        limit = ""
        if k is not None and method == "euler":
            gap = float(np.max(np.abs(W_end - limits[k])))
            numbers[f"A_minus_euler_limit_{key}"] = gap
            limit = f"{_array(limits[k])} (learned - M_h: {gap:.1e})"
        solver_rows.append(
            f"| {name} | {_array(W_seed)} | {_array(W_end)} | {err_seed:.2e} | {err_end:.2e} "
            f"| {limit or '-'} | {r.final_loss:.2e} | {1e3 * r.seconds / long_epochs:.3f} |")

    # The seed's printed matrix: the same Euler limit on a grid twice as coarse.
    t20, ys20 = data.spiral_ode(SPIRAL_A, (0.6, 0.3), 20.0, 100)
    coarse = train_node(ef.NeuralODE(seed_node_start(), "euler", steps_per_interval=5),
                        ys20, t20, seed_epochs, progress=progress, desc="t_end = 20")
    coarse_limit = euler_limit(SPIRAL_A, float(t20[1] - t20[0]), 5)
    numbers["seed_grid_A00"] = float(coarse.model.field.W[0, 0])

    # ------------------------------------------------------------------ extreme starts
    extremes: dict[str, TrainedNODE] = {}
    for shift in (0.0, *EXTREME_SHIFTS):
        layer = seed_node_start()
        layer.W = layer.W + shift
        label = "seed's start W0" if shift == 0 else f"W0 {shift:+g} (every parameter)"
        extremes[label] = train_node(ef.NeuralODE(layer, "euler", steps_per_interval=5),
                                     ys, t, extreme_epochs, record=True, progress=progress,
                                     desc=label)
    fig, (ax_loss, ax_fit) = plot.figure_grid(
        1, 2, figsize=(12.5, 5.0),
        title=f"Training from the seed's extreme starts (Euler, 5 steps, {extreme_epochs} "
              "epochs)")
    plot.loss_curves({k: r.history for k, r in extremes.items()}, ax=ax_loss,
                     styles={label: "--" for label in list(extremes)[2:]},  # on W0's curve
                     title="Mean window loss per epoch", ylabel="mean window loss (MSE)")
    ax_loss.axvline(seed_epochs, color="0.4", lw=0.8, ls=":")
    ax_loss.annotate(f"seed's {seed_epochs} epochs", (seed_epochs, 0.98), ha="left",
                     va="top", xycoords=("data", "axes fraction"), fontsize="small",
                     color="0.3", xytext=(3, 0), textcoords="offset points")
    at_seed_budget = {}
    for label, r in extremes.items():
        probe = ef.NeuralODE(ef.Dense(2, 2, bias=False), "euler", steps_per_interval=5)
        probe.field.W = r.trace[seed_epochs - 1][0]
        at_seed_budget[label] = probe.trajectory(ys[0], t)
    plot.node_fit(ys, at_seed_budget, ax=ax_fit,
                  title=f"Predicted vs real points after the seed's {seed_epochs} epochs")
    _save(fig, out / "node_extreme_starts.png", figures)
    extreme_rows = []
    for label, r in extremes.items():
        loss = r.history.loss
        below = _first_below(loss, 1e-6)
        gap = float(np.max(np.abs(r.model.field.W - limits[5])))
        extreme_rows.append(
            f"| {label} | {loss[0]:.3g} | {loss[seed_epochs - 1]:.3g} | {loss[-1]:.3g} "
            f"| {below if below else 'never'} | {_array(r.model.field.W)} | {gap:.1e} |")
        if label != "seed's start W0":
            shift = label.split()[1]
            numbers[f"extreme{shift}_loss_epoch{seed_epochs}"] = float(loss[seed_epochs - 1])
            numbers[f"extreme{shift}_final_loss"] = float(loss[-1])
            numbers[f"extreme{shift}_epochs_to_1e-6"] = float(below) if below else float("nan")
            numbers[f"extreme{shift}_W_minus_euler_limit"] = gap

    # ------------------------------------------------------------------ loss landscape
    minimum = ef.NeuralODE(ef.Dense(2, 2, bias=False), "euler", steps_per_interval=5)
    minimum.field.W = solver_runs[_solver_name("euler", 5)][2].model.field.W
    near = np.round(np.arange(-5.0, 5.0 + 1e-9, 0.1 if not quick else 0.25), 10)
    tiny = np.linspace(-1e-3, 1e-3, 11)
    directions = {"every parameter": None, "column 0": 0, "column 1": 1}
    around, curvature = {}, {}
    for name, col in directions.items():
        around[name] = ef.landscape.shift_scan(minimum, ys, t, near, column=col)
        c, resid = _quadratic_curvature(
            tiny, ef.landscape.shift_scan(minimum, ys, t, tiny, column=col).loss)
        curvature[name] = (c, resid)
        numbers[f"landscape_curvature_{name.replace(' ', '_')}"] = c
    root_losses = []
    for M in euler_roots(SPIRAL_A, h, 5):
        probe = ef.NeuralODE(ef.Dense(2, 2, bias=False), "euler", steps_per_interval=5)
        probe.field.W = M
        root_losses.append((M, ef.landscape.mean_loss(probe, ys, t)))
    numbers["euler_roots_max_loss"] = max(v for _, v in root_losses)
    start = ef.NeuralODE(seed_node_start(), "euler", steps_per_interval=5)
    seed_alphas = np.arange(-20.0, 20.0, scan_step)
    retrained = {}
    for name, col in directions.items():
        retrained[name] = ef.landscape.shift_scan(start, ys, t, seed_alphas, column=col,
                                                  retrain_epochs=scan_epochs)
    fig, (ax_near, ax_seed) = plot.figure_grid(
        1, 2, figsize=(13.0, 5.0),
        title="Loss landscape of the LinearODE (Euler, 5 steps): ef.landscape.shift_scan")
    plot.landscape({k: (s.alphas, s.loss) for k, s in around.items()}, ax=ax_near, log=False,
                   title="Around the trained minimum W* (no retraining):\n"
                         r"$L(W^* + \alpha d)$")
    curves = {}
    for k, s in retrained.items():
        curves[k] = (s.alphas, s.loss_retrained)
        curves[f"{k} (before)"] = (s.alphas, s.loss)
    plot.landscape(curves, ax=ax_seed,
                   title=f"Seed's experiment: from $W_0 + \\alpha d$, retrained {scan_epochs} "
                         "epochs\n(dashed: before retraining)")
    _save(fig, out / "node_landscape.png", figures)
    roots = [M for M, _ in root_losses]
    n_runs = n_closer = n_nearest0 = 0
    for name, s in retrained.items():
        d_dir = ef.landscape.shift_direction(start.field, directions[name])[0]
        for alpha, params in zip(s.alphas, s.retrained, strict=True):
            if not np.all(np.isfinite(params[0])):
                continue
            n_runs += 1
            before_gap = np.max(np.abs(W0 + alpha * d_dir - roots[0]))
            n_closer += bool(np.max(np.abs(params[0] - roots[0])) < before_gap)
            n_nearest0 += int(np.argmin([np.max(np.abs(params[0] - M)) for M in roots])) == 0
    numbers["scan_runs_nearest_root0"] = float(n_nearest0)
    scan_rows = []
    for name, s in retrained.items():
        ok = s.loss_retrained < 1e-6
        span = (f"{s.alphas[ok].min():g} .. {s.alphas[ok].max():g}" if ok.any() else "none")
        worst = int(np.argmax(np.where(np.isfinite(s.loss_retrained), s.loss_retrained, -1)))
        numbers[f"scan_{name.replace(' ', '_')}_fraction_recovered"] = float(ok.mean())
        scan_rows.append(
            f"| {name} | {ok.sum()}/{s.alphas.size} | {span} | {int(s.failed.sum())} "
            f"| {s.loss_retrained[worst]:.3g} at alpha = {s.alphas[worst]:g} "
            f"| {s.seconds:.2f} |")

    # ------------------------------------------------------------------ Lorenz
    _, warm = data.lorenz(n_points=2, t_end=15.0, method="dopri5")
    lt, lys = data.lorenz(n_points=400, t_end=4.0, y0=warm[-1], method="dopri5")
    mu, sd = lys.mean(axis=0), lys.std(axis=0)
    lz = (lys - mu) / sd
    lorenz_model = ef.NeuralODE(ef.mlp([3, 32, 3], "tanh", seed=0), "rk4")
    lorenz = train_node(lorenz_model, lz, lt, lorenz_epochs, optimizer=ef.optim.Adam(1e-2),
                        batch_size=4, progress=progress, desc="Lorenz, Adam(1e-2)")
    fine = train_node(lorenz_model, lz, lt, lorenz_epochs, optimizer=ef.optim.Adam(1e-3),
                      batch_size=4, seed=1, progress=progress, desc="Lorenz, Adam(1e-3)")
    lorenz.history.extend(fine.history)
    lorenz.seconds += fine.seconds
    lorenz_loss = ef.landscape.mean_loss(lorenz_model, lz, lt)
    pred = lorenz_model.trajectory(lz[0], lt)
    err = np.sqrt(np.mean((pred - lz) ** 2, axis=1))
    horizon_i = np.flatnonzero(err > 0.3)
    horizon = float(lt[horizon_i[0]]) if horizon_i.size else float(lt[-1])
    true_field = _lorenz_field(lys) / sd
    field_err = float(np.sqrt(np.mean((lorenz_model.field(lz) - true_field) ** 2))
                      / np.sqrt(np.mean(true_field ** 2)))
    t_long = np.linspace(0.0, 20.0, 2001)
    long_pred = lorenz_model.trajectory(lz[0], t_long) * sd + mu
    long_true = ef.odeint(ef.fields.Lorenz(), lys[0], t_long, method="dopri5",
                          rtol=1e-10, atol=1e-10)
    wings = int(np.sum(np.diff(np.sign(long_pred[:, 0])) != 0))
    wings_true = int(np.sum(np.diff(np.sign(long_true[:, 0])) != 0))
    numbers.update({
        "lorenz_final_loss": lorenz.final_loss,
        "lorenz_window_loss": lorenz_loss,
        "lorenz_trajectory_rmse": float(err.mean()),
        "lorenz_horizon": horizon,
        "lorenz_field_relative_error": field_err,
        "lorenz_train_seconds": lorenz.seconds,
    })
    fig, (ax_a, ax_b, ax_c) = plot.figure_grid(
        1, 3, figsize=(17.0, 5.6), projections=("3d", "3d", None),
        title="Lorenz data learned by a NonLinearODE, mlp([3, 32, 3], tanh), rk4")
    plot.trajectories_3d({"Neural ODE from the first point": pred * sd + mu}, lys, ax=ax_a,
                         reference_label="data (400 points)",
                         title=f"Over the training times t in [0, {lt[-1]:g}]")
    plot.trajectories_3d({"Neural ODE": long_pred}, long_true, ax=ax_b,
                         reference_label="true Lorenz",
                         title="Same start, t in [0, 20]: the learned attractor")
    plot.loss_curves({"Adam(lr=1e-2), then Adam(lr=1e-3)": lorenz.history}, ax=ax_c,
                     title="Mean window loss per epoch (normalised data)",
                     ylabel="mean window loss (MSE)")
    ax_c.axvline(lorenz_epochs + 0.5, color="0.4", lw=0.8, ls=":")
    _save(fig, out / "node_lorenz.png", figures)
    _save(plot.components(lt, {"data": lys, "Neural ODE": pred * sd + mu},
                          labels=("x", "y", "z"),
                          title="Lorenz: data and the Neural ODE integrated from the first "
                                f"point\n(error above 0.3 std from t = {horizon:.2f} on)"),
          out / "node_lorenz_components.png", figures)

    # ------------------------------------------------------------------ regularized, memory
    reg_epochs = 80 if quick else 300
    reg = regularized_node_study(reg_epochs, progress=progress)
    mem = gradient_memory((16, 128, 1024, 8192) if quick else (16, 128, 1024, 8192, 65536))
    fig = regularized_figure(reg, mem)
    _save(fig, out / "node_regularized.png", figures)
    reg_rows = []
    for label, r in reg.items():
        nfev = r.history.metrics["nfev"]
        data_loss = float(r.history.loss[-1] - r.history.metrics["penalty"][-1])
        key = "plain" if label == "no penalty" else "penalized"
        numbers[f"regularized_{key}_nfev_first"] = float(nfev[0])
        numbers[f"regularized_{key}_nfev_max"] = float(nfev.max())
        numbers[f"regularized_{key}_nfev_last"] = float(nfev[-1])
        numbers[f"regularized_{key}_data_loss"] = data_loss
        reg_rows.append(f"| {label} | {nfev[0]:.0f} | {nfev.max():.0f} | {nfev[-1]:.0f} "
                        f"| {data_loss:.4f} | {1e3 * r.seconds / reg_epochs:.1f} |")
    mem_rows = [f"| {k} | " + " | ".join(f"{mem['bytes'][h][i]:,}" for h in mem["bytes"])
                + " | " + " | ".join(f"{1e3 * mem['seconds'][h][i]:.2f}" for h in mem["seconds"])
                + " |" for i, k in enumerate(mem["steps"])]
    numbers["checkpoint_max_rel_diff_vs_backprop"] = mem["max_rel_diff"]["checkpoint"]

    # ------------------------------------------------------------------ summary
    seconds = time.perf_counter() - begin
    numbers["demo_seconds"] = seconds
    model_rows = []
    for label, r in seed_models.items():
        params = r.model.field.parameters()
        shown = (f"W = {_array(params[0])}" + (f", b = {_array(params[1])}"
                                               if len(params) == 2 else "")
                 if params[0].shape == (2, 2) else f"{r.model.field.n_parameters()} parameters")
        model_rows.append(
            f"| {label} | {r.final_loss:.3g} "
            f"| {np.sqrt(np.mean((fits[label] - ys) ** 2)):.3g} | {shown} "
            f"| {1e3 * r.seconds / seed_epochs:.3f} |")
    k5 = limits[5]
    md = "\n".join([
        "# Demo `neural-ode` (seed 002: Neural ODEs, the spiral, Lorenz, landscapes)",
        "",
        "Data: `ef.data.spiral_ode()`: z(t) = exp(tA) a0, A = [[-0.1, -1], [1, -0.1]], "
        f"a0 = (0.6, 0.3), 100 points on [0, 10] (interval h = {h:.5f}). Every model is "
        "`ef.NeuralODE(field, method, steps_per_interval=k)` trained by `fit` on windows of "
        "one interval, shuffled each epoch: from `data[i]` to `data[i+1]`, MSE; optimizer "
        "`ef.optim.SGD(lr=1e-2, momentum=0.95)` as the seed. The linear models start from "
        "the seed's `th.rand` weights, uniform in [0, 1) from `default_rng(1)`: "
        f"W0 = {_array(W0)}{' (quick mode)' if quick else ''}.",
        "",
        f"## Seed 002's three models (Euler, 5 steps per interval, {seed_epochs} epochs)",
        "",
        "| model | final loss | trajectory RMSE from data[0] | learned | ms/epoch |",
        "|---|---|---|---|---|",
        *model_rows,
        "",
        "The bias learns to ~0 and the matrix is the one without bias, as in the seed "
        "(which printed the same matrix for both).",
        "",
        "## Which matrix is learned: the solver's bias",
        "",
        "A LinearODE integrated by k Euler steps per interval learns exactly "
        "M_h = (k/h)(exp((h/k) A) - I) = A + (h/2k) A^2 + O(h^2), not A: that matrix "
        "makes every window's loss zero (`demos.euler_limit`). Its diagonal is "
        f"{k5[0, 0]:.5f} for k = 5 here (A's is -0.1). rk4 and dopri5 have no such "
        "bias beyond their own truncation error, so they recover A. Same start, "
        f"{long_epochs} epochs each:",
        "",
        f"| solver | W after {seed_epochs} epochs | W after {long_epochs} epochs "
        f"| max abs(W - A), {seed_epochs} ep | max abs(W - A), {long_epochs} ep "
        "| Euler's M_h (closed form) | final loss | ms/epoch |",
        "|---|---|---|---|---|---|---|---|",
        *solver_rows,
        "| true A | | " + _array(SPIRAL_A) + " | 0 | 0 | | | |",
        "",
        f"At {seed_epochs} epochs (the seed's budget) rk4 and dopri5 are still "
        f"{numbers[f'A_error_rk4_5steps_epoch{seed_epochs}']:.1e} from A (their loss is "
        f"still falling); at {long_epochs} epochs they match A to "
        f"{numbers[f'A_error_rk4_5steps_epoch{long_epochs}']:.1e} and "
        f"{numbers[f'A_error_dopri5_epoch{long_epochs}']:.1e}, while each Euler run sits "
        "on its M_h, whose error shrinks like h/k.",
        "",
        "The seed printed W = [[-0.1199, -0.9957], [0.9957, -0.1199]]. That is this same "
        f"Euler limit at a step h/k = {float(t20[1] - t20[0]) / 5:.4f}, twice ours: on "
        "`ef.data.spiral_ode(t_end=20.0)` (100 points over [0, 20]) with 5 Euler steps, "
        f"M_h = {_array(coarse_limit)} and the LinearODE learns "
        f"{_array(coarse.model.field.W)} in {seed_epochs} epochs "
        f"(loss {coarse.final_loss:.1e}), the seed's digits.",
        "",
        "## Extreme starts",
        "",
        "The seed's `changeTheta(alpha=-15)` / `(alpha=18)` returned shifted parameters "
        "that were never written back (no `Vec2Params`), so its \"extreme\" runs trained "
        "from the unshifted start and printed the usual matrix. Here the shift is applied "
        f"(`layer.W = W0 + shift`); Euler, 5 steps, {extreme_epochs} epochs:",
        "",
        f"| start | loss, epoch 1 | loss, epoch {seed_epochs} | final loss "
        "| first epoch with loss < 1e-6 | final W | max abs(W - M_h) |",
        "|---|---|---|---|---|---|---|",
        *extreme_rows,
        "",
        "W0 - 15 has eigenvalues "
        f"{np.linalg.eigvals(W0 - 15).real.min():.1f} and "
        f"{np.linalg.eigvals(W0 - 15).real.max():.2f}: the field squashes every state "
        "onto a line within one interval, the loss sits on a plateau and its gradient is "
        f"small, so the seed's {seed_epochs} epochs are not enough. "
        "W0 + 18 starts with a large loss and a large gradient and recovers about as fast "
        "as the seed's own start. The last column is the distance to Euler's M_h (5 steps).",
        "",
        "## Loss landscape (`ef.landscape.shift_scan`)",
        "",
        "Left panel: around the trained minimum W* (the Euler run of the table), "
        "L(W* + alpha d) with d = all ones (every parameter) or ones on one column of W "
        "(the seed's `column`), no retraining. Near alpha = 0 it is a parabola "
        "c alpha^2; fitted on alpha in [-1e-3, 1e-3]: "
        + ", ".join(f"{k}: c = {c:.4g} (residual {r:.0e})" for k, (c, r) in curvature.items())
        + ".",
        "",
        f"Right panel, the seed's `exploreLandscape`: from W0 + alpha d, alpha in "
        f"[-20, 20) step {scan_step:g}, retrained {scan_epochs} epochs each "
        "(mean window loss after retraining; dashed: before):",
        "",
        "| direction | runs reaching loss < 1e-6 | their alphas (min .. max) | diverged "
        "| worst loss "
        "| scan time (s) |",
        "|---|---|---|---|---|---|",
        *scan_rows,
        "",
        f"Of the {n_runs} retrained runs that did not diverge, {n_closer} end closer to "
        f"Euler's M_h than they started and {n_nearest0} end nearer to it than to any other "
        "zero of the loss (below).",
        "",
        "Is the minimum global? Euler's window loss is zero, its global minimum, at every "
        "real solution of (I + (h/k) M)^k = exp(hA): for k = 5 there are five "
        "(`demos.euler_roots`), M_j = (k/h)(root_j - I), and the other four spin a state "
        "by at least a fifth of a turn per Euler step:",
        "",
        "| j | M_j | mean window loss at M_j |",
        "|---|---|---|",
        *(f"| {j} | {_array(M)} | {v:.1e} |" for j, (M, v) in enumerate(root_losses)),
        "",
        "Training from the seed's starts heads for j = 0, the one near A (counts above); "
        "the landscape panels show only that minimum because a shift along d = 1 or "
        "along one column never passes near the others.",
        "",
        "## Lorenz",
        "",
        f"`ef.data.lorenz` (dopri5), 400 points over t in [0, {lt[-1]:g}] starting on the "
        "attractor (the state at t = 15 from (1, 1, 1)), each coordinate normalised to "
        "mean 0 and standard deviation 1. NonLinearODE `ef.mlp([3, 32, 3], \"tanh\", "
        "seed=0)`, rk4 one step per interval, window 1, 4 windows per step: "
        f"{lorenz_epochs} epochs of `Adam(lr=1e-2)`, then {lorenz_epochs} of "
        f"`Adam(lr=1e-3)` (last-epoch loss {lorenz.history.loss[lorenz_epochs - 1]:.2g} "
        f"after the first stage, {lorenz.final_loss:.2g} after the second).",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| mean window loss of the last epoch (normalised) | {lorenz.final_loss:.3g} |",
        f"| mean window loss of the trained model | {lorenz_loss:.3g} |",
        f"| learned field vs true field on the data, relative RMS error | {field_err:.3f} |",
        f"| free run from the first point: mean RMSE over [0, {lt[-1]:g}] (in std) "
        f"| {err.mean():.3f} |",
        f"| free run: first time the error exceeds 0.3 std | t = {horizon:.2f} |",
        f"| long run to t = 20: sign changes of x (wing switches), learned / true "
        f"| {wings} / {wings_true} |",
        f"| training time | {lorenz.seconds:.2f} s "
        f"({1e3 * lorenz.seconds / (2 * lorenz_epochs):.2f} ms/epoch) |",
        "",
        "The flow is chaotic (Lyapunov time about 1.1), so a free run leaves the data "
        "after a few time units even with a field this close; the long run shows whether "
        "the learned field keeps the attractor's shape.",
        "",
        "## Regularized training and the memory of exact gradients",
        "",
        "`fit(..., kinetic_energy=k, jacobian_frobenius=j)` adds k * int ||f||^2 dt + "
        "j * int ||df/dz||_F^2 dt along every window (exact gradients). Lorenz, 101 points "
        "over [0, 5] normalised, `ef.mlp([3, 32, 32, 3], \"tanh\", seed=0)`, dopri5 "
        f"(rtol 1e-5, atol 1e-7), windows of 3, 16 per step, Adam(3e-3), {reg_epochs} "
        "epochs. Without the penalty the field stiffens as it fits and dopri5 needs more "
        "and more evaluations; with it the count stays near its start, for a looser fit:",
        "",
        "| training | evaluations, epoch 1 | most in an epoch | last epoch | final data "
        "loss | ms/epoch |",
        "|---|---|---|---|---|---|",
        *reg_rows,
        "",
        "Scratch memory of one window gradient (bytes; `ef.mlp([2, 16, 2], \"tanh\")`, "
        "rk4 over [0, 1]) and its time (ms): backprop stores (t, h, y) per step, "
        "`gradient=\"checkpoint\"` one state per bisection level (its gradient equal to "
        f"backprop's: largest difference {mem['max_rel_diff']['checkpoint']:.1e}), the "
        "adjoint a fixed augmented state (its gradient is the continuous one: "
        f"{mem['max_rel_diff']['adjoint']:.1e} from backprop here).",
        "",
        "| steps | backprop | checkpoint | adjoint | backprop ms | checkpoint ms "
        "| adjoint ms |",
        "|---|---|---|---|---|---|---|",
        *mem_rows,
        "",
        f"Figures: {', '.join(f'`{p.name}`' for p in figures)}.",
        f"Demo wall time (training, scans and figures): {seconds:.2f} s.",
        "",
    ])
    (out / "summary.md").write_text(md, encoding="utf-8")
    return DemoResult("neural-ode", "Neural ODEs, solver bias and landscapes (seed 002)",
                      numbers, md, figures, seconds)


# ----------------------------------------------------------------------------- depth as time

#: Seed 000's depths: the number of Dense+ELU layers of width 3 (the first maps 7 -> 3).
SEED_DEPTHS: tuple[int, ...] = (1, 5, 40)
#: How the layers after the first are stacked: ``x -> f(x)``, ``(f(x) + x)/2``, ``x + f(x)``.
SEED_FORMS: tuple[str, ...] = ("plain", "average", "add")
#: The seed's Keras regularizers on every layer after the first:
#: ``(bias_l1, bias_l2, activity_l1, activity_l2)``.
SEED_PENALTIES: dict[str, tuple[float, float, float, float]] = {
    "none": (0.0, 0.0, 0.0, 0.0),
    "L2": (0.0, 1e-4, 0.0, 1e-5),
    "L1": (1e-7, 0.0, 1e-8, 0.0),
}
#: Seed 000's projectile in the seed's scaled coordinates ``(x/10, 10 y, 10 z)``: gravity
#: -9.8/10, wind 0.1*10, from the origin at velocity (5/10, 0, 0.1*10).
SCALED_GRAVITY, SCALED_WIND = -0.98, 1.0
SCALED_Y0: tuple[float, ...] = (0.0, 0.0, 0.0, 0.5, 0.0, 1.0)
#: Depths at which one trained field is drawn as a residual net ("depth as time").
FLOW_DEPTHS: tuple[int, ...] = (5, 20, 80)


def seed_depth_net(depth: int, form: str = "plain", penalty: str = "none",
                   seed: int = 0) -> Any:
    """Seed 000's deep narrow network: ``Dense(7, 3)`` + ELU, then ``depth - 1`` layers
    ``Dense(3, 3)`` + ELU, each stacked as ``form`` (``"plain"``, residual ``"average"``:
    (f(x) + x)/2, or residual ``"add"``: x + f(x)). ``penalty`` puts the seed's Keras
    regularizers (:data:`SEED_PENALTIES`) on the layers after the first, as the seed did:
    a bias penalty on each Dense and an activity penalty on each ELU output. Weights are
    initialised as Keras does by default (Glorot uniform kernels, zero biases), drawn
    from ``numpy.random.default_rng(seed)``.
    """
    if form not in SEED_FORMS:
        raise ValueError(f"form must be one of {SEED_FORMS}, got {form!r}")
    if penalty not in SEED_PENALTIES:
        raise ValueError(f"penalty must be one of {sorted(SEED_PENALTIES)}, got {penalty!r}")
    b1, b2, a1, a2 = SEED_PENALTIES[penalty]
    layers: list[Any] = [ef.Dense(7, 3), ef.Activation("elu")]
    for _ in range(depth - 1):
        unit = [ef.Dense(3, 3, bias_l1=b1, bias_l2=b2), ef.Activation("elu")]
        if a1 or a2:
            unit.append(ef.ActivityPenalty(l1=a1, l2=a2))
        if form == "plain":
            layers += unit
        else:
            layers.append(ef.Residual(ef.Sequential(unit), mode=form))
    net = ef.Sequential(layers)
    rng = np.random.default_rng(seed)
    for p in net.parameters():
        if p.ndim == 2:  # Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
            p[...] = rng.uniform(-1.0, 1.0, p.shape) * np.sqrt(6.0 / (p.shape[0] + p.shape[1]))
        else:
            p[...] = 0.0
    return net


def layer_path(net: Any, x: Any) -> np.ndarray:
    """The hidden state after every Dense+ELU layer (or residual block) of a
    :func:`seed_depth_net` for one input ``x (7,)``, after the seed's starting point
    (0, 0, 0): shape ``(depth + 1, 3)``."""
    states = net.hidden_states(np.asarray(x, dtype=np.float64))
    keep = [states[i + 1] for i, layer in enumerate(net.layers)
            if isinstance(layer, (ef.Activation, ef.Residual))]
    return np.vstack([np.zeros(3), *keep])


def _scaled_projectile() -> Any:
    return ef.fields.Projectile(gravity=SCALED_GRAVITY, wind=SCALED_WIND)


def field_training_set(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Random states of the scaled projectile and the states one time unit later.

    Positions uniform in [-1, 1]^3, velocities uniform in [-1, 1] x [-0.5, 1.5] x [0, 2]
    (the seed's trajectory starts at (0.5, 0, 1) and reaches (-1.46, 2, 1) at t = 2);
    targets from ``ef.odeint`` with rk4, exact here (the solution is quadratic in t).
    """
    rng = np.random.default_rng(seed)
    S0 = np.column_stack([rng.uniform(-1.0, 1.0, (n, 3)), rng.uniform(-1.0, 1.0, n),
                          rng.uniform(-0.5, 1.5, n), rng.uniform(0.0, 2.0, n)])
    S1 = ef.odeint(_scaled_projectile(), S0, [0.0, 1.0], method="rk4")[-1]
    return S0, S1


def train_flow(depth: int, S0: np.ndarray, S1: np.ndarray, epochs: int, seed: int = 0,
               progress: bool | None = None) -> Trained:
    """``ResidualFlow(mlp([6, 32, 6], "tanh"), depth)`` trained to map ``S0`` to ``S1``
    (one time unit): mse, Nadam(lr=0.002), batch 100. Returns it as :class:`Trained`."""
    net = ef.ResidualFlow(ef.mlp([6, 32, 6], "tanh", seed=seed), depth)
    callbacks, close = _progress_callbacks(epochs, f"flow L={depth}", progress)
    start = time.perf_counter()
    try:
        hist = net.fit(S0, S1, optimizer=ef.optim.Nadam(lr=0.002), epochs=epochs,
                       batch_size=100, seed=seed, callbacks=callbacks)
    finally:
        close()
    return Trained(net, hist, time.perf_counter() - start, epochs)


def path_distances(field: Any, y0: Any, depths: Sequence[int],
                   truth: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> dict[str, np.ndarray]:
    """For each depth L, the largest Euclidean distance over the blocks l = 0..L between
    the hidden state of ``ResidualFlow(field, L)`` and the ODE flow of ``field`` at time
    l/L (dopri5, rtol = atol = 1e-12): ``"flow"``; and, when ``truth(t)`` is given, the
    distance to it: ``"truth"``."""
    y0 = np.asarray(y0, dtype=np.float64)
    out: dict[str, list[float]] = {"flow": [], "truth": []}
    for L in depths:
        t = np.linspace(0.0, 1.0, L + 1)
        path = np.array(ef.ResidualFlow(field, int(L)).hidden_states(y0))
        flow = ef.odeint(field, y0, t, rtol=1e-12, atol=1e-12)
        out["flow"].append(float(np.max(np.linalg.norm(path - flow, axis=1))))
        if truth is not None:
            out["truth"].append(float(np.max(np.linalg.norm(path - truth(t), axis=1))))
    return {k: np.array(v) for k, v in out.items() if v}


def run_depth(out: str | Path, quick: bool = False, progress: bool | None = None) -> DemoResult:
    """Seed 000: deep narrow ELU networks on the projectile; depth as time."""
    from eulerflow import plot

    begin = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    numbers: dict[str, float] = {}
    n_data = 10_000 if quick else 100_000
    epochs = 3 if quick else 100  # the seed's nb_epoch = 100
    X, Y = data.projectile(n_data, seed=0)
    proj = _scaled_projectile()
    y0 = np.array(SCALED_Y0)

    # 1. The seed's experiment: every depth, form and penalty.
    runs: dict[tuple[int, str, str], Trained] = {}
    for L in SEED_DEPTHS:
        for form in SEED_FORMS:
            for pen in SEED_PENALTIES:
                if L == 1 and (form, pen) != ("plain", "none"):
                    continue  # one layer: nothing to stack, nothing penalised
                net = seed_depth_net(L, form, pen)
                callbacks, close = _progress_callbacks(epochs, f"L={L} {form} {pen}", progress)
                start = time.perf_counter()
                try:
                    hist = net.fit(X, Y, optimizer=ef.optim.Nadam(lr=0.002, eps=1e-13),
                                   epochs=epochs, batch_size=200, seed=0, callbacks=callbacks)
                finally:
                    close()
                runs[L, form, pen] = Trained(net, hist, time.perf_counter() - start, epochs)
    seed_seconds = sum(r.seconds for r in runs.values())

    t_ext = np.linspace(0.0, 2.0, 201)
    X_ext = np.zeros((t_ext.size, 7))
    X_ext[:, :6] = data.PROJECTILE_Y0
    X_ext[:, 6] = t_ext
    truth_ext = proj.analytic(y0, t_ext)  # = the seed's scaled Y for every t
    beyond = t_ext > 1.0
    # The seed's hope: the state after layer l of L is the position at time l/L.
    x_one = np.array([*data.PROJECTILE_Y0, 1.0])
    rows = []
    for (L, form, pen), r in runs.items():
        mse = float(np.mean((r.net(X) - Y) ** 2))
        ext = float(np.mean((r.net(X_ext)[beyond] - truth_ext[beyond, :3]) ** 2))
        path = layer_path(r.net, x_one)
        hope = float(np.mean(np.linalg.norm(
            path - proj.analytic(y0, np.linspace(0.0, 1.0, L + 1))[:, :3], axis=1)))
        key = f"L{L}_{form}_{pen}"
        numbers[f"seed_loss_[{key}]"] = r.final_loss
        numbers[f"seed_mse_[{key}]"] = mse
        numbers[f"seed_extrapolation_mse_[{key}]"] = ext
        numbers[f"seed_path_distance_[{key}]"] = hope
        rows.append(f"| {L} | {form} | {pen} | {_n_parameters(r.net)} | {r.final_loss:.3e} "
                    f"| {mse:.3e} | {ext:.3e} | {hope:.3f} "
                    f"| {r.seconds / r.epochs * 1e3:.1f} |")

    fig, axes = plot.figure_grid(1, 2, figsize=(13.0, 5.0),
                                 title=f"Seed 000's deep narrow ELU nets on the projectile "
                                       f"({n_data:,} samples, Nadam, batch 200)")
    for ax, L in zip(axes, SEED_DEPTHS[1:], strict=True):
        groups = {"1 layer": {"no penalty": runs[1, "plain", "none"].history}}
        for form in SEED_FORMS:
            groups[form] = {"no penalty" if pen == "none" else f"{pen} penalties":
                            runs[L, form, pen].history for pen in SEED_PENALTIES}
        plot.grouped_loss_curves(groups, ax=ax, title=f"{L} layers of width 3",
                                 ylabel="training loss (mse + penalties)")
    _save(fig, out / "depth_seed_losses.png", figures)

    # The seed's figure: every layer's hidden state for one input (t = 1).
    analytic_1 = proj.analytic(y0, np.linspace(0.0, 1.0, 101))
    L_top = SEED_DEPTHS[-1]
    fig, axes = plot.figure_grid(1, 3, figsize=(18.0, 5.0), projections=["3d"] * 3,
                                 title=f"The seed's figure: the state after each of the {L_top} "
                                       "layers (width 3) for the input t = 1, against the "
                                       "trajectory whose end it is trained to hit")
    target = analytic_1[-1, :3]
    for ax, form in zip(axes, SEED_FORMS, strict=True):
        path = layer_path(runs[L_top, form, "none"].net, x_one)
        end = ", ".join(f"{v:.3g}" for v in path[-1])
        plot.trajectories_3d({f"state after layer l = 0..{L_top}": path},
                             reference=analytic_1, ax=ax, order=(2, 1, 0), view=(7, 297),
                             labels=("x/10 (height)", "10 y (wind)", "10 z (drift)"),
                             reference_label="analytic trajectory, t in [0, 1]",
                             title=f"{form}: last state ({end})\n"
                                   f"target ({', '.join(f'{v:.3g}' for v in target)})",
                             markers=True)
        ax.set_box_aspect(None, zoom=0.95)
    _save(fig, out / "depth_seed_hidden_states.png", figures)

    # 2. Depth as time: a residual net with tied weights and step 1/L, trained to map
    # the projectile's state at t = 0 to t = 1 (seed's scaled coordinates).
    train_depths = (5, 10, 20) if quick else (5, 10, 20, 40)
    S0, S1 = field_training_set(3_000 if quick else 20_000)
    flow_epochs = 10 if quick else 40
    flows = {L: train_flow(L, S0, S1, flow_epochs, progress=progress) for L in train_depths}
    flow_seconds = sum(r.seconds for r in flows.values())
    t1 = np.linspace(0.0, 1.0, 201)
    flow_rows, bias, mean_path = [], [], []
    for L, r in flows.items():
        field = r.net.field
        tl = np.linspace(0.0, 1.0, L + 1)
        path = np.array(r.net.hidden_states(y0))
        d_path = float(np.mean(np.linalg.norm(path - proj.analytic(y0, tl), axis=1)))
        d_flow = float(np.max(np.linalg.norm(
            ef.odeint(field, y0, t1, rtol=1e-12, atol=1e-12) - proj.analytic(y0, t1), axis=1)))
        ext = ef.odeint(field, y0, [0.0, 1.0, 2.0, 3.0], method="rk4", step_size=0.01)
        e_ext = np.linalg.norm(ext - proj.analytic(y0, [0.0, 1.0, 2.0, 3.0]), axis=1)
        mean_path.append(d_path)
        bias.append(d_flow)
        numbers[f"flow_loss_[L{L}]"] = r.final_loss
        numbers[f"flow_path_distance_[L{L}]"] = d_path
        numbers[f"flow_field_bias_[L{L}]"] = d_flow
        numbers[f"flow_extrapolation_t2_[L{L}]"] = float(e_ext[2])
        numbers[f"flow_extrapolation_t3_[L{L}]"] = float(e_ext[3])
        flow_rows.append(f"| {L} | {r.final_loss:.2e} | {d_path:.4f} | {d_flow:.4f} "
                         f"| {e_ext[1]:.4f} | {e_ext[2]:.4f} | {e_ext[3]:.4f} "
                         f"| {r.seconds:.1f} |")
    td = np.array(train_depths, dtype=float)
    slope_bias = plot.loglog_slope(td, np.array(bias))[0]
    slope_path = plot.loglog_slope(td, np.array(mean_path))[0]
    numbers["slope_field_bias_vs_training_depth"] = slope_bias
    numbers["slope_path_distance_vs_training_depth"] = slope_path

    # One trained field run at any depth: the hidden path converges to its ODE flow.
    best = flows[train_depths[-1]]
    field = best.net.field
    depths = np.array([5, 10, 20, 40, 80, 160, 320] + ([] if quick else [640, 1280]))
    dist = path_distances(field, y0, depths, truth=lambda t: proj.analytic(y0, t))
    slope_flow = plot.loglog_slope(depths, dist["flow"])[0]
    numbers["slope_path_to_flow_vs_depth"] = slope_flow
    for L, d in zip(depths, dist["flow"], strict=True):
        numbers[f"path_to_flow_[L{L}]"] = float(d)
    for L, d in zip(depths, dist["truth"], strict=True):
        numbers[f"path_to_truth_[L{L}]"] = float(d)

    converged = ef.odeint(field, y0, t1, rtol=1e-12, atol=1e-12)
    fig, axes = plot.figure_grid(1, 2, figsize=(14.0, 6.0), projections=["3d", None],
                                 title="Depth as time: ResidualFlow(f, L), x <- x + f(x)/L with "
                                       f"one field f = mlp([6, 32, 6], tanh) trained at "
                                       f"L = {train_depths[-1]}")
    paths = {f"L = {L} blocks": np.array(ef.ResidualFlow(field, L).hidden_states(y0))
             for L in FLOW_DEPTHS}
    paths["ODE flow of f (dopri5)"] = converged
    plot.trajectories_3d(paths, reference=proj.analytic(y0, t1), ax=axes[0], order=(2, 1, 0),
                         view=(7, 297), labels=("x/10 (height)", "10 y (wind)", "10 z (drift)"),
                         reference_label="analytic trajectory",
                         title="Hidden state after every block, from the seed's start")
    plot.depth_convergence(
        depths, {"hidden path to the ODE flow of f": dist["flow"],
                 "hidden path to the analytic trajectory": (depths, dist["truth"]),
                 "flow of the field trained at depth L to the analytic":
                     (td, np.array(bias))},
        fits={"hidden path to the analytic trajectory": np.zeros(depths.size, dtype=bool)},
        ax=axes[1], ylabel="max distance over t in [0, 1]",
        title="Distances against depth L (tied weights)")
    _save(fig, out / "depth_as_time.png", figures)

    # Extrapolation beyond the trained range of t.
    preds = {f"{L} layer{'s' if L > 1 else ''}, {form}": runs[L, form, "none"].net(X_ext)
             for L, form in ((1, "plain"), (5, "plain"), (L_top, "plain"), (L_top, "average"),
                             (L_top, "add"))}
    flow_ext = ef.odeint(field, y0, t_ext, method="rk4", step_size=0.01)
    preds[f"ResidualFlow field (L = {train_depths[-1]}) by rk4"] = flow_ext
    numbers["flow_extrapolation_mse"] = float(np.mean((flow_ext[beyond, :3]
                                                       - truth_ext[beyond, :3]) ** 2))
    fig = plot.extrapolation(t_ext, preds, truth_ext, t_train=(0.0, 1.0), window=0.5,
                             labels=("x/10 (height)", "10 y (wind)", "10 z (drift)"),
                             title="Extrapolation: trained on t in [0, 1), asked for t in [0, 2]")
    _save(fig, out / "depth_extrapolation.png", figures)

    # ------------------------------------------------------------------ summary
    seconds = time.perf_counter() - begin
    numbers["seconds_seed_trainings"] = seed_seconds
    numbers["seconds_flow_trainings"] = flow_seconds
    ms40 = {f: runs[L_top, f, "none"].seconds / epochs * 1e3 for f in SEED_FORMS}
    numbers["best_seed_extrapolation_mse"] = min(
        v for k, v in numbers.items() if k.startswith("seed_extrapolation_mse_["))
    hopes = [numbers[f"seed_path_distance_[L{L_top}_{f}_none]"] for f in SEED_FORMS]
    md = "\n".join([
        "# Demo `depth` (seed 000: deep narrow networks; depth as time)",
        "",
        "## The seed's experiment",
        "",
        f"`ef.data.projectile({n_data}, seed=0)`: inputs (0, 0, 0, 5, 0, 0.1, t), t in "
        "[0, 1), targets the position at t scaled as the seed does, (x/10, 10 y, 10 z). "
        "Networks (`demos.seed_depth_net`): `Dense(7, 3)` + ELU, then L - 1 layers "
        "`Dense(3, 3)` + ELU, stacked plain, as residual averages (f(x) + x)/2 or as "
        "residual sums x + f(x); penalties as the seed's Keras regularizers on every layer "
        "after the first: L2 = `bias_l2=1e-4` + activity l2 1e-5, L1 = `bias_l1=1e-7` + "
        "activity l1 1e-8 (`ef.ActivityPenalty`, (l1 sum|a| + l2 sum a^2) / batch as "
        "tf.keras). Keras' initialisation (Glorot uniform, zero biases), "
        f"`Nadam(lr=0.002, eps=1e-13)` (the seed set Keras' epsilon to 1e-13), batch 200, "
        f"float64, {epochs} epochs{' (the seed: 100)' if epochs != 100 else ' as the seed'}, "
        "shuffled with seed 0.",
        "",
        "Training loss: the last epoch's mean batch loss, penalties included; mse: the "
        "plain mse of the trained net on all the data; extrapolation: mse against the "
        "analytic position for t in (1, 2]; path: the seed's hope measured, the mean over "
        "layers l = 0..L of the distance between the state after layer l (input t = 1) "
        "and the position at time l/L (for L = 1 only the trained end point counts).",
        "",
        "| L | form | penalty | parameters | training loss | mse | extrapolation mse "
        "| path | ms/epoch |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"All {len(runs)} trainings: {seed_seconds:.1f} s ({L_top} layers: "
        + ", ".join(f"{f} {v:.0f} ms" for f, v in ms40.items()) + " per epoch of "
        f"{n_data // 200} batches).",
        "",
        "`depth_seed_hidden_states.png` is the seed's figure: the state after each layer of "
        f"the {L_top}-layer nets for the input t = 1. Only the last state is trained to "
        "lie on the trajectory; the others are free 3-D features with no reason to follow "
        "it, and they do not: plain, averaged and added layers alike wander far from it "
        f"(path distance {min(hopes):.2f} to {max(hopes):.2f} "
        "for the unpenalised 40-layer nets, against a trajectory of size ~1). Nothing ties "
        "layer l to time l/L: the layers have their own weights and no step size, and "
        "`x + f(x)` over 40 layers is Euler with h = 1 up to t = 40 (the `add` nets start "
        f"with a loss of {runs[L_top, 'add', 'none'].history.loss[0]:.1e} in their first "
        "epoch). That is why the seed's attempt failed.",
        "",
        "## Depth as time, made to work",
        "",
        "In the seed's scaled coordinates the projectile is "
        f"`ef.fields.Projectile(gravity={SCALED_GRAVITY}, wind={SCALED_WIND})` from "
        f"{SCALED_Y0} (position, velocity). `ef.ResidualFlow(f, L)` with "
        "f = `ef.mlp([6, 32, 6], \"tanh\")`: L blocks x <- x + f(x)/L that share f, i.e. "
        "L explicit Euler steps of dx/dt = f(x) over [0, 1]. Trained "
        f"({flow_epochs} epochs, Nadam lr 0.002, batch 100) to map {len(S0):,} random "
        "states to the state one time unit later (`demos.field_training_set`).",
        "",
        "| training depth L | final loss | mean distance hidden state l to truth at l/L "
        "| max distance, flow of f to truth on [0, 1] | rk4 error t = 1 | t = 2 | t = 3 "
        "| fit (s) |",
        "|---|---|---|---|---|---|---|---|",
        *flow_rows,
        "",
        "Distances are Euclidean norms of the 6-D state (position and velocity), from the "
        "seed's start. Fitted slopes against the training depth: flow of f to the truth "
        f"**{slope_bias:.2f}**; hidden path to the truth {slope_path:.2f}.",
        "",
        "One trained field (training depth "
        f"{train_depths[-1]}) run as a residual net of any depth L: the largest distance "
        "between the hidden states and the ODE flow of the same field at times l/L "
        "(dopri5, rtol = atol = 1e-12):",
        "",
        "| depth L | " + " | ".join(str(L) for L in depths) + " |",
        "|---|" + "---|" * depths.size,
        "| to the flow of f | " + " | ".join(f"{d:.2e}" for d in dist["flow"]) + " |",
        "| to the analytic trajectory | " + " | ".join(f"{d:.2e}" for d in dist["truth"])
        + " |",
        "",
        f"Fitted log-log slope of the distance to the flow against L: **{slope_flow:.3f}** "
        "(Euler's first order: -1).",
        "",
        "What works: (1) a tied residual net with step 1/L is Euler's method on its field, "
        "so its hidden path converges to the ODE flow of that field at rate 1/L (measured "
        f"slope {slope_flow:.2f}), and the hidden state after block l tracks the true state "
        f"at time l/L (mean distance {min(mean_path):.3f} to {max(mean_path):.3f}, against "
        "a state of size ~1); "
        "(2) the field it learns is the true field up to an O(1/L) bias: training at "
        "depth L bakes Euler's error into f, and the flow of f approaches the truth at "
        f"slope {slope_bias:.2f}; (3) the field transfers: integrated by rk4 it predicts "
        "t = 2 (error "
        f"{numbers[f'flow_extrapolation_t2_[L{train_depths[-1]}]']:.3f}) where every net of "
        "the seed extrapolates badly (`depth_extrapolation.png`: extrapolation mse "
        f"{numbers['flow_extrapolation_mse']:.1e} for the field against "
        f"{numbers['best_seed_extrapolation_mse']:.1e} "
        "for the best seed net). What does not: the hidden path's distance to the truth "
        f"stops falling with L once the field's own fitting error (~{min(mean_path):.3f}) "
        "dominates (the "
        "plateau in `depth_as_time.png`); at t = 3 the states have left the training box "
        "(the height velocity reaches -2.44, trained on [-1.98, 1]) and the error "
        "(" + ", ".join(f"{numbers[f'flow_extrapolation_t3_[L{L}]']:.3f}" for L in train_depths)
        + " for L = " + ", ".join(str(L) for L in train_depths) + ") no longer falls "
        "with L; and the seed's untied width-3 nets (plain or residual) have hidden states "
        "that are not a trajectory at all.",
        "",
        f"Figures: {', '.join(f'`{p.name}`' for p in figures)}.",
        f"Demo wall time: {seconds:.1f} s (seed nets {seed_seconds:.1f} s, flows "
        f"{flow_seconds:.1f} s){' (quick mode)' if quick else ''}.",
        "",
    ])
    (out / "summary.md").write_text(md, encoding="utf-8")
    return DemoResult("depth", "Deep narrow networks; depth as time (seed 000)", numbers, md,
                      figures, seconds)



# ----------------------------------------------------------------------------- mean-field demo

#: Teacher of the seed 003 picture (M = 4 neurons in d = 2). The seed's
#: ``np.random.seed(134)`` draws from NumPy's legacy global generator, which eulerflow
#: does not use; 54 is the first seed whose four directions ``a w`` lie > 40 degrees apart
#: with norms in [0.25, 1.6], so every ray can be told apart in the picture.
MEANFIELD_TEACHER_SEED = 54
#: Initial radii and widths of the open-question sweep.
MEANFIELD_RADII: tuple[float, ...] = (0.01, 0.05, 0.2, 1.0)
MEANFIELD_WIDTHS: tuple[int, ...] = (4, 20, 100, 1000)
#: Teacher configurations of the sweep: neurons M, each drawn from these seeds.
MEANFIELD_TEACHER_SIZES: tuple[int, ...] = (2, 4, 8)
MEANFIELD_TEACHER_SEEDS: tuple[int, ...] = (0, 1, 2)
#: Student and sample-stream seeds: kept apart from the teacher seeds, because a student
#: drawn from a teacher's seed starts with the teacher's own directions.
MEANFIELD_STUDENT_SEED = 100
MEANFIELD_SAMPLE_SEED = 200


def teacher_positions(net: Any) -> np.ndarray:
    """A network's neurons in the plane as seed 003 draws them: ``a_j w_j``, (m, d)."""
    return net.a[:, None] * net.w


def zero_loss(teacher: Any, n_test: int, seed: int) -> float:
    """Test loss of the zero function on ``fit_teacher``'s held-out set (drawn from
    ``seed + 1``): ``mean(y^2) / 2``, the scale a student's loss starts from."""
    _, y = ef.meanfield.teacher_samples(teacher, n_test, seed=seed + 1)
    return float(0.5 * np.mean(y**2))


def mass_near_teacher(student: Any, teacher: Any, degrees: float = 10.0) -> float:
    """The share of the student's output weight ``|a_j| |(w_j, b_j)|`` carried by particles
    whose direction ``(w_j, b_j)`` lies within ``degrees`` of a teacher neuron's with the
    same sign of ``a``: 1 when every particle has joined a teacher neuron."""
    s = np.column_stack([student.w, student.b])
    t = np.column_stack([teacher.w, teacher.b])
    weight = np.abs(student.a) * np.linalg.norm(s, axis=1)
    cos = (s / np.linalg.norm(s, axis=1)[:, None]) @ (t / np.linalg.norm(t, axis=1)[:, None]).T
    same = np.sign(student.a)[:, None] == np.sign(teacher.a)[None, :]
    near = np.any(same & (cos >= np.cos(np.radians(degrees))), axis=1)
    return float(weight[near].sum() / weight.sum())


@dataclass
class MeanFieldSweep:
    """Final test losses of students of every initial radius and width against each
    teacher: ``final[t, i, j]`` for teacher ``teachers[t] = (M, seed)``, radius
    ``radii[i]``, width ``widths[j]``; ``zero[t]`` the zero function's test loss;
    ``reach[t, i, j]`` the first snapshot step whose test loss is below
    ``target * zero[t]`` (NaN: never, inf in ``final``: diverged); ``near[t, i, j]``
    the :func:`mass_near_teacher` of the trained student."""

    radii: tuple[float, ...]
    widths: tuple[int, ...]
    teachers: tuple[tuple[int, int], ...]
    final: np.ndarray
    zero: np.ndarray
    reach: np.ndarray
    near: np.ndarray
    curves: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]]
    steps: int
    lr0: float
    batch: int
    target: float
    snapshot_every: int
    seconds: float

    def relative(self) -> np.ndarray:
        """``final / zero``, (T, R, W)."""
        return self.final / self.zero[:, None, None]


def meanfield_sweep(
    radii: Sequence[float] = MEANFIELD_RADII,
    widths: Sequence[int] = MEANFIELD_WIDTHS,
    teachers: Sequence[tuple[int, int]] = ((4, MEANFIELD_TEACHER_SEED),),
    *,
    steps: int = 20000,
    lr0: float = 0.25,
    batch: int = 20,
    d: int = 2,
    target: float = 1e-2,
    n_test: int = 1000,
    snapshots: int = 200,
    threads: int | None = None,
) -> MeanFieldSweep:
    """Seed 003's open questions over a grid, as one ensemble: for every teacher
    ``(M, seed)``, initial radius and width m, a student ``small_sphere(m, d, radius,
    MEANFIELD_STUDENT_SEED)`` trains ``steps`` SGD steps of ``batch`` fresh samples at
    ``lr = lr0 * m``. With the mean-field 1/m a particle moves O(lr / m) per step, so
    this rate gives every width the same time scale (``steps * lr0`` in the mean-field
    time of the limit PDE). Same student seed for every radius: only the radius differs.
    Every cell is a member of one :class:`~eulerflow.Ensemble` trained by one
    ``fit_teacher`` call on ``threads`` threads (default: every core), each cell
    bit-identical to its own ``student.fit_teacher(...)``; a diverged cell stays inf in
    ``final``.
    """
    from eulerflow.ensemble import EnsembleDivergenceWarning

    mf = ef.meanfield
    begin = time.perf_counter()
    radii, widths, teachers = tuple(radii), tuple(widths), tuple(teachers)
    shape = (len(teachers), len(radii), len(widths))
    final, reach, near = np.full(shape, np.inf), np.full(shape, np.nan), np.full(shape, np.nan)
    curves: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    every = max(1, steps // snapshots)
    teacher_nets = [mf.TwoLayerReLU.random(M, d, seed=tseed) for M, tseed in teachers]
    zero = np.array([zero_loss(t, n_test, MEANFIELD_SAMPLE_SEED) for t in teacher_nets])
    cells = list(np.ndindex(*shape))
    ens = ef.Ensemble(lambda c: mf.TwoLayerReLU.small_sphere(
        widths[cells[c][2]], d, radii[cells[c][1]], seed=MEANFIELD_STUDENT_SEED), len(cells))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EnsembleDivergenceWarning)
        try:
            hist = ens.fit_teacher([teacher_nets[t] for t, _, _ in cells], steps=steps,
                                   batch=batch, lr=[lr0 * widths[j] for _, _, j in cells],
                                   snapshot_every=every, seed=MEANFIELD_SAMPLE_SEED,
                                   n_test=n_test, threads=threads)
        except ef.DivergenceError:
            hist = None  # every cell diverged
    for c, (t, i, j) in enumerate(cells):
        if hist is None or hist.diverged[c]:
            continue
        student, run, teacher = ens.members[c], hist.runs[c], teacher_nets[t]
        final[t, i, j] = student.loss(*mf.teacher_samples(teacher, n_test,
                                                          MEANFIELD_SAMPLE_SEED + 1))
        below = np.flatnonzero(run.test_loss < target * zero[t])
        if below.size:
            reach[t, i, j] = run.steps[below[0]]
        near[t, i, j] = mass_near_teacher(student, teacher)
        curves[(t, i, j)] = (run.steps, run.test_loss)
    return MeanFieldSweep(radii, widths, teachers, final, zero, reach, near, curves, steps,
                          lr0, batch, target, every, time.perf_counter() - begin)


def _geomean(values: np.ndarray, axis: int = 0) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(values), axis=axis))


def run_meanfield(out: str | Path, quick: bool = False, progress: bool | None = None) -> DemoResult:
    """Seed 003: mean-field particles of a two-layer ReLU student learning a teacher."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    from eulerflow import plot

    mf = ef.meanfield
    begin = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    M, d, m, radius, bs = 4, 2, 20, 0.05, 20
    steps = 4000 if quick else 20000
    every = 10
    rates = (0.5, 5.0)
    teacher = mf.TwoLayerReLU.random(M, d, seed=MEANFIELD_TEACHER_SEED)
    tpos = teacher_positions(teacher)
    L0 = zero_loss(teacher, 1000, MEANFIELD_SAMPLE_SEED)

    # ------------------------------------------------------------ the seed's picture
    runs, students, seconds = {}, {}, {}
    for lr in rates:
        student = mf.TwoLayerReLU.small_sphere(m, d, radius, seed=MEANFIELD_STUDENT_SEED)
        start = time.perf_counter()
        runs[lr] = student.fit_teacher(teacher, steps=steps, batch=bs, lr=lr,
                                       snapshot_every=every, seed=MEANFIELD_SAMPLE_SEED)
        seconds[lr] = time.perf_counter() - start
        students[lr] = student
    lim = max(1.1 * float(np.abs(tpos).max()),
              *(1.05 * float(np.abs(r.positions()).max()) for r in runs.values()))
    fig, axes = plot.figure_grid(1, 3, figsize=(17.0, 5.6),
                                 title=f"Seed 003: {m} particles from a sphere of radius "
                                       f"{radius:g} learn a {M}-neuron ReLU teacher "
                                       f"(SGD, batch {bs}, {steps} steps)")
    for ax, lr in zip(axes[:2], rates, strict=True):
        plot.particles(runs[lr].positions(), tpos, ax=ax, lim=lim,
                       title=f"lr = {lr:g}: particles $a_j w_j$ over {steps} steps",
                       end_label=f"particles at step {steps}")
    plot.step_losses({f"lr = {lr:g}": runs[lr] for lr in rates}, ax=axes[2],
                     title="Test loss (1000 held-out samples)")
    axes[2].axhline(L0, color="grey", ls=":", lw=1.2, label="zero function")
    axes[2].legend(fontsize="small", loc="best")
    _save(fig, out / "meanfield_particles.png", figures)

    # the animation of the seed's rate, as the seed's FuncAnimation
    gif = out / "meanfield_particles.gif"
    run0 = runs[rates[0]]
    anim = plot.particles_animation(
        run0.positions(), tpos, steps=run0.steps, losses=run0.test_loss,
        frames=20 if quick else 80, figsize=(7.2, 3.5),
        title=f"{m} particles, radius {radius:g}, lr = {rates[0]:g}")
    anim.save(gif, writer=animation.PillowWriter(fps=12))
    plt.close(anim._fig)
    figures.append(gif)

    # ------------------------------------------------------------ the open questions
    sweep_steps = 2000 if quick else 20000
    lr0 = 0.25
    main = meanfield_sweep(steps=sweep_steps, lr0=lr0)
    configs = tuple((size, s) for size in MEANFIELD_TEACHER_SIZES
                    for s in (MEANFIELD_TEACHER_SEEDS[:1] if quick else MEANFIELD_TEACHER_SEEDS))
    others = meanfield_sweep(teachers=configs, steps=sweep_steps, lr0=lr0)

    R, W = main.radii, main.widths
    fig, (ax_h, ax_r, ax_n) = plot.figure_grid(
        1, 3, figsize=(18.0, 5.0),
        title=f"Teacher M={M} (seed {MEANFIELD_TEACHER_SEED}): {sweep_steps} SGD steps, "
              f"batch {bs}, lr = {lr0:g} m (the same mean-field time for every m)")
    axis_names = {"row_label": "initial radius", "col_label": "number of particles m"}
    shown = main.final[0][np.isfinite(main.final[0])]
    floor = max(float(shown.min()), 1e-5 * float(shown.max())) if shown.size else None
    plot.grid_heatmap(main.final[0], R, W, ax=ax_h, vmin=floor,  # an exact fit stays readable
                      colorbar_label="final test loss", title="Final test loss", **axis_names)
    plot.grid_heatmap(main.reach[0], R, W, ax=ax_r, missing=f"not in {sweep_steps}",
                      colorbar_label="SGD steps", fmt="{:.0f}",
                      title=f"Steps until test loss < {main.target:g} x zero function's",
                      **axis_names)
    plot.grid_heatmap(100 * main.near[0], R, W, ax=ax_n, log=False, vmin=0.0, vmax=100.0,
                      colorbar_label="% of output weight", fmt="{:.0f}%",
                      title="Output weight within 10 deg of a teacher neuron", **axis_names)
    _save(fig, out / "meanfield_heatmap.png", figures)

    rel = others.relative()
    seeds_text = ", ".join(str(s) for s in sorted({c[1] for c in configs}))
    fig, axes = plot.figure_grid(1, len(MEANFIELD_TEACHER_SIZES), figsize=(17.0, 4.8),
                                 title="Final test loss / zero function's test loss, "
                                       f"geometric mean over teacher seeds {seeds_text} "
                                       f"({sweep_steps} steps, lr = {lr0:g} m)")
    finite = rel[np.isfinite(rel)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
    for ax, size in zip(axes, MEANFIELD_TEACHER_SIZES, strict=True):
        pick = [t for t, (s, _) in enumerate(configs) if s == size]
        plot.grid_heatmap(_geomean(rel[pick]), R, W, ax=ax, vmin=lo, vmax=hi,
                          row_label="initial radius", col_label="number of particles m",
                          colorbar_label="relative test loss", title=f"Teacher with M = {size}")
    _save(fig, out / "meanfield_teachers.png", figures)

    fig, (ax_w, ax_rad) = plot.figure_grid(1, 2, figsize=(13.0, 4.6),
                                           title=f"Teacher M={M}: test loss against the "
                                                 f"mean-field time t = step x lr / m "
                                                 f"(lr = {lr0:g} m)")
    i05 = R.index(0.05)
    plot.step_losses({f"m = {w}": (main.curves[(0, i05, j)][0] * lr0,
                                   main.curves[(0, i05, j)][1])
                      for j, w in enumerate(W) if (0, i05, j) in main.curves},
                     ax=ax_w, xlabel="mean-field time t", log_x=True,
                     title="Initial radius 0.05, every width")
    jbig = len(W) - 1
    plot.step_losses({f"radius {r:g}": (main.curves[(0, i, jbig)][0] * lr0,
                                        main.curves[(0, i, jbig)][1])
                      for i, r in enumerate(R) if (0, i, jbig) in main.curves},
                     ax=ax_rad, xlabel="mean-field time t", log_x=True,
                     title=f"m = {W[jbig]}, every initial radius")
    _save(fig, out / "meanfield_time.png", figures)

    # ------------------------------------------------------------ wide students on threads
    thread_widths = MEANFIELD_THREAD_WIDTHS_QUICK if quick else MEANFIELD_THREAD_WIDTHS
    threads = meanfield_threads(thread_widths, repeats=3 if quick else 5,
                                work=5e5 if quick else 2e6)
    _save(meanfield_threads_figure(threads), out / "meanfield_threads.png", figures)
    top = threads["counts"][-1]
    thread_rows = [f"| {w} | {threads['steps'][j]} | "
                   + " | ".join(f"{threads['us'][n][j]:.2f}" for n in threads["counts"])
                   + f" | {threads['us'][1][j] / threads['us'][top][j]:.2f}x |"
                   for j, w in enumerate(threads["widths"])]

    # ------------------------------------------------------------ numbers and summary
    numbers: dict[str, float] = {"zero_function_loss": L0}
    for j, w in enumerate(threads["widths"]):
        numbers[f"us_per_step_m{w}_1thread"] = threads["us"][1][j]
        numbers[f"us_per_step_m{w}_{top}threads"] = threads["us"][top][j]
    rate_rows = []
    mid_step = int(runs[rates[0]].steps[len(runs[rates[0]].steps) // 10])
    for lr in rates:
        r = runs[lr]
        hit = np.flatnonzero(r.test_loss < 1e-3)
        numbers[f"final_test_loss_lr{lr:g}"] = float(r.test_loss[-1])
        numbers[f"steps_to_1e-3_lr{lr:g}"] = float(r.steps[hit[0]]) if hit.size else np.nan
        numbers[f"mass_near_teacher_lr{lr:g}"] = mass_near_teacher(students[lr], teacher)
        rate_rows.append(
            f"| {lr:g} | {r.test_loss[0]:.3g} | {r.test_loss[len(r.steps) // 10]:.3g} "
            f"| {r.test_loss[-1]:.3g} "
            f"| {int(r.steps[hit[0]]) if hit.size else 'not reached'} "
            f"| {100 * numbers[f'mass_near_teacher_lr{lr:g}']:.0f}% "
            f"| {1e6 * seconds[lr] / steps:.2f} |")

    def grid_rows(values: np.ndarray, fmt: str) -> list[str]:
        return [f"| {r:g} | " + " | ".join(
            ("diverged" if np.isinf(v) else "never" if np.isnan(v) else fmt.format(v))
            for v in values[i]) + " |" for i, r in enumerate(R)]

    header = "| radius \\ m | " + " | ".join(str(w) for w in W) + " |"
    rule = "|---|" + "---|" * len(W)
    big = [j for j, w in enumerate(W) if w >= 20]
    small_r = [i for i, r in enumerate(R) if r <= 0.2]
    large_r = [i for i, r in enumerate(R) if r > 0.2]
    teacher_rows = []
    for t, (size, s) in enumerate(configs):
        f = others.final[t]
        teacher_rows.append(
            f"| {size} | {s} | {others.zero[t]:.3g} "
            f"| {np.min(f[:, 0]):.2g} to {np.max(f[:, 0]):.2g} "
            f"| {np.min(f[:, big]):.2g} to {np.max(f[:, big]):.2g} "
            f"| {100 * np.mean(others.near[t][np.ix_(small_r, big)]):.0f}% "
            f"/ {100 * np.mean(others.near[t][np.ix_(large_r, big)]):.0f}% |")
    by_width = {w: float(_geomean(rel[:, :, j].reshape(-1))) for j, w in enumerate(W)}
    by_radius = {r: float(_geomean(rel[:, i, big].reshape(-1))) for i, r in enumerate(R)}
    near_by_radius = {r: float(np.mean(others.near[:, i, big])) for i, r in enumerate(R)}
    of_size = {size: [t for t, c in enumerate(configs) if c[0] == size]
               for size in MEANFIELD_TEACHER_SIZES}
    by_size = {size: float(_geomean(rel[ts][:, :, big].reshape(-1)))
               for size, ts in of_size.items()}
    best_radius = {size: R[int(np.argmin([_geomean(rel[ts][:, i, big].reshape(-1))
                                          for i in range(len(R))]))]
                   for size, ts in of_size.items()}
    per_teacher = {size: [float(_geomean(rel[t][:, big].reshape(-1))) for t in ts]
                   for size, ts in of_size.items()}
    sizes_loss = list(by_size.values())
    growing = all(a < b for a, b in zip(sizes_loss[:-1], sizes_loss[1:], strict=True))
    m4 = others.final[:, :, 0] / others.zero[:, None]
    m4_stuck = int(np.sum(np.isnan(others.reach[:, :, 0])))
    reach_big = {r: main.reach[0, i, -1] for i, r in enumerate(R)}
    for w, v in by_width.items():
        numbers[f"relative_loss_m{w}"] = v
    for r, v in by_radius.items():
        numbers[f"relative_loss_r{r:g}"] = v
        numbers[f"near_teacher_r{r:g}"] = near_by_radius[r]
    for size, v in by_size.items():
        numbers[f"relative_loss_M{size}"] = v

    def steps_text(v: float, budget: int = sweep_steps) -> str:
        return f"not within {budget}" if np.isnan(v) else f"{v:.0f}"

    answers = [
        "### Answers",
        "",
        "Measured with the budget above; `relative` is the final test loss divided by the "
        "zero function's, geometric means over the teachers and the cells named.",
        "",
        "- **Size of the initial sphere.** A smaller sphere costs time: the particles "
        "start with almost no output and must first grow (steps until the loss is below "
        f"{main.target:g} x the zero function's, m = {W[-1]}: "
        + ", ".join(f"r = {r:g}: {steps_text(v)}" for r, v in reach_big.items())
        + "). The final loss changes little with the radius: within a factor "
        f"{max(by_radius.values()) / min(by_radius.values()):.1f} (relative, m >= 20, all "
        "teachers: "
        + ", ".join(f"r = {r:g}: {v:.2g}" for r, v in by_radius.items())
        + "; the radius that ends lowest depends on the teacher: "
        + ", ".join(f"M = {k}: r = {r:g}" for k, r in best_radius.items())
        + "). What the radius does change is the solution: from a small sphere the "
        "particles gather on the teacher's neurons, from r = 1 much of the output stays "
        "with particles elsewhere (share of the output weight within 10 degrees of a "
        "teacher neuron, m >= 20: "
        + ", ".join(f"r = {r:g}: {100 * v:.0f}%" for r, v in near_by_radius.items())
        + "). \"The smaller the better?\": for recovering the teacher's neurons, a small "
        "sphere (r <= 0.05) is clearly better than r = 1; for the final loss it makes little "
        "difference, and the smallest sphere is the slowest.",
        "- **Number of units.** With lr = lr0 m the loss curves against the mean-field "
        "time t = step x lr / m nearly coincide for m >= 20 until the loss is small "
        "(`meanfield_time.png`: the mean-field limit), and the final loss improves with m "
        "(relative, all radii and teachers: "
        + ", ".join(f"m = {w}: {v:.2g}" for w, v in by_width.items())
        + f"). m = {W[0]} is a lottery: relative loss from {np.nanmin(m4):.1e} to "
        f"{np.nanmax(m4):.1e}; {m4_stuck} of its {m4.size} runs never got below "
        f"{main.target:g} x the zero function's loss.",
        "- **The teacher's configuration.** "
        + ("More teacher neurons are harder" if growing else "By teacher size")
        + " (relative, m >= 20: " + ", ".join(f"M = {k}: {v:.2g}" for k, v in by_size.items())
        + (")." if all(len(vs) < 2 for vs in per_teacher.values()) else
           "); teachers of one size differ too (per teacher: "
           + "; ".join(f"M = {k}: " + ", ".join(f"{v:.1g}" for v in vs)
                       for k, vs in per_teacher.items()) + ")."),
    ]
    seconds_total = time.perf_counter() - begin
    numbers["demo_seconds"] = seconds_total
    n_runs = main.final.size + others.final.size

    md = "\n".join([
        "# Demo `meanfield` (seed 003: mean-field particles of a two-layer ReLU network)",
        "",
        f"Teacher `ef.meanfield.TwoLayerReLU.random(m={M}, d={d}, seed="
        f"{MEANFIELD_TEACHER_SEED})`: the seed's `np.random.seed(134)` drew from NumPy's "
        "legacy global generator and cannot be reproduced here; seed "
        f"{MEANFIELD_TEACHER_SEED} is the first whose four directions a w lie more than 40 "
        "degrees apart with norms in [0.25, 1.6], so the rays can be told apart. Student "
        f"`small_sphere(m={m}, d={d}, radius={radius:g}, seed={MEANFIELD_STUDENT_SEED})`, "
        f"trained by `fit_teacher(teacher, steps={steps}, batch={bs}, lr, "
        f"snapshot_every={every}, seed={MEANFIELD_SAMPLE_SEED})`: fresh Gaussian inputs "
        "every step as the seed's `gen_sample` (its 500 animation frames made about "
        f"17,700 steps of batch 20){' (quick mode)' if quick else ''}. The zero function's "
        f"test loss is {L0:.3g}.",
        "",
        f"| lr | test loss at step 0 | at step {mid_step} "
        "| final | first step < 1e-3 | output weight within 10 deg of a teacher neuron "
        "| us/step (with snapshots) |",
        "|---|---|---|---|---|---|---|",
        *rate_rows,
        "",
        f"The seed's lr = {rates[0]:g} learns, but slowly: with the mean-field 1/m each "
        f"particle moves O(lr / m) per step. lr = {rates[1]:g} moves the particles ten "
        "times as far per step; it gets below a test loss of 1e-3 after "
        f"{steps_text(numbers[f'steps_to_1e-3_lr{rates[1]:g}'], steps)} steps instead of "
        f"{steps_text(numbers[f'steps_to_1e-3_lr{rates[0]:g}'], steps)}, and ends with "
        f"{100 * numbers[f'mass_near_teacher_lr{rates[1]:g}']:.0f}% of the output weight "
        "on particles within 10 degrees of a teacher neuron (its direction (w, b), same "
        f"sign of a) against {100 * numbers[f'mass_near_teacher_lr{rates[0]:g}']:.0f}% "
        "(`meanfield_particles.png`; the animation `meanfield_particles.gif` shows "
        f"lr = {rates[0]:g}, frames spaced evenly in log(step)).",
        "",
        "## The seed's open questions",
        "",
        f"One ensemble call per grid (`demos.meanfield_sweep`), {n_runs} trainings in "
        f"{main.seconds + others.seconds:.1f} s. Every student trains {sweep_steps} SGD "
        f"steps of batch {bs} at **lr = {lr0:g} m**: with the 1/m of the output each "
        "particle moves O(lr / m) per step, so lr proportional to m keeps the mean-field "
        f"time t = steps x lr / m = {sweep_steps * lr0:g} the same for every width "
        f"(lr = {lr0 * W[0]:g} for m = {W[0]}, {lr0 * W[-1]:g} for m = {W[-1]}). Same "
        "student seed "
        "for every radius, so only the radius differs.",
        "",
        f"### Initial radius and number of units (teacher M = {M}, seed "
        f"{MEANFIELD_TEACHER_SEED})",
        "",
        "Final test loss:",
        "",
        header, rule, *grid_rows(main.final[0], "{:.2e}"),
        "",
        f"SGD steps until the test loss is below {main.target:g} x the zero function's "
        f"(checked every {main.snapshot_every} steps):",
        "",
        header, rule, *grid_rows(main.reach[0], "{:.0f}"),
        "",
        "Share of the output weight within 10 degrees of a teacher neuron (same sign of "
        "a):",
        "",
        header, rule, *grid_rows(100 * main.near[0], "{:.0f}%"),
        "",
        "### Teacher configurations",
        "",
        f"M teacher neurons drawn from seeds {seeds_text}, "
        "every radius and width (`meanfield_teachers.png`). Final test loss, smallest to "
        "largest over the radii (and the widths named); share of the output weight near a "
        "teacher neuron for r <= 0.2 / r = 1:",
        "",
        "| M | teacher seed | zero function's loss | final loss, m = 4 | final loss, m >= 20 "
        "| weight near teacher, r <= 0.2 / r = 1 (m >= 20) |",
        "|---|---|---|---|---|---|",
        *teacher_rows,
        "",
        *answers,
        "",
        "## Wide students on the core's threads",
        "",
        "`fit_teacher` at d = 2, batch 20, no snapshots, on every thread count "
        f"(`ef.set_num_threads`, 1 to {top}); median us per step; every count gave the same "
        "bits (checked). A step's particles are summed in chunks of 512 that the threads "
        "take in turn, so widths of one chunk run on one thread (`meanfield_threads.png`):",
        "",
        "| m | steps timed | " + " | ".join(f"{n} thread{'s' * (n > 1)}"
                                            for n in threads["counts"])
        + f" | speed-up on {top} |",
        "|---|---|" + "---|" * len(threads["counts"]) + "---|",
        *thread_rows,
        "",
        f"Figures: {', '.join(f'`{p.name}`' for p in figures)}.",
        f"Demo wall time (training and figures): {seconds_total:.2f} s.",
        "",
    ])
    (out / "summary.md").write_text(md, encoding="utf-8")
    return DemoResult("meanfield", "mean-field particles (seed 003)", numbers, md, figures,
                      seconds_total)


def _thread_counts(counts: Sequence[int] | None) -> list[int]:
    """``counts``, or 1 to the CPUs this process may use."""
    if counts is not None:
        return list(counts)
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return list(range(1, max(1, cpus or 1) + 1))


#: Student widths of the mean-field threads study (full and quick).
MEANFIELD_THREAD_WIDTHS = (20, 100, 500, 1000, 2000, 5000, 10000, 20000)
MEANFIELD_THREAD_WIDTHS_QUICK = (20, 500, 2000, 10000)


def meanfield_threads(widths: Sequence[int] = MEANFIELD_THREAD_WIDTHS, repeats: int = 5,
                      counts: Sequence[int] | None = None,
                      work: float = 2e6) -> dict[str, Any]:
    """Seed 003's student (d = 2, batch 20, ``fit_teacher`` with no snapshots) of every width
    in ``widths`` trained on every thread count in ``counts`` (default 1 to the CPUs this
    process may use), about ``work`` particle-steps per timing. Raises RuntimeError when a
    thread count changes a single bit of the particles. Returns ``{"widths", "counts",
    "us": {count: [median us per step per width]}, "steps": [steps per width]}``."""
    counts = _thread_counts(counts)
    mf = ef.meanfield
    teacher = mf.TwoLayerReLU.random(4, 2, seed=MEANFIELD_TEACHER_SEED)
    result: dict[str, Any] = {"widths": list(widths), "counts": list(counts),
                              "us": {n: [] for n in counts}, "steps": []}
    old = ef.get_num_threads()
    try:
        for m in widths:
            start = mf.TwoLayerReLU.small_sphere(m, 2, 0.05, seed=MEANFIELD_STUDENT_SEED)
            steps = int(max(20, min(5000, work // m)))
            result["steps"].append(steps)
            reference = None
            for n in counts:
                ef.set_num_threads(n)

                def train(start=start, steps=steps):
                    net = start.copy()
                    net.fit_teacher(teacher, steps=steps, batch=20, lr=0.5, snapshot_every=0,
                                    seed=MEANFIELD_SAMPLE_SEED, n_test=1)
                    return net

                net = train()
                got = np.concatenate([net.a, net.w.ravel(), net.b])
                reference = got if reference is None else reference
                if not np.array_equal(got.view(np.uint8), reference.view(np.uint8)):
                    raise RuntimeError(f"m = {m}: {n} threads changed the bits of the training")
                result["us"][n].append(1e6 * _median_time(train, repeats) / steps)
    finally:
        ef.set_num_threads(old)
    return result


def meanfield_threads_figure(result: dict[str, Any]) -> Any:
    """Time per step against the width on each thread count, and the speed-up over one
    thread (a matplotlib Figure)."""
    import matplotlib.pyplot as plt

    widths, counts = result["widths"], result["counts"]
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for n in counts:
        ax_t.loglog(widths, result["us"][n], marker="o", label=f"{n} thread{'s' * (n > 1)}")
        if n > 1:
            ax_s.semilogx(widths, np.array(result["us"][1]) / np.array(result["us"][n]),
                          marker="o", label=f"{n} threads")
    ax_t.set_xlabel("particles m")
    ax_t.set_ylabel("us per SGD step (batch 20)")
    ax_t.set_title("Time per step")
    ax_t.legend(fontsize=8)
    ax_s.axhline(1.0, color="grey", ls=":", lw=1.2, label="one thread")
    if len(counts) > 1:
        ax_s.axhline(counts[-1], color="grey", ls="--", lw=1.0, label="ideal")
    ax_s.set_xlabel("particles m")
    ax_s.set_ylabel("speed-up over one thread")
    ax_s.set_ylim(bottom=0)
    ax_s.set_title("Speed-up (the same bits on every thread count)")
    ax_s.legend(fontsize=8)
    fig.suptitle("Mean-field student (seed 003, d = 2) trained by fit_teacher on the core's "
                 "threads: chunks of 512 particles per step")
    return fig


#: Every demo by name, in the order ``eulerflow demo all`` runs them.
# --- bench: learning-rate stability, knobs, landscapes, ensembles, sweeps ------------------

def _swap(v: np.ndarray) -> np.ndarray:
    """Seed 001's ideal map for one Dense(2, 2): v -> (v1, v0)."""
    return np.asarray(v)[::-1].copy()


def _w1_member(i: int, w0: np.ndarray):
    from eulerflow.nn import Dense
    from eulerflow.node import NeuralODE

    field = Dense(2, 2, bias=False)
    field.W[...] = w0
    return NeuralODE(field, method="euler", steps_per_interval=5)


def _sweep_chunk(points: list[dict]) -> list[float]:
    """One chunk of the demo's sweep, trained as one ensemble (on one thread: ``ef.sweep``
    spreads the chunks over the cores): seed 003's students of ``m`` particles started on
    spheres of radius ``radius``, each point's student a member, all for the chunk's
    ``steps``; returns each point's final test loss, in the chunk's order."""
    from eulerflow.ensemble import Ensemble
    from eulerflow.meanfield import TwoLayerReLU

    steps = {p["steps"] for p in points}
    if len(steps) != 1:
        raise ValueError(f"a chunk's points must share their steps, got {sorted(steps)}")
    teacher = TwoLayerReLU.random(4, 2, seed=MEANFIELD_TEACHER_SEED)
    ens = Ensemble(lambda i: TwoLayerReLU.small_sphere(points[i]["m"], 2,
                                                       radius=points[i]["radius"],
                                                       seed=MEANFIELD_STUDENT_SEED), len(points))
    hist = ens.fit_teacher(teacher, steps=steps.pop(), batch=20, lr=0.5,
                           seed=MEANFIELD_SAMPLE_SEED, threads=1)
    return [float(run.test_loss[-1]) for run in hist.runs]


#: W6's wide MLP (784-1024-1024-10, tanh), batch 256; the quick mode narrows the hidden layers.
WIDE_SIZES = (784, 1024, 1024, 10)
WIDE_SIZES_QUICK = (784, 256, 256, 10)
WIDE_BATCH, WIDE_LR = 256, 0.01


def _numpy_wide_step(params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> None:
    """One SGD step of the same network and loss in NumPy: tanh hidden layers, softmax
    cross-entropy averaged over the batch."""
    hs, h = [X], X
    for k in range(0, len(params) - 2, 2):
        h = np.tanh(h @ params[k].T + params[k + 1])
        hs.append(h)
    z = h @ params[-2].T + params[-1]
    g = np.exp(z - z.max(axis=1, keepdims=True))
    g /= g.sum(axis=1, keepdims=True)
    g[np.arange(len(y)), y] -= 1.0
    g /= len(y)
    for k in range(len(params) - 2, -1, -2):
        gW, gb = g.T @ hs[k // 2], g.sum(axis=0)
        if k > 0:
            g = (g @ params[k]) * (1.0 - hs[k // 2] ** 2)
        params[k] -= WIDE_LR * gW
        params[k + 1] -= WIDE_LR * gb


def _median_time(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm-up: buffers sized, threads started
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def wide_mlp_threads(sizes: Sequence[int] = WIDE_SIZES, steps: int = 3, repeats: int = 5,
                     counts: Sequence[int] | None = None) -> dict[str, Any]:
    """A wide MLP trained for ``steps`` SGD steps on every thread count in ``counts``
    (default 1 to the CPUs this process may use), float64 and float32. Raises
    RuntimeError when a thread count changes a single bit of the weights or losses.
    Returns ``{"counts", "ms": {dtype: [ms per step per count]}, "numpy_ms": {dtype: ms}}``:
    median times per step, NumPy's for the same step written by hand (OpenBLAS, whatever
    threads it uses)."""
    counts = _thread_counts(counts)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((WIDE_BATCH, sizes[0]))
    y = rng.integers(0, sizes[-1], WIDE_BATCH)
    result: dict[str, Any] = {"counts": list(counts), "ms": {}, "numpy_ms": {}}
    old = ef.get_num_threads()
    try:
        for dtype in (np.float64, np.float32):
            name = np.dtype(dtype).name
            Xd = X.astype(dtype)
            net0 = ef.mlp(list(sizes), "tanh", seed=0, dtype=dtype)
            params = [p.copy() for p in net0.parameters()]

            def numpy_steps(params=params, Xd=Xd):
                for _ in range(steps):
                    _numpy_wide_step(params, Xd, y)

            result["numpy_ms"][name] = 1e3 * _median_time(numpy_steps, repeats) / steps
            reference, times = None, []
            for n in counts:
                ef.set_num_threads(n)

                def train(Xd=Xd, dtype=dtype):
                    net = ef.mlp(list(sizes), "tanh", seed=0, dtype=dtype)
                    hist = net.fit(Xd, y, loss="cross_entropy", optimizer=ef.optim.SGD(WIDE_LR),
                                   epochs=steps, batch_size=WIDE_BATCH, shuffle=False)
                    return [p.copy() for p in net.parameters()] + [np.asarray(hist.loss)]

                got = train()
                reference = got if reference is None else reference
                if not all(np.array_equal(a.view(np.uint8), b.view(np.uint8))
                           for a, b in zip(got, reference, strict=True)):
                    raise RuntimeError(f"{name}: {n} threads changed the bits of the training")
                times.append(1e3 * _median_time(train, repeats) / steps)
            result["ms"][name] = times
    finally:
        ef.set_num_threads(old)
    return result


def _tower(width: int = 3, depth: int = 20):
    """Seed 000's residual tower (W2): Dense(7, 3)+elu, depth x average-residual
    Dense(3, 3)+elu, Dense(3, 3)+elu."""
    layers = [ef.Dense(7, width, seed=0), ef.Activation("elu")]
    for i in range(depth):
        layers.append(ef.Residual(ef.Sequential([ef.Dense(width, width, seed=i + 1),
                                                 ef.Activation("elu")]), mode="average"))
    layers += [ef.Dense(width, 3, seed=depth + 1), ef.Activation("elu")]
    return ef.Sequential(layers)


def tower_threads(n: int = 100_000, steps: int = 3, repeats: int = 5,
                  counts: Sequence[int] | None = None) -> dict[str, Any]:
    """W2's residual tower trained full-batch (``n`` samples, Nadam) for ``steps`` steps on
    every thread count in ``counts`` (default 1 to the CPUs this process may use): its
    narrow layers split their samples across the threads. Raises RuntimeError when a
    thread count changes a single bit. Returns ``{"counts", "ms": [ms per step], "n"}``."""
    counts = _thread_counts(counts)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((n, 7)), rng.standard_normal((n, 3))
    result: dict[str, Any] = {"counts": list(counts), "ms": [], "n": n}
    old = ef.get_num_threads()
    try:
        reference = None
        net = _tower()  # one network: its buffers for the batch are made once, not timed
        start = [p.copy() for p in net.parameters()]
        for k in counts:
            ef.set_num_threads(k)

            def train():
                for p, v in zip(net.parameters(), start, strict=True):
                    p[...] = v
                net.fit(X, Y, epochs=steps, batch_size=n, optimizer=ef.optim.Nadam(0.002),
                        shuffle=False)
                return np.concatenate([p.ravel() for p in net.parameters()])

            got = train()
            reference = got if reference is None else reference
            if not np.array_equal(got.view(np.uint8), reference.view(np.uint8)):
                raise RuntimeError(f"tower: {k} threads changed the bits of the training")
            result["ms"].append(1e3 * _median_time(train, repeats) / steps)
    finally:
        ef.set_num_threads(old)
    return result


def wide_mlp_threads_figure(result: dict[str, Any], sizes: Sequence[int],
                            tower: dict[str, Any] | None = None) -> Any:
    """Time per SGD step against the thread count, beside NumPy's (a matplotlib Figure)."""
    import matplotlib.pyplot as plt

    counts = result["counts"]
    if tower is None:
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    else:
        fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
        ax_t.plot(tower["counts"], tower["ms"], marker="o", color="C2", label="eulerflow float64")
        _thread_axes(ax_t, tower["counts"], "ms per full-batch Nadam step",
                     f"W2's residual tower (width 3, 22 layers), batch {tower['n']:,}\n"
                     "samples split across threads (the same bits)")
    for (name, marker), color in zip((("float64", "o"), ("float32", "s")), ("C0", "C1"),
                                     strict=True):
        ax.plot(counts, result["ms"][name], marker=marker, color=color, label=f"eulerflow {name}")
        ax.axhline(result["numpy_ms"][name], ls="--", color=color,
                   label=f"NumPy/OpenBLAS {name} (its default threads)")
    _thread_axes(ax, counts, "ms per SGD step",
                 f"Wide MLP {'-'.join(map(str, sizes))}, batch {WIDE_BATCH}\n"
                 "time per SGD step (the same bits on every thread count)")
    return fig


def _thread_axes(ax: Any, counts: Sequence[int], ylabel: str, title: str) -> None:
    """A time-against-threads panel's ticks, labels, title and legend."""
    ax.set_xticks(counts)
    ax.set_xlabel("threads (ef.set_num_threads)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")


def run_bench(out: str | Path, quick: bool = False, progress: bool | None = None) -> DemoResult:
    """The learning bench (seed 001): learning-rate stability against 2/lambda_max, the
    knobs plot, a 2-D loss landscape of the spiral classifier, an ensemble of Neural
    ODEs over learning rates, and a sweep on the local cores."""
    from eulerflow import bench, landscape, plot
    from eulerflow._sweep import grid, sweep
    from eulerflow.ensemble import Ensemble
    from eulerflow.nn import Dense

    begin = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[Path] = []
    numbers: dict[str, float] = {}

    # 1. gradient descent is Euler's method on the gradient flow: stable below 2/lambda_max
    lb = bench.LearningBench(Dense(2, 2, seed=0), _swap, seed=3)
    n_facts = 100
    lrs = np.geomspace(1e-3, 30.0, 16 if quick else 40)
    sharp = lb.sharpness(n=n_facts)
    sweep_lr = lb.sweep_lr(lrs, n=n_facts)
    _save(sweep_lr.plot(sharpness=sharp), out / "bench_lr_sweep.png", figures)
    numbers.update(lambda_max=sharp, stability_lr=2.0 / sharp, best_lr=sweep_lr.best_lr,
                   diverged_lrs=float(np.sum(sweep_lr.diverged)))

    # 2. the knobs plot, as a picture
    knobs = lb.knobs(n=n_facts, lr=0.1)
    knobs.save(out / "bench_knobs.png")
    knobs.close()
    figures.append(out / "bench_knobs.png")

    # 3. the loss landscape around a trained spiral classifier (seed 004's network)
    X, y = data.spiral_classes(100, 3, noise=0.2, seed=0)
    clf = train_classifier(DEPTHS[0], X, y, lr=1.0, epochs=500 if quick else 3000,
                           progress=progress)
    k = 21 if quick else 51
    axis = np.linspace(-1.0, 1.0, k)
    scan = landscape.scan_2d(clf.net, (X, y), axis, axis, loss="cross_entropy", seed=0)
    _save(plot.landscape_2d(scan, title=f"Cross-entropy near the trained spiral classifier\n"
                                        f"({k} x {k} grid, filter-normalized directions)"),
          out / "bench_landscape_2d.png", figures)
    numbers.update(landscape_points=float(k * k), landscape_seconds=scan.seconds,
                   landscape_origin_loss=scan.origin_loss)

    # 4. one ensemble call trains seed 002's LinearODE at many learning rates
    t, series = data.spiral_ode()
    w0 = np.random.RandomState(1).rand(2, 2)
    members = 16 if quick else 64
    epochs = 50 if quick else 300
    ens_lrs = np.geomspace(1e-3, 1e3, members)  # the largest diverge
    ens = Ensemble(lambda i: _w1_member(i, w0), members)
    start = time.perf_counter()
    from eulerflow.ensemble import EnsembleDivergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EnsembleDivergenceWarning)
        hist = ens.fit(series, t, epochs=epochs, lr=ens_lrs, seed=0, progress=progress)
    ens_seconds = time.perf_counter() - start
    one = _w1_member(0, w0)  # one separate fit, for the time per member
    start = time.perf_counter()
    one.fit(series, t, epochs=epochs, seed=0)
    one_seconds = time.perf_counter() - start
    _save(plot.ensemble_lr(hist, title=f"{members} LinearODEs (seed 002), one ensemble call:\n"
                                       f"final loss vs learning rate"),
          out / "bench_ensemble_lr.png", figures)
    numbers.update(ensemble_members=float(members), ensemble_seconds=ens_seconds,
                   ensemble_us_per_member_epoch=1e6 * ens_seconds / (members * epochs),
                   separate_us_per_epoch=1e6 * one_seconds / epochs,
                   ensemble_diverged=float(np.sum(hist.diverged)))

    # 5. wide layers on the core's threads (W6's MLP; narrower in quick mode)
    sizes = WIDE_SIZES_QUICK if quick else WIDE_SIZES
    wide = wide_mlp_threads(sizes, steps=2 if quick else 3, repeats=2 if quick else 5)
    tower = tower_threads(50_000 if quick else 100_000, steps=2 if quick else 3,
                          repeats=2 if quick else 5)
    _save(wide_mlp_threads_figure(wide, sizes, tower), out / "bench_threads.png", figures)
    top = wide["counts"][-1]
    numbers.update(wide_threads=float(top), wide_f64_ms_1thread=wide["ms"]["float64"][0],
                   wide_f64_ms_all_threads=wide["ms"]["float64"][-1],
                   wide_f64_numpy_ms=wide["numpy_ms"]["float64"],
                   tower_ms_1thread=tower["ms"][0], tower_ms_all_threads=tower["ms"][-1])
    wide_rows = [f"| {name} | {n} | {ms:.2f} | {wide['numpy_ms'][name]:.2f} |"
                 for name in ("float64", "float32")
                 for n, ms in zip(wide["counts"], wide["ms"][name], strict=True)]

    # 6. a sweep over the local cores: seed 003's radius x width question, an ensemble of
    # every width per radius (chunks of equal work), the chunks spread over the cores
    radii = [0.01, 0.1, 1.0]
    points = grid(radius=radii, m=[5, 20, 100] if quick else [5, 20, 100, 1000],
                  steps=[200 if quick else 2000])
    chunks = [[p for p in points if p["radius"] == r] for r in radii]
    start = time.perf_counter()
    losses = [loss for chunk in sweep(_sweep_chunk, chunks, progress=progress) for loss in chunk]
    sweep_seconds = time.perf_counter() - start
    numbers.update(sweep_points=float(len(points)), sweep_seconds=sweep_seconds)
    rows = [f"| {p['radius']:g} | {p['m']} | {loss:.3g} |" for p, loss in zip(points, losses,
                                                                              strict=True)]

    seconds = time.perf_counter() - begin
    md = "\n".join([
        "# Demo `bench` (seed 001's learning bench, and what eulerflow adds)",
        "",
        "## Learning-rate stability",
        "",
        f"One `Dense(2, 2)` learns seed 001's swap map online (one SGD step per fact, "
        f"{n_facts} facts, seed 3). Gradient descent is Euler's method on the gradient flow: "
        f"full-batch steps are stable for lr < 2/lambda_max, lambda_max the top Hessian "
        f"eigenvalue (power iteration on Hessian-vector products): lambda_max = {sharp:.4g}, "
        f"2/lambda_max = {2 / sharp:.4g}. Best learning potential at lr = "
        f"{sweep_lr.best_lr:.3g}; {int(np.sum(sweep_lr.diverged))} of {lrs.size} rates diverged "
        "(their potential is reported as unbounded below, with a warning, never as a "
        "missing value).",
        "",
        "## Loss landscape",
        "",
        f"`mlp({list(DEPTHS[0])}, 'atan')` trained on the spiral; the cross-entropy on a "
        f"{k} x {k} grid of two filter-normalized random directions (Li et al. 2018) in "
        f"{scan.seconds:.3f} s ({1e6 * scan.seconds / (k * k):.1f} us per point); loss at the "
        f"trained weights {scan.origin_loss:.4g}.",
        "",
        "## An ensemble over learning rates",
        "",
        f"{members} copies of seed 002's LinearODE (Euler, 5 steps per interval, SGD momentum "
        f"0.95) at learning rates {ens_lrs[0]:g} to {ens_lrs[-1]:g}, {epochs} epochs, in one "
        f"native call: {ens_seconds:.3f} s, {numbers['ensemble_us_per_member_epoch']:.2f} us "
        f"per member-epoch, against {numbers['separate_us_per_epoch']:.1f} us per epoch for "
        f"one separate fit; each member is bit-identical to its separate fit. "
        f"{int(np.sum(hist.diverged))} members diverged and were frozen.",
        "",
        "## Wide layers on the core's threads",
        "",
        f"An MLP {'-'.join(map(str, sizes))} (tanh, batch {WIDE_BATCH}, SGD) trained on 1 to "
        f"{top} threads of `ef.set_num_threads`: every thread count gives the same bits "
        f"(checked). Float64 on {top} threads took "
        f"{wide['ms']['float64'][0] / wide['ms']['float64'][-1]:.2f}x less time per step than "
        "on one (another busy process on a core takes that gain away):",
        "",
        "| dtype | threads | ms per step | NumPy ms per step |",
        "|---|---|---|---|",
        *wide_rows,
        "",
        f"W2's residual tower (width 3, 22 layers) trained full-batch on {tower['n']:,} "
        "samples: its narrow layers split their samples across the threads (the same bits, "
        "checked); ms per Nadam step on 1 to "
        f"{top} threads: " + ", ".join(f"{ms:.2f}" for ms in tower["ms"]) + ".",
        "",
        "## A sweep on the local cores (seed 003's open question)",
        "",
        "Final test loss of a mean-field student (SGD lr 0.5, batch 20) by initial radius "
        f"and width, {len(points)} trainings in {sweep_seconds:.2f} s with `ef.sweep` over "
        f"{len(chunks)} chunks (one radius each), every chunk one `ef.Ensemble` of its "
        "widths trained in one native call:",
        "",
        "| radius | particles m | final test loss |",
        "|---|---|---|",
        *rows,
        "",
        f"Figures: {', '.join(f'`{p.name}`' for p in figures)}.",
        f"Demo wall time: {seconds:.2f} s.",
        "",
    ])
    (out / "summary.md").write_text(md, encoding="utf-8")
    return DemoResult("bench", "learning bench, landscapes, ensembles and sweeps (seed 001)",
                      numbers, md, figures, seconds)


#: Per demo: the seed, what of it is reproduced, and what eulerflow adds (summary.md).
SEED_LINES: dict[str, tuple[str, str, str]] = {
    "classify": ("004", "spiral classification by an atan MLP, class-probability map, "
                 "influence of depth", "fixed data loop, exact backprop in C++, ~100x faster"),
    "xor": ("001", "layers from scratch, XOR, online learning of the swap map, per-fact "
            "losses raw and low-pass", "the Affine backprop bug fixed (W^T), the learning "
            "potential always a number"),
    "euler": ("000", "Euler on the projectile at h = 0.1, 0.01, 0.001", "measured "
              "convergence orders of Euler, midpoint and rk4 on three systems"),
    "neural-ode": ("002", "LinearODE / NonLinearODE on the spiral, Lorenz, landscapes, "
                   "extreme starts", "the Euler bias explained and removed (rk4, dopri5), "
                   "backprop and adjoint gradients"),
    "depth": ("000", "deep narrow ELU nets 1/5/40 layers, residual, penalties, hidden "
              "states", "depth as time made to work: ResidualFlow converges to the ODE "
              "flow at rate 1/L"),
    "meanfield": ("003", "particles from a small sphere learn a 4-neuron teacher, "
                  "animation", "the open questions (radius, width, teacher) measured"),
    "bench": ("001", "NNBench: checkpoint/rollback, learning potential, knobs plot",
              "2/lambda_max stability limit, 2-D landscapes, ensembles in SIMD lanes, "
              "sweeps on processes or Dask"),
}

DEMOS: dict[str, Callable[..., DemoResult]] = {
    "classify": run_classify,
    "xor": run_xor,
    "euler": run_euler,
    "neural-ode": run_neural_ode,
    "depth": run_depth,
    "meanfield": run_meanfield,
    "bench": run_bench,
}


def run(name: str, out: str | Path, quick: bool = False,
        progress: bool | None = None) -> DemoResult:
    """Run the demo called ``name`` (a key of :data:`DEMOS`), writing into ``out``."""
    if name not in DEMOS:
        raise ValueError(f"name must be one of {sorted(DEMOS)}, got {name!r}")
    return DEMOS[name](out, quick=quick, progress=progress)


def run_all(out: str | Path, quick: bool = False,
            progress: bool | None = None) -> list[DemoResult]:
    """Run every demo, each into ``out/<name>/``, and write ``out/summary.md`` of them all."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    show = sys.stderr.isatty() if progress is None else bool(progress)
    results = []
    from tqdm.auto import tqdm

    with tqdm(total=len(DEMOS), desc="eulerflow demo all", unit="demo", disable=not show) as bar:
        for name in DEMOS:
            bar.set_postfix_str(name)  # which experiment runs
            results.append(run(name, out / name, quick=quick, progress=progress))
            bar.update(1)
    total = sum(r.seconds for r in results)
    parts = [
        "# eulerflow demos",
        "",
        "| demo | seed | reproduced | what eulerflow adds | wall time (s) | folder |",
        "|---|---|---|---|---|---|",
        *(f"| `{r.name}` | {SEED_LINES[r.name][0]} | {SEED_LINES[r.name][1]} | "
          f"{SEED_LINES[r.name][2]} | {r.seconds:.2f} | `{r.name}/` |" for r in results),
        "",
        f"Total: {total:.2f} s{' (quick mode)' if quick else ''}.",
        "",
    ]
    for r in results:
        parts += [_demote(r.markdown), ""]
    (out / "summary.md").write_text("\n".join(parts), encoding="utf-8")
    return results


def _demote(markdown: str) -> str:
    """Shift every heading one level down, to nest a demo's summary in the combined one."""
    return "\n".join("#" + line if line.startswith("#") else line
                     for line in markdown.splitlines())
