"""Every Python example in the README and docs/ runs, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's python blocks run in order, in one namespace, from the repository root."""
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(python_blocks(page), start=1):
        # dont_inherit: this module's `from __future__ import annotations` must not leak
        # into the examples (pydantic models there are built as a reader's would be).
        code = compile(
            block, f"{page.relative_to(ROOT)} (block {number})", "exec", dont_inherit=True
        )
        exec(code, namespace)


def test_every_page_is_checked() -> None:
    """The docs have pages, and the README has an example."""
    assert python_blocks(ROOT / "README.md")
    assert len(PAGES) >= 5
