"""@audited: every call of a function, sync or async, recorded with its outcome and duration."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr

from handrail import (
    ConfigurationError,
    Effect,
    EscalationRequired,
    PermissionDenied,
    Principal,
    acting_as,
    audited,
    requires_permission,
)
from handrail.audit import AuditError, AuditLog, MemorySink, Outcome
from handrail.testing import FakeClock

from .conftest import ALICE, BOT, POLICY


def test_a_call_that_returns_is_recorded_as_executed(clock: FakeClock) -> None:
    """The record names the function, its arguments, the principal and how long it took."""
    log = AuditLog.memory(clock=clock)

    @audited(log, action="billing.invoice.update")
    def update_invoice(invoice_id: str, amount: int = 0) -> str:
        clock.advance(dt.timedelta(milliseconds=250))
        return f"{invoice_id}={amount}"

    with acting_as(ALICE):
        assert update_invoice("inv-1", amount=3) == "inv-1=3"
    (record,) = log.records()
    assert record.action == "billing.invoice.update"
    assert record.args == {"invoice_id": "inv-1", "amount": 3}
    assert (record.agent, record.on_behalf_of) == ("billing-bot", "alice")
    assert record.outcome is Outcome.EXECUTED
    assert record.duration == dt.timedelta(milliseconds=250)
    assert record.effect is None


def test_a_call_that_raises_is_recorded_as_failed_and_the_error_propagates() -> None:
    """The function's own exception comes out unchanged; the record has its scrubbed message."""
    log = AuditLog.memory()
    error = ConnectionError("refused for token sk-abc-123456")

    @audited(log)
    def send(to: str, token: SecretStr) -> None:
        raise error

    with acting_as(ALICE), pytest.raises(ConnectionError) as caught:
        send("jo@example.com", SecretStr("sk-abc-123456"))
    assert caught.value is error
    (record,) = log.records()
    assert record.outcome is Outcome.FAILED
    assert record.error_type == "ConnectionError"
    assert record.error_message == "refused for token ***"
    assert record.args == {"to": "jo@example.com", "token": "***"}
    assert record.action == (
        "audit.test_audited.test_a_call_that_raises_is_recorded_as_failed_and_the_error_propagates.send"
    )


def test_denials_and_escalations_beneath_are_recorded_with_their_decision() -> None:
    """Over @requires_permission, DENY is recorded as denied and ESCALATE as escalated."""
    log = AuditLog.memory()

    @audited(log, action="billing.refund.create")
    @requires_permission("billing.refund.create", policy=POLICY)
    def refund(amount: int) -> int:
        return amount

    @audited(log, action="crm.contact.delete")
    @requires_permission("crm.contact.delete", policy=POLICY)
    def delete(contact_id: str) -> None:
        raise AssertionError("never runs")

    with acting_as(BOT):
        assert refund(10) == 10
        with pytest.raises(EscalationRequired):
            refund(5_000)
        with pytest.raises(PermissionDenied):
            delete("c-1")
    executed, escalated, denied = log.records()
    assert executed.outcome is Outcome.EXECUTED
    assert (escalated.outcome, escalated.effect) == (Outcome.ESCALATED, Effect.ESCALATE)
    assert escalated.rule_id == "refunds.large"
    assert (denied.outcome, denied.effect, denied.rule_id) == (Outcome.DENIED, Effect.DENY, None)
    assert denied.reason


def test_async_functions_are_recorded_too(clock: FakeClock) -> None:
    """An async function stays async; awaiting it records the call."""
    log = AuditLog.memory(clock=clock)

    @audited(log, action="crm.contact.read")
    async def read(contact_id: str) -> dict[str, str]:
        clock.advance(dt.timedelta(seconds=1))
        return {"id": contact_id}

    @audited(log, action="crm.contact.read")
    async def broken(contact_id: str) -> None:
        raise KeyError(contact_id)

    async def main() -> None:
        assert await read("c-1") == {"id": "c-1"}
        with pytest.raises(KeyError):
            await broken("c-2")

    assert inspect.iscoroutinefunction(read)
    with acting_as(ALICE):
        asyncio.run(main())
    ok, failed = log.records()
    assert (ok.outcome, ok.duration) == (Outcome.EXECUTED, dt.timedelta(seconds=1))
    assert (failed.outcome, failed.error_type, failed.args) == (
        Outcome.FAILED,
        "KeyError",
        {"contact_id": "c-2"},
    )


