"""Every code block of README.md runs as written.

Each ```python block runs in a fresh interpreter in an empty temporary folder. The
```bash blocks are split into commands: the cheap ones (``--quick``, or a demo measured
at a few seconds) run with ``--out`` sent to a temporary folder, the examples from the
repository root as the README says; the others (installs, pytest, full-length demos) are
checked without running: the command exists and accepts the arguments given.
``demo all --quick`` runs in tests/test_demo_all.py.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from eulerflow.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LANGUAGES = {"python", "bash", "text"}  # text blocks are not run

# Full-length runs measured at a few seconds on 2 cores; other runs need --quick.
CHEAP_WITHOUT_QUICK = {
    "classify", "xor", "euler",
    "examples/seed001_layers.py", "examples/seed000_euler.py",
    "examples/seed004_spiral_classification.py",
}
# `demo all --quick` (about 25 s) runs once, in tests/test_demo_all.py, which also checks
# that `python -m eulerflow` is the `eulerflow` command; here it is only parsed.
RUN_ELSEWHERE = {"all"}
# Runs of more than about 5 s; marked slow, still run.
SLOW = {"neural-ode", "meanfield", "examples/seed002_neural_ode.py",
        "examples/seed002_regularized.py",
        "examples/seed003_meanfield.py"}


def _blocks() -> list[tuple[str, int, str]]:
    """``(language, line, code)`` of every fenced block of the README."""
    text = README.read_text(encoding="utf-8")
    return [(m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2))
            for m in re.finditer(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M)]


def _section(line: int) -> str:
    heading = "top"
    for i, text in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if i >= line:
            break
        if text.startswith("#"):
            heading = text.lstrip("#").strip()
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


BLOCKS = _blocks()
PYTHON_BLOCKS = [pytest.param(code, id=f"L{line}-{_section(line)}")
                 for lang, line, code in BLOCKS if lang == "python"]


def _commands() -> dict[str, tuple[list[str], int]]:
    """Every command of the bash blocks (split at ``&&``), keyed by what it does."""
    found: dict[str, tuple[list[str], int]] = {}
    for lang, line, code in BLOCKS:
        if lang != "bash":
            continue
        for row in code.splitlines():
            words = shlex.split(row, comments=True)
            while words:
                cut = words.index("&&") if "&&" in words else len(words)
                argv, words = words[:cut], words[cut + 1:]
                # the same command with another --out is the same test
                key = " ".join(w for i, w in enumerate(argv)
                               if w != "--out" and (i == 0 or argv[i - 1] != "--out"))
                found.setdefault(key, (argv, line))
    return found


COMMANDS = _commands()


def _target(argv: list[str]) -> str | None:
    """The demo name or example script a command runs, else None."""
    if argv[:1] == ["eulerflow"] and argv[1:2] == ["demo"]:
        return argv[2]
    if argv[:3] == ["python", "-m", "eulerflow"] and argv[3:4] == ["demo"]:
        return argv[4]
    if argv[:1] == ["python"] and len(argv) > 1 and argv[1].endswith(".py"):
        return argv[1]
    return None


def _cheap(argv: list[str]) -> bool:
    if _target(argv) in RUN_ELSEWHERE:
        return False
    return "--quick" in argv or _target(argv) in CHEAP_WITHOUT_QUICK


COMMAND_PARAMS = [
    pytest.param(argv, id=key.replace(" ", "_"),
                 marks=[pytest.mark.slow] if _cheap(argv) and _target(argv) in SLOW else [])
    for key, (argv, _) in COMMANDS.items()
]


def test_every_block_is_labelled():
    unlabelled = [(line, lang) for lang, line, _ in BLOCKS if lang not in LANGUAGES]
    assert not unlabelled, f"README blocks without a known language (line, lang): {unlabelled}"
    assert PYTHON_BLOCKS and COMMANDS


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_python_block_runs(code, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"block failed:\n{code}\n--- stderr:\n{proc.stderr}"
    assert not re.search(r"\w+Warning: ", proc.stderr), proc.stderr


def _check_without_running(argv: list[str]) -> None:
    program = argv[0]
    if program == "pip":
        assert argv[1] == "install", argv
        for spec in argv[2:]:
            path, _, extras = spec.partition("[")
            assert (ROOT / path / "pyproject.toml").is_file(), f"nothing to install at {path}"
            offered = importlib.metadata.metadata("eulerflow").get_all("Provides-Extra") or []
            for extra in filter(None, extras.rstrip("]").split(",")):
                assert extra in offered, f"extra {extra!r} not in {offered}"
    elif program == "pytest":  # configured in pyproject.toml, found through testpaths
        assert len(argv) == 1, argv
        assert "[tool.pytest.ini_options]" in (ROOT / "pyproject.toml").read_text("utf-8")
    elif program == "eulerflow" or argv[:3] == ["python", "-m", "eulerflow"]:
        args = argv[1:] if program == "eulerflow" else argv[3:]
        _parser().parse_args(args)  # SystemExit(2) on a bad name or option
    elif program == "python" and argv[1].endswith(".py"):
        script = ROOT / argv[1]
        assert script.is_file(), f"{argv[1]} does not exist"
        proc = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        for option in (a for a in argv[2:] if a.startswith("--")):
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", proc.stdout), (
                f"{argv[1]} has no option {option}")
    else:
        pytest.fail(f"README command not known to this test: {' '.join(argv)}")


def _console_script() -> str:
    script = Path(sys.executable).with_name("eulerflow")
    return str(script) if script.exists() else "eulerflow"


def _redirect_out(argv: list[str], out: Path) -> list[str]:
    """``argv`` with ``--out DIR`` sent to ``out/DIR``, or ``--out out/default`` added."""
    if "--out" in argv:
        i = argv.index("--out")
        return [*argv[: i + 1], str(out / argv[i + 1]), *argv[i + 2:]]
    return [*argv, "--out", str(out / "default")]


@pytest.mark.parametrize("argv", COMMAND_PARAMS)
def test_bash_command(argv, tmp_path):
    _check_without_running(argv)
    if not _cheap(argv):
        return
    if argv[0] == "eulerflow":
        run = [_console_script(), *argv[1:]]
    else:
        assert argv[0] == "python", argv
        run = [sys.executable, *argv[1:]]
    run = _redirect_out(run, tmp_path)
    out = Path(run[run.index("--out") + 1])
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}"
    assert (out / "summary.md").is_file(), f"{' '.join(argv)} wrote no summary.md"
