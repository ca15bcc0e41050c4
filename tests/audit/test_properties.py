"""The audit trail's contracts, under Hypothesis.

* verify accepts every untampered log;
* any change of any byte, and any deletion, insertion or reordering of
  records, is detected (a cut tail against a checkpoint taken before);
* the chain continues across reopening, for JSONL and SQLite alike;
* no secret placed anywhere in args, resource or context reaches a sink,
  whichever way it is marked, even when the error and reason repeat it.
"""

from __future__ import annotations

import functools
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from handrail import Principal, Resource
from handrail.audit import AuditEntry, AuditLog, Checkpoint, MemorySink, VerifyReport
from handrail.audit._line import seal
from handrail.redaction import MASK, Redactor

from .conftest import fill

FAST = settings(max_examples=60, deadline=None)
THOROUGH = settings(max_examples=200, deadline=None)


@functools.cache
def written(count: int) -> tuple[bytes, Checkpoint]:
    """A log of ``count`` varied records, as bytes, and a checkpoint of it (built once)."""
    log = AuditLog.memory()
    fill(log, count)
    return log.sink.getvalue(), log.checkpoint()  # type: ignore[attr-defined]


def verify(data: bytes, against: Checkpoint | None = None) -> VerifyReport:
    return AuditLog(MemorySink(data), read_only=True).verify(against=against)


def records_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


sizes = st.integers(min_value=1, max_value=10)

# -- untampered logs verify ----------------------------------------------------------

arg_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@FAST
@given(calls=st.lists(st.dictionaries(st.text(max_size=6), arg_values, max_size=4), max_size=8))
def test_every_untampered_log_verifies(calls: list[dict[str, Any]]) -> None:
    """Whatever the records hold, the log as written verifies, every record counted."""
    log = AuditLog.memory()
    for args in calls:
        log.append(AuditEntry.of(Principal(agent="a"), "x.y", "executed", args=args))
    report = verify(log.sink.getvalue())  # type: ignore[attr-defined]
    assert report.ok, report.message
    assert report.count == len(calls)


# -- tampering is detected -----------------------------------------------------------


@THOROUGH
@given(count=sizes, data=st.data())
def test_any_change_of_any_byte_is_detected(count: int, data: st.DataObject) -> None:
    """Replacing any one byte with any other makes verify fail."""
    original, _ = written(count)
    index = data.draw(st.integers(min_value=0, max_value=len(original) - 1), label="index")
    byte = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != original[index]))
    tampered = original[:index] + bytes([byte]) + original[index + 1 :]
    assert not verify(tampered).ok


@FAST
@given(count=sizes, data=st.data())
def test_any_byte_added_or_removed_is_detected(count: int, data: st.DataObject) -> None:
    """Inserting or deleting any one byte anywhere makes verify fail."""
    original, _ = written(count)
    index = data.draw(st.integers(min_value=0, max_value=len(original)), label="index")
    if data.draw(st.booleans(), label="insert"):
        byte = data.draw(st.integers(min_value=0, max_value=255), label="byte")
        tampered = original[:index] + bytes([byte]) + original[index:]
    else:
        assume(index < len(original))
        tampered = original[:index] + original[index + 1 :]
    assert not verify(tampered).ok


@FAST
@given(count=sizes, data=st.data())
def test_any_deletion_of_records_is_detected(count: int, data: st.DataObject) -> None:
    """Deleting any records is 'deleted'; a cut tail needs the checkpoint taken before it."""
    original, checkpoint = written(count)
    lines = records_of(original)
    gone = data.draw(st.sets(st.integers(0, count - 1), min_size=1), label="deleted")
    kept = b"".join(line for i, line in enumerate(lines) if i not in gone)
    report = verify(kept, against=checkpoint)
    assert (report.ok, report.kind, report.first_bad_index) == (False, "deleted", min(gone))
    if gone != set(range(min(gone), count)):  # not just a tail: the chain alone shows it
        assert verify(kept).kind == "deleted"


@FAST
@given(count=sizes, data=st.data())
def test_any_replayed_record_is_detected_as_inserted(count: int, data: st.DataObject) -> None:
    """A copy of any record inserted anywhere (even at the end) is 'inserted'."""
    lines = records_of(written(count)[0])
    copy = data.draw(st.sampled_from(lines), label="copy")
    where = data.draw(st.integers(0, count), label="where")
    lines.insert(where, copy)
    report = verify(b"".join(lines))
    assert (report.ok, report.kind) == (False, "inserted")


@FAST
@given(count=sizes, data=st.data())
def test_any_forged_record_inserted_is_detected(count: int, data: st.DataObject) -> None:
    """A record with a correct hash but forged content, inserted before the end, fails."""
    lines = records_of(written(count)[0])
    where = data.draw(st.integers(0, count - 1), label="where")
    fields = json.loads(lines[where])
    del fields["hash"]
    fields["seq"] = data.draw(st.integers(0, count + 2), label="seq")
    fields["action"] = "billing.payout.create"
    lines.insert(where, seal(fields)[0])
    assert not verify(b"".join(lines)).ok


