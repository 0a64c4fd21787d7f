"""The seed notebooks in examples/notebooks/ run, and the README's pictures exist.

Each notebook is a jupytext percent-format script: it opens as a notebook in Jupyter
(with jupytext) and runs as plain Python. Here each one runs in a fresh interpreter in
an empty temporary folder, headless (``MPLBACKEND=Agg``), with its ``QUICK`` flag as
written, and must exit 0, warn nothing, and write every figure it names. The format is
checked by hand (jupytext is an optional extra): the YAML header, and markdown and code
cells separated by ``# %%`` markers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "examples" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))
SEEDS = ["seed000_euler_and_depth", "seed001_layers_and_bench", "seed002_neural_ode",
         "seed003_meanfield", "seed004_spiral_classification"]
HEADER = "# ---\n# jupyter:\n#   jupytext:\n#     formats: py:percent\n"
CELL = re.compile(r"^# %%(.*)$", re.M)
# a figure file named in the source: save(fig, "x.png"), OUT / "x.gif", ...
FIGURE = re.compile(r"[\"']([\w.-]+\.(?:png|gif))[\"']")
PNG = b"\x89PNG\r\n\x1a\n"


def _cells(text: str) -> list[tuple[str, str]]:
    """``(kind, body)`` of every cell after the header: kind "markdown" or "code"."""
    markers = list(CELL.finditer(text))
    cells = []
    for i, m in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
        kind = "markdown" if "[markdown]" in m.group(1) else "code"
        cells.append((kind, text[m.end():end].strip("\n")))
    return cells


def test_one_notebook_per_seed():
    assert [p.stem for p in NOTEBOOKS] == SEEDS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_is_a_percent_notebook(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith(HEADER), f"{path.name}: no jupytext header"
    header_end = text.index("\n# ---\n", len(HEADER) - 1)
    assert header_end < text.index("# %%"), f"{path.name}: the header is not closed"
    cells = _cells(text)
    kinds = [k for k, _ in cells]
    assert kinds[0] == "markdown", f"{path.name}: starts without a markdown cell"
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3, kinds
    for kind, body in cells:
        lines = [ln for ln in body.splitlines() if ln.strip()]
        assert lines, f"{path.name}: an empty {kind} cell"
        if kind == "markdown":
            assert all(ln.startswith("#") for ln in lines), f"{path.name}: markdown cell " \
                f"with an uncommented line:\n{body}"
        else:  # plain Python: no IPython magics or shell escapes
            assert not any(ln.lstrip().startswith(("%", "!")) for ln in lines), body
    assert re.search(r"^QUICK = True\b", text, re.M), f"{path.name}: no `QUICK = True` flag"
    assert "EULERFLOW_NOTEBOOK_OUT" in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    out = tmp_path / "figures"
    env = dict(os.environ, MPLBACKEND="Agg", EULERFLOW_NOTEBOOK_OUT=str(out))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert not re.search(r"\w+Warning: ", proc.stderr), proc.stderr
    named = set(FIGURE.findall(path.read_text(encoding="utf-8")))
    assert named, f"{path.name} names no figure"
    written = {p.name: p for p in out.rglob("*") if p.suffix in (".png", ".gif")}
    missing = sorted(named - set(written))
    assert not missing, f"{path.name} did not write {missing}"
    for name in named:
        head = written[name].read_bytes()[:8]
        assert head == PNG if name.endswith(".png") else head[:6] in (b"GIF87a", b"GIF89a")
    assert not list(tmp_path.glob("notebook_out")), "figures written outside the given folder"
    print(f"{path.name}: {seconds:.1f} s in quick mode")  # reported, not asserted


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_is_committed_in_quick_mode(path):
    """A notebook whose QUICK flag was left off would make the test suite slow."""
    assert re.search(r"^QUICK = True\b", path.read_text(encoding="utf-8"), re.M), path.name


# ----------------------------------------------------------------------------- README images

README = ROOT / "README.md"
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def test_every_readme_image_exists():
    images = IMAGE.findall(README.read_text(encoding="utf-8"))
    assert images, "README.md shows no image"
    for caption, target in images:
        assert caption.strip(), f"{target} has no caption"
        path = ROOT / target
        assert path.is_file(), f"README.md shows {target}, which does not exist"
        assert path.read_bytes()[:8] == PNG, f"{target} is not a PNG"


def test_gallery_is_small_and_all_shown():
    gallery = ROOT / "docs" / "gallery"
    files = sorted(gallery.glob("*"))
    shown = {Path(t).name for _, t in IMAGE.findall(README.read_text(encoding="utf-8"))
             if t.startswith("docs/gallery/")}
    assert len(shown) >= 7, "the gallery shows fewer figures than there are demos"
    assert sorted(p.name for p in files) == sorted(shown), "gallery files not in README.md"
    assert sum(p.stat().st_size for p in files) < 3_000_000
