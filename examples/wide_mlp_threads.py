"""A wide MLP (W6: 784-1024-1024-10, tanh, batch 256) on 1, 2, ... threads, float64 and float32.

Then W2's narrow residual tower trained full-batch on 100,000 samples, whose layers split
their samples across the threads.

Trains the same network for a few SGD steps with every thread count from 1 to the CPUs
this process may use, checks that every count gives the same bits (weights and losses),
and reports the time per step beside NumPy's (OpenBLAS, whatever threads it uses) for the
same forward, backward and update written by hand. Writes ``summary.md`` and, when
matplotlib is installed, ``wide_mlp_threads.png`` (time per step against threads). The
same study runs in ``eulerflow demo bench`` (``bench_threads.png``).

    python examples/wide_mlp_threads.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eulerflow import demos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/wide_mlp_threads"))
    ap.add_argument("--quick", action="store_true", help="a narrower net, fewer repeats")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = demos.WIDE_SIZES_QUICK if args.quick else demos.WIDE_SIZES
    steps, repeats = (2, 3) if args.quick else (3, 5)
    result = demos.wide_mlp_threads(sizes, steps=steps, repeats=repeats)
    lines = [f"# Wide MLP {'-'.join(map(str, sizes))}, batch {demos.WIDE_BATCH}, {steps} SGD "
             f"steps per timing, {result['counts'][-1]} CPU(s)", "",
             "| dtype | threads | ms per step | NumPy ms per step | same bits as 1 thread |",
             "|---|---|---|---|---|"]
    for name in ("float64", "float32"):
        for n, ms in zip(result["counts"], result["ms"][name], strict=True):
            lines.append(f"| {name} | {n} | {ms:.2f} | {result['numpy_ms'][name]:.2f} | yes |")
            print(lines[-1])
    tower = demos.tower_threads(50_000 if args.quick else 100_000, steps=2 if args.quick else 3,
                                repeats=repeats)
    lines += ["", f"W2's residual tower, full batch of {tower['n']:,} samples (narrow layers, "
              "samples split across threads; the same bits on every count):", "",
              "| threads | ms per step |", "|---|---|"]
    for n, ms in zip(tower["counts"], tower["ms"], strict=True):
        lines.append(f"| {n} | {ms:.2f} |")
        print(f"tower, {n} thread(s): {ms:.2f} ms per step")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        print("matplotlib not installed: no figure")
        return
    fig = demos.wide_mlp_threads_figure(result, sizes, tower)
    fig.savefig(args.out / "wide_mlp_threads.png", dpi=120)
    print(f"wrote {args.out / 'wide_mlp_threads.png'} and {args.out / 'summary.md'}")


if __name__ == "__main__":
    main()
