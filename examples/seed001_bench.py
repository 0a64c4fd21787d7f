"""Seed 001's learning bench done right, and what eulerflow adds to it.

``ef.bench.LearningBench`` trains one ``Dense(2, 2)`` on the swap map online and sweeps
the learning rate, with the stability limit 2/lambda_max of gradient descent (Euler's
method on the gradient flow) from the Hessian's top eigenvalue; the knobs plot is saved
as a picture; ``ef.landscape.scan_2d`` draws the loss around the trained spiral
classifier of seed 004; ``ef.Ensemble`` trains seed 002's LinearODE at many learning
rates in one native call; ``ef.sweep`` runs seed 003's radius x width grid on the local
cores, in chunks of one radius each, every chunk an ``ef.Ensemble`` of its widths trained in
one native call (``demos._sweep_chunk``): ensembles spread over processes, or over a Dask
cluster with ``backend="dask"``. The experiment itself lives in ``eulerflow.demos.run_bench`` (also
``eulerflow demo bench``).

    python examples/seed001_bench.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only

from eulerflow import demos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/seed001_bench"),
                        help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="smaller grids, fewer epochs")
    args = parser.parse_args()

    result = demos.run_bench(args.out, quick=args.quick)
    n = result.numbers
    print(f"lambda_max = {n['lambda_max']:.4g}: gradient descent stable below "
          f"lr = {n['stability_lr']:.4g}; best online lr {n['best_lr']:.3g}")
    print(f"2-D landscape: {n['landscape_points']:.0f} points in {n['landscape_seconds']:.3f} s")
    print(f"ensemble of {n['ensemble_members']:.0f} LinearODEs: "
          f"{n['ensemble_us_per_member_epoch']:.2f} us per member-epoch (one separate fit: "
          f"{n['separate_us_per_epoch']:.1f} us per epoch), {n['ensemble_diverged']:.0f} diverged")
    print(f"sweep: {n['sweep_points']:.0f} mean-field trainings in {n['sweep_seconds']:.2f} s")
    print(f"figures and summary.md in {args.out} ({result.seconds:.1f} s)")


if __name__ == "__main__":
    main()
