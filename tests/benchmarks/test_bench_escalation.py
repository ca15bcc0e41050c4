"""bench_escalation.py runs its three parts and checks the workers neither double-fire nor lose.

A smoke test only: ``--quick`` figures mean nothing, so no timing is
asserted (performance is never a timed unit test).  What is asserted holds
at any speed: the JSON shape, that every timed tick fired exactly the cases
due, and that four workers on one PostgreSQL store fired each case once.
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
def result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One quick run of bench_escalation.py --json, shared by the tests below."""
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_escalation.py"),
            "--quick",
            "--json",
            "--dir",
            str(tmp_path_factory.mktemp("bench")),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr + completed.stdout
    return json.loads(completed.stdout)


def test_every_part_is_measured(result: Any) -> None:
    """Two tick rows and their ratio, open+approve for both stores, and the worker row."""
    sizes = result["sizes"]
    big, due = f"{sizes['open']:,}", f"{sizes['due']:,}"
    rows = {row["measurement"]: row for row in result["rows"]}
    assert set(rows) == {
        f"sqlite tick, {due} due of {big} open",
        f"sqlite tick, {due} due of {due} open",
        f"{big} open over {due} open",
        "sqlite open + approve",
        "postgres open + approve",
        f"postgres, {sizes['workers']} workers, {sizes['worker_due']:,} due",
    }
    assert result["postgres"] == "ran"
    assert all(row["value"] > 0 for row in rows.values())
    assert rows[f"{big} open over {due} open"]["target"] == "<= 2x"
    ticks = result["figures"]["ticks"]
    assert ticks["open"] == {"big": sizes["open"], "small": sizes["due"]}
    assert len(ticks["samples_ms"]["big"]) == len(ticks["samples_ms"]["small"]) == sizes["rounds"]
    for store in ("sqlite_cases", "postgres_cases"):
        assert set(result["figures"][store]) == {"cases_per_s", "opens_per_s", "decides_per_s"}


def test_every_timed_tick_fired_exactly_the_due_cases(result: Any) -> None:
    """The tick rows time the work they claim to: each fired every due case, and no other."""
    assert result["figures"]["ticks"]["fired_all_due"] is True


def test_workers_fire_each_case_once(result: Any) -> None:
    """The correctness check: no double fire, no lost case, each notice sent once, no errors."""
    workers = result["figures"]["workers"]
    assert workers["fired"] == workers["cases"] == workers["due"]
    assert workers["double_fires"] == workers["lost"] == 0
    assert workers["notices_sent"] == workers["due"]
    assert workers["notices_sent_twice"] == workers["notices_pending"] == 0
    assert workers["errors"] == {}
    # The histories name a worker for every move, and agree with what the workers reported.
    assert workers["moved_by_worker_in_histories"] == {
        name: fired for name, fired in workers["fired_by_worker"].items() if fired
    }
    assert result["agreed"] is True


def test_quick_runs_judge_no_target(result: Any) -> None:
    """--quick figures are meaningless, so no target is passed or failed on them."""
    assert result["quick"] is True
    assert result["passed"] is None
    assert all(row["passed"] is None for row in result["rows"])