@FAST
@given(count=st.integers(min_value=2, max_value=10), data=st.data())
def test_any_reordering_is_detected(count: int, data: st.DataObject) -> None:
    """Any permutation of records but the identity is 'reordered', where it first differs."""
    lines = records_of(written(count)[0])
    order = data.draw(st.permutations(range(count)), label="order")
    assume(order != list(range(count)))
    report = verify(b"".join(lines[i] for i in order))
    first = next(i for i, j in enumerate(order) if i != j)
    assert (report.ok, report.kind, report.first_bad_index) == (False, "reordered", first)


# -- the chain continues across reopening ---------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    sessions=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=4),
    kind=st.sampled_from(["jsonl", "sqlite"]),
    fsync=st.sampled_from(["batch", "never"]),
)
def test_the_chain_continues_across_reopening(sessions: list[int], kind: str, fsync: Any) -> None:
    """Appending in several sessions gives one chain: seq runs on, each links to the last."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("audit.jsonl" if kind == "jsonl" else "audit.db")
        total = 0
        for count in sessions:
            with AuditLog.open(path, fsync=fsync) as log:
                records = fill(log, count, start=total)
                assert [r.seq for r in records] == list(range(total, total + count))
            total += count
        with AuditLog.open(path, read_only=True) as log:
            report = log.verify()
            everything = list(log.records())
        assert report.ok, report.message
        assert report.count == total
        for before, after in itertools.pairwise(everything):
            assert after.prev_hash == before.hash


# -- redaction never leaks ------------------------------------------------------------

secrets = st.from_regex(r"sk-[a-z0-9]{8,16}", fullmatch=True)
plain_keys = st.sampled_from(["amount", "note", "items", "meta", "to", "id"])
sensitive_keys = st.sampled_from(["password", "api_key", "X-Auth-Token", "refresh_token", "Cookie"])
noise = st.none() | st.integers() | st.text(alphabet="abc ", max_size=5)


@st.composite
def placements(draw: st.DrawFn, secret: str) -> tuple[dict[str, Any], bool]:
    """A dict holding ``secret`` somewhere, marked one way; and whether that way is a
    user redactor."""
    how = draw(st.sampled_from(["secretstr", "sensitive key", "user redactor"]))
    if how == "secretstr":
        value: Any = {draw(plain_keys): SecretStr(secret)}
    elif how == "sensitive key":
        inner: Any = draw(st.sampled_from([secret, [secret], {"v": secret}]))
        value = {draw(sensitive_keys): inner}
    else:
        value = {draw(plain_keys): secret}
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            value = {draw(plain_keys): value, "other": draw(noise)}
        else:
            value = [draw(noise), value]
            value = {draw(plain_keys): value}
    return value, how == "user redactor"


@settings(max_examples=40, deadline=None)
@given(
    secret=secrets,
    data=st.data(),
    part=st.sampled_from(["args", "context", "resource", "resource model"]),
    sink=st.sampled_from(["memory", "jsonl", "sqlite"]),
)
def test_no_secret_ever_reaches_a_sink(
    secret: str, data: st.DataObject, part: str, sink: str
) -> None:
    """Wherever the secret is and however it is marked, no stored byte and no text holds it."""
    placed, needs_redactor = data.draw(placements(secret), label="placed")
    redactors = [lambda path, value: MASK if value == secret else value] if needs_redactor else []
    redactor = Redactor(redactors=redactors)
    fields: dict[str, Any] = {"args": {"note": f"copied {secret} here", "amount": 3}}
    if part == "args":
        fields["args"].update(placed)
    elif part == "context":
        fields["context"] = placed
    elif part == "resource":
        fields["resource"] = {"type": "invoice", "id": "inv-1", "attributes": placed}
    else:
        fields["resource"] = Resource(type="invoice", attributes=placed)
    with tempfile.TemporaryDirectory() as tmp:
        if sink == "memory":
            log = AuditLog.memory(redactor=redactor)
        else:
            path = Path(tmp) / ("audit.jsonl" if sink == "jsonl" else "audit.db")
            log = AuditLog.open(path, fsync="always", redactor=redactor)
        with log:
            record = log.append(
                AuditEntry.of(
                    Principal(agent="bot"),
                    "email.message.create",
                    "failed",
                    reason=f"rule matched {secret}",
                    error=RuntimeError(f"upstream refused {secret}"),
                    **fields,
                )
            )
            assert secret not in record.to_json()
            assert secret not in (record.error_message or "")
            assert secret not in (record.reason or "")
            assert log.verify().ok
            stored = log.sink.getvalue() if sink == "memory" else b""  # type: ignore[attr-defined]
        files = b"".join(p.read_bytes() for p in Path(tmp).iterdir())
    assert secret.encode() not in stored + files
