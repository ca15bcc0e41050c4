"""bench_redaction.py runs and reports every input kind, operation and size.

A smoke test only: ``--quick`` figures mean nothing, so no timing is
asserted (performance is never a timed unit test).  What is asserted holds
at any speed: the JSON shape, and that no output kept the secret.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def result() -> Any:
    """One quick run of bench_redaction.py --json, shared by the tests below."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_redaction.py"), "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_bench_redaction_reports_every_row(result: Any) -> None:
    """Each input kind is timed for scrub and redact at 1 KB, 10 KB, 100 KB and 1 MB."""
    rows = {(row["input"], row["operation"]): row for row in result["rows"]}
    assert set(rows) == {
        (kind, operation)
        for kind in ("benign", "letters then a URL", "many URLs")
        for operation in ("scrub", "redact")
    }
    for row in rows.values():
        assert set(row["ns_per_char"]) == {"1000", "10000", "100000", "1000000"}
        assert all(value > 0 for value in row["ns_per_char"].values())
        assert row["ratio_1mb_over_1kb"] > 0


def test_quick_runs_judge_no_target_and_leak_nothing(result: Any) -> None:
    """--quick judges no target; every output is free of the secret whatever the speed."""
    assert result["quick"] is True
    assert result["passed"] is None
    assert all(row["passed"] is None for row in result["rows"])
    assert result["agreed"] is True
