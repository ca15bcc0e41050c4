"""bench_guard.py runs, reports every contender and both ratio targets, and checks its logs.

A smoke test only: ``--quick`` figures mean nothing, so no timing is
asserted (performance is never a timed unit test).  What is asserted holds
at any speed: the JSON shape, the table's rows, and that both audit logs
verify with one record per call.
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
CONTENDERS = [
    "guarded call",
    "audit append alone",
    "bare function",
    "@requires_permission",
    "policy.evaluate",
]
TARGETS = [
    ("guarded call over one audit append", "<= 1.5x"),
    ("@requires_permission added over one policy.evaluate", "<= 3x"),
]


def run_bench(directory: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """One quick run of bench_guard.py with ``options``, its files in ``directory``."""
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_guard.py"),
            "--quick",
            *options,
            "--dir",
            str(directory),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One quick run of bench_guard.py --json, shared by the tests below."""
    completed = run_bench(tmp_path_factory.mktemp("bench"), "--json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_every_contender_is_measured(result: Any) -> None:
    """One row per contender, each with a positive median and one sample per round."""
    assert [row["contender"] for row in result["rows"]] == CONTENDERS
    assert all(row["median_ns"] > 0 for row in result["rows"])
    samples = result["figures"]["samples_ns"]
    assert all(len(samples[name]) == result["repetitions"] for name in CONTENDERS)
    assert result["opentelemetry_sdk"] is False


def test_the_targets_are_ratios_of_the_same_run(result: Any) -> None:
    """Guard over append, and decorator-added over evaluate, from this run's medians."""
    ns = {row["contender"]: row["median_ns"] for row in result["rows"]}
    assert [(t["name"], t["target"]) for t in result["targets"]] == TARGETS
    guard, decorator = result["targets"]
    assert guard["measured"] == pytest.approx(
        ns["guarded call"] / ns["audit append alone"], rel=0.01
    )
    added = ns["@requires_permission"] - ns["bare function"]
    assert decorator["measured"] == pytest.approx(added / ns["policy.evaluate"], rel=0.01)


def test_both_logs_verify_and_quick_runs_judge_nothing(result: Any) -> None:
    """The correctness check holds; --quick figures pass or fail no target."""
    assert result["verified"] == {"guarded call": True, "audit append alone": True}
    assert result["agreed"] is True
    assert result["passed"] is None
    assert all(t["passed"] is None for t in result["targets"])


def test_the_table_prints_every_row_and_target(tmp_path: Path) -> None:
    """The human table names each contender and each target with its ratio."""
    completed = run_bench(tmp_path)
    assert completed.returncode == 0, completed.stderr
    for name in CONTENDERS:
        assert re.search(rf"^{re.escape(name)}\s+[\d,]+$", completed.stdout, re.MULTILINE)
    for name, wanted in TARGETS:
        ratio = rf"{re.escape(name)}\s+[\d.]+x\s+{re.escape(wanted)}\s+-"
        assert re.search(ratio, completed.stdout)
