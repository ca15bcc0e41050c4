"""Failing closed: a log that cannot keep a record says so before the call, not after.

``AuditLog.ensure_writable`` is what a guard asks before it runs a write;
these tests break real sinks (a full disk, a custom sink that raises) and
check that the log then refuses every append and says why.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from handrail.audit import AuditEntry, AuditError, AuditLog, JSONLSink, MemorySink

from .conftest import BOT

HOUR = dt.timedelta(hours=1)
ENTRY = AuditEntry.of(BOT, "crm.contact.update", "executed", args={"phone": "+1"})


def fill_the_disk(log: AuditLog) -> None:
    """Point the JSONL sink's file descriptor at /dev/full: every write fails with ENOSPC."""
    sink = log.sink
    assert isinstance(sink, JSONLSink)
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, sink._fd)  # type: ignore[arg-type]
    finally:
        os.close(full)


needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def test_a_log_that_can_write_says_nothing() -> None:
    """ensure_writable returns quietly while appends would be accepted."""
    log = AuditLog.memory()
    log.ensure_writable()
    log.append(ENTRY)
    log.ensure_writable()


def test_a_closed_log_is_not_writable(tmp_path: Path) -> None:
    """After close, ensure_writable raises AuditError saying the log is closed."""
    log = AuditLog.jsonl(tmp_path / "audit.jsonl")
    log.close()
    with pytest.raises(AuditError, match=r"audit\.jsonl: the audit log is closed"):
        log.ensure_writable()


def test_a_read_only_log_is_not_writable(tmp_path: Path) -> None:
    """A log opened read-only is never writable, and says so."""
    path = tmp_path / "audit.jsonl"
    AuditLog.jsonl(path).close()
    with (
        AuditLog.jsonl(path, read_only=True) as log,
        pytest.raises(AuditError, match="open read-only"),
    ):
        log.ensure_writable()


@needs_dev_full
@pytest.mark.parametrize("fsync", ["always", "never"])
def test_after_a_full_disk_the_log_is_not_writable(fsync: str, tmp_path: Path) -> None:
    """A write that fails (ENOSPC) stops the log: ensure_writable names that failure."""
    with AuditLog.jsonl(tmp_path / "audit.jsonl", fsync=fsync) as log:  # type: ignore[arg-type]
        log.append(ENTRY)
        fill_the_disk(log)
        with pytest.raises(AuditError, match="No space left on device"):
            log.append(ENTRY)
        with pytest.raises(AuditError, match=r"failed write .*No space left on device"):
            log.ensure_writable()
        with pytest.raises(AuditError, match="stopped after a failed write"):
            log.append(ENTRY)
    with AuditLog.jsonl(tmp_path / "audit.jsonl", read_only=True) as log:
        assert log.verify().count == 1


@needs_dev_full
def test_after_a_batch_fails_the_log_is_not_writable(tmp_path: Path) -> None:
    """In batch mode the failure comes when the batch is written; from then on, refusal."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path, fsync="batch", batch_records=3, batch_interval=HOUR) as log:
        log.append(ENTRY)
        fill_the_disk(log)
        log.append(ENTRY)
        log.ensure_writable()  # nothing has been written yet: no failure to know of
        with pytest.raises(AuditError, match="No space left on device"):
            log.append(ENTRY)  # the batch is full: written now, and fails
        with pytest.raises(AuditError, match=r"failed write .*No space left on device"):
            log.ensure_writable()


class BrokenSink(MemorySink):
    """A user's sink that fails with its own exception, not an AuditError."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def append(self, lines: Sequence[bytes]) -> None:
        if self.broken:
            raise OSError(28, "the bucket is full")
        super().append(lines)


@pytest.mark.parametrize("fsync", ["always", "batch"])
def test_any_exception_from_a_sink_stops_the_log(fsync: str) -> None:
    """A sink's own exception becomes an AuditError (the cause kept) and stops the log."""
    sink = BrokenSink()
    log = AuditLog(sink, fsync=fsync)  # type: ignore[arg-type]
    log.append(ENTRY)
    log.flush()
    sink.broken = True
    failed = r"failed: OSError: .*the bucket is full"
    if fsync == "always":
        with pytest.raises(AuditError, match=failed) as caught:
            log.append(ENTRY)
    else:
        log.append(ENTRY)  # buffered
        with pytest.raises(AuditError, match=failed) as caught:
            log.flush()
    assert isinstance(caught.value.__cause__, OSError)
    sink.broken = False  # even if the sink recovers, the chain may have a hole: stay stopped
    with pytest.raises(AuditError, match=r"failed write .*the bucket is full"):
        log.ensure_writable()
    with pytest.raises(AuditError, match="stopped after a failed write"):
        log.append(ENTRY)
    assert log.verify().count == 1


class Untouchable(MemorySink):
    """A sink that notes whether anything was asked of it while ``watched``."""

    watched = False
    touched = False

    def append(self, lines: Sequence[bytes]) -> None:
        self.touched |= self.watched
        super().append(lines)

    def sync(self) -> None:
        self.touched |= self.watched

    def read(self) -> Iterator[bytes]:
        self.touched |= self.watched
        return super().read()


def test_ensure_writable_does_no_io() -> None:
    """ensure_writable only looks at the log's state: the sink is never called."""
    sink = Untouchable()
    with AuditLog(sink, fsync="always") as log:
        log.append(ENTRY)
        sink.watched = True
        for _ in range(100):
            log.ensure_writable()
        assert not sink.touched
        log.append(ENTRY)  # the spy sees what does I/O
        assert sink.touched


class ThreadSpy(MemorySink):
    """A memory sink that notes the thread of every write and sync."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[tuple[str, int]] = []

    def append(self, lines: Sequence[bytes]) -> None:
        self.threads.append(("append", threading.get_ident()))
        super().append(lines)

    def sync(self) -> None:
        self.threads.append(("sync", threading.get_ident()))


@pytest.mark.parametrize("fsync", ["always", "batch"])
def test_aappend_never_writes_or_fsyncs_on_the_event_loop(fsync: str) -> None:
    """With fsync always or batch, the sink is written and synced off the loop's thread,
    including when a batch fills during an aappend."""
    sink = ThreadSpy()

    async def main() -> int:
        # An interval of an hour: only a full batch is written while the test runs.
        log = AuditLog(sink, fsync=fsync, batch_records=2, batch_interval=HOUR)  # type: ignore[arg-type]
        try:
            for _ in range(4):
                await log.aappend(ENTRY)
        finally:
            sink.threads_before_close = list(sink.threads)  # type: ignore[attr-defined]
            log.close()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    written = sink.threads_before_close  # type: ignore[attr-defined]
    assert [kind for kind, _ in written].count("append") == (4 if fsync == "always" else 2)
    assert all(thread != loop_thread for _, thread in written)
    assert sink.getvalue().count(b"\n") == 4
