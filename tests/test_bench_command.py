"""`eulerflow bench`: runs benchmarks/run.py of the checkout and writes the markdown table
with the fraction of the machine's peak."""

import re
import subprocess
import sys
from pathlib import Path

from eulerflow import cli

ROOT = Path(__file__).resolve().parents[1]  # an installed (non-editable) package finds the
# checkout's benchmarks/ from the working directory


def test_the_runner_is_found_in_the_checkout(monkeypatch):
    monkeypatch.chdir(ROOT)
    runner = cli._benchmarks_runner()
    assert runner is not None and runner.name == "run.py" and runner.parent.name == "benchmarks"


def test_bench_writes_ratios_and_the_fraction_of_peak(tmp_path):
    md = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "eulerflow", "bench", "w4", "--quiet", "--markdown", str(md),
         "--", "--iters", "50", "--repeats", "1", "--impl", "eulerflow", "numpy_seed"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = md.read_text()
    peak = float(re.search(r"peak ([0-9.]+) GFLOP/s", text).group(1))
    assert peak > 0
    from eulerflow import _core  # the header names the kernel variant the workloads ran

    assert f"eulerflow kernels: {_core.isa_selected()}." in text
    row = next(line for line in text.splitlines()
               if line.startswith("| w4_spiral_classify | eulerflow |"))
    cells = [c.strip() for c in row.split("|")]
    gflops, share = float(cells[4]), float(cells[5].rstrip("%"))
    assert abs(share - 100 * gflops / peak) < 0.1  # the column is what it says
    assert "w4_spiral_classify: eulerflow >= 10x faster than numpy_seed" in text
