"""The sinks on their own: what they store, how they lock, and what they refuse."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from handrail.audit import AuditError, AuditLog, JSONLSink, MemorySink, SQLiteSink

from .conftest import fill


def test_a_jsonl_log_is_one_record_per_line_private_to_its_owner(tmp_path: Path) -> None:
    """The file holds one JSON object per line and is created readable by its owner only."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path) as log:
        fill(log, 3)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3
    assert all(line.startswith(b'{"action":') for line in lines)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_sqlite_log_and_its_wal_and_shm_are_private_to_their_owner(tmp_path: Path) -> None:
    """The database, its -wal and its -shm are created 0600, like a JSONL log."""
    path = tmp_path / "audit.db"
    with AuditLog.sqlite(path) as log:
        fill(log, 3)
        log.flush()
        files = [path, tmp_path / "audit.db-wal", tmp_path / "audit.db-shm"]
        assert {f.name: stat.S_IMODE(os.stat(f).st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }


def test_an_existing_sqlite_log_keeps_its_mode(tmp_path: Path) -> None:
    """A database its owner made group-readable is not chmodded behind their back."""
    path = tmp_path / "audit.db"
    with AuditLog.sqlite(path) as log:
        fill(log, 1)
    path.chmod(0o640)
    with AuditLog.sqlite(path) as log:
        fill(log, 1, start=1)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_an_sqlite_sink_in_a_missing_directory_fails_clearly(tmp_path: Path) -> None:
    """A database in a directory that does not exist is an AuditError naming the path."""
    with pytest.raises(AuditError, match=r"missing/audit\.db: cannot create the audit database"):
        SQLiteSink(tmp_path / "missing" / "audit.db")


def test_jsonl_sink_sets_aside_only_a_torn_tail(tmp_path: Path) -> None:
    """set_aside_torn_tail moves bytes after the last newline, and does nothing without them."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"one\ntwo\nthr")
    sink = JSONLSink(path)
    try:
        tail = sink.set_aside_torn_tail()
        assert tail is not None
        assert (tail.size, tail.log_offset, tail.sidecar_offset) == (3, 8, 0)
        assert path.read_bytes() == b"one\ntwo\n"
        assert sink.set_aside_torn_tail() is None
        sink.append([b"x"])
        assert sink.set_aside_torn_tail() is not None
        assert (tmp_path / "audit.jsonl.torn").read_bytes() == b"thrx"
    finally:
        sink.close()


def test_a_read_only_jsonl_sink_never_writes(tmp_path: Path) -> None:
    """read_only takes no lock and refuses appends; the file must exist."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    sink = JSONLSink(path, read_only=True)
    with pytest.raises(AuditError, match="opened read-only"):
        sink.append([b"{}\n"])
    assert repr(sink) == f"JSONLSink({str(path)!r}, read_only=True)"
    with pytest.raises(AuditError, match="no such file"):
        JSONLSink(tmp_path / "missing.jsonl", read_only=True)


def test_a_jsonl_sink_in_a_missing_directory_fails_clearly(tmp_path: Path) -> None:
    """An unopenable path is an AuditError with the OS's reason."""
    with pytest.raises(AuditError, match="cannot open the audit log: No such file"):
        JSONLSink(tmp_path / "no" / "such" / "audit.jsonl")


def test_sqlite_records_are_rows_of_canonical_json(tmp_path: Path) -> None:
    """Each record is a row of the JSON a JSONL line holds, which json_extract can query."""
    path = tmp_path / "audit.db"
    with AuditLog.sqlite(path, fsync="always") as log:
        records = fill(log, 4)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = db.execute(
            "SELECT json_extract(record, '$.action') FROM audit_records ORDER BY position"
        ).fetchall()
        (first,) = db.execute("SELECT record FROM audit_records WHERE position = 1").fetchone()
    db.close()
    assert [action for (action,) in rows] == [r.action for r in records]
    assert first == records[0].to_json()


def test_a_read_only_sqlite_sink_never_writes(tmp_path: Path) -> None:
    """read_only opens the database in SQLite's read-only mode and refuses appends."""
    path = tmp_path / "audit.db"
    with AuditLog.sqlite(path) as log:
        fill(log, 1)
    sink = SQLiteSink(path, read_only=True)
    with pytest.raises(AuditError, match="opened read-only"):
        sink.append([b"{}\n"])
    assert len(list(sink.read())) == 1
    sink.close()
    with pytest.raises(AuditError, match="no such file"):
        SQLiteSink(tmp_path / "missing.db", read_only=True)


def test_an_sqlite_file_that_is_not_an_audit_log_is_refused(tmp_path: Path) -> None:
    """A database without the audit table cannot be read as a log."""
    path = tmp_path / "other.db"
    sqlite3.connect(path).close()
    with pytest.raises(AuditError, match="cannot read the audit database"):
        SQLiteSink(path, read_only=True)


def test_sqlite_sink_refuses_an_unknown_fsync_mode(tmp_path: Path) -> None:
    """fsync must be always, batch or never."""
    with pytest.raises(ValueError, match="fsync must be one of"):
        SQLiteSink(tmp_path / "a.db", fsync="often")  # type: ignore[arg-type]


def test_sqlite_never_mode_syncs_by_checkpointing(tmp_path: Path) -> None:
    """flush() on a never-mode SQLite log checkpoints the WAL into the database."""
    path = tmp_path / "audit.db"
    with AuditLog.sqlite(path, fsync="never") as log:
        fill(log, 3)
        log.flush()
        assert repr(log.sink) == f"SQLiteSink({str(path)!r}, fsync='never')"


def test_a_memory_sink_can_start_from_bytes() -> None:
    """MemorySink(data) reads as the log those bytes hold; getvalue returns them."""
    log = AuditLog.memory()
    fill(log, 2)
    data = log.sink.getvalue()  # type: ignore[attr-defined]
    copy = AuditLog(MemorySink(data), read_only=True)
    assert copy.verify().count == 2
    assert copy.path is None
    log.close()
    with pytest.raises(AuditError, match="closed"):
        log.sink.append([b"x\n"])
