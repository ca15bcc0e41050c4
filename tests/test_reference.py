"""docs/reference.md lists every public name with its summary, and is up to date."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """scripts/gen_reference.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "scripts/gen_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_page_is_up_to_date(gen: ModuleType) -> None:
    """The committed page is what the generator writes now: run `make reference` if not."""
    assert (ROOT / "docs/reference.md").read_text() == gen.render(gen.entries()), (
        "docs/reference.md is out of date: run `make reference`"
    )


def test_the_page_lists_each_namespace_all(gen: ModuleType) -> None:
    """Each section holds exactly the namespace's __all__, as Python sees it."""
    listed: dict[str, list[str]] = {}
    for entry in gen.entries():
        listed.setdefault(entry.namespace, []).append(entry.name)
    for namespace in gen.PUBLIC:
        assert listed[namespace] == list(importlib.import_module(namespace).__all__), namespace


def test_every_public_name_has_a_summary(gen: ModuleType) -> None:
    """A public name without a docstring (or, for a constant, a string under it) is a bug."""
    missing = [f"{e.namespace}.{e.name}" for e in gen.entries() if not e.summary]
    assert not missing, f"public names without a docstring: {missing}"


def test_the_check_fails_on_a_stale_page(
    gen: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--check exits 1 when the page differs from what it would write, 0 when it matches."""
    page = tmp_path / "reference.md"
    monkeypatch.setattr(gen, "PAGE", page)
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    page.write_text("# stale\n")
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
