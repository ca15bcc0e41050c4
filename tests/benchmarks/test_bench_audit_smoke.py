"""bench_audit.py runs and reports every sink and fsync mode beside its baseline and structlog.

A smoke test only: ``--quick`` figures mean nothing, so no timing is
asserted (performance is never a timed unit test).  What is asserted holds
at any speed: the JSON shape, the table's rows, and that every log the
benchmark wrote verifies.
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
HANDRAIL_ROWS = {
    f"handrail {sink} {mode}"
    for sink in ("jsonl", "sqlite")
    for mode in ("always", "batch", "never")
}
BASELINE_ROWS = {f"baseline {mode}" for mode in ("always", "batch", "never")}
STRUCTLOG_ROW = "structlog JSONRenderer"
TARGETS = [
    ("batched JSONL over structlog JSONRenderer (records/s)", ">= 1.5x"),
    ("batched JSONL over a batched plain file (records/s)", ">= 0.5x"),
]


def run_bench(directory: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """One quick run of bench_audit.py with ``options``, its files in ``directory``."""
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_audit.py"),
            "--quick",
            *options,
            "--dir",
            str(directory),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One quick run of bench_audit.py --json, shared by the tests below."""
    completed = run_bench(tmp_path_factory.mktemp("bench"), "--json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_every_sink_and_mode_is_measured_beside_its_baseline(result: Any) -> None:
    """One row per sink and fsync mode, each with its baseline's rate and the ratio."""
    rows = {row["contender"]: row for row in result["rows"]}
    assert set(rows) == HANDRAIL_ROWS | BASELINE_ROWS | {"handrail memory", STRUCTLOG_ROW}
    for name in HANDRAIL_ROWS:
        row = rows[name]
        assert row["records_per_s"] > 0
        assert row["baseline_records_per_s"] == rows[f"baseline {row['fsync']}"]["records_per_s"]
        assert row["ratio_vs_baseline"] > 0
        # Batched JSONL is judged by the targets against structlog and the plain file.
        assert bool(row["target"]) is (name != "handrail jsonl batch")
    assert rows[STRUCTLOG_ROW]["records_per_s"] > 0
    assert result["figures"]["batched_jsonl_records_per_s"] > 0


def test_the_targets_are_same_run_ratios(result: Any) -> None:
    """Batched JSONL against structlog and against the plain file: each ratio of two medians."""
    rows = {row["contender"]: row["records_per_s"] for row in result["rows"]}
    targets = {t["name"]: t for t in result["targets"]}
    assert [(t["name"], t["target"]) for t in result["targets"]] == TARGETS
    batched = rows["handrail jsonl batch"]
    over_structlog = targets[TARGETS[0][0]]["measured"]
    over_plain = targets[TARGETS[1][0]]["measured"]
    assert over_structlog == pytest.approx(batched / rows[STRUCTLOG_ROW], rel=0.01)
    assert over_plain == pytest.approx(batched / rows["baseline batch"], rel=0.01)


def test_the_breakdown_times_every_stage(result: Any) -> None:
    """Redaction, encoding, hashing, ids and write are timed; the rest is the total minus them."""
    stages = result["breakdown_ns"]
    named = ("redaction", "encoding", "hashing", "ids", "write", "rest")
    assert set(stages) == {*named, "total"}
    # Timed directly (the others are differences of two timings: any sign in --quick).
    assert all(stages[name] > 0 for name in ("hashing", "write", "total"))
    assert abs(sum(stages[name] for name in named) - stages["total"]) <= 6  # each rounded


def test_the_table_prints_every_row_target_and_stage(tmp_path: Path) -> None:
    """The human table names every contender, both targets and the stages of the breakdown."""
    completed = run_bench(tmp_path)
    assert completed.returncode == 0, completed.stderr
    table = completed.stdout
    for name in HANDRAIL_ROWS | BASELINE_ROWS | {STRUCTLOG_ROW}:
        assert name in table
    for name, wanted in TARGETS:
        assert re.search(rf"{re.escape(name)}\s+[\d.]+x\s+{re.escape(wanted)}\s+-", table)
    stages = r"per batched JSONL append, ns .*redaction .*encoding .*hashing .*ids .*write .*rest"
    assert re.search(stages, table)


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
