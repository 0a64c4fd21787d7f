"""Write docs/api.md, the index of eulerflow's public API, from the package itself.

Every public name (``eulerflow.__all__`` and the ``__all__`` of the public submodules
listed in ``MODULES``) with its signature and the first sentence of its docstring; for
classes also their public methods, properties and class attributes. Data (module
constants, class attributes) is documented Sphinx-style by ``#:`` comment lines right
above its assignment.

    python tools/make_api_doc.py           # rewrite docs/api.md
    python tools/make_api_doc.py --check   # exit 1 if docs/api.md is stale

``tests/test_api_doc.py`` regenerates the text in memory and compares it with the file.
"""

from __future__ import annotations

import argparse
import ast
import enum
import importlib
import inspect
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"

#: The modules whose ``__all__`` is the public API, in the order of the document.
MODULES = (
    "eulerflow",
    "eulerflow.optim",
    "eulerflow.fields",
    "eulerflow.data",
    "eulerflow.ode",
    "eulerflow.meanfield",
    "eulerflow.landscape",
    "eulerflow.bench",
    "eulerflow.ensemble",
    "eulerflow.plot",
)

#: Dunder methods documented as members (the others are Python protocol).
PUBLIC_DUNDERS = ("__call__",)

_ABBREVIATIONS = ("e.g.", "i.e.", "cf.", "vs.", "etc.", "et al.")


# ----------------------------------------------------------------------------- docstrings


def _own_doc(obj: object) -> str | None:
    """The docstring written for ``obj`` itself (not one inherited or generated)."""
    if isinstance(obj, property):
        obj = obj.fget
    elif isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if inspect.isclass(obj):
        doc = vars(obj).get("__doc__")
        # a dataclass without a docstring gets its signature as __doc__
        if doc and doc.startswith(f"{obj.__name__}("):
            return None
    elif inspect.isroutine(obj) or inspect.ismodule(obj):
        doc = obj.__doc__
    else:
        return None  # data: documented by #: comments, see _comment_docs
    return inspect.cleandoc(doc) if doc and doc.strip() else None


def _comment_docs(source_of: object) -> dict[str, str]:
    """``{name: text}`` of the ``#:`` comments above the assignments of a module or class."""
    try:
        lines, start = inspect.getsourcelines(source_of)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent("".join(lines))
    tree = ast.parse(source)
    body = tree.body[0].body if inspect.isclass(source_of) else tree.body
    text = source.splitlines()
    docs = {}
    for node in body:
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        else:
            continue
        comment = []
        i = node.lineno - 2
        while i >= 0 and text[i].strip().startswith("#:"):
            comment.insert(0, text[i].strip()[2:].strip())
            i -= 1
        if comment:
            for name in targets:
                docs[name] = " ".join(comment)
    return docs


def summary(doc: str) -> str:
    """The first sentence of the first paragraph of ``doc``, on one line, roles removed."""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    para = re.sub(r":(?:func|class|meth|attr|data|mod|math|obj):`~?([^`]+)`", r"``\1``", para)
    in_code = False
    i = 0
    while i < len(para):
        if para.startswith("``", i):
            in_code = not in_code
            i += 2
            continue
        if (not in_code and para[i] == "." and (i + 1 == len(para) or para[i + 1] == " ")
                and not para[: i + 1].endswith(_ABBREVIATIONS)):
            return para[: i + 1]
        i += 1
    return para


# ----------------------------------------------------------------------------- signatures


def _default(value: object) -> str:
    if inspect.isclass(value) or inspect.isroutine(value):
        module = value.__module__
        return value.__qualname__ if module == "builtins" else f"{module}.{value.__qualname__}"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    return repr(value)


def _annotation(annotation: object) -> str:
    # with `from __future__ import annotations` every annotation is the source string
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def signature(obj: object) -> str:
    """``(a: int, b: float = 1.0, *, c=None) -> T`` as written in the source."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # e.g. an exception class without its own __init__
        return ""
    parts: list[str] = []
    kinds = [p.kind for p in sig.parameters.values()]
    for k, p in enumerate(sig.parameters.values()):
        if p.kind is p.KEYWORD_ONLY and inspect.Parameter.VAR_POSITIONAL not in kinds[:k] and (
                k == 0 or kinds[k - 1] is not p.KEYWORD_ONLY):
            parts.append("*")
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += (" = " if p.annotation is not p.empty else "=") + _default(p.default)
        parts.append(text)
        if p.kind is p.POSITIONAL_ONLY and (k + 1 == len(kinds)
                                            or kinds[k + 1] is not p.POSITIONAL_ONLY):
            parts.append("/")
    out = f"({', '.join(parts)})"
    if sig.return_annotation is not sig.empty:
        out += f" -> {_annotation(sig.return_annotation)}"
    return out


def _data_value(value: object) -> str:
    text = repr(value)
    return f" = {text}" if len(text) <= 80 and "\n" not in text else f": {type(value).__name__}"


# ----------------------------------------------------------------------------- walking


def _own_classes(cls: type) -> list[type]:
    """``cls`` and its private base classes, whose members it shows as its own."""
    own = [cls]
    for base in cls.__mro__[1:]:
        if base.__name__.startswith("_") and base.__module__.startswith("eulerflow"):
            own.append(base)
    return own


def _public_bases(cls: type) -> list[type]:
    """The nearest bases of ``cls`` other than ``object`` and eulerflow's private ones."""
    bases: list[type] = []
    for base in cls.__bases__:
        if base is object:
            continue
        if base.__name__.startswith("_") and base.__module__.startswith("eulerflow"):
            bases += [b for b in _public_bases(base) if b not in bases]
        elif base not in bases:
            bases.append(base)
    return bases


