"""Seed 000: Euler's method on a projectile, and the convergence orders of RK methods.

Integrates the seed's projectile (gravity -9.8 along the height x, wind 0.1 along y,
drift 0.1 along z, from (0, 0, 0) at v = (5, 0, 0.1)) with explicit Euler steps
h = 0.1, 0.01, 0.001 (``ef.data.projectile_euler``), draws them in 3-D against the
analytic trajectory together with the seed's own hand-written update (which is the
semi-implicit Euler method), then measures the end-point error at t = 1 against h for
euler, midpoint and rk4 on the projectile (exact for midpoint and rk4: the solution is
quadratic in t), on seed 002's linear spiral and on the Lorenz system, where the
fitted slopes show the orders 1, 2, 4. The experiment itself lives in
``eulerflow.demos.run_euler`` (also ``eulerflow demo euler``).

    python examples/seed000_euler.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only

from eulerflow import demos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/seed000_euler"),
                        help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="a shorter range of Lorenz step sizes")
    args = parser.parse_args()

    result = demos.run_euler(args.out, quick=args.quick)
    n = result.numbers
    for h in demos.EULER_STEPS:
        print(f"h = {h:<6g} explicit Euler error at t = 1: {n[f'euler_error_h{h:g}']:.3e}, "
              f"seed's update: {n[f'seed_update_error_h{h:g}']:.3e}")
    print(f"projectile: Euler slope {n['slope_projectile_euler']:.3f}; midpoint and rk4 exact "
          f"to rounding (largest error {n['projectile_max_error_midpoint_rk4']:.1e})")
    for problem in ("spiral", "lorenz"):
        slopes = ", ".join(f"{m} {n[f'slope_{problem}_{m}']:.2f}"
                           for m in demos.CONVERGENCE_METHODS)
        print(f"{problem}: fitted slopes {slopes} (orders 1, 2, 4)")
    print(f"figures and summary.md in {args.out} ({result.seconds:.1f} s)")


if __name__ == "__main__":
    main()
