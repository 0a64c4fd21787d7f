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
  projectile, the linear spiral and the Lorenz system.

Matplotlib is imported only when figures are drawn (through :mod:`eulerflow.plot`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import eulerflow as ef
from eulerflow import data

__all__ = [
    "CONVERGENCE_METHODS",
    "DEMOS",
    "DEPTHS",
    "EULER_STEPS",
    "DemoResult",
    "Trained",
    "end_point_errors",
    "fit_mask",
    "online_learning",
    "run",
    "run_all",
    "run_classify",
    "run_euler",
    "run_xor",
    "seed_projectile_update",
    "swap_facts",
    "train_classifier",
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


#: Every demo by name, in the order ``eulerflow demo all`` runs them.
DEMOS: dict[str, Callable[..., DemoResult]] = {
    "classify": run_classify,
    "xor": run_xor,
    "euler": run_euler,
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
    results = [run(name, out / name, quick=quick, progress=progress) for name in DEMOS]
    total = sum(r.seconds for r in results)
    parts = [
        "# eulerflow demos",
        "",
        "| demo | what | wall time (s) | folder |",
        "|---|---|---|---|",
        *(f"| `{r.name}` | {r.title} | {r.seconds:.2f} | `{r.name}/` |" for r in results),
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
