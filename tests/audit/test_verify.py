"""verify: the first record that breaks the chain, named edited, deleted, inserted, ..."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from handrail.audit import (
    AuditIntegrityError,
    AuditLog,
    Checkpoint,
    MemorySink,
    VerifyReport,
)
from handrail.audit._line import GENESIS_HASH, seal

from .conftest import fill


def log_lines(count: int) -> list[bytes]:
    """The lines of a fresh log of ``count`` varied records."""
    log = AuditLog.memory()
    fill(log, count)
    return list(log.sink.read())


def verify(lines: list[bytes], against: Checkpoint | None = None) -> VerifyReport:
    return AuditLog(MemorySink(b"".join(lines)), read_only=True).verify(against=against)


def reseal(line: bytes, **changes: object) -> bytes:
    """``line`` with fields changed and its hash recomputed, as a forger would."""
    fields = json.loads(line)
    del fields["hash"]
    fields.update(changes)
    return seal(fields)[0]


def test_an_untampered_log_verifies() -> None:
    """A log as written verifies: ok, every record counted, the head is the last hash."""
    lines = log_lines(6)
    report = verify(lines)
    assert report.ok
    assert report.count == 6
    assert report.head_hash == json.loads(lines[-1])["hash"]
    assert report.first_bad_index is None
    assert report.kind is None
    assert str(report) == "ok: 6 records verified"
    report.raise_for_problem()  # ok: does not raise


def test_an_empty_log_verifies() -> None:
    """No records is a valid log whose head is the genesis hash."""
    report = verify([])
    assert (report.ok, report.count, report.head_hash) == (True, 0, GENESIS_HASH)


def test_an_edited_record_is_named() -> None:
    """Changing a record's content without its hash is 'edited', at that record."""
    lines = log_lines(5)
    lines[2] = lines[2].replace(b'"attempts":1', b'"attempts":9')
    report = verify(lines)
    assert (report.ok, report.kind, report.first_bad_index, report.count) == (False, "edited", 2, 2)
    assert "record #2 was edited: its content does not match its hash" in report.message
    assert report.record is not None
    assert report.record["attempts"] == 9


def test_a_re_encoded_record_is_edited_too() -> None:
    """Bytes that mean the same JSON but are not canonical are 'edited': every byte counts."""
    lines = log_lines(3)
    lines[1] = lines[1].replace(b'"attempts":1', b'"attempts": 1')
    report = verify(lines)
    assert (report.kind, report.first_bad_index) == ("edited", 1)
    assert "not the canonical encoding" in report.message


def test_a_rewritten_and_rehashed_record_breaks_the_next_link() -> None:
    """A record re-hashed after editing verifies alone; its successor no longer follows it."""
    lines = log_lines(5)
    lines[2] = reseal(lines[2], attempts=9)
    report = verify(lines)
    assert (report.kind, report.first_bad_index) == ("edited", 3)
    assert "does not follow record #2" in report.message


def test_a_deleted_record_is_named() -> None:
    """A gap in seq with the missing seq nowhere later is 'deleted'."""
    lines = log_lines(6)
    del lines[2:4]
    report = verify(lines)
    assert (report.kind, report.first_bad_index, report.count) == ("deleted", 2, 2)
    assert "2 records are missing" in report.message


def test_deleting_the_first_record_is_detected() -> None:
    """The chain starts at seq 0 from the genesis hash, so losing the head shows."""
    lines = log_lines(3)
    assert verify(lines[1:]).kind == "deleted"


def test_reordered_records_are_named() -> None:
    """Two records swapped are 'reordered' at the first of them."""
    lines = log_lines(6)
    lines[1], lines[4] = lines[4], lines[1]
    report = verify(lines)
    assert (report.kind, report.first_bad_index) == ("reordered", 1)


def test_a_replayed_record_is_inserted() -> None:
    """A copy of an earlier record, anywhere later, is 'inserted'."""
    lines = log_lines(5)
    lines.insert(3, lines[1])
    report = verify(lines)
    assert (report.kind, report.first_bad_index) == ("inserted", 3)


def test_a_forged_record_is_inserted() -> None:
    """A forged record that fits the chain is caught when the real one repeats its seq."""
    lines = log_lines(5)
    previous = json.loads(lines[1])
    forged = reseal(lines[2], action="billing.payout.create")
    assert json.loads(forged)["prev_hash"] == previous["hash"]
    lines.insert(2, forged)
    report = verify(lines)
    assert (report.kind, report.first_bad_index) == ("inserted", 3)


def test_a_torn_last_line_is_reported_not_dropped() -> None:
    """A last line without a newline is 'torn'; the complete records before it verify."""
    lines = log_lines(4)
    lines[-1] = lines[-1][:37]
    report = verify(lines)
    assert (report.ok, report.kind, report.first_bad_index, report.count) == (False, "torn", 3, 3)
    assert "37 bytes without a newline" in report.message