def _members(cls: type) -> Iterator[tuple[str, object, str | None]]:
    """``(name, attribute, kind)`` of the public members ``cls`` defines itself."""
    seen = set()
    for name, attr in [item for c in _own_classes(cls) for item in vars(c).items()]:
        if (name.startswith("_") and name not in PUBLIC_DUNDERS) or name in seen:
            continue
        seen.add(name)
        if isinstance(attr, property):
            yield name, attr, "property"
        elif isinstance(attr, classmethod):
            yield name, attr, "classmethod"
        elif isinstance(attr, staticmethod):
            yield name, attr, "staticmethod"
        elif inspect.isfunction(attr):
            yield name, attr, None
        elif not inspect.isclass(attr):
            yield name, attr, "data"


def entries() -> Iterator[tuple[str, str, object, str | None, bool]]:
    """``(module, qualified name, object, doc, is_first)`` for every documented name.

    Names re-exported by several modules are documented where they first appear;
    ``is_first`` is False for the later appearances."""
    seen: dict[int, str] = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        comments = _comment_docs(module)
        for name in module.__all__:
            obj = getattr(module, name)
            qual = f"{module_name}.{name}"
            is_data = not (inspect.isclass(obj) or inspect.isroutine(obj)
                           or inspect.ismodule(obj))
            doc = comments.get(name) if is_data else _own_doc(obj)
            first = is_data or id(obj) not in seen
            if not is_data:
                seen.setdefault(id(obj), qual)
            yield module_name, qual, obj, doc, first
            if inspect.isclass(obj) and first:
                class_comments = {k: v for c in reversed(_own_classes(obj))
                                  for k, v in _comment_docs(c).items()}
                for member, attr, kind in _members(obj):
                    mdoc = class_comments.get(member) if kind == "data" else _own_doc(attr)
                    yield module_name, f"{qual}.{member}", attr, mdoc, True


def undocumented() -> list[str]:
    """Qualified names of public names and members without a docstring (or ``#:``)."""
    return [qual for _, qual, _, doc, first in entries()
            if first and not doc and not qual.endswith(".__version__")]


# ----------------------------------------------------------------------------- rendering


def _member_line(name: str, attr: object, kind: str | None, doc: str | None) -> str:
    if kind == "property":
        head = f"`.{name}` (property)"
    elif kind == "data":
        head = f"`.{name}{_data_value(attr)}`"
    else:
        func = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
        sig = signature(func)
        if kind != "staticmethod":  # drop self / cls
            sig = re.sub(r"^\((?:self|cls)(?:, )?", "(", sig)
        head = f"`.{name}{sig}`" + (f" ({kind})" if kind else "")
    return f"  - {head}: {summary(doc) if doc else '*(no docstring)*'}"


def render() -> str:
    """The text of docs/api.md."""
    import eulerflow

    out = [
        "# eulerflow API index",
        "",
        f"eulerflow {eulerflow.__version__}. Every public name: `eulerflow.__all__` and the "
        "`__all__` of the submodules below, with its signature and the first sentence of its "
        "docstring (`help(name)` shows the rest). Generated by `python tools/make_api_doc.py`; "
        "`tests/test_api_doc.py` fails when this file is stale. Do not edit by hand.",
        "",
    ]
    first_place: dict[int, str] = {}
    current = None
    for module_name, qual, obj, doc, first in entries():
        if module_name != current:
            current = module_name
            module = sys.modules[module_name]
            out += ["", f"## `{module_name}`", "", summary(_own_doc(module) or ""), ""]
        name = qual[len(module_name) + 1:]
        if "." in name:  # a class member, rendered under its class
            cls = getattr(sys.modules[module_name], name.split(".")[0])
            member = name.split(".", 1)[1]
            kind = next(k for n, _, k in _members(cls) if n == member)
            out.append(_member_line(member, obj, kind, doc))
            continue
        text = summary(doc) if doc else "*(no docstring)*"
        if name == "__version__":
            text = "the version of the package."
        if not first:
            out.append(f"- `{name}`: the same object as `{first_place[id(obj)]}`.")
            continue
        if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
            out.append(f"- `{name}{_data_value(obj)}`: {text}")
            continue
        first_place.setdefault(id(obj), qual)
        if inspect.ismodule(obj):
            out.append(f"- `{name}` (module `{obj.__name__}`): {text}")
        elif inspect.isclass(obj):
            base_text = ", ".join(
                f"`{b.__qualname__}`" if b.__module__ == "builtins" or b.__module__.startswith(
                    "eulerflow") else f"`{b.__module__}.{b.__qualname__}`"
                for b in _public_bases(obj))
            sig = signature(obj).removesuffix(" -> None")  # a dataclass's generated __init__
            out.append(f"- `class {name}{sig}`"
                       + (f" (subclass of {base_text})" if base_text else "") + f": {text}")
        else:
            out.append(f"- `{name}{signature(obj)}`: {text}")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/api.md from the docstrings.")
    parser.add_argument("--check", action="store_true",
                        help="only compare with docs/api.md; exit 1 if it is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = API_MD.read_text(encoding="utf-8") if API_MD.exists() else ""
        if current != text:
            print(f"{API_MD} is stale: run python tools/make_api_doc.py", file=sys.stderr)
            return 1
        return 0
    API_MD.parent.mkdir(parents=True, exist_ok=True)
    API_MD.write_text(text, encoding="utf-8")
    missing = undocumented()
    print(f"wrote {API_MD}" + (f"; without a docstring: {', '.join(missing)}" if missing else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
