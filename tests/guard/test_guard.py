"""Guard: one call through policy, retries, the breaker, the audit trail and one span."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from handrail import (
    CircuitOpen,
    ConfigurationError,
    EscalationRequired,
    PermissionDenied,
    Policy,
    Principal,
    WriteNotRetried,
    acting_as,
)
from handrail.audit import AuditLog
from handrail.guard import Guard
from handrail.resilience import CircuitBreakers, RetryPolicy, current_idempotency_key
from handrail.testing import CapturedTelemetry, FakeClock, capture_telemetry
from handrail.testing._resilience import no_waits

POLICY = Policy.from_yaml(
    """
rules:
  - {id: read, effect: allow, actions: ["crm.*.read"]}
  - {id: update, effect: allow, actions: [crm.contact.update]}
  - id: big
    effect: escalate
    actions: [crm.contact.update]
    when: {args.discount: {exists: true, gt: 20}}
    escalate_to: managers
  - {id: flag-exports, effect: audit, actions: [crm.contact.export]}
  - {id: refunds, effect: allow, actions: [crm.invoice.refund]}
"""
)
BOT = Principal(agent="sales-bot", on_behalf_of="alice")


def transient() -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://crm.test/contacts/1")
    return httpx.HTTPStatusError(
        "503", request=request, response=httpx.Response(503, request=request)
    )


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    with capture_telemetry() as recording:
        yield recording


@pytest.fixture
def guard(captured: CapturedTelemetry) -> Iterator[Guard]:
    with no_waits():
        yield Guard(
            POLICY,
            audit=AuditLog.memory(),
            retry=RetryPolicy(attempts=3),
            telemetry=captured.telemetry,
        )


def records(guard: Guard) -> list[dict[str, object]]:
    assert guard.audit is not None
    return [r.model_dump() for r in guard.audit.records()]


def test_allowed_call_runs_and_is_audited(guard: Guard, captured: CapturedTelemetry) -> None:
    """An allowed call runs; its record names who, what, the rule and the span."""

    @guard.protect(
        "crm.contact.read", resource=lambda contact_id: {"type": "contact", "id": contact_id}
    )
    def read(contact_id: str) -> str:
        return f"contact {contact_id}"

    with acting_as(BOT):
        assert read("c-1") == "contact c-1"
    (record,) = records(guard)
    (span,) = captured.spans
    assert record["outcome"] == "executed"
    assert record["agent"] == "sales-bot"
    assert record["on_behalf_of"] == "alice"
    assert record["rule_id"] == "read"
    assert record["attempts"] == 1
    assert record["trace_id"] == f"{span.context.trace_id:032x}"
    assert dict(span.attributes or {})["handrail.audit.record_id"] == record["id"]
    assert guard.audit is not None
    assert guard.audit.verify().ok


def test_denied_and_escalated_calls_are_audited_and_never_run(guard: Guard) -> None:
    """Refused calls raise, never run, and each leaves a record."""
    ran: list[str] = []

    @guard.protect("crm.contact.update")
    def update(contact_id: str, discount: int = 0) -> None:
        ran.append(contact_id)

    @guard.protect("crm.contact.delete")
    def delete(contact_id: str) -> None:
        ran.append(contact_id)

    with acting_as(BOT):
        with pytest.raises(EscalationRequired) as escalated:
            update("c-1", discount=30)
        with pytest.raises(PermissionDenied):
            delete("c-1")
    assert ran == []
    assert escalated.value.decision.escalate_to == "managers"
    assert [r["outcome"] for r in records(guard)] == ["escalated", "denied"]


def test_an_integer_too_long_to_print_is_decided_and_audited(guard: Guard) -> None:
    """A 5,000-digit argument is opaque: allowed calls run and are recorded, others refused."""
    huge = 10**5000
    ran: list[str] = []

    @guard.protect("crm.contact.read")
    def read(contact_id: str, page: int) -> None:
        ran.append(contact_id)

    @guard.protect("crm.contact.update")
    def update(contact_id: str, discount: int | dict[int, int] = 0) -> None:
        ran.append(contact_id)

    @guard.protect("crm.contact.delete")
    def delete(contact_id: str, reason: int) -> None:
        ran.append(contact_id)

    with acting_as(BOT):
        read("c-1", huge)
        with pytest.raises(EscalationRequired):
            update("c-2", discount=huge)  # undetermined: the escalation applies
        with pytest.raises(EscalationRequired):
            update("c-3", discount={huge: 1})
        with pytest.raises(PermissionDenied):
            delete("c-4", huge)
    assert ran == ["c-1"]
    assert [r["outcome"] for r in records(guard)] == [
        "executed",
        "escalated",
        "escalated",
        "denied",
    ]
    assert guard.audit is not None
    assert guard.audit.verify().ok


class Unprintable:
    """An argument whose repr() raises: what the audit trail shows must not depend on it."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_an_argument_whose_repr_raises_is_decided_and_audited(guard: Guard) -> None:
    """Allowed calls run and are recorded; a refused one is a PermissionDenied, not repr's error."""
    ran: list[str] = []

    @guard.protect("crm.contact.read")
    def read(contact_id: str, extra: object) -> None:
        ran.append(contact_id)

    @guard.protect("crm.contact.delete")
    def delete(contact_id: str, extra: object) -> None:
        ran.append(contact_id)

    with acting_as(BOT):
        read("c-1", Unprintable())
        read("c-2", {"nested": [Unprintable()]})
        with pytest.raises(PermissionDenied):
            delete("c-3", Unprintable())
    assert ran == ["c-1", "c-2"]
    assert [r["outcome"] for r in records(guard)] == ["executed", "executed", "denied"]
    assert "Unprintable" in str(records(guard)[0]["args"])


