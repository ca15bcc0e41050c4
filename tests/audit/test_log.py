"""AuditLog: opening, appending in each fsync mode, reading, recovering, closing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from handrail.audit import (
    AuditEntry,
    AuditError,
    AuditIntegrityError,
    AuditLog,
    MemorySink,
    Outcome,
)
from handrail.audit._record import prepare
from handrail.audit._redact import PartRedactor
from handrail.audit._reopen import RECOVERED_ACTION
from handrail.audit._writer import Writer
from handrail.redaction import Redactor
from handrail.testing import FakeClock

from .conftest import BOT, decide, fill


@pytest.fixture(params=["jsonl", "sqlite"])
def path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A log path for each file sink."""
    return tmp_path / ("audit.jsonl" if request.param == "jsonl" else "audit.db")


@pytest.mark.parametrize("fsync", ["always", "batch", "never"])
def test_each_fsync_mode_stores_every_record(path: Path, fsync: str) -> None:
    """Whatever the mode, closing the log leaves every record stored, verified, in order."""
    with AuditLog.open(path, fsync=fsync) as log:  # type: ignore[arg-type]
        records = fill(log, 7)
    with AuditLog.open(path, read_only=True) as log:
        assert log.verify().count == 7
        assert list(log.records()) == records


def test_open_picks_the_sink_by_file(tmp_path: Path) -> None:
    """SQLite for .db/.sqlite names or an SQLite file, whatever its name; JSONL otherwise."""
    for name, kind in [("a.jsonl", "JSONLSink"), ("b.db", "SQLiteSink"), ("c.log", "JSONLSink")]:
        with AuditLog.open(tmp_path / name) as log:
            assert type(log.sink).__name__ == kind
    (tmp_path / "b.db").rename(tmp_path / "b.audit")
    with AuditLog.open(tmp_path / "b.audit", read_only=True) as log:
        assert type(log.sink).__name__ == "SQLiteSink"


def test_batch_mode_writes_when_a_batch_is_full(tmp_path: Path) -> None:
    """In batch mode records wait in memory until batch_records of them are due."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path, batch_records=3, batch_interval=dt.timedelta(hours=1)) as log:
        fill(log, 2)
        assert path.read_bytes() == b""
        fill(log, 1, start=2)
        assert path.read_bytes().count(b"\n") == 3
        fill(log, 1, start=3)
        log.flush()
        assert path.read_bytes().count(b"\n") == 4


class SyncSpy(MemorySink):
    """A memory sink that signals each sync, so a test can wait for one without sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.synced = threading.Event()

    def sync(self) -> None:
        self.synced.set()


def test_batch_mode_writes_within_the_interval_when_idle() -> None:
    """A background flusher writes a part-filled batch once batch_interval has passed."""
    sink = SyncSpy()
    with AuditLog(sink, batch_records=1000, batch_interval=dt.timedelta(milliseconds=20)) as log:
        log.append(AuditEntry.for_decision(decide()))
        assert sink.synced.wait(timeout=10)
        assert sink.getvalue().count(b"\n") == 1


class SlowSyncSink(MemorySink):
    """A memory sink whose sync takes 0.5 s of a fake clock, with a record appended meanwhile."""

    def __init__(self, now: list[float], during_sync: list[Callable[[], object]]) -> None:
        super().__init__()
        self.now = now
        self.during_sync = during_sync

    def sync(self) -> None:
        start = self.now[0]
        self.now[0] = start + 0.1
        while self.during_sync:
            self.during_sync.pop()()
        self.now[0] = start + 0.5


