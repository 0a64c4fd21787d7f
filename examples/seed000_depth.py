"""Seed 000: deep narrow networks on the projectile, and depth as time made to work.

Trains the seed's networks on ``ef.data.projectile(100_000, seed=0)`` (inputs the
initial state and a time t in [0, 1), targets the scaled position at t): Dense(7, 3) +
ELU, then 0, 4 or 39 more Dense(3, 3) + ELU layers, stacked plain, as residual averages
(f(x) + x)/2 or as residual sums x + f(x), with and without the seed's Keras penalties
(L2: bias 1e-4, activity 1e-5; L1: bias 1e-7, activity 1e-8), Nadam, batch 200, float64.
It draws the seed's figure (the state after each layer for one input, against the
trajectory) and the extrapolation to t in [0, 2].

Then what the seed attempted: ``ef.ResidualFlow(f, L)``, L residual blocks
x <- x + f(x)/L sharing one field f, is explicit Euler on dx/dt = f(x). Trained to map
the projectile's state at t = 0 to t = 1, its hidden states follow the trajectory, the
distance between them and the ODE flow of f falls like 1/L (log-log slope -1), and the
field transfers: integrated by rk4 it predicts t = 2. The experiment itself lives in
``eulerflow.demos.run_depth`` (also ``eulerflow demo depth``).

    python examples/seed000_depth.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only

from eulerflow import demos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/seed000_depth"),
                        help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="10,000 samples and a few epochs (seconds)")
    args = parser.parse_args()

    result = demos.run_depth(args.out, quick=args.quick)
    n = result.numbers
    print("final training loss (mse + penalties) of the seed's nets:")
    print(f"  {'layers':>6}  {'form':<8}" + "".join(f"{p:>11}" for p in demos.SEED_PENALTIES))
    for L in demos.SEED_DEPTHS:
        for form in demos.SEED_FORMS if L > 1 else ("plain",):
            cells = "".join(
                f"{n[f'seed_loss_[L{L}_{form}_{p}]']:>11.3e}" if L > 1 or p == "none"
                else f"{'':>11}" for p in demos.SEED_PENALTIES)
            print(f"  {L:>6}  {form:<8}{cells}")
    print(f"ResidualFlow: distance of the hidden path to the ODE flow of its field falls "
          f"with slope {n['slope_path_to_flow_vs_depth']:.3f} in L (Euler: -1)")
    print(f"the learned field's flow approaches the true trajectory with slope "
          f"{n['slope_field_bias_vs_training_depth']:.2f} in the training depth")
    print(f"extrapolation to t in (1, 2]: mse {n['flow_extrapolation_mse']:.1e} for the "
          f"field by rk4, {n['best_seed_extrapolation_mse']:.1e} for the best seed net")
    print(f"figures and summary.md in {args.out} ({result.seconds:.1f} s)")


if __name__ == "__main__":
    main()
