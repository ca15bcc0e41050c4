"""Records: every field, the stored line, the digest, scrubbed errors, and malformed input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import itertools
import json
import uuid
from pathlib import PurePosixPath
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from handrail import Effect, Principal
from handrail._encoding import canonical
from handrail.audit import AuditEntry, AuditLog, AuditRecord, Outcome, args_digest
from handrail.audit._line import GENESIS_HASH, check_line
from handrail.audit._record import MAX_ERROR_MESSAGE, chain, prepare
from handrail.audit._redact import PartRedactor
from handrail.redaction import Redactor
from handrail.testing import FakeClock

from .conftest import ALICE, BOT, decide, fill


def lines(log: AuditLog) -> list[bytes]:
    return list(log.sink.read())


def test_a_decision_becomes_a_record_with_every_field(clock: FakeClock) -> None:
    """append_decision records who, what, on what, with what, the decision and how it ended."""
    log = AuditLog.memory(clock=clock)
    decision = decide(
        args={"invoice_id": "inv-7", "amount": 120},
        principal=ALICE,
        resource={"type": "invoice", "id": "inv-7", "attributes": {"customer": "c-1"}},
        context={"channel": "slack"},
    )
    record = log.append(
        AuditEntry.for_decision(
            decision,
            duration=dt.timedelta(milliseconds=12.5),
            attempts=2,
            trace_id="a" * 32,
            span_id="b" * 16,
            idempotency_key="k-1",
        )
    )
    assert record.seq == 0
    assert record.prev_hash == GENESIS_HASH
    assert record.timestamp == clock.now()
    assert (record.agent, record.on_behalf_of) == ("billing-bot", "alice")
    assert record.action == "billing.invoice.update"
    assert record.resource == {"type": "invoice", "id": "inv-7", "attributes": {"customer": "c-1"}}
    assert record.args == {"invoice_id": "inv-7", "amount": 120}
    assert record.context == {"channel": "slack"}
    assert (record.effect, record.rule_id) == (Effect.ALLOW, "invoices.edit")
    assert record.reason == decision.reason
    assert record.outcome is Outcome.EXECUTED
    assert record.duration == dt.timedelta(milliseconds=12.5)
    assert (record.attempts, record.trace_id, record.span_id) == (2, "a" * 32, "b" * 16)
    assert record.idempotency_key == "k-1"
    assert record.error_type is record.error_message is None
    assert len(record.id) == 26


def test_the_outcome_defaults_from_the_decision() -> None:
    """DENY is recorded as denied, ESCALATE as escalated, a grant as executed or failed."""
    log = AuditLog.memory()
    assert (
        log.append(AuditEntry.for_decision(decide("crm.contact.delete"))).outcome is Outcome.DENIED
    )
    big_refund = decide("billing.refund.create", {"amount": 5_000})
    assert log.append(AuditEntry.for_decision(big_refund)).outcome is Outcome.ESCALATED
    assert log.append(AuditEntry.for_decision(decide())).outcome is Outcome.EXECUTED
    assert (
        log.append(AuditEntry.for_decision(decide(), error=ValueError("x"))).outcome
        is Outcome.FAILED
    )
    assert log.append(AuditEntry.for_decision(decide(), "shadowed")).outcome is Outcome.SHADOWED


def test_the_stored_line_is_the_canonical_json_of_the_record_and_its_hash() -> None:
    """Each line is canonical JSON with the hash last; the hash is SHA-256 of the rest."""
    log = AuditLog.memory()
    records = fill(log, 8)
    for line, record in zip(lines(log), records, strict=True):
        fields = json.loads(line)
        stored = fields.pop("hash")
        body = canonical(fields).encode()
        assert stored == record.hash == hashlib.sha256(body).hexdigest()
        assert line == body[:-1] + b',"hash":"' + stored.encode() + b'"}\n'
        assert record.to_json().encode() + b"\n" == line


def test_each_record_links_to_the_one_before() -> None:
    """prev_hash is the previous record's hash; seq counts from 0 without gaps."""
    records = fill(AuditLog.memory(), 6)
    assert [r.seq for r in records] == list(range(6))
    assert records[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(records):
        assert after.prev_hash == before.hash


def test_the_record_returned_is_the_record_read_back() -> None:
    """An appended record equals the one validated from its stored line, field for field."""
    log = AuditLog.memory()
    records = fill(log, 8)
    assert list(log.records()) == records
    for line, record in zip(lines(log), records, strict=True):
        assert AuditRecord.model_validate_json(line) == record
        assert AuditRecord.model_validate_json(line).model_dump() == record.model_dump()


def test_ids_sort_by_time_and_are_unique() -> None:
    """Record ids are 26-character ULIDs that sort in the order the records were made."""
    clock = FakeClock()
    log = AuditLog.memory(clock=clock)
    ids = []
    for _ in range(50):
        ids.append(log.append(AuditEntry.for_decision(decide())).id)
        clock.advance(dt.timedelta(microseconds=700))
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in ids)


