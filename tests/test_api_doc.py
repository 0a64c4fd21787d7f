"""docs/api.md is the index of the public API: it must match the package, name by name.

The file is written by tools/make_api_doc.py; here the text is regenerated in memory and
compared, so a renamed argument, a new public name or a changed docstring fails until
``python tools/make_api_doc.py`` is run again.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import inspect
import re
from pathlib import Path

import eulerflow
import pytest

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"

# Public names that still lack a docstring (data: a `#:` comment above the assignment).
# Each is a gap in the package: document it, run `python tools/make_api_doc.py`, and
# delete it here (the test fails while this list names something already documented).
KNOWN_UNDOCUMENTED: set[str] = set()


@pytest.fixture(scope="module")
def tool():
    path = ROOT / "tools" / "make_api_doc.py"
    spec = importlib.util.spec_from_file_location("make_api_doc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_md_is_current(tool):
    assert API_MD.exists(), "docs/api.md is missing: run python tools/make_api_doc.py"
    current = API_MD.read_text(encoding="utf-8")
    fresh = tool.render()
    if current != fresh:
        stale = [f"- {a!r}\n+ {b!r}" for a, b in zip(current.splitlines(), fresh.splitlines(),
                                                      strict=False) if a != b]
        pytest.fail("docs/api.md is stale: run python tools/make_api_doc.py\n"
                    + "\n".join(stale[:5] or ["(lines added or removed at the end)"]))


def test_check_mode_agrees(tool, capsys):
    assert tool.main(["--check"]) == 0, capsys.readouterr().err


def test_every_public_name_is_indexed(tool):
    text = API_MD.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    by_module = {s.split("`")[1]: s for s in sections}
    assert list(by_module) == list(tool.MODULES)
    for module_name in tool.MODULES:
        module = importlib.import_module(module_name)
        entries = set(re.findall(r"^- `(?:class )?([A-Za-z_][\w]*)", by_module[module_name],
                                 flags=re.M))
        missing = [name for name in module.__all__ if name not in entries]
        assert not missing, f"{module_name}: not in docs/api.md: {missing}"


def test_every_public_submodule_is_indexed(tool):
    submodules = [name for name in eulerflow.__all__
                  if inspect.ismodule(getattr(eulerflow, name))]
    assert submodules, "eulerflow.__all__ lists no submodule?"
    for name in submodules:
        assert f"eulerflow.{name}" in tool.MODULES, f"eulerflow.{name} has no section"


def test_every_public_name_has_a_docstring(tool):
    missing = set(tool.undocumented())
    new = sorted(missing - KNOWN_UNDOCUMENTED)
    assert not new, f"public names without a docstring (or #: comment for data): {new}"
    fixed = sorted(KNOWN_UNDOCUMENTED - missing)
    assert not fixed, f"documented now, remove from KNOWN_UNDOCUMENTED: {fixed}"


def test_module_level_names_of_all_have_docstrings(tool):
    # every top-level name of eulerflow.__all__ (classes, functions, modules) is documented
    for name in eulerflow.__all__:
        if name == "__version__":
            continue
        obj = getattr(eulerflow, name)
        doc = tool._own_doc(obj)
        assert doc, f"eulerflow.{name} has no docstring"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("One line.", "One line."),
        ("Wrapped\nfirst sentence. Second.", "Wrapped first sentence."),
        ("Uses ``a.b. c`` inside code. Then more.", "Uses ``a.b. c`` inside code."),
        ("Ends e.g. here. Not this.", "Ends e.g. here."),
        ("See :func:`odeint` too.\n\nMore.", "See ``odeint`` too."),
        ("No period at all", "No period at all"),
    ],
)
def test_summary_is_the_first_sentence(tool, doc, expected):
    assert tool.summary(doc) == expected


def test_signature_rendering(tool):
    def f(a, b: int = 1, /, c: str | None = None, *args, d: float = 2.0, **kw) -> None:
        """Doc."""

    def g(a, *, b=None):
        """Doc."""

    # `from __future__ import annotations`: annotations stay the strings of the source
    assert tool.signature(f) == ("(a, b: int = 1, /, c: str | None = None, *args, "
                                 "d: float = 2.0, **kw) -> None")
    assert tool.signature(g) == "(a, *, b=None)"


def test_py_typed_marker_ships_with_the_package():
    marker = importlib.resources.files("eulerflow").joinpath("py.typed")
    assert marker.is_file()
    assert marker.read_bytes() == b""