def test_a_line_that_is_not_a_record_is_corrupt() -> None:
    """A complete line that is not a JSON object with a hash is 'corrupt'."""
    lines = log_lines(3)
    lines.insert(1, b"\n")
    assert (verify(lines).kind, verify(lines).first_bad_index) == ("corrupt", 1)
    lines[1] = b'{"hash": "x"}\n'
    assert verify(lines).kind == "edited"
    lines[1] = b"\xff\xfe\n"
    assert verify(lines).kind == "corrupt"


def test_a_checkpoint_catches_a_truncated_tail() -> None:
    """Cutting the last records leaves a valid chain; the checkpoint taken before shows the cut."""
    log = AuditLog.memory()
    fill(log, 6)
    checkpoint = log.checkpoint()
    lines = list(log.sink.read())
    assert verify(lines[:4]).ok
    report = verify(lines[:4], against=checkpoint)
    assert (report.kind, report.first_bad_index) == ("deleted", 4)
    assert "the last 2 were deleted" in report.message


def test_a_checkpoint_catches_a_rewritten_history() -> None:
    """Rewriting and re-hashing every record verifies alone, but not against a checkpoint."""
    log = AuditLog.memory()
    fill(log, 4)
    checkpoint = log.checkpoint()
    lines = list(log.sink.read())
    forged, head = [], GENESIS_HASH
    for line in lines:
        fields = json.loads(line)
        del fields["hash"]
        fields.update(prev_hash=head, attempts=7)
        new, head = seal(fields)
        forged.append(new)
    assert verify(forged).ok
    report = verify(forged, against=checkpoint)
    assert (report.kind, report.first_bad_index) == ("edited", 3)
    assert "rewritten and re-hashed since" in report.message


def test_records_after_a_checkpoint_are_allowed() -> None:
    """A checkpoint proves its prefix; records appended after it are fine."""
    log = AuditLog.memory()
    fill(log, 3)
    checkpoint = log.checkpoint()
    fill(log, 2, start=3)
    report = log.verify(against=checkpoint)
    assert report.ok
    assert report.message == "ok: 5 records verified, 3 of them matching the checkpoint"


def test_checkpoints_round_trip_through_json() -> None:
    """A checkpoint written as JSON reads back equal."""
    log = AuditLog.memory()
    fill(log, 2)
    checkpoint = log.checkpoint()
    assert Checkpoint.model_validate_json(checkpoint.model_dump_json()) == checkpoint
    assert checkpoint.count == 2
    assert isinstance(checkpoint.created_at, dt.datetime)


def test_raise_for_problem_carries_where_and_what() -> None:
    """AuditIntegrityError has the index and kind of the first problem."""
    lines = log_lines(3)
    del lines[0]
    with pytest.raises(AuditIntegrityError, match="record #0 has seq 1") as caught:
        verify(lines).raise_for_problem()
    assert (caught.value.index, caught.value.kind) == (0, "deleted")


def test_a_writer_notices_records_cut_behind_its_back(tmp_path: Path) -> None:
    """An open log compares the file with what it appended: a cut tail is 'deleted'."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path, fsync="always") as log:
        fill(log, 4)
        data = path.read_bytes()
        path.write_bytes(data[: data.index(b"\n") + 1])
        report = log.verify()
        assert (report.ok, report.kind, report.first_bad_index) == (False, "deleted", 1)
        assert "this writer has appended 4 records, but the log holds only 1" in report.message


def test_a_writer_notices_history_rewritten_behind_its_back(tmp_path: Path) -> None:
    """An open log knows its last hash: a re-hashed rewrite of its records is 'edited'."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path, fsync="always") as log:
        fill(log, 3)
        forged, head = [], GENESIS_HASH
        for line in path.read_bytes().splitlines(keepends=True):
            fields = json.loads(line)
            del fields["hash"]
            fields.update(prev_hash=head, attempts=7)
            new, head = seal(fields)
            forged.append(new)
        path.write_bytes(b"".join(forged))
        report = log.verify()
        assert (report.kind, report.first_bad_index) == ("edited", 2)
        assert "but this writer has" in report.message


def test_a_writer_checks_a_checkpoint_at_its_own_count(tmp_path: Path) -> None:
    """A forged chain as long as the checkpoint fails verify(against=) on a log open for writing."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path) as log:
        fill(log, 4)
        checkpoint = log.checkpoint()
    forged, head = [], GENESIS_HASH
    for line in path.read_bytes().splitlines(keepends=True):
        fields = json.loads(line)
        del fields["hash"]
        fields.update(prev_hash=head, attempts=7)
        new, head = seal(fields)
        forged.append(new)
    path.write_bytes(b"".join(forged))
    with AuditLog.jsonl(path) as log:  # the forged chain verifies alone, so the writer opens
        report = log.verify(against=checkpoint)
    assert (report.ok, report.kind, report.first_bad_index) == (False, "edited", 3)
    assert "the checkpoint of" in report.message
