"""The import rules of docs/architecture.md, checked on the source with ``ast``.

Two rules, over every import in ``src/handrail`` (those under ``if
TYPE_CHECKING:`` and inside functions included):

* **Public names only.** A module of one package never imports a ``_private``
  module (or a ``_private`` name) of another package.  The foundation, the
  top-level modules ``handrail._x``, is there for what packages share: every
  package may import it.
* **Imports point down.** A package imports only from lower layers; packages
  of one layer do not import each other (the foundation aside).

Layers, lowest first::

    0    foundation: handrail._*.py, clock, identity, redaction, shadow; handrail.telemetry
    1    policy, audit, resilience          (never each other)
    1.5  permissions                        (acting_as / using_policy: may use policy)
    2    escalation
    3    guard
    4    connectors, adapters.*             (adapters never import each other)
    5    cli, web, testing
    top  handrail/__init__.py, __main__.py  (the public facade re-exports from every layer)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "handrail"

FOUNDATION_MODULES = frozenset({"clock", "identity", "redaction", "shadow"})
"""Public top-level modules in the foundation (besides every ``handrail._x``)."""

LAYERS: dict[str, float] = {
    "telemetry": 0,
    "policy": 1,
    "audit": 1,
    "resilience": 1,
    "permissions": 1.5,
    "approvals": 1.8,
    "escalation": 2,
    "guard": 3,
    "connectors": 4,
    "adapters": 4,
    "cli": 5,
    "web": 5,
    "testing": 5,
}

TOP = 100.0
"""The layer of the facade: ``handrail`` itself and ``handrail.__main__``."""

# Violations allowed for now, each with the reason.  The test fails when one of
# them disappears, so the list only ever shrinks: delete the entry then.
_KNOWN_VIOLATIONS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Import:
    """One imported module (or ``from package import name``) and where it is written."""

    file: str
    line: int
    importer: str
    target: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def key(self, why: str) -> str:
        """``audit/_log.py -> policy (sideways in layer 1)``: stable while lines move."""
        source, target = self.file.removeprefix("handrail/"), self.target.removeprefix("handrail.")
        return f"{source} -> {target} ({why})"


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, src: Path = SRC) -> list[Import]:
    """Every ``handrail`` import in the file, with relative ones made absolute.

    ``from package import name`` yields ``package.name`` too when ``name`` is a
    submodule or a ``_private`` name, so ``from ..escalation import _postgres``
    is seen as the private module it is.
    """
    importer = module_name(path, src)
    file = path.relative_to(src).as_posix()
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend(Import(file, node.lineno, importer, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append(Import(file, node.lineno, importer, target))
            for alias in node.names:
                name = f"{target}.{alias.name}"
                if _is_private(alias.name):
                    if not private_part(target, package_of(target)):  # else reported already
                        found.append(Import(file, node.lineno, importer, name))
                elif (src / name.replace(".", "/")).is_dir() or (
                    src / f"{name.replace('.', '/')}.py"
                ).is_file():
                    found.append(Import(file, node.lineno, importer, name))
    return [i for i in found if i.target == "handrail" or i.target.startswith("handrail.")]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def package_of(module: str) -> str:
    """``handrail.policy._load`` -> ``policy``; a top-level module is its own package."""
    parts = module.split(".")
    if len(parts) == 1:
        return ""  # handrail itself
    if parts[1] == "adapters" and len(parts) > 2:
        return f"adapters.{parts[2]}"
    return parts[1]


def layer_of(module: str) -> float:
    package = package_of(module)
    if package in ("", "__main__"):
        return TOP
    if package.startswith("_") or package in FOUNDATION_MODULES:
        return 0
    top = package.split(".")[0]
    if top not in LAYERS:
        raise AssertionError(f"{module}: no layer for package {top!r}; add it to LAYERS")
    return LAYERS[top]


def private_part(module: str, package: str) -> bool:
    """True when ``module`` reaches past ``package``'s ``__init__`` into a ``_private`` part."""
    inside = module.split(".")[1 + package.count(".") + 1 :]
    return any(_is_private(p) for p in inside)


