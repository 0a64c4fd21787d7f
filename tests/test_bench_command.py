"""`eulerflow bench`: runs benchmarks/run.py of the checkout and writes the markdown table
with the fraction of the machine's peak."""

import json
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


def _half_unit(printed: str) -> float:
    """Half a unit in the last printed decimal place of a number."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return 0.5 * 10.0 ** -decimals


def test_bench_writes_ratios_and_the_fraction_of_peak(tmp_path):
    md = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "eulerflow", "bench", "w4", "--quiet", "--markdown", str(md),
         "--", "--iters", "50", "--repeats", "1", "--impl", "eulerflow", "numpy_seed"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = md.read_text()
    peak_text = re.search(r"peak ([0-9.]+) GFLOP/s", text).group(1)
    peak = float(peak_text)
    assert peak > 0
    from eulerflow import _core  # the header names the kernel variant the workloads ran

    assert f"eulerflow kernels: {_core.isa_selected()}." in text
    row = next(line for line in text.splitlines()
               if line.startswith("| w4_spiral_classify | eulerflow |"))
    cells = [c.strip() for c in row.split("|")]
    gflops, share = float(cells[4]), float(cells[5].rstrip("%"))
    # the column is what it says, to the rounding of the three printed figures (a low
    # peak on a loaded machine magnifies the rounding of the GFLOP/s and of the peak)
    dg, dp, ds = (_half_unit(x) for x in (cells[4], peak_text, cells[5].rstrip("%")))
    bound = 100 * (dg / (peak - dp) + (gflops + dg) * dp / (peak * (peak - dp))) + ds
    assert abs(share - 100 * gflops / peak) <= bound * (1 + 1e-9)
    assert "w4_spiral_classify: eulerflow >= 10x faster than numpy_seed" in text


def _write_run(path, seconds_by_impl, loss=0.5):
    lines = [json.dumps({"workload": "w4_spiral_classify", "impl": impl, "seconds": s,
                         "units": "iteration", "quality": {"loss": loss}, "notes": ""})
             for impl, s in seconds_by_impl.items()]
    path.write_text("\n".join(lines) + "\n")


def _compare(*args):
    script = ROOT / "benchmarks" / "compare.py"
    return subprocess.run([sys.executable, str(script), *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_compare_prints_the_ratio_per_workload_and_the_within_run_speedups(tmp_path):
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    _write_run(before, {"eulerflow": 4e-6, "jax_jit": 8e-6})
    _write_run(after, {"eulerflow": 2e-6, "jax_jit": 10e-6}, loss=0.25)
    proc = _compare(before, after)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines()
               if line.startswith("| w4_spiral_classify | eulerflow |"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[3:6] == ["4 us", "2 us", "2.00x"]
    assert cells[6:8] == ["loss=0.5", "loss=0.25"]
    peer = next(line for line in proc.stdout.splitlines()
                if line.startswith("| w4_spiral_classify | jax_jit | 2.00x"))
    assert peer.split("|")[4].strip() == "5.00x"  # 10 us / 2 us in the second run


def test_compare_marks_and_fails_on_a_slower_eulerflow(tmp_path):
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    _write_run(before, {"eulerflow": 1e-3, "numpy_seed": 1e-2})
    _write_run(after, {"eulerflow": 1.25e-3, "numpy_seed": 1e-2})
    assert _compare(before, after).returncode == 0       # reported, not failed by default
    proc = _compare(before, after, "--fail")
    assert proc.returncode == 1 and "SLOWER" in proc.stdout and "1.25x the old time" in proc.stdout
    assert _compare(before, after, "--fail", "--threshold", "1.3").returncode == 0
    peer_slower = tmp_path / "peer.jsonl"  # only eulerflow's own rows count as regressions
    _write_run(peer_slower, {"eulerflow": 1e-3, "numpy_seed": 2e-2})
    assert _compare(before, peer_slower, "--fail").returncode == 0


def test_compare_refuses_files_that_are_not_results(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{\"no\": 1}\n")
    good = tmp_path / "good.jsonl"
    _write_run(good, {"eulerflow": 1.0})
    proc = _compare(good, bad)
    assert proc.returncode != 0 and "bad.jsonl:1 is not a benchmark record" in proc.stderr
    proc = _compare(good, tmp_path / "missing.jsonl")
    assert proc.returncode != 0 and "no such file" in proc.stderr
    assert _compare(good, good, "--threshold", "0.5").returncode == 2