def test_a_batch_is_due_an_interval_after_its_first_record_however_long_a_flush_takes() -> None:
    """The flusher's next wake-up is the oldest buffered record's append plus batch_interval."""
    now = [10.0]
    during_sync: list[Callable[[], object]] = []
    sink = SlowSyncSink(now, during_sync)
    # The test plays the flusher thread: it asks when the batch is due, and flushes.
    writer = Writer(sink, "batch", 1000, 0.2, monotonic=lambda: now[0], background=False)
    redaction = PartRedactor(Redactor())

    def append() -> None:
        entry = AuditEntry(action="a.b", agent="bot", outcome="executed")
        writer.append(prepare(redaction, entry), FakeClock())

    try:
        assert writer.next_flush_at() is None
        append()  # at 10.0
        assert writer.next_flush_at() == pytest.approx(10.2)
        now[0] = 10.2
        during_sync.append(append)  # arrives at 10.3, while the first batch is fsynced
        writer.flush(sync=False)  # ends at 10.7
        assert now[0] == pytest.approx(10.7)
        assert writer.next_flush_at() == pytest.approx(10.5)  # not 10.7 + 0.2
        writer.flush(sync=False)
        assert writer.next_flush_at() is None
        assert sink.getvalue().count(b"\n") == 2
    finally:
        writer.close()


def test_always_and_never_write_before_append_returns(tmp_path: Path) -> None:
    """always and never hand each record to the OS before append returns."""
    for fsync in ("always", "never"):
        path = tmp_path / f"{fsync}.jsonl"
        with AuditLog.jsonl(path, fsync=fsync) as log:  # type: ignore[arg-type]
            fill(log, 2)
            assert path.read_bytes().count(b"\n") == 2


def test_reopening_continues_the_chain(path: Path) -> None:
    """A reopened log takes its seq and prev_hash from the last record stored."""
    with AuditLog.open(path) as log:
        first = fill(log, 3)
    with AuditLog.open(path) as log:
        second = fill(log, 2, start=3)
    assert second[0].seq == 3
    assert second[0].prev_hash == first[-1].hash
    with AuditLog.open(path, read_only=True) as log:
        assert log.verify().count == 5


def test_a_tampered_log_is_never_extended(path: Path) -> None:
    """Opening a log that fails verification raises AuditIntegrityError and writes nothing."""
    with AuditLog.open(path) as log:
        fill(log, 3)
    _tamper(path)
    with pytest.raises(AuditIntegrityError, match="was edited") as caught:
        AuditLog.open(path)
    assert (caught.value.kind, caught.value.index) == ("edited", 1)
    with AuditLog.open(path, read_only=True) as log:
        assert log.verify().count == 1


def test_verify_on_open_false_checks_only_the_last_record(tmp_path: Path) -> None:
    """Skipping the full check still refuses to chain from a last record that fails."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path) as log:
        fill(log, 3)
    _tamper(path)  # record #1
    with AuditLog.jsonl(path, verify_on_open=False) as log:
        assert log.append(AuditEntry.for_decision(decide())).seq == 3
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1].replace(b'"attempts":1', b'"attempts":2'))
    with pytest.raises(AuditIntegrityError, match="record #3, the last, fails verification"):
        AuditLog.jsonl(path, verify_on_open=False)


def _tamper(path: Path) -> None:
    """Change record #1's attempts in place, in either kind of store."""
    if path.suffix == ".jsonl":
        lines = path.read_bytes().splitlines(keepends=True)
        lines[1] = (
            lines[1]
            .replace(b'"attempts":1', b'"attempts":5', 1)
            .replace(b'"attempts":3', b'"attempts":5', 1)
        )
        path.write_bytes(b"".join(lines))
        return
    import sqlite3

    with sqlite3.connect(path) as db:
        (record,) = db.execute("SELECT record FROM audit_records WHERE position = 2").fetchone()
        fields = json.loads(record)
        assert fields["seq"] == 1
        db.execute(
            "UPDATE audit_records SET record = ? WHERE position = 2",
            (record.replace('"attempts":1', '"attempts":5'),),
        )
    db.close()


