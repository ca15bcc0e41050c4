"""Reading records back from hostile lines: a typed corrupt-record error naming file and line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from handrail import Principal
from handrail.audit import AuditEntry, AuditIntegrityError, AuditLog

BOT = Principal(agent="billing-bot")


def good_line(tmp_path: Path) -> dict[str, Any]:
    """The fields of one real record, to make hostile variants of."""
    path = tmp_path / "seed.jsonl"
    with AuditLog.jsonl(path) as log:
        log.append(AuditEntry.of(BOT, "crm.contact.update", "shadowed"))
    fields: dict[str, Any] = json.loads(path.read_bytes())
    return fields


def log_of(tmp_path: Path, *lines: bytes) -> Path:
    """A JSONL log holding exactly ``lines`` (each given its newline)."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def read_all(path: Path, **filters: Any) -> list[Any]:
    with AuditLog.open(path, read_only=True) as log:
        return list(log.records(**filters))


def with_field(fields: dict[str, Any], name: str, value: Any) -> bytes:
    changed = {**fields, name: value}
    return json.dumps(changed).encode()


HOSTILE_LINES: list[tuple[str, Any, str]] = [
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "nests too deeply"),
    ("a number of 5000 digits", b'{"seq": ' + b"9" * 5000 + b"}", "a number too long"),
    ("not UTF-8", b'{"action": "\xff\xfe"}', "not UTF-8"),
    ("not JSON", b"hello", "not JSON"),
    ("an array", b"[1, 2]", "not a JSON object but an array"),
    ("a quarantined record", b'{"id": "q1", "connector": "crm", "raw": {}}', "no 'action' field"),
]


@pytest.mark.parametrize(("what", "line", "says"), HOSTILE_LINES, ids=[h[0] for h in HOSTILE_LINES])
def test_a_first_line_that_is_no_record_says_the_file_is_not_an_audit_log(
    tmp_path: Path, what: str, line: bytes, says: str
) -> None:
    """Deep JSON, huge numbers, bad UTF-8, other files' lines: one typed error naming file:line."""
    path = log_of(tmp_path, line)
    with pytest.raises(AuditIntegrityError) as caught:
        read_all(path)
    error = caught.value
    assert (error.kind, error.index, error.path) == ("corrupt", 0, path)
    assert str(error).startswith(f"{path} is not a handrail audit log (line 1: ")
    assert says in str(error)
    assert len(str(error)) - len(str(path)) < 200, "brief: no dump of the line or of pydantic"


@pytest.mark.parametrize(("what", "line", "says"), HOSTILE_LINES, ids=[h[0] for h in HOSTILE_LINES])
def test_a_later_hostile_line_is_named_by_file_and_line(
    tmp_path: Path, what: str, line: bytes, says: str
) -> None:
    """After good records, a hostile line is `FILE:N: record #i is unreadable`, filters or not."""
    good = json.dumps(good_line(tmp_path)).encode()
    path = log_of(tmp_path, good, good, line)
    for filters in ({}, {"outcome": "denied"}, {"action": "nothing.*"}):
        with pytest.raises(AuditIntegrityError, match=f"^{path}:3: record #2 is unreadable: "):
            read_all(path, **filters)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("timestamp", 1e400, "field 'timestamp' is a number, not text"),
        ("timestamp", "9999-12-31T23:59:59-05:00", "out of range in UTC"),
        ("timestamp", "2025-01-01T00:00:00", "no UTC offset"),
        ("duration", 1e400, "field 'duration'"),
        ("seq", 1e400, "field 'seq'"),
        ("attempts", -1, "field 'attempts'"),
        ("action", ["a"], "field 'action' is an array, not text"),
        ("\x1b[2J" * 100, 1, "field '\\x1b[2J"),
    ],
)
def test_a_field_out_of_range_is_a_corrupt_record(
    tmp_path: Path, name: str, value: Any, says: str
) -> None:
    """Infinite times, offsets past 9999, wrong types: typed errors, no Overflow/TypeError."""
    path = log_of(tmp_path, with_field(good_line(tmp_path), name, value))
    with pytest.raises(AuditIntegrityError) as caught:
        read_all(path)
    assert caught.value.kind == "corrupt"
    assert says in str(caught.value)
    assert "\x1b" not in str(caught.value), "what the line holds is quoted escaped"
    assert len(str(caught.value)) - len(str(path)) < 200


def test_a_filter_never_skips_a_file_that_holds_no_records(tmp_path: Path) -> None:
    """Filtering by outcome a file of other records raises, rather than finding nothing."""
    path = log_of(tmp_path, b'{"id": "q1", "connector": "crm", "raw": {}}')
    with pytest.raises(AuditIntegrityError, match="is not a handrail audit log"):
        read_all(path, outcome="shadowed")


def test_huge_but_readable_numbers_are_kept(tmp_path: Path) -> None:
    """A 4000-digit seq still reads (json's own limit is 4300 digits); nothing is lost."""
    path = log_of(tmp_path, with_field(good_line(tmp_path), "seq", 10**4000))
    (record,) = read_all(path)
    assert record.seq == 10**4000


def test_an_sqlite_log_whose_table_was_dropped_is_an_integrity_error(tmp_path: Path) -> None:
    """A database without the audit table: AuditIntegrityError (corrupt), not a plain read error."""
    path = tmp_path / "audit.db"
    with AuditLog.sqlite(path) as log:
        log.append(AuditEntry.of(BOT, "crm.contact.read", "executed"))
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE audit_records")
    connection.close()
    with pytest.raises(AuditIntegrityError, match="no audit_records table") as caught:
        AuditLog.open(path, read_only=True)
    assert caught.value.kind == "corrupt"


def test_a_hostile_sqlite_row_is_named_by_its_position(tmp_path: Path) -> None:
    """An SQLite row that is not a record: the error names the record's position, not a line."""
    path = tmp_path / "audit.db"
    with AuditLog.sqlite(path) as log:
        log.append(AuditEntry.of(BOT, "crm.contact.read", "executed"))
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO audit_records (position, record) VALUES (2, ?)", ("[" * 50_000,)
        )
    connection.close()
    with pytest.raises(
        AuditIntegrityError, match=r"audit.db: record #1 is unreadable: its JSON nests too deeply"
    ):
        read_all(path)
