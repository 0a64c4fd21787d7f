"""`eulerflow demo all --quick`: the whole mission in one command, run once as a user runs it.

One subprocess writes every demo into a temporary folder; the tests then check every
expected figure, the combined summary.md, and that every number in it is finite.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from eulerflow.demos import DEMOS

# The figures each demo writes (from its run_<name> function in eulerflow/demos.py).
EXPECTED_FIGURES = {
    "classify": ["spiral_data.png", "classify_loss.png", "classify_map.png",
                 "classify_depth.png"],
    "xor": ["xor_loss.png", "xor_output.png", "xor_weights.png", "swap_fact_losses.png",
            "swap_weights.png"],
    "euler": ["euler_trajectories.png", "euler_convergence_projectile.png",
              "euler_convergence_spiral.png", "euler_convergence_lorenz.png",
              "euler_stiff_van_der_pol.png", "euler_work_precision.png"],
    "neural-ode": ["node_spiral.png", "node_solvers.png", "node_extreme_starts.png",
                   "node_landscape.png", "node_lorenz.png", "node_lorenz_components.png",
                   "node_regularized.png"],
    "depth": ["depth_seed_losses.png", "depth_seed_hidden_states.png", "depth_as_time.png",
              "depth_extrapolation.png"],
    "meanfield": ["meanfield_particles.png", "meanfield_particles.gif", "meanfield_heatmap.png",
                  "meanfield_teachers.png", "meanfield_time.png", "meanfield_threads.png"],
    "bench": ["bench_lr_sweep.png", "bench_knobs.png", "bench_landscape_2d.png",
              "bench_ensemble_lr.png", "bench_threads.png"],
}


NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?(?!\w|\.\d)")
NON_FINITE = re.compile(r"(?<![A-Za-z])[-+]?(?:nan|inf|infinity)(?![A-Za-z])", re.IGNORECASE)
PNG = b"\x89PNG\r\n\x1a\n"


def _console_script() -> str:
    script = Path(sys.executable).with_name("eulerflow")
    return str(script) if script.exists() else "eulerflow"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_all")
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [_console_script(), "demo", "all", "--quick", "--out", str(out)],
        cwd=out, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return out, proc


def test_expected_figures_cover_every_demo():
    assert list(EXPECTED_FIGURES) == list(DEMOS)


@pytest.mark.parametrize("name", list(EXPECTED_FIGURES))
def test_every_figure_is_written(quick_run, name):
    out, _ = quick_run
    folder = out / name
    for figure in EXPECTED_FIGURES[name]:
        path = folder / figure
        assert path.is_file(), f"{name}: {figure} missing"
        head = path.read_bytes()[:8]
        if figure.endswith(".png"):
            assert head == PNG, f"{path} is not a PNG"
        else:
            assert head[:6] in (b"GIF87a", b"GIF89a"), f"{path} is not a GIF"
    written = sorted(p.name for p in folder.iterdir() if p.suffix in (".png", ".gif"))
    assert written == sorted(EXPECTED_FIGURES[name]), "unexpected or missing figures"
    assert (folder / "summary.md").is_file()


def test_particle_animation_has_frames(quick_run):
    from PIL import Image  # matplotlib's own dependency

    out, _ = quick_run
    with Image.open(out / "meanfield" / "meanfield_particles.gif") as gif:
        assert gif.n_frames > 10


def test_summary_lists_every_demo(quick_run):
    out, _ = quick_run
    text = (out / "summary.md").read_text(encoding="utf-8")
    for name in DEMOS:
        assert f"| `{name}` |" in text, f"no table row for {name}"
        assert f"## Demo `{name}`" in text, f"no section for {name}"
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    seeds = {line.split("|")[2].strip() for line in rows}
    assert seeds == {"000", "001", "002", "003", "004"}, "a line per seed, every seed"
    assert re.search(r"^Total: [\d.]+ s \(quick mode\)\.$", text, flags=re.M)


@pytest.mark.parametrize("summary", ["summary.md", *(f"{name}/summary.md" for name in DEMOS)])
def test_every_number_in_the_summary_is_finite(quick_run, summary):
    out, _ = quick_run
    text = (out / summary).read_text(encoding="utf-8")
    bad = [m.group(0) for m in NON_FINITE.finditer(text)]
    assert not bad, f"{summary} holds non-finite values: {bad}"
    numbers = [float(m.group(0)) for m in NUMBER.finditer(text)]
    assert len(numbers) > 10, f"{summary}: only {len(numbers)} numbers parsed"
    assert all(math.isfinite(x) for x in numbers)


def test_command_reports_each_demo(quick_run):
    out, proc = quick_run
    lines = proc.stdout.splitlines()
    for name, figures in EXPECTED_FIGURES.items():
        line = next((x for x in lines if x.startswith(f"{name}: ")), None)
        assert line is not None, f"no line for {name} in\n{proc.stdout}"
        assert f", {len(figures)} figures;" in line
        values = re.findall(r"=(\S+?)(?:,|$)", line)
        assert values and all(math.isfinite(float(v)) for v in values), line
    assert lines[-1] == f"summary: {out / 'summary.md'}"


def test_python_m_eulerflow_is_the_command():
    run = [sys.executable, "-m", "eulerflow", "--help"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "demo" in proc.stdout
    script = subprocess.run([_console_script(), "--help"], capture_output=True, text=True,
                            timeout=120)
    assert script.returncode == 0, script.stderr
    assert proc.stdout == script.stdout  # both print `usage: eulerflow ...`
    demo = subprocess.run([sys.executable, "-m", "eulerflow", "demo", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    for name in [*DEMOS, "all", "--out", "--quick"]:
        assert name in demo.stdout


def test_unknown_demo_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "eulerflow", "demo", "nope", "--out", "x"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "invalid choice: 'nope'" in proc.stderr