def test_the_args_digest_covers_the_full_arguments_secrets_included() -> None:
    """args_digest is over the unredacted arguments; with a key it is an HMAC."""
    log = AuditLog.memory()
    one = log.append(
        AuditEntry.for_decision(decide(args={"amount": 1, "token": SecretStr("sk-first-123")}))
    )
    two = log.append(
        AuditEntry.for_decision(decide(args={"amount": 1, "token": SecretStr("sk-other-456")}))
    )
    assert one.args == two.args == {"amount": 1, "token": "***"}
    assert one.args_digest != two.args_digest
    assert one.args_digest == args_digest({"amount": 1, "token": SecretStr("sk-first-123")})
    assert one.args_digest.startswith("sha256:")
    keyed = AuditLog.memory(digest_key=b"k" * 32)
    record = keyed.append(AuditEntry.for_decision(decide(args={"amount": 1})))
    assert record.args_digest.startswith("hmac-sha256:")
    assert record.args_digest == args_digest({"amount": 1}, key=b"k" * 32)


def test_secrets_are_masked_and_scrubbed_from_every_string() -> None:
    """Masked values are scrubbed from the error, the reason and unmarked copies in args.

    Error messages also lose URL query strings and credentials, as the Redactor scrubs them.
    """
    log = AuditLog.memory()
    secret = "sk-live-0123456789"
    record = log.append(
        AuditEntry.of(
            BOT,
            "email.message.create",
            "failed",
            args={"api_key": secret, "note": f"sent with {secret}", "to": "jo@example.com"},
            context={"session": {"cookie": "c-abcdef"}},
            reason=f"rule said no to {secret}",
            error=PermissionError(f"401 for https://api.example/send?key={secret}"),
        )
    )
    assert record.args == {"api_key": "***", "note": "sent with ***", "to": "jo@example.com"}
    assert record.context == {"session": "***"}
    assert record.reason == "rule said no to ***"
    assert record.error_message == "401 for https://api.example/send?***"
    assert record.error_type == "PermissionError"
    assert secret.encode() not in log.sink.getvalue()  # type: ignore[attr-defined]


def test_long_error_messages_are_cut_saying_how_much() -> None:
    """An error message over the limit is cut, with the number of characters left out."""
    record = AuditLog.memory().append(
        AuditEntry.of(BOT, "a.b", "failed", error=RuntimeError("x" * 10_000))
    )
    assert record.error_message is not None
    assert record.error_message.startswith("x" * MAX_ERROR_MESSAGE)
    assert record.error_message.endswith(f"... ({10_000 - MAX_ERROR_MESSAGE} more characters)")
    assert record.error_type == "RuntimeError"


def test_error_types_name_their_module() -> None:
    """A builtin error is named bare, any other with its module."""
    record = AuditLog.memory().append(
        AuditEntry.of(BOT, "a.b", "failed", error=json.JSONDecodeError("bad", "", 0))
    )
    assert record.error_type == "json.decoder.JSONDecodeError"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"outcome": "exploded"}, "unknown audit outcome 'exploded'"),
        ({"effect": "maybe"}, "unknown effect 'maybe'"),
        ({"action": ""}, "'action' must be a non-empty str"),
        ({"attempts": -1}, "'attempts' must be an int >= 0"),
        ({"duration": 1.5}, "'duration' must be a timedelta"),
        ({"rule_id": 7}, "'rule_id' must be a str or None, got int"),
        ({"details": ["pages", 3]}, "'details' must be a mapping, got list"),
        ({"resource": 42}, "'resource' must be a mapping or have type, id and attributes"),
    ],
)
def test_malformed_fields_are_refused_before_anything_is_written(
    fields: dict[str, Any], error: str
) -> None:
    """A malformed field raises TypeError/ValueError naming it, and the log stays empty."""
    log = AuditLog.memory()
    call: dict[str, Any] = {"action": "a.b", "agent": "bot", "outcome": "executed", **fields}
    with pytest.raises((TypeError, ValueError), match=error):
        log.append(AuditEntry(**call))
    assert lines(log) == []
    assert log.append(AuditEntry.of(BOT, "a.b", "executed")).seq == 0


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Card:
    number: str
    expires: dt.date


