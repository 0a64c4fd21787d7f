"""Seed 003: mean-field particles of a two-layer ReLU network learning a teacher.

A teacher ``f*(x) = mean_k a_k relu(w_k . x + b_k)`` of M = 4 neurons in the plane
(``(w_k, b_k)`` on the unit sphere, seed 54: the seed's ``np.random.seed(134)`` drew from
NumPy's legacy global generator, which cannot be reproduced) is learned by a student of
m = 20 particles started on a sphere of radius 0.05, by SGD on fresh Gaussian samples
(batch 20) at the seed's lr = 0.5 and at lr = 5. The particles ``a_j w_j`` are drawn in
the plane with their trajectories as fading traces and the teacher's directions as rays
(the seed's ``display_weights``), animated as a GIF, with the test loss on a log scale.
Then the seed's open questions: the final test loss over the initial radius
{0.01, 0.05, 0.2, 1} x the number of units {4, 20, 100, 1000} at lr = 0.25 m (the same
mean-field time for every m), for teachers of M = 2, 4, 8 neurons, each grid trained as one
``ef.Ensemble`` (every cell a member, widths mixed, one native call on all the cores, each
cell bit-identical to its own ``fit_teacher``). The experiment itself
lives in ``eulerflow.demos.run_meanfield`` (also ``eulerflow demo meanfield``).

    python examples/seed003_meanfield.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only

from eulerflow import demos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/seed003_meanfield"),
                        help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer steps, one teacher seed per size, a shorter GIF")
    args = parser.parse_args()

    result = demos.run_meanfield(args.out, quick=args.quick)
    n = result.numbers
    print(f"teacher M=4 (seed {demos.MEANFIELD_TEACHER_SEED}), zero function's test loss "
          f"{n['zero_function_loss']:.3g}")
    for lr in (0.5, 5):
        print(f"m=20, radius 0.05, lr={lr:<3g}: final test loss "
              f"{n[f'final_test_loss_lr{lr:g}']:.2e}, first below 1e-3 at step "
              f"{n[f'steps_to_1e-3_lr{lr:g}']:.0f}, output weight near the teacher's "
              f"neurons {100 * n[f'mass_near_teacher_lr{lr:g}']:.0f}%")
    widths = ", ".join(f"m={w}: {n[f'relative_loss_m{w}']:.2g}" for w in demos.MEANFIELD_WIDTHS)
    radii = ", ".join(f"r={r:g}: {n[f'relative_loss_r{r:g}']:.2g} "
                      f"({100 * n[f'near_teacher_r{r:g}']:.0f}% near the teacher)"
                      for r in demos.MEANFIELD_RADII)
    sizes = ", ".join(f"M={k}: {n[f'relative_loss_M{k}']:.2g}"
                      for k in demos.MEANFIELD_TEACHER_SIZES)
    print(f"final / zero-function test loss by width: {widths}")
    print(f"by initial radius (m >= 20): {radii}")
    print(f"by teacher size (m >= 20): {sizes}")
    print(f"figures, GIF and summary.md in {args.out} ({result.seconds:.1f} s)")


if __name__ == "__main__":
    main()