def test_a_torn_tail_is_set_aside_and_recorded_on_reopening(tmp_path: Path) -> None:
    """The torn bytes move to <path>.torn; a recovery record names their size and hash."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path) as log:
        fill(log, 3)
    torn = b'{"action":"billing.invoice.upd'
    with path.open("ab") as file:
        file.write(torn)
    with AuditLog.jsonl(path, read_only=True) as log:
        assert log.verify().kind == "torn"
    with capture_logs() as logs, AuditLog.jsonl(path) as log:
        record = fill(log, 1, start=3)[0]
    assert (tmp_path / "audit.jsonl.torn").read_bytes() == torn
    with AuditLog.jsonl(path, read_only=True) as log:
        assert log.verify().count == 5
        (marker,) = log.records(action=RECOVERED_ACTION)
    assert marker.seq == 3
    assert record.seq == 4
    assert marker.outcome is Outcome.FAILED
    assert marker.agent == "handrail"
    assert marker.args["torn_bytes"] == len(torn)
    assert marker.args["sidecar"] == str(tmp_path / "audit.jsonl.torn")
    assert marker.error_type == "handrail.audit.TornWrite"
    assert [entry["event"] for entry in logs] == ["handrail.audit.torn_tail"]
    assert logs[0]["log_level"] == "warning"


def test_a_torn_tail_prints_nothing_while_structlog_is_unconfigured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recovering a torn tail writes nothing to stdout or stderr until structlog is configured."""
    structlog.reset_defaults()
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path) as log:
        fill(log, 1)
    with path.open("ab") as file:
        file.write(b'{"action":"torn')
    with AuditLog.jsonl(path) as log:
        assert log.verify().count == 2  # the record and the recovery marker
    assert capsys.readouterr() == ("", "")


def test_a_second_writer_is_refused(path: Path) -> None:
    """Two writers would fork the chain: the second fails at once (JSONL) or on append (SQLite)."""
    with AuditLog.open(path) as first:
        fill(first, 1)
        first.flush()
        if path.suffix == ".jsonl":
            with pytest.raises(AuditError, match="already open for writing"):
                AuditLog.open(path)
        else:
            with AuditLog.open(path, fsync="always") as second:
                fill(first, 1, start=1)
                first.flush()
                with pytest.raises(AuditError, match="another writer appended"):
                    fill(second, 1)
        with AuditLog.open(path, read_only=True) as reader:  # readers are always welcome
            assert reader.verify().ok


def test_records_filter_by_action_agent_outcome_and_time() -> None:
    """records() yields, oldest first, the records matching every filter given."""
    clock = FakeClock()
    log = AuditLog.memory(clock=clock)
    for i in range(6):
        log.append(
            AuditEntry.of(
                BOT if i % 2 else BOT.model_copy(update={"agent": "mail-bot"}),
                ("crm.contact.read", "crm.contact.delete", "billing.invoice.update")[i % 3],
                "executed" if i < 4 else "failed",
            )
        )
        clock.advance(dt.timedelta(minutes=1))
    start = FakeClock().now()
    assert [r.seq for r in log.records(action="crm.*")] == [0, 1, 3, 4]
    assert [r.seq for r in log.records(action="*.delete")] == [1, 4]
    assert [r.seq for r in log.records(agent="mail-bot")] == [0, 2, 4]
    assert [r.seq for r in log.records(outcome="failed")] == [4, 5]
    since, until = start + dt.timedelta(minutes=2), start + dt.timedelta(minutes=4)
    assert [r.seq for r in log.records(since=since, until=until)] == [2, 3]
    assert [r.seq for r in log.records(action="crm.*", outcome=Outcome.FAILED)] == [4]
    with pytest.raises(ValueError, match="timezone-aware"):
        list(log.records(since=dt.datetime(2025, 1, 1)))


def test_records_report_a_torn_tail_after_the_complete_records(tmp_path: Path) -> None:
    """Reading a torn log yields every complete record, then raises AuditIntegrityError."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path) as log:
        fill(log, 2)
    with path.open("ab") as file:
        file.write(b'{"act')
    seen = []
    with (
        AuditLog.jsonl(path, read_only=True) as log,
        pytest.raises(AuditIntegrityError, match="torn") as caught,
    ):
        seen.extend(log.records())
    assert len(seen) == 2
    assert caught.value.kind == "torn"


def test_read_only_logs_refuse_appends(path: Path) -> None:
    """A read-only log never writes: appending raises AuditError."""
    with AuditLog.open(path) as log:
        fill(log, 1)
    with AuditLog.open(path, read_only=True) as log:
        with pytest.raises(AuditError, match="read-only"):
            log.append(AuditEntry.for_decision(decide()))
        assert log.checkpoint().count == 1


def test_a_missing_file_cannot_be_read(tmp_path: Path) -> None:
    """Opening a log that does not exist read-only is an AuditError naming the path."""
    for name in ("nothing.jsonl", "nothing.db"):
        with pytest.raises(AuditError, match="no such file"):
            AuditLog.open(tmp_path / name, read_only=True)


def test_closing_writes_the_batch_and_refuses_more(tmp_path: Path) -> None:
    """close() writes what is buffered; appending after it raises; closing twice is fine."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog.jsonl(path)
    fill(log, 2)
    log.close()
    log.close()
    assert path.read_bytes().count(b"\n") == 2
    with pytest.raises(AuditError, match="closed"):
        log.append(AuditEntry.for_decision(decide()))


