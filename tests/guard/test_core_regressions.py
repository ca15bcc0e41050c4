"""Regressions from the one-core issue that belong to no single front end.

Each of these failed on the guard before the one flow: a write ran although
its record could not be written; the async driver ran the router, store and
audit log on the event loop; a write whose arguments had no stable form was
silently never retried.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from datetime import timedelta
from typing import Any

import httpx
import pytest

from handrail import (
    ActionRequest,
    AuditError,
    ConfigurationError,
    EscalationRequired,
    PermissionDenied,
    Policy,
    Principal,
    acting_as,
)
from handrail.audit import AuditLog, MemorySink
from handrail.escalation import EscalationRouter, Level, MemoryStore, Route
from handrail.guard import Guard
from handrail.resilience import RetryPolicy, current_idempotency_key
from handrail.telemetry import AuditUnavailableWarning
from handrail.testing import FakeClock, capture_telemetry, no_waits

POLICY = Policy.from_yaml(
    """
rules:
  - {id: reads, effect: allow, actions: [crm.contact.read]}
  - {id: writes, effect: allow, actions: [crm.contact.update]}
  - {id: refunds, effect: allow, actions: [billing.refund.create]}
  - {id: big, effect: escalate, actions: [billing.refund.create], escalate_to: leads}
"""
)
BOT = Principal(agent="support-bot")
LEADS = Route(name="leads", levels=[Level(deciders=["lena"], resolve_within=timedelta(hours=1))])


class FullDisk(MemorySink):
    """A sink whose disk fills up after ``room`` writes."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def append(self, lines: Any) -> None:
        if self.room <= 0:
            raise AuditError("No space left on device")
        self.room -= 1
        super().append(lines)


def test_a_write_never_runs_when_its_record_cannot_be_written() -> None:
    """After the log failed (a full disk), an allowed write is refused before it runs.

    The old guard ran it and raised AuditError afterwards; an agent that retries
    on errors then repeated a write nobody recorded.
    """
    log = AuditLog(FullDisk(room=1), fsync="always")
    guard = Guard(POLICY, audit=log)
    ran: list[str] = []

    @guard.protect("crm.contact.update", is_write=True)
    def update(contact_id: str) -> None:
        ran.append(contact_id)

    with acting_as(BOT):
        update("c-1")  # recorded: the disk had room for one
        with pytest.raises(AuditError, match="No space left"):
            update("c-2")  # ran; its record failed: the error says so after the fact
        for attempt in ("c-3", "c-4"):  # the agent retries: refused before anything runs
            with pytest.raises(AuditError, match="No space left"):
                update(attempt)
    assert ran == ["c-1", "c-2"]


def test_reads_without_a_record_run_only_when_configured_and_loudly() -> None:
    """A read is refused too by default; with read_without_audit=True it runs, with a
    warning, a metric and a structlog event, and still no write runs."""
    log = AuditLog(FullDisk(room=0), fsync="always")
    with acting_as(BOT), pytest.raises(AuditError):
        Guard(POLICY, audit=log).call(ActionRequest(principal=BOT, action="crm.contact.read"), int)

    with capture_telemetry() as captured:
        guard = Guard(POLICY, audit=log, read_without_audit=True, telemetry=captured.telemetry)
        with acting_as(BOT):
            with pytest.warns(AuditUnavailableWarning, match="runs unrecorded"):
                assert guard.call(ActionRequest(principal=BOT, action="crm.contact.read"), int) == 0
            write = ActionRequest(principal=BOT, action="crm.contact.update")
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a write is refused, not warned about
                with pytest.raises(AuditError):
                    guard.call(write, int, write=True)
    assert [p.value for p in captured.points("handrail.audit.unavailable")] == [1]
    assert any(e["event"] == "handrail.audit.unavailable" for e in captured.events)


