"""Seed 004: spiral classification with an atan MLP, its class map, and depth.

Trains ``ef.mlp([2, 15, 3], "atan")`` on ``ef.data.spiral_classes(100, 3, 0.2)`` by
full-batch gradient descent on the cross-entropy, draws the class-probability map, then
trains D = [2,15,3], [2,15,15,3], [2,8,8,8,3], [2,4,5,8,4,3] the same way to show the
influence of the number of layers. The experiment itself lives in
``eulerflow.demos.run_classify`` (also ``eulerflow demo classify``).

    python examples/seed004_spiral_classification.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only

from eulerflow import demos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/seed004_spiral_classification"),
                        help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="fewer epochs, coarser maps")
    args = parser.parse_args()

    result = demos.run_classify(args.out, quick=args.quick)
    n = result.numbers
    print(f"mlp [2,15,3] atan, {int(n['epochs'])} epochs of full-batch SGD: "
          f"final loss {n['final_loss']:.4g}, accuracy {100 * n['accuracy']:.1f}%, "
          f"{n['train_seconds']:.3f} s")
    for sizes in demos.DEPTHS:
        label = "[" + ",".join(map(str, sizes)) + "]"
        print(f"  D = {label:15s} final loss {n[f'final_loss_{label}']:.4g}, "
              f"accuracy {100 * n[f'accuracy_{label}']:.1f}%")
    print(f"figures and summary.md in {args.out} ({result.seconds:.1f} s)")


if __name__ == "__main__":
    main()