def test_a_write_with_a_lone_surrogate_gets_its_idempotency_key(guard: Guard) -> None:
    """Text that is not valid UTF-8 (a lone surrogate) still has a key: the write runs once."""
    keys: list[str | None] = []

    @guard.protect("crm.contact.export", is_write=True, idempotent=True)
    def export(name: str) -> None:
        keys.append(current_idempotency_key())

    with acting_as(BOT):
        export("x\ud800")
        export("x\udc00")
    assert len(keys) == 2
    assert None not in keys
    assert keys[0] != keys[1]
    assert [r["outcome"] for r in records(guard)] == ["executed", "executed"]


def test_no_principal_is_denied_and_audited(guard: Guard) -> None:
    """A call outside acting_as is denied, and the refusal is recorded."""

    @guard.protect("crm.contact.read")
    def read() -> None:
        raise AssertionError("must not run")

    with pytest.raises(PermissionDenied, match="no principal"):
        read()
    (record,) = records(guard)
    assert record["outcome"] == "denied"


def test_transient_failures_are_retried_and_counted(guard: Guard) -> None:
    """A read failing twice with 503 succeeds on the third attempt; the record says 3."""
    failures = [transient(), transient()]

    @guard.protect("crm.contact.read")
    def read() -> str:
        if failures:
            raise failures.pop()
        return "ok"

    with acting_as(BOT):
        assert read() == "ok"
    (record,) = records(guard)
    assert record["attempts"] == 3
    assert record["outcome"] == "executed"


def test_failure_is_audited_without_secrets(guard: Guard) -> None:
    """A call that fails for good is recorded as failed, its message scrubbed, and re-raised."""

    @guard.protect("crm.contact.read")
    def read(token: SecretStr) -> None:
        raise ValueError(f"bad token {token.get_secret_value()}")

    with acting_as(BOT), pytest.raises(ValueError, match="bad token"):
        read(SecretStr("tok-123456789"))
    (record,) = records(guard)
    assert record["outcome"] == "failed"
    assert record["error_type"] == "ValueError"
    assert "tok-123456789" not in str(record)


def test_writes_need_an_idempotency_key_to_be_retried(guard: Guard) -> None:
    """A write without a key fails after one attempt; with a derived key it is retried."""
    calls: list[str | None] = []

    def flaky(contact_id: str) -> str:
        calls.append(current_idempotency_key())
        if len(calls) < 2:
            raise transient()
        return "saved"

    plain = guard.protect("crm.contact.update", is_write=True)(flaky)
    keyed = guard.protect("crm.contact.update", is_write=True, idempotent=True)(flaky)
    with acting_as(BOT):
        with pytest.raises(WriteNotRetried):
            plain("c-1")
        calls.clear()
        assert keyed("c-1") == "saved"
    assert len(calls) == 2
    assert calls[0] is not None
    assert calls[0] == calls[1]
    last = records(guard)[-1]
    assert last["idempotency_key"] == calls[0]
    assert last["attempts"] == 2


