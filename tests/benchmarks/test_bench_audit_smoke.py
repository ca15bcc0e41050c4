"""bench_audit.py runs and reports every sink and fsync mode beside its baseline.

A smoke test only: ``--quick`` figures mean nothing, so no timing is
asserted (performance is never a timed unit test).  What is asserted holds
at any speed: the JSON shape, and that every log the benchmark wrote verifies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDRAIL_ROWS = {
    f"handrail {sink} {mode}"
    for sink in ("jsonl", "sqlite")
    for mode in ("always", "batch", "never")
}
BASELINE_ROWS = {f"baseline {mode}" for mode in ("always", "batch", "never")}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One quick run of bench_audit.py --json, shared by the tests below."""
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_audit.py"),
            "--quick",
            "--json",
            "--dir",
            str(tmp_path_factory.mktemp("bench")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_every_sink_and_mode_is_measured_beside_its_baseline(result: Any) -> None:
    """One row per sink and fsync mode, each with its baseline's rate and the ratio."""
    rows = {row["contender"]: row for row in result["rows"]}
    assert set(rows) == HANDRAIL_ROWS | BASELINE_ROWS | {"handrail memory"}
    for name in HANDRAIL_ROWS:
        row = rows[name]
        assert row["records_per_s"] > 0
        assert row["baseline_records_per_s"] == rows[f"baseline {row['fsync']}"]["records_per_s"]
        assert row["ratio_vs_baseline"] > 0
        assert row["target"]
    assert result["figures"]["batched_jsonl_records_per_s"] > 0


def test_every_log_written_verifies(result: Any) -> None:
    """The correctness check: each log holds every record appended, and verifies."""
    assert set(result["verified"]) == {n.removeprefix("handrail ") for n in HANDRAIL_ROWS} | {
        "memory"
    }
    assert all(result["verified"].values())
    assert result["agreed"] is True


def test_quick_runs_judge_no_target(result: Any) -> None:
    """--quick figures are meaningless, so no target is passed or failed on them."""
    assert result["quick"] is True
    assert result["passed"] is None
    assert all(row["passed"] is None for row in result["rows"])
