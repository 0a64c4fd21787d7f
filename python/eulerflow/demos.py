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
    "DEMOS",
    "DEPTHS",
    "DemoResult",
    "Trained",
    "online_learning",
    "run",
    "run_all",
    "run_classify",
    "run_xor",
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


#: Every demo by name, in the order ``eulerflow demo all`` runs them.
DEMOS: dict[str, Callable[..., DemoResult]] = {
    "classify": run_classify,
    "xor": run_xor,
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