def violations(found: list[Import]) -> dict[str, Import]:
    """Each broken rule, keyed as ``_KNOWN_VIOLATIONS`` spells it."""
    broken: dict[str, Import] = {}
    for imp in found:
        source, target = package_of(imp.importer), package_of(imp.target)
        if target == source:
            continue
        low, high = layer_of(imp.importer), layer_of(imp.target)
        # For a foundation module (handrail._files) only a _private name in it is private.
        if private_part(imp.target, target):
            broken.setdefault(imp.key("private"), imp)
        if low == TOP:
            continue
        if high > low:
            broken.setdefault(imp.key(f"up from layer {_show(low)} to {_show(high)}"), imp)
        elif high == low and low != 0:
            broken.setdefault(imp.key(f"sideways in layer {_show(low)}"), imp)
    return broken


def _show(layer: float) -> str:
    if layer == TOP:
        return "the facade"
    return str(int(layer)) if layer == int(layer) else str(layer)


def all_imports() -> list[Import]:
    return [i for path in sorted(ROOT.rglob("*.py")) for i in imports(path)]


def test_imports_follow_the_rules() -> None:
    """No package imports another's private modules or a package above its layer."""
    broken = violations(all_imports())
    new = {key: imp for key, imp in broken.items() if key not in _KNOWN_VIOLATIONS}
    assert not new, "imports that break docs/architecture.md's rules:\n" + "\n".join(
        f"  {imp.where}: {key}" for key, imp in sorted(new.items(), key=lambda kv: kv[1].where)
    )


def test_known_violations_still_exist() -> None:
    """Every listed exception is still real: a fixed one must leave _KNOWN_VIOLATIONS."""
    stale = sorted(_KNOWN_VIOLATIONS - set(violations(all_imports())))
    assert not stale, "fixed, so remove from _KNOWN_VIOLATIONS:\n" + "\n".join(
        f"  {key}" for key in stale
    )


_GUARDED_TYPES = (
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..policy._model import R"
)


@pytest.mark.parametrize(
    ("source", "line", "key"),
    [
        ("audit/_x.py", "from ..policy._load import read_yaml", "policy._load (private)"),
        ("audit/_x.py", "from ..policy import Policy", "policy (sideways in layer 1)"),
        ("policy/_x.py", "from ..escalation import Route", "escalation (up from layer 1 to 2)"),
        ("_x.py", "from .policy import Policy", "policy (up from layer 0 to 1)"),
        ("cli/_x.py", "from ..escalation import _postgres", "escalation._postgres (private)"),
        ("cli/_x.py", "from ..escalation._router import f", "escalation._router (private)"),
        ("cli/_x.py", "from ..escalation import _summary", "escalation._summary (private)"),
        ("telemetry/_x.py", "import handrail.guard", "guard (up from layer 0 to 3)"),
        ("cli/_x.py", "from ..telemetry._telemetry import T", "telemetry._telemetry (private)"),
        ("adapters/a/_x.py", "from ..b import thing", "adapters.b (sideways in layer 4)"),
        ("guard/_x.py", _GUARDED_TYPES, "policy._model (private)"),
        ("guard/_x.py", "def f():\n    from ..resilience._sleep import s", "resilience._sleep"),
        ("policy/_x.py", "from .._files import _too_long", "_files._too_long (private)"),
        ("policy/_x.py", "from .. import Guard", "handrail (up from layer 1 to the facade)"),
    ],
)
def test_the_rules_catch(tmp_path: Path, source: str, line: str, key: str) -> None:
    """Each kind of broken import is reported, wherever in the file it is written."""
    found = violations(imports(_module(tmp_path, source, line), tmp_path))
    assert any(k.startswith(f"{source} -> {key}") for k in found), found


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("escalation/_x.py", "from .._files import read_toml"),
        ("escalation/_x.py", "from ..policy import ActionRequest"),
        ("cli/_x.py", "from ..escalation import load_routes"),
        ("guard/_x.py", "from ._core import run"),
        ("policy/_x.py", "from ..telemetry import Telemetry"),
        ("_x.py", "from ._errors import HandrailError"),
        ("__init__.py", "from .guard import Guard"),
        ("testing/_x.py", "from ..connectors import BaseConnector"),
    ],
)
def test_the_rules_allow(tmp_path: Path, source: str, line: str) -> None:
    """Foundation imports, public names of lower layers and a package's own modules pass."""
    assert violations(imports(_module(tmp_path, source, line), tmp_path)) == {}


def _module(tmp_path: Path, source: str, code: str) -> Path:
    """A file at ``source`` in a fake ``handrail`` package under ``tmp_path``."""
    path = tmp_path / "handrail" / source
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code + "\n")
    return path
