"""Seed 001: layers from scratch, online learning (NNBench) and XOR.

A 2-2-1 tanh network fits XOR; one ``ef.Dense(2, 2)`` learns the swap map
``v -> (v1, v0)`` online, one SGD step per fact with ``layer.learn(facts, lr)``, at
three learning rates; the per-fact losses are drawn raw and low-pass on a log scale,
and the learned weights as an image (bias as an extra row). The experiment itself lives
in ``eulerflow.demos.run_xor`` (also ``eulerflow demo xor``).

    python examples/seed001_layers.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only

from eulerflow import demos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/seed001_layers"),
                        help="output directory (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    args = parser.parse_args()

    result = demos.run_xor(args.out, quick=args.quick)
    n = result.numbers
    print(f"XOR, mlp [2,2,1] tanh: final loss {n['xor_final_loss']:.3g}, "
          f"largest output error {n['xor_max_abs_error']:.2g}, {n['xor_train_seconds']:.4f} s")
    print(f"swap learned online by Dense(2, 2), lr=0.1: last fact loss "
          f"{n['swap_last_fact_loss']:.3g}, max |W - swap| {n['swap_weight_error']:.2g}")
    for key, value in n.items():
        if key.startswith("swap_learning_potential_lr"):
            print(f"  learning potential -ln(loss of fact 100) at lr={key[26:]}: {value:.1f}")
    print(f"figures and summary.md in {args.out} ({result.seconds:.1f} s)")


if __name__ == "__main__":
    main()