def test_a_dropped_log_writes_its_batch(tmp_path: Path) -> None:
    """A log garbage-collected unclosed still writes what it buffered."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog.jsonl(path)
    fill(log, 2)
    del log
    import gc

    gc.collect()
    assert path.read_bytes().count(b"\n") == 2


class Failing(MemorySink):
    """A sink whose writes fail after ``ok`` appends."""

    def __init__(self, ok: int) -> None:
        super().__init__()
        self.ok = ok

    def append(self, lines: Sequence[bytes]) -> None:
        if self.ok <= 0:
            raise AuditError("disk full")
        self.ok -= 1
        super().append(lines)


def test_a_failed_write_stops_the_log() -> None:
    """After a write fails, every append raises until the log is reopened: no gap in the chain."""
    log = AuditLog(Failing(ok=2), fsync="always")
    fill(log, 2)
    with pytest.raises(AuditError, match="disk full"):
        fill(log, 1)
    with pytest.raises(AuditError, match="stopped after a failed write"):
        fill(log, 1)
    assert log.verify().count == 2


def test_a_failed_batch_is_raised_by_the_next_call() -> None:
    """A batch that cannot be written raises from flush; the log then refuses appends."""
    log = AuditLog(Failing(ok=0), fsync="batch", batch_records=1000)
    fill(log, 3)
    with pytest.raises(AuditError, match="disk full"):
        log.flush()
    with pytest.raises(AuditError, match="stopped after a failed write"):
        fill(log, 1)
    log.close()


def test_appends_from_many_threads_form_one_chain(tmp_path: Path) -> None:
    """Concurrent appends interleave into one valid chain with every record in it."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path, batch_records=7) as log:

        def work() -> None:
            for _ in range(50):
                log.append(AuditEntry.for_decision(decide()))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with AuditLog.jsonl(path, read_only=True) as log:
        assert log.verify().count == 200
        ids = [r.id for r in log.records()]
    assert ids == sorted(ids)


def test_async_appends(tmp_path: Path) -> None:
    """aappend appends like append, for entries built either way."""

    async def main(log: AuditLog) -> list[int]:
        one = await log.aappend(AuditEntry.of(BOT, "a.b", "executed"))
        two = await log.aappend(AuditEntry.for_decision(decide(), attempts=2))
        return [one.seq, two.seq, two.attempts]

    for fsync in ("always", "batch"):
        with AuditLog.jsonl(tmp_path / f"{fsync}.jsonl", fsync=fsync) as log:  # type: ignore[arg-type]
            assert asyncio.run(main(log)) == [0, 1, 2]


def test_bad_options_are_refused(tmp_path: Path) -> None:
    """fsync, batch_records and batch_interval are checked when the log is built."""
    with pytest.raises(ValueError, match="fsync must be one of"):
        AuditLog.memory().__class__(MemorySink(), fsync="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_records"):
        AuditLog.memory(batch_records=0)
    with pytest.raises(ValueError, match="batch_interval"):
        AuditLog.memory(batch_interval=dt.timedelta(0))


def test_repr_names_the_sink_and_mode(tmp_path: Path) -> None:
    """repr(log) says where the records go and how durably."""
    with AuditLog.jsonl(tmp_path / "a.jsonl", fsync="always") as log:
        assert repr(log) == f"AuditLog(JSONLSink({str(tmp_path / 'a.jsonl')!r}), fsync='always')"
