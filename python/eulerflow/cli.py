"""Command line: ``eulerflow demo NAME --out DIR [--quick]`` (also ``python -m eulerflow``)
, ``eulerflow bench [WORKLOAD ...] [--markdown FILE]`` and ``eulerflow config``.

``NAME`` is one of the demos of :mod:`eulerflow.demos` or ``all``. Each demo writes its
PNG figures and a ``summary.md`` (final losses, accuracies, timings) into ``DIR``;
``all`` writes each demo into ``DIR/<name>/`` and a combined ``DIR/summary.md``.
``bench`` runs ``benchmarks/run.py`` of a source checkout (the benchmarks and their
peers are not part of the installed package): the workloads of BENCHMARKS.md against
every installed peer, a markdown table of ratios and the fraction of peak flops.
``config`` prints :func:`eulerflow.show_config`: the build, the CPU and the kernel variant.
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
    bench = commands.add_parser(
        "bench",
        help="run the benchmarks (from a source checkout): ratios against the peers",
        description="Run benchmarks/run.py of the source checkout; arguments go to it "
                    "(workload prefixes, --markdown FILE, --jsonl FILE, -- WORKLOAD-ARGS).",
    )
    bench.add_argument("args", nargs=argparse.REMAINDER, help="arguments for benchmarks/run.py")
    commands.add_parser(
        "config",
        help="show the build, the CPU and the kernel variant that runs",
        description="Print eulerflow.show_config(): version, compiler and flags, CPU "
                    "features, the selected kernel variant (EULERFLOW_ISA forces a lower "
                    "one), threads, dtypes.",
    )
    return parser


def _benchmarks_runner() -> Path | None:
    """benchmarks/run.py of the checkout this package runs from, or of the working directory."""
    here = Path(__file__).resolve()
    for root in (*here.parents, Path.cwd()):
        candidate = root / "benchmarks" / "run.py"
        if candidate.is_file():
            return candidate
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "config":
        from eulerflow import show_config

        show_config()
        return 0
    if args.command == "bench":
        import subprocess

        runner = _benchmarks_runner()
        if runner is None:
            print("eulerflow bench runs benchmarks/run.py of a source checkout, and none was "
                  "found (installed from a wheel?): clone the repository and run it there",
                  file=sys.stderr)
            return 2
        return subprocess.call([sys.executable, str(runner), *args.args])
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
