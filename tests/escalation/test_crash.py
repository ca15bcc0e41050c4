"""Crash safety: a real worker process is killed with SIGKILL at random moments, restarted, and
the store, the timers and the audit trail come back whole."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from handrail.audit import AuditLog
from handrail.escalation import Escalation, EscalationStore
from handrail.escalation._sqlite import SQLiteStore
from handrail.testing import FakeClock, PostgresServer

from ._crash_worker import make_router, open_store

WORKER = Path(__file__).with_name("_crash_worker.py")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)  # each run of the worker starts a year after the last


def seeded() -> random.Random:
    """Fresh kill timings each run; the seed is printed so a failure can be replayed."""
    seed = random.randrange(2**32)
    print(f"crash test seed: {seed}")
    return random.Random(seed)


def run_and_kill(
    kind: str, target: str, schema: str, workdir: Path, rounds: int, rng: random.Random
) -> None:
    """Start the worker ``rounds`` times, each time killing it with SIGKILL at a random moment."""
    for round_number in range(rounds):
        start = T0 + round_number * YEAR
        with (workdir / "worker.err").open("w") as errors:
            worker = subprocess.Popen(
                [sys.executable, str(WORKER), kind, target, schema, str(workdir),
                 start.isoformat(), str(rng.random())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )  # fmt: skip
            assert worker.stdout is not None
            ready = worker.stdout.readline()
            try:
                assert ready == "ready\n", (workdir / "worker.err").read_text()
                worker.wait(timeout=rng.uniform(0.02, 0.5))
            except subprocess.TimeoutExpired:
                pass  # still running, as it should be: now kill it wherever it is
            finally:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                worker.stdout.close()
        assert worker.returncode == -signal.SIGKILL, (workdir / "worker.err").read_text()


def created_ids(workdir: Path) -> list[str]:
    lines = (workdir / "progress.log").read_text().splitlines()
    return [line.removeprefix("created ") for line in lines if line.startswith("created ")]


def check_timers_fired_once(escalations: list[Escalation]) -> None:
    """Per escalation, each deadline of each level breached at most once, levels in order."""
    for e in escalations:
        breaches = Counter(
            (event.level, event.reason.split(" ", 1)[0])
            for event in e.history
            if event.kind == "breached"
        )
        assert set(breaches.values()) <= {1}, e.history
        assert [event.level for event in e.history if event.kind == "escalated"] == list(
            range(1, e.level + 1)
        )
        warned = Counter(event.level for event in e.history if event.kind == "warned")
        assert set(warned.values()) <= {1}, e.history
        times = [event.at for event in e.history]
        assert times == sorted(times)


def check_recovery(
    opener: Callable[[], EscalationStore], workdir: Path, rounds: int
) -> list[Escalation]:
    """Restart cleanly after the last kill and check what the crashes left behind."""
    created = created_ids(workdir)
    assert created, "the worker never opened an escalation: kill later"
    store = opener()
    try:
        # No escalation lost: every id the worker saw committed is there.
        missing = [escalation_id for escalation_id in created if store.get(escalation_id) is None]
        assert missing == []
        check_timers_fired_once(store.list())

        # A clean restart, later than every run, processes everything due.
        clock = FakeClock(T0 + rounds * YEAR)
        with AuditLog.open(workdir / "audit.jsonl") as audit:
            router = make_router(store, workdir, clock, audit)
            router.tick()
            now = clock.now()
            escalations = store.list()
            overdue = [
                e.id
                for e in escalations
                if not e.is_terminal and e.next_due is not None and e.next_due <= now
            ]
            assert overdue == []
            assert store.pending_deliveries() == []
            check_timers_fired_once(escalations)

            # Every transition reached the audit trail at least once; the chain verifies.
            assert audit.verify().ok
            audited = {
                (r.escalation_id, r.context.get("event"), r.context.get("event_at"))
                for r in audit.records()
            }
        unaudited = [
            (e.id, event.kind, event.at.isoformat())
            for e in escalations
            for event in e.history
            if event.kind != "executed" and (e.id, event.kind, event.at.isoformat()) not in audited
        ]
        assert unaudited == []

        # Every case's opening notice was delivered at least once.
        noticed = set((workdir / "notices.log").read_text().splitlines())
        assert [e.id for e in escalations if f"{e.id}:0" not in noticed] == []
        return escalations
    finally:
        store.close()


def test_sqlite_survives_sigkill(tmp_path: Path) -> None:
    """Killed mid-flight six times, the SQLite store loses nothing, fires no timer twice, and
    a clean restart catches up; the file passes SQLite's integrity check."""
    rng = seeded()
    path = tmp_path / "escalations.db"
    run_and_kill("sqlite", str(path), "-", tmp_path, rounds=6, rng=rng)
    escalations = check_recovery(lambda: SQLiteStore(path), tmp_path, rounds=6)
    assert len(escalations) >= len(created_ids(tmp_path))
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    connection.close()
    SQLiteStore(path, create=False).close()


def test_postgres_survives_sigkill(tmp_path: Path, postgres_server: PostgresServer) -> None:
    """The same over PostgreSQL: a connection killed mid-transaction leaves no trace."""
    rng = seeded()
    url = postgres_server.url
    schema = f"crash_{uuid.uuid4().hex[:12]}"
    run_and_kill("postgres", url, schema, tmp_path, rounds=4, rng=rng)
    check_recovery(lambda: open_store("postgres", url, schema), tmp_path, rounds=4)
