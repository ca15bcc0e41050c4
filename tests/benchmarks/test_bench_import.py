"""bench_import.py times ``import handrail`` against importing the modules it loads.

A smoke test only: ``--quick`` figures mean nothing, so no timing is
asserted (performance is never a timed unit test).  What is asserted holds
at any speed: the dependencies found are third-party modules handrail
loads, both interpreters loaded all of them, and the table prints the rows.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = ("import handrail over importing its dependencies", "<= 1.2x")


def run_bench(*options: str) -> subprocess.CompletedProcess[str]:
    """One quick run of bench_import.py with ``options``."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_import.py"), "--quick", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def result() -> Any:
    """One quick run of bench_import.py --json, shared by the tests below."""
    completed = run_bench("--json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_the_dependencies_are_the_third_party_modules_handrail_loads(result: Any) -> None:
    """pydantic, structlog, opentelemetry and tenacity are among them; no stdlib, no handrail."""
    found = set(result["figures"]["top_level_dependencies"])
    assert {"pydantic", "structlog", "opentelemetry", "tenacity"} <= found
    assert not found & set(sys.stdlib_module_names)
    assert not any(m.startswith("handrail") for m in result["figures"]["dependencies"])


def test_both_imports_are_timed_and_compared(result: Any) -> None:
    """One sample per round for each; the target is the ratio of the two medians."""
    ms = {row["contender"]: row["median_ms"] for row in result["rows"]}
    assert set(ms) == {"import handrail", "import its dependencies"}
    assert all(value > 0 for value in ms.values())
    assert all(len(v) == result["repetitions"] for v in result["figures"]["samples_ms"].values())
    [target] = result["targets"]
    assert (target["name"], target["target"]) == TARGET
    ratio = ms["import handrail"] / ms["import its dependencies"]
    assert target["measured"] == pytest.approx(ratio, rel=0.02)
    assert result["agreed"] is True
    assert result["passed"] is None


def test_the_table_prints_both_rows_and_the_target() -> None:
    """The human table names both imports and the target with its ratio."""
    completed = run_bench()
    assert completed.returncode == 0, completed.stderr
    assert re.search(r"^import handrail\s+[\d,.]+$", completed.stdout, re.MULTILINE)
    assert re.search(r"^import its dependencies\s+[\d,.]+$", completed.stdout, re.MULTILINE)
    name, wanted = TARGET
    assert re.search(rf"{re.escape(name)}\s+[\d.]+x\s+{re.escape(wanted)}\s+-", completed.stdout)