def test_values_that_are_not_json_are_stored_in_stable_forms() -> None:
    """Datetimes, decimals, bytes, sets, enums, dataclasses, tuples and int keys all store."""
    log = AuditLog.memory()
    args = {
        "when": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "price": decimal.Decimal("9.99"),
        "blob": b"\x00\xff",
        "tags": {"b", "a"},
        "colour": Colour.RED,
        "card": Card("4111", dt.date(2030, 1, 1)),
        "pair": (1, 2),
        "by_id": {1: "one", 2: "two"},
        "id": uuid.UUID(int=1),
        "path": PurePosixPath("/tmp/x"),
        "secret": SecretStr("sk-hidden-999"),
    }
    record = log.append(AuditEntry.of(BOT, "a.b", "executed", args=args))
    assert record.args == {
        "when": "2025-01-02T03:04:05+00:00",
        "price": "9.99",
        "blob": "AP8=",
        "tags": ["a", "b"],
        "colour": "red",
        "card": {"number": "4111", "expires": "2030-01-01"},
        "pair": [1, 2],
        "by_id": {"1": "one", "2": "two"},
        "id": "00000000-0000-0000-0000-000000000001",
        "path": "/tmp/x",
        "secret": "***",
    }
    assert log.verify().ok
    assert list(log.records()) == [record]


def test_lone_surrogates_are_stored_as_question_marks() -> None:
    """A string UTF-8 cannot hold is stored with '?', and the record returned says so."""
    log = AuditLog.memory()
    record = log.append(AuditEntry.of(BOT, "a.b", "executed", args={"s": "a\ud800b"}))
    assert record.args == {"s": "a?b"}
    assert log.verify().ok
    assert list(log.records()) == [record]


def test_circular_arguments_are_refused() -> None:
    """Arguments that contain themselves raise ValueError, not a crash deep in JSON."""
    args: dict[str, Any] = {}
    args["self"] = args
    with pytest.raises(ValueError, match="nest too deeply"):
        AuditLog.memory().append(AuditEntry.of(BOT, "a.b", "executed", args=args))


# -- the hand-written JSON is canonical --------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)
maybe_text = st.none() | st.text()


@settings(max_examples=150, deadline=None)
@given(
    action=st.text(min_size=1),
    agent=st.text(min_size=1),
    args=st.dictionaries(st.text(), json_values, max_size=4),
    context=st.dictionaries(st.text(), json_values, max_size=3),
    resource=st.none() | st.dictionaries(st.text(), json_values, max_size=3),
    details=st.none() | st.dictionaries(st.text(), json_values, max_size=3),
    texts=st.tuples(maybe_text, maybe_text, maybe_text, maybe_text, maybe_text, maybe_text),
    duration=st.none() | st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=9)),
    seq=st.integers(min_value=0, max_value=10**12),
    now=st.datetimes(timezones=st.just(dt.UTC)),
)
def test_the_hand_written_json_is_always_canonical(
    action: str,
    agent: str,
    args: dict[str, Any],
    context: dict[str, Any],
    resource: dict[str, Any] | None,
    details: dict[str, Any] | None,
    texts: tuple[str | None, ...],
    duration: dt.timedelta | None,
    seq: int,
    now: dt.datetime,
) -> None:
    """For any fields, the line written equals canonical JSON of its fields, and verifies;
    ``details`` is written only when given, and then the record is format 2."""
    on_behalf_of, rule_id, reason, error_message, trace_id, idempotency_key = texts
    entry = AuditEntry(
        action=action,
        agent=agent,
        outcome="failed",
        on_behalf_of=on_behalf_of,
        resource=resource,
        args=args,
        context=context,
        effect="deny",
        rule_id=rule_id,
        reason=reason,
        error_message=error_message,
        error_type="E",
        duration=duration,
        trace_id=trace_id,
        idempotency_key=idempotency_key,
        details=details,
    )
    prepared = prepare(PartRedactor(Redactor(sensitive_keys=())), entry)
    line, record = chain(prepared, seq=seq, prev_hash="f" * 64, now=now)
    fields, problem = check_line(line[:-1])
    assert problem is None
    assert fields is not None
    assert fields["hash"] == record.hash
    assert ("details" in fields) is (details is not None)
    assert fields["format_version"] == record.format_version == (1 if details is None else 2)
    assert record.to_json().encode() + b"\n" == line
    assert AuditRecord.model_validate_json(line).to_json().encode() + b"\n" == line


@settings(max_examples=100, deadline=None)
@given(values=st.lists(json_values | st.sets(st.integers()) | st.binary(), max_size=4))
def test_plain_values_read_back_the_same(values: list[Any]) -> None:
    """Whatever is stored reads back as data that encodes to the same bytes."""
    log = AuditLog.memory()
    record = log.append(AuditEntry.of(Principal(agent="a"), "a.b", "executed", args={"v": values}))
    (again,) = log.records()
    assert canonical(again.args) == canonical(record.args)
    assert log.verify().ok
