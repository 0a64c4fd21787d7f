"""Compare two benchmark result files, workload by workload, to check a change.

    python benchmarks/run.py --jsonl before.jsonl          # on the old commit
    python benchmarks/run.py --jsonl after.jsonl           # on the new one
    python benchmarks/compare.py before.jsonl after.jsonl  # the ratio per workload

For every (workload, implementation) found in both files it prints the seconds per unit
before and after and their ratio (before / after: above 1 the new run is faster), with the
quality figures side by side so that a speed-up bought with accuracy shows. Two runs on a
shared machine differ by noise; the within-run figure is steadier: for each workload it also
prints eulerflow's speed-up over each peer in either file (peer seconds / eulerflow seconds
in the same run), which does not move when the whole machine is slower.

``--threshold 1.10`` (the default) marks an eulerflow row "SLOWER" when it takes more than
10% longer after than before; ``--fail`` then exits with status 1, for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REFERENCE = "eulerflow"


def load(path: Path) -> dict[tuple[str, str], dict]:
    """The records of a JSON-lines file, keyed by (workload, impl); later lines win."""
    if not path.is_file():
        raise SystemExit(f"compare.py: no such file {path}")
    records = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            records[(r["workload"], r["impl"])] = r
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SystemExit(
                f"compare.py: {path}:{number} is not a benchmark record ({exc})") from None
    return records


def _is_reference(impl: str) -> bool:
    """eulerflow's own rows (eulerflow, eulerflow_2threads, ...) as opposed to peers."""
    return impl == REFERENCE or impl.startswith(REFERENCE + "_")


def _seconds(r: dict | None) -> float | None:
    return r["seconds"] if r and r.get("seconds") else None


def _quality(r: dict | None) -> str:
    if not r or not r.get("quality"):
        return "-"
    parts = []
    for key, value in r["quality"].items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        elif isinstance(value, (int, str, bool)):
            parts.append(f"{key}={value}")
    return ", ".join(parts[:3]) or "-"


def _time(s: float | None) -> str:
    if s is None:
        return "-"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def change_table(before: dict, after: dict, threshold: float) -> tuple[str, list[str]]:
    """Markdown rows of every pair present in both runs; the eulerflow rows slower than
    ``threshold`` times their old time are returned as regressions."""
    rows = ["| workload | impl | before | after | before / after | quality before | "
            "quality after |", "|---|---|---|---|---|---|---|"]
    slower = []
    for key in sorted(set(before) & set(after)):
        old, new = _seconds(before[key]), _seconds(after[key])
        ratio = old / new if old and new else None
        mark = ""
        if ratio is not None and _is_reference(key[1]) and 1.0 / ratio > threshold:
            mark = " SLOWER"
            slower.append(f"{key[0]} {key[1]}: {1.0 / ratio:.2f}x the old time")
        shown = "-" if ratio is None else f"{ratio:.2f}x{mark}"
        rows.append(f"| {key[0]} | {key[1]} | {_time(old)} | {_time(new)} | {shown} | "
                    f"{_quality(before[key])} | {_quality(after[key])} |")
    return "\n".join(rows), slower


def speedup_table(before: dict, after: dict) -> str:
    """eulerflow's speed-up over each peer within each run, side by side."""
    rows = ["| workload | peer | eulerflow speed-up before | after |", "|---|---|---|---|"]
    workloads = sorted({w for w, _ in before} | {w for w, _ in after})
    for workload in workloads:
        peers = sorted({i for w, i in (*before, *after) if w == workload and not _is_reference(i)})
        for peer in peers:
            cells = []
            for run in (before, after):
                ref = _seconds(run.get((workload, REFERENCE)))
                other = _seconds(run.get((workload, peer)))
                cells.append(f"{other / ref:.2f}x" if ref and other else "-")
            if cells != ["-", "-"]:
                rows.append(f"| {workload} | {peer} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path, help="JSON lines of the old run (run.py --jsonl)")
    ap.add_argument("after", type=Path, help="JSON lines of the new run")
    ap.add_argument("--threshold", type=float, default=1.10,
                    help="mark eulerflow rows taking more than this times the old time")
    ap.add_argument("--fail", action="store_true", help="exit 1 when a row is marked")
    args = ap.parse_args(argv)
    if not args.threshold >= 1.0:
        ap.error(f"--threshold must be at least 1.0, got {args.threshold}")
    before, after = load(args.before), load(args.after)
    common = set(before) & set(after)
    if not common:
        print(f"no (workload, impl) pair is in both {args.before} and {args.after}")
        return 1
    table, slower = change_table(before, after, args.threshold)
    print(f"{len(common)} (workload, impl) pairs in both runs; before / after > 1: faster now.\n")
    print(table)
    print("\nWithin each run (steadier across machines and load):\n")
    print(speedup_table(before, after))
    only = sorted(set(before) ^ set(after))
    if only:
        print("\nIn one run only: " + ", ".join(f"{w} {i}" for w, i in only))
    if slower:
        print(f"\n{len(slower)} eulerflow row(s) slower than {args.threshold}x the old time: "
              + "; ".join(slower))
    return 1 if slower and args.fail else 0


if __name__ == "__main__":
    sys.exit(main())