def test_breaker_opens_and_fails_fast() -> None:
    """After repeated transient failures the breaker opens; the next call is not made."""
    breakers = CircuitBreakers(
        failure_threshold=2, cooldown=timedelta(seconds=30), clock=FakeClock()
    )
    guard = Guard(POLICY, audit=AuditLog.memory(), breakers=breakers)
    calls = 0

    @guard.protect("crm.contact.read", breaker="crm.test")
    def read() -> None:
        nonlocal calls
        calls += 1
        raise transient()

    with acting_as(BOT):
        for _ in range(2):
            with pytest.raises(httpx.HTTPStatusError):
                read()
        with pytest.raises(CircuitOpen):
            read()
    assert calls == 2
    assert [r["outcome"] for r in records(guard)] == ["failed", "failed", "failed"]


def test_audit_effect_calls_the_hook(guard: Guard) -> None:
    """An AUDIT decision runs the call and hands the decision to on_audit."""
    seen: list[str | None] = []
    hooked = Guard(POLICY, audit=guard.audit, on_audit=lambda d: seen.append(d.rule_id))

    @hooked.protect("crm.contact.export")
    def export() -> str:
        return "done"

    with acting_as(BOT):
        assert export() == "done"
    assert seen == ["flag-exports"]


def test_async_calls_are_guarded(guard: Guard) -> None:
    """Async functions go through the same pipeline and stay coroutine functions."""
    failures = [transient()]

    @guard.protect("crm.contact.read")
    async def read() -> str:
        await asyncio.sleep(0)
        if failures:
            raise failures.pop()
        return "ok"

    @guard.protect("crm.contact.delete")
    async def delete() -> None:
        raise AssertionError("must not run")

    async def main() -> None:
        with acting_as(BOT):
            assert await read() == "ok"
            with pytest.raises(PermissionDenied):
                await delete()

    asyncio.run(main())
    assert [(r["outcome"], r["attempts"]) for r in records(guard)] == [
        ("executed", 2),
        ("denied", 0),  # a refused call made no attempt
    ]


def test_jsonl_log_verifies_after_guarded_calls(tmp_path: Path) -> None:
    """A JSONL audit log written by the guard verifies, and names every call."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path, fsync="always") as log:
        guard = Guard(POLICY, audit=log)
        read = guard.protect("crm.contact.read")(lambda: "ok")
        with acting_as(BOT):
            for _ in range(5):
                read()
    with AuditLog.open(path) as reopened:
        report = reopened.verify()
    assert report.ok
    assert report.count == 5


def test_configuration_errors() -> None:
    """Bad actions, policies and breaker names are refused when the guard is set up."""
    with pytest.raises(ConfigurationError, match="not a dotted name"):
        Guard(POLICY).protect("crm contact")
    with pytest.raises(ConfigurationError, match="must be a Policy"):
        Guard("policy.yaml")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no breakers"):
        Guard(POLICY).protect("crm.contact.read", breaker="crm")


def test_a_key_argument_that_is_not_a_key_is_refused_and_the_call_never_runs(guard: Guard) -> None:
    """The argument named by idempotency_key must hold a non-empty str; else the call is denied."""
    ran: list[str] = []

    @guard.protect("crm.contact.update", is_write=True, idempotency_key="request_id")
    def update(contact_id: str, request_id: object = None) -> None:
        ran.append(contact_id)

    with acting_as(BOT):
        for bad in ("", 42):
            with pytest.raises(PermissionDenied, match="idempotency key argument"):
                update("c-1", request_id=bad)
    assert ran == []
    assert [r["outcome"] for r in records(guard)] == ["denied", "denied"]
    with pytest.raises(ConfigurationError, match="not a parameter"):
        guard.protect("crm.contact.update", is_write=True, idempotency_key="nope")(update)


def test_an_explicit_key_wins_and_is_reused_by_retries_only(guard: Guard) -> None:
    """The caller's key is the call's key on every attempt; calls without one never share a key."""
    seen: list[str | None] = []

    @guard.protect("crm.invoice.refund", is_write=True, idempotency_key="request_id")
    def refund(invoice: str, amount: int, request_id: str | None = None) -> None:
        seen.append(current_idempotency_key())
        if len(seen) == 1:
            raise transient()

    with acting_as(BOT):
        refund("inv-1", 40, request_id="req-7")
        refund("inv-1", 40)
        refund("inv-1", 40)
    assert seen[:2] == ["req-7", "req-7"]
    assert seen[2] != seen[3]
    assert None not in seen
    assert [r["idempotency_key"] for r in records(guard)] == ["req-7", seen[2], seen[3]]
    assert [r["attempts"] for r in records(guard)] == [2, 1, 1]
