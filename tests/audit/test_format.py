"""The record format: ``details`` (format 2) beside logs written before it (format 1).

``data/format1.jsonl`` and ``data/format1.db`` were written by handrail at
commit 5b17071 (``AuditLog.append_decision`` and ``append(principal=...)``,
before ``AuditEntry``): four records with every kind of field.  They must
verify and read back byte for byte, and take new records, forever.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr

from handrail.audit import AuditEntry, AuditIntegrityError, AuditLog, AuditRecord, MemorySink
from handrail.audit._line import seal

from .conftest import BOT

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["format1.jsonl", "format1.db"])
def test_a_log_written_before_details_verifies_and_reads_back_byte_for_byte(
    name: str, tmp_path: Path
) -> None:
    """Every format-1 record verifies, reads back, and writes the very bytes stored."""
    path = tmp_path / name  # a copy: even a read-only SQLite reader makes -wal and -shm files
    shutil.copyfile(DATA / name, path)
    with AuditLog.open(path, read_only=True) as log:
        assert log.verify().ok
        stored = list(log.sink.read())
        records = list(log.records())
    assert len(records) == len(stored) == 4
    for line, record in zip(stored, records, strict=True):
        assert record.format_version == 1
        assert record.details is None
        assert b'"details"' not in line
        assert record.to_json().encode() + b"\n" == line


@pytest.mark.parametrize("name", ["format1.jsonl", "format1.db"])
def test_a_log_written_before_details_takes_records_with_details(name: str, tmp_path: Path) -> None:
    """Opening an old log for writing verifies it and extends its chain, details and all."""
    path = tmp_path / name
    shutil.copyfile(DATA / name, path)
    with AuditLog.open(path, fsync="always") as log:
        old_head = log.checkpoint()
        record = log.append(
            AuditEntry.of(BOT, "crm.contact.list", "executed", details={"pages": 3})
        )
    assert (record.seq, record.format_version) == (4, 2)
    with AuditLog.open(path, read_only=True) as log:
        assert log.verify(against=old_head).ok
        assert list(log.records())[-1] == record


def test_details_are_stored_only_when_given() -> None:
    """A record without details has no "details" key and is format 1; with them, format 2."""
    log = AuditLog.memory()
    plain = log.append(AuditEntry.of(BOT, "a.b", "executed"))
    empty = log.append(AuditEntry.of(BOT, "a.b", "executed", details={}))
    full = log.append(AuditEntry.of(BOT, "a.b", "executed", details={"records": 57}))
    lines = [json.loads(line) for line in log.sink.read()]
    assert "details" not in lines[0]
    assert lines[0]["format_version"] == 1
    assert (lines[1]["details"], lines[1]["format_version"]) == ({}, 2)
    assert (lines[2]["details"], lines[2]["format_version"]) == ({"records": 57}, 2)
    assert [r.details for r in (plain, empty, full)] == [None, {}, {"records": 57}]
    assert list(log.records()) == [plain, empty, full]


def test_details_are_redacted_and_their_secrets_scrubbed_elsewhere() -> None:
    """Secrets in details are masked like context's, and scrubbed from the reason and error."""
    log = AuditLog.memory()
    token = "sk-live-0123456789"
    record = log.append(
        AuditEntry.of(
            BOT,
            "crm.contact.list",
            "failed",
            details={
                "pages": 3,
                "api_key": token,
                "source": "https://bot:hunter22@crm.example/contacts?page=3",
                "cursor": SecretStr("cur-abcdef"),
            },
            reason=f"page 3 with {token} failed",
            error=ConnectionError("cur-abcdef refused"),
        )
    )
    assert record.details == {
        "pages": 3,
        "api_key": "***",
        "source": "https://***@crm.example/contacts?page=3",
        "cursor": "***",
    }
    assert record.reason == "page 3 with *** failed"
    assert record.error_message == "*** refused"
    stored = log.sink.getvalue()  # type: ignore[attr-defined]
    for secret in (token, "hunter22", "cur-abcdef"):
        assert secret.encode() not in stored


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b'"records":57', b'"records":56'),  # a value changed
        (b'"details":{"records":57},', b""),  # the details removed
        (b'"format_version":2', b'"format_version":1'),  # the version lowered
    ],
)
def test_tampering_with_details_is_detected(before: bytes, after: bytes, tmp_path: Path) -> None:
    """Changing, removing or disowning a record's details breaks its hash: verify says edited."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path, fsync="always") as log:
        log.append(AuditEntry.of(BOT, "a.b", "executed"))
        log.append(AuditEntry.of(BOT, "crm.contact.list", "executed", details={"records": 57}))
        log.append(AuditEntry.of(BOT, "a.b", "executed"))
    data = path.read_bytes()
    assert data.count(before) == 1
    path.write_bytes(data.replace(before, after))
    with AuditLog.jsonl(path, read_only=True) as log:
        report = log.verify()
    assert (report.ok, report.kind, report.first_bad_index) == (False, "edited", 1)


def _forged(**changes: object) -> bytes:
    """One sealed record (its hash right) with ``changes`` to the fields handrail writes."""
    log = AuditLog.memory()
    log.append(AuditEntry.of(BOT, "a.b", "executed"))
    body = json.loads(next(log.sink.read()))
    del body["hash"]
    body.update(changes)
    return seal(body)[0]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"format_version": 3}, "format_version 3 is not one this version of handrail reads"),
        ({"format_version": 0}, "format_version 0 is not one"),
        ({"details": {"pages": 1}}, "a record with 'details' has format_version 2"),
    ],
)
def test_readers_accept_formats_1_and_2_only(changes: dict[str, object], problem: str) -> None:
    """A record of an unknown format, or format 1 with details, is not read as a record."""
    with pytest.raises(AuditIntegrityError, match=problem) as caught:
        list(AuditLog(MemorySink(_forged(**changes)), read_only=True).records())
    assert caught.value.kind == "corrupt"
    assert list(AuditLog(MemorySink(_forged(format_version=2)), read_only=True).records())


def test_the_record_model_keeps_the_format_rules() -> None:
    """AuditRecord itself refuses format 1 with details, as the readers do."""
    fields = json.loads(_forged(details={"pages": 1}, format_version=2))
    assert AuditRecord.model_validate(fields).details == {"pages": 1}
    fields["format_version"] = 1
    with pytest.raises(ValueError, match="'details' has format_version 2"):
        AuditRecord.model_validate(fields)


def test_a_secret_masked_elsewhere_is_scrubbed_from_the_details() -> None:
    """A secret masked in the arguments is scrubbed where the details repeat it unmarked."""
    log = AuditLog.memory()
    token = "tok-0123456789"
    record = log.append(
        AuditEntry.of(
            BOT,
            "crm.contact.list",
            "failed",
            args={"api_key": token},
            details={"last_request": f"GET /contacts?page=3 with {token}", "pages": [1, 2]},
        )
    )
    assert record.details == {"last_request": "GET /contacts?page=3 with ***", "pages": [1, 2]}
    assert token.encode() not in log.sink.getvalue()  # type: ignore[attr-defined]