def test_the_principal_comes_from_the_argument_then_acting_as_else_the_call_is_refused() -> None:
    """A Principal argument wins, then acting_as; with neither the call is denied, as everywhere."""
    log = AuditLog.memory()

    @audited(log, action="a.b")
    def act(principal: Principal | None = None) -> None:
        return None

    act(Principal(agent="explicit"))
    with acting_as(BOT):
        act()
    with pytest.raises(PermissionDenied, match="no principal"):
        act()
    assert [r.agent for r in log.records()] == ["explicit", "billing-bot", "<no principal>"]
    assert [r.outcome for r in log.records()] == ["executed", "executed", "denied"]
    assert all(r.args == {} for r in log.records())


def test_methods_record_their_arguments_without_self() -> None:
    """self is not an argument worth recording; a resource can come from the arguments."""
    log = AuditLog.memory()

    def invoice(self: object, invoice_id: str, **_: object) -> dict[str, str]:
        return {"type": "invoice", "id": invoice_id}

    class Invoices:
        @audited(log, action="billing.invoice.update", resource=invoice)
        def update(self, invoice_id: str, amount: int) -> None:
            return None

    with acting_as(ALICE):
        Invoices().update("inv-9", 5)
    (record,) = log.records()
    assert record.args == {"invoice_id": "inv-9", "amount": 5}
    assert record.resource == {"type": "invoice", "id": "inv-9", "attributes": {}}


def test_the_decorated_function_keeps_its_signature_and_name() -> None:
    """functools.wraps: name, docstring and signature survive."""

    def original(a: int, *, b: str = "x") -> int:
        """Doc."""
        return a

    wrapped = audited(AuditLog.memory())(original)
    assert wrapped.__name__ == "original"
    assert wrapped.__doc__ == "Doc."
    assert inspect.signature(wrapped) == inspect.signature(original)


def test_trace_and_span_ids_come_from_the_current_span() -> None:
    """Inside an OpenTelemetry span, the record carries its trace and span ids."""
    log = AuditLog.memory()
    tracer = TracerProvider().get_tracer("test")

    @audited(log, action="a.b")
    def act() -> None:
        return None

    with acting_as(ALICE), tracer.start_as_current_span("outer") as span:
        act()
    context = span.get_span_context()
    (record,) = log.records()
    assert record.trace_id == f"{context.trace_id:032x}"
    assert record.span_id == f"{context.span_id:016x}"


def test_a_record_that_cannot_be_written_is_an_audit_error() -> None:
    """If the log fails, AuditError is raised; the function's own error is its context.

    The log then refuses everything: the next call is refused before it runs.
    """

    class Broken(MemorySink):
        def append(self, lines: Any) -> None:
            raise AuditError("disk full")

    log = AuditLog(Broken(), fsync="always")

    @audited(log, action="a.b")
    def act() -> None:
        raise ValueError("inner")

    with acting_as(ALICE), pytest.raises(AuditError, match="disk full") as caught:
        act()
    assert isinstance(caught.value.__context__, ValueError)
    with acting_as(ALICE), pytest.raises(AuditError, match="disk full") as again:
        act()
    assert again.value.__context__ is None  # refused before the call: it never ran


def test_bad_decorator_arguments_fail_at_decoration() -> None:
    """A malformed action or something that is not an AuditLog is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="not a dotted name"):
        audited(AuditLog.memory(), action="not an action")
    with pytest.raises(ConfigurationError, match="must be an AuditLog"):
        audited(object())  # type: ignore[arg-type]
