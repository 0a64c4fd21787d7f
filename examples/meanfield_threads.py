"""Seed 003's mean-field student on 1, 2, ... threads: time per SGD step against the width.

Trains the student (d = 2, batch 20, ``fit_teacher`` without snapshots) of every width
from 20 to 20,000 particles on every thread count from 1 to the CPUs this process may
use, checks that every count gives the same bits, and reports the median time per step.
Each step's particles are summed in fixed chunks of 512 which the threads take in turn,
so one chunk (m <= 512) runs on one thread. Writes ``summary.md`` and, when matplotlib is
installed, ``meanfield_threads.png``. The same study runs in ``eulerflow demo meanfield``.

    python examples/meanfield_threads.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eulerflow import demos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/meanfield_threads"))
    ap.add_argument("--quick", action="store_true", help="fewer widths, shorter timings")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    widths = demos.MEANFIELD_THREAD_WIDTHS_QUICK if args.quick else demos.MEANFIELD_THREAD_WIDTHS
    result = demos.meanfield_threads(widths, repeats=3 if args.quick else 5,
                                     work=5e5 if args.quick else 2e6)
    counts = result["counts"]
    lines = [f"# Mean-field student, d = 2, batch 20, on 1 to {counts[-1]} threads", "",
             "| m | " + " | ".join(f"us/step, {n} thread(s)" for n in counts)
             + " | same bits |",
             "|---|" + "---|" * len(counts) + "---|"]
    for j, m in enumerate(result["widths"]):
        lines.append(f"| {m} | " + " | ".join(f"{result['us'][n][j]:.2f}" for n in counts)
                     + " | yes |")
        print(lines[-1])
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        print("matplotlib not installed: no figure")
        return
    fig = demos.meanfield_threads_figure(result)
    fig.savefig(args.out / "meanfield_threads.png", dpi=120)
    print(f"wrote {args.out / 'meanfield_threads.png'} and {args.out / 'summary.md'}")


if __name__ == "__main__":
    main()
