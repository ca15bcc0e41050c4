"""The benchmarks run and report every contender.

Smoke tests only: ``--quick`` figures mean nothing, so no timing is asserted
here (performance is never a timed unit test).  What is asserted holds at
any speed: the JSON shape, and that handrail and pycasbin agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("casbin")  # the bench extra

ROOT = Path(__file__).resolve().parents[2]
CONTENDERS = {
    "floor",
    "handrail",
    "handrail, 1,000 rules",
    "pycasbin",
    "pycasbin (indexed)",
    "bare function",
    "@requires_permission",
    "10,000 wildcard rules, cached name",
    "10,000 wildcard rules, first-seen name",
}
JUDGED = {
    "handrail",
    "handrail, 1,000 rules",
    "pycasbin",
    "pycasbin (indexed)",
    "@requires_permission",
    "10,000 wildcard rules, first-seen name",
}


def run_json(script: str) -> Any:
    """Run a benchmark script with ``--quick --json``; return its parsed output."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def policy_result() -> Any:
    """One quick run of bench_policy.py, shared by the tests below."""
    return run_json("bench_policy.py")


def test_bench_policy_reports_every_contender(policy_result: Any) -> None:
    """bench_policy.py --json prints one document with a positive median for every contender."""
    rows = {row["contender"]: row for row in policy_result["rows"]}
    assert set(rows) == CONTENDERS
    for row in rows.values():
        assert row["median_ns"] > 0
        assert row["ratio_vs_floor"] > 0
    assert {name for name, row in rows.items() if row["target"]} == JUDGED
    assert set(policy_result["figures"]) >= {
        "decision_ns",
        "pycasbin_over_handrail",
        "rules_1000_over_100",
        "decorator_added_ns",
        "first_seen_over_cached",
    }


def test_quick_runs_judge_no_target(policy_result: Any) -> None:
    """--quick figures are meaningless, so no target is passed or failed on them."""
    assert policy_result["quick"] is True
    assert policy_result["passed"] is None
    assert all(row["passed"] is None for row in policy_result["rows"])


def test_handrail_and_pycasbin_agree(policy_result: Any) -> None:
    """Both engines allow and deny the same benchmark and grid requests: they enforce one policy."""
    agreement = policy_result["agreement"]
    assert agreement["pycasbin"] == agreement["pycasbin (indexed)"] == agreement["requests"]
    assert agreement["grid_agreed"] == agreement["grid"]
    # First-seen names decide as the same names do once cached.
    assert agreement["first_seen_agreed"] == 1
    # The mixes exercise both outcomes, or agreement would prove little.
    assert 0 < agreement["allowed"] < agreement["requests"]
    assert 0 < agreement["grid_allowed"] < agreement["grid"]
    assert policy_result["agreed"] is True


def test_run_collects_every_benchmark() -> None:
    """run.py --json prints one document holding each bench module's result under its name."""
    result = run_json("run.py")
    assert set(result) == {"benchmarks"}
    assert "policy" in result["benchmarks"]
    policy = result["benchmarks"]["policy"]
    assert {row["contender"] for row in policy["rows"]} == CONTENDERS
    # The same-run ratio targets are in the one document too, none judged in --quick.
    for name in ("audit", "connector", "guard", "import"):
        targets = result["benchmarks"][name]["targets"]
        assert targets, name
        assert all(t["unit"] == "x" and t["passed"] is None for t in targets), name


def test_telemetry_benchmark_reports_overhead() -> None:
    """bench_telemetry --quick reports the bare, no-SDK and SDK medians and judges nothing."""
    result = run_json("bench_telemetry.py")
    assert set(result["medians_ns"]) == {
        "bare call",
        "instrumented, no SDK",
        "instrumented, SDK in memory",
    }
    assert "no_sdk_added_ns" in result["figures"]
    assert result["passed"] is None