def test_the_async_driver_never_runs_the_router_store_or_log_on_the_loop() -> None:
    """Every store and sink call of an async guarded call happens off the event loop's thread."""
    seen: list[tuple[str, int]] = []

    class WatchedStore(MemoryStore):
        def create(self, *args: Any, **kwargs: Any) -> Any:
            seen.append(("store.create", threading.get_ident()))
            return super().create(*args, **kwargs)

        def find(self, *args: Any, **kwargs: Any) -> Any:
            seen.append(("store.find", threading.get_ident()))
            return super().find(*args, **kwargs)

    class WatchedSink(MemorySink):
        def append(self, lines: Any) -> None:
            seen.append(("sink.append", threading.get_ident()))
            super().append(lines)

    log = AuditLog(WatchedSink(), fsync="always")
    router = EscalationRouter([LEADS], WatchedStore(), clock=FakeClock(), audit=log)
    guard = Guard(POLICY, audit=log, escalations=router)

    async def refund() -> str:
        return "r-1"

    async def main() -> int:
        loop_thread = threading.get_ident()
        with acting_as(BOT), pytest.raises(EscalationRequired):
            await guard.acall(
                ActionRequest(principal=BOT, action="billing.refund.create", args={"n": 1}),
                refund,
                write=True,
                external_id="call-1",
            )
        return loop_thread

    loop_thread = asyncio.run(main())
    assert {name for name, _ in seen} >= {"store.create", "store.find", "sink.append"}
    assert all(thread != loop_thread for _, thread in seen), seen


def test_a_write_whose_arguments_have_no_stable_form_is_still_retried() -> None:
    """The old key_for derived the key from the arguments and, on a TypeError, silently
    gave up retrying. Keys are fresh now: the write is retried under its own key."""
    guard = Guard(POLICY, audit=AuditLog.memory(), retry=RetryPolicy(attempts=3))
    keys: list[str | None] = []

    class Opaque:
        def __repr__(self) -> str:
            raise TypeError("no form")

    @guard.protect("crm.contact.update", is_write=True, idempotent=True)
    def update(contact_id: str, payload: object) -> str:
        keys.append(current_idempotency_key())
        if len(keys) == 1:
            raise httpx.ConnectError("reset")
        return "saved"

    with acting_as(BOT), no_waits():
        assert update("c-1", Opaque()) == "saved"
    assert len(keys) == 2
    assert keys[0] is not None
    assert keys[0] == keys[1]


@pytest.mark.parametrize(
    "key", ["", "a\r\nX-Injected: 1", "\x1b[31mred", "k" * 257, 42, b"bytes"], ids=repr
)
def test_a_key_that_could_split_a_header_or_hide_in_a_log_is_refused_before_the_call(
    key: object,
) -> None:
    """Keys go into Idempotency-Key headers and audit records: printable, 1-256 chars, str."""
    ran: list[int] = []
    guard = Guard(POLICY, audit=AuditLog.memory())

    @guard.protect("crm.contact.update", is_write=True, idempotency_key="request_id")
    def update(contact_id: str, request_id: object = None) -> None:
        ran.append(1)

    with acting_as(BOT):
        with pytest.raises(ConfigurationError, match="key"):
            guard.call(
                ActionRequest(principal=BOT, action="crm.contact.update"),
                lambda: ran.append(1),
                write=True,
                key=key,  # type: ignore[arg-type]
            )
        with pytest.raises(PermissionDenied, match="idempotency key argument"):
            update("c-1", request_id=key)
    assert ran == []


def test_an_async_function_given_to_the_sync_call_is_refused_not_recorded_as_run() -> None:
    """guard.call(request, async_fn) would return an unawaited coroutine: nothing ran."""
    log = AuditLog.memory()
    guard = Guard(POLICY, audit=log)

    async def tool() -> int:
        return 1

    with acting_as(BOT), pytest.raises(TypeError, match="acall"):
        guard.call(ActionRequest(principal=BOT, action="crm.contact.read"), tool)
    assert [r.outcome for r in log.records()] == ["failed"]
