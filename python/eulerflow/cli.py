"""Command line: ``eulerflow demo NAME --out DIR [--quick]`` (also ``python -m eulerflow``).

``NAME`` is one of the demos of :mod:`eulerflow.demos` or ``all``. Each demo writes its
PNG figures and a ``summary.md`` (final losses, accuracies, timings) into ``DIR``;
``all`` writes each demo into ``DIR/<name>/`` and a combined ``DIR/summary.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from eulerflow.demos import DEMOS

    parser = argparse.ArgumentParser(
        prog="eulerflow",
        description="eulerflow: neural networks as dynamical systems.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="reproduce a seed experiment: figures and summary.md",
        description="Reproduce seed experiments; write PNG figures and summary.md into --out.",
    )
    demo.add_argument(
        "name",
        choices=[*DEMOS, "all"],
        help="which demo: " + ", ".join(DEMOS) + ", or all of them",
    )
    demo.add_argument("--out", required=True, type=Path, metavar="DIR",
                      help="output directory (created if missing)")
    demo.add_argument("--quick", action="store_true",
                      help="fewer epochs and coarser maps (about half a minute for all demos)")
    bar = demo.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show progress bars (default: only on a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        if "matplotlib.pyplot" not in sys.modules:  # files only; keep a caller's backend
            import matplotlib

            matplotlib.use("Agg")
        from eulerflow import demos

        if args.name == "all":
            results = demos.run_all(args.out, quick=args.quick, progress=args.progress)
            summary = args.out / "summary.md"
        else:
            results = [demos.run(args.name, args.out, quick=args.quick, progress=args.progress)]
            summary = args.out / "summary.md"
        for r in results:
            shown = ", ".join(
                f"{key}={value:.4g}" for key, value in r.numbers.items() if "_[" not in key
            )
            print(f"{r.name}: {r.seconds:.2f} s, {len(r.figures)} figures; {shown}")
        print(f"summary: {summary}")
    return 0
