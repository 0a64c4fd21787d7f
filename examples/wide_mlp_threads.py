"""A wide MLP (W6: 784-1024-1024-10, tanh, batch 256) on 1, 2, ... threads, float64 and float32.

Trains the same network for a few SGD steps with every thread count from 1 to the CPUs
this process may use, checks that every count gives the same bits (weights and losses),
and reports the time per step beside NumPy's (OpenBLAS, whatever threads it uses) for the
same forward, backward and update written by hand. Writes ``summary.md`` and, when
matplotlib is installed, ``wide_mlp_threads.png`` (time per step against threads).

    python examples/wide_mlp_threads.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import eulerflow as ef
import numpy as np

SIZES = (784, 1024, 1024, 10)
BATCH, LR = 256, 0.01


def numpy_step(params, X, y):
    """One SGD step of the same network and loss in NumPy: tanh hidden layers, softmax
    cross-entropy averaged over the batch."""
    hs, h = [X], X
    for k in range(0, len(params) - 2, 2):
        h = np.tanh(h @ params[k].T + params[k + 1])
        hs.append(h)
    z = h @ params[-2].T + params[-1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = p
    g[np.arange(len(y)), y] -= 1.0
    g /= len(y)
    for k in range(len(params) - 2, -1, -2):
        gW, gb = g.T @ hs[k // 2], g.sum(axis=0)
        if k > 0:
            g = (g @ params[k]) * (1.0 - hs[k // 2] ** 2)
        params[k] -= LR * gW
        params[k + 1] -= LR * gb


def median_time(run, repeats):
    run()  # warm-up: buffers sized, threads started
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/wide_mlp_threads"))
    ap.add_argument("--quick", action="store_true", help="a narrower net, fewer repeats")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = (784, 256, 256, 10) if args.quick else SIZES
    steps, repeats = (2, 3) if args.quick else (3, 5)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    counts = list(range(1, max(1, cpus) + 1))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((BATCH, sizes[0]))
    y = rng.integers(0, sizes[-1], BATCH)

    lines = [f"# Wide MLP {'-'.join(map(str, sizes))}, batch {BATCH}, {steps} SGD steps per "
             f"timing, {cpus} CPU(s)", "",
             "| dtype | threads | ms per step | NumPy ms per step | same bits as 1 thread |",
             "|---|---|---|---|---|"]
    timings = {}
    old = ef.get_num_threads()
    try:
        for dtype in (np.float64, np.float32):
            Xd = X.astype(dtype)
            params = [p.copy() for p in ef.mlp(list(sizes), "tanh", seed=0, dtype=dtype)
                      .parameters()]
            numpy_ms = 1e3 * median_time(lambda params=params, Xd=Xd: [
                numpy_step(params, Xd, y) for _ in range(steps)], repeats) / steps
            reference = None
            for n in counts:
                ef.set_num_threads(n)
                net = ef.mlp(list(sizes), "tanh", seed=0, dtype=dtype)
                hist = net.fit(Xd, y, loss="cross_entropy", optimizer=ef.optim.SGD(LR),
                               epochs=steps, batch_size=BATCH, shuffle=False)
                result = [p.copy() for p in net.parameters()] + [np.asarray(hist.loss)]
                if reference is None:
                    reference = result
                same = all(np.array_equal(a.view(np.uint8), b.view(np.uint8))
                           for a, b in zip(result, reference, strict=True))
                if not same:
                    raise SystemExit(f"{np.dtype(dtype).name}: {n} threads changed the bits")
                ms = 1e3 * median_time(lambda net=net, Xd=Xd: net.fit(
                    Xd, y, loss="cross_entropy", optimizer=ef.optim.SGD(LR), epochs=steps,
                    batch_size=BATCH, shuffle=False), repeats) / steps
                timings[(np.dtype(dtype).name, n)] = ms
                lines.append(f"| {np.dtype(dtype).name} | {n} | {ms:.2f} | {numpy_ms:.2f} | "
                             f"{'yes' if same else 'NO'} |")
                print(lines[-1])
            timings[(np.dtype(dtype).name, "numpy")] = numpy_ms
    finally:
        ef.set_num_threads(old)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for name, marker in (("float64", "o"), ("float32", "s")):
        ax.plot(counts, [timings[(name, n)] for n in counts], marker=marker,
                label=f"eulerflow {name}")
        ax.axhline(timings[(name, "numpy")], ls="--", color="grey" if name == "float64" else "k",
                   label=f"NumPy/OpenBLAS {name} (its default threads)")
    ax.set_xticks(counts)
    ax.set_xlabel("threads (ef.set_num_threads)")
    ax.set_ylabel("ms per SGD step")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Wide MLP {'-'.join(map(str, sizes))}, batch {BATCH}\n"
                 "time per SGD step (the same bits on every thread count)")
    ax.legend(fontsize=7, loc="upper right")
    fig.savefig(args.out / "wide_mlp_threads.png", dpi=120)
    print(f"wrote {args.out / 'wide_mlp_threads.png'} and {args.out / 'summary.md'}")


if __name__ == "__main__":
    main()
