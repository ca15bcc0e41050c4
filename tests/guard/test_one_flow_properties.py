"""The one flow's contracts, as Hypothesis properties over every front end.

- A stateful test drives random sequences of calls — decorator, ``Guard.call``
  and ``acall``, lazy reads consumed, abandoned or failing mid-way, writes that
  fail, shadow mode on and off, escalations opened, approved, rejected,
  expired and resumed (twice) — and checks after every step: exactly one
  final record per call, with the outcome, attempts and escalation id of what
  happened; no write ran without its record; no case opened in shadow mode.
- The sync and async drivers leave the same records for the same script.
- Two calls without an explicit key never share an idempotency key; the
  retries of one call always do.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule
from pydantic import BaseModel

from handrail import (
    ActionRequest,
    EscalationRequired,
    PermissionDenied,
    Policy,
    Principal,
    acting_as,
    audited,
    requires_permission,
)
from handrail.approvals import Identity
from handrail.audit import AuditLog, AuditRecord
from handrail.connectors import BaseConnector, MemoryQuarantine, operation
from handrail.escalation import EscalationError, EscalationRouter, Level, MemoryStore, Route
from handrail.guard import Guard
from handrail.resilience import RetryPolicy, current_idempotency_key
from handrail.shadow import ShadowResult
from handrail.testing import FakeClock, capture_telemetry, no_waits

POLICY = Policy.from_yaml(
    """
rules:
  - {id: reads, effect: allow, actions: [crm.contact.read, crm.contact.list, crm.note.list]}
  - {id: notes, effect: allow, actions: [crm.note.create]}
  - {id: updates, effect: allow, actions: [crm.contact.update]}
  - {id: refunds, effect: allow, actions: [billing.refund.create]}
  - id: big-refunds
    effect: escalate
    actions: [billing.refund.create]
    when: {args.amount: {gt: 100}}
    escalate_to: leads
"""
)
LEADS = Route(name="leads", levels=[Level(deciders=["lena"], resolve_within=timedelta(hours=1))])
BOT = Principal(agent="support-bot", on_behalf_of="sam")
FINAL = {"executed", "failed", "denied", "escalated", "shadowed"}


def request(action: str, **args: Any) -> ActionRequest:
    return ActionRequest(principal=BOT, action=action, args=args)


def finals(log: AuditLog) -> list[AuditRecord]:
    return [r for r in log.records() if r.outcome.value in FINAL]


class Boom(RuntimeError):
    """A tool's own failure."""


class Note(BaseModel):
    id: str
    text: str


class NoteQuery(BaseModel):
    fail_after: int | None = None


class NewNote(BaseModel):
    text: str


class Notes(BaseConnector):
    """A connector front end: a list read (one record in four malformed) and a write."""

    name = "notes"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.written = 0

    @operation("crm.note.list")
    def list_notes(self, params: NoteQuery) -> Iterator[Note]:
        for n in range(8):
            if params.fail_after is not None and n == params.fail_after:
                raise Boom("page failed")
            yield {"id": f"n-{n}", "text": "hi"} if n % 4 else {"id": f"n-{n}"}  # type: ignore[misc]

    @operation("crm.note.create", kind="write")
    def create_note(self, params: NewNote) -> Note:
        self.written += 1
        return Note(id="n-new", text=params.text)


class OneFlow(RuleBasedStateMachine):
    """Random calls through every front end; the audit trail must tell exactly what happened."""

    cases = Bundle("cases")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.log = AuditLog.memory(clock=self.clock)
        self.router = EscalationRouter([LEADS], MemoryStore(), clock=self.clock, audit=self.log)
        self.guard = Guard(POLICY, audit=self.log, escalations=self.router, shadow=False)
        self.calls = 0  # guarded calls made: each must leave exactly one final record
        self.writes_run = 0  # tool bodies of writes that really ran
        self.opened_in_shadow = 0
        self.approved_once: dict[str, int] = {}  # case id -> runs after approval

        @self.guard.protect("crm.contact.update", is_write=True)
        def update(contact_id: str, phone: str) -> str:
            self.writes_run += 1
            return phone

        self.update = update
        self.notes = Notes(guard=self.guard, quarantine=MemoryQuarantine())

    # -- helpers ---------------------------------------------------------------------------

    def last_final(self) -> AuditRecord:
        return finals(self.log)[-1]

    def drive(self, is_async: bool, req: ActionRequest, fn: Any, **options: Any) -> Any:
        if not is_async:
            return self.guard.call(req, fn, **options)

        async def wrapped() -> Any:
            return fn()

        return asyncio.run(self.guard.acall(req, wrapped, **options))

    # -- rules -----------------------------------------------------------------------------

    @rule(shadow=st.booleans())
    def switch_shadow(self, shadow: bool) -> None:
        self.guard.shadow = shadow

    @rule(is_async=st.booleans(), fail=st.booleans())
    def write(self, is_async: bool, fail: bool) -> None:
        def tool() -> str:
            self.writes_run += 1
            if fail:
                raise Boom("the CRM said no")
            return "ok"

        self.calls += 1
        with acting_as(BOT):
            try:
                result = self.drive(
                    is_async, request("crm.contact.update", contact_id="c-1"), tool, write=True
                )
            except Boom:
                assert self.last_final().outcome == "failed"
                assert self.last_final().attempts == 1
                return
        if self.guard.shadow:
            assert isinstance(result, ShadowResult)
            assert self.last_final().outcome == "shadowed"
        else:
            assert result == "ok"
            assert self.last_final().outcome == "executed"

    @rule()
    def decorated_write(self) -> None:
        self.calls += 1
        with acting_as(BOT):
            result = self.update("c-2", phone="+1 555")
        expected = "shadowed" if self.guard.shadow else "executed"
        assert isinstance(result, ShadowResult) == bool(self.guard.shadow)
        assert self.last_final().outcome == expected

    @rule(how=st.sampled_from(["consume", "close", "drop", "fail"]))
    def lazy_read(self, how: str) -> None:
        def pages() -> Iterator[int]:
            for n in range(3):
                if how == "fail" and n == 2:
                    raise Boom("page 3 failed")
                yield n

        self.calls += 1
        before = len(finals(self.log))
        with acting_as(BOT):
            records = self.guard.call(request("crm.contact.list"), pages, lazy=True)
        assert len(finals(self.log)) == before  # nothing recorded before the read ends
        if how == "consume":
            assert list(records) == [0, 1, 2]
            assert self.last_final().outcome == "executed"
        elif how == "close":
            next(iter(records))
            records.close()
            assert self.last_final().outcome == "executed"
        elif how == "drop":
            del records
            gc.collect()
            assert self.last_final().outcome == "executed"
        else:
            with pytest.raises(Boom):
                list(records)
            assert self.last_final().outcome == "failed"

    @rule(how=st.sampled_from(["consume", "close", "fail"]))
    def connector_list_read(self, how: str) -> None:
        self.calls += 1
        before = len(finals(self.log))
        with acting_as(BOT):
            notes = self.notes.list_notes(fail_after=5 if how == "fail" else None)
            assert len(finals(self.log)) == before
            if how == "consume":
                assert [n.id for n in notes] == ["n-1", "n-2", "n-3", "n-5", "n-6", "n-7"]
            elif how == "close":
                next(iter(notes))
                notes.close()
            else:
                with pytest.raises(Boom):
                    list(notes)
        record = self.last_final()
        assert record.outcome == ("failed" if how == "fail" else "executed")
        assert record.details is not None
        if how == "consume":
            assert (record.details["records"], record.details["quarantined"]) == (6, 2)

    @rule()
    def connector_write(self) -> None:
        self.calls += 1
        before = self.notes.written
        with acting_as(BOT):
            result = self.notes.create_note(text="hello")
        if self.guard.shadow:
            assert isinstance(result, ShadowResult)
            assert self.notes.written == before
            assert self.last_final().outcome == "shadowed"
        else:
            assert result.id == "n-new"
            assert self.notes.written == before + 1
            self.writes_run += 1
            assert self.last_final().outcome == "executed"

    @rule(target=cases, is_async=st.booleans(), call_id=st.uuids())
    def big_refund(self, is_async: bool, call_id: Any) -> str:
        external = f"call-{call_id}"
        opened_before = len(self.router.list())
        self.calls += 1
        with acting_as(BOT):
            try:
                result = self.drive(
                    is_async,
                    request("billing.refund.create", invoice="inv-1", amount=400),
                    self._refund,
                    write=True,
                    external_id=external,
                )
            except EscalationRequired as pending:
                assert not self.guard.shadow
                assert pending.escalation_id is not None  # noqa: PT017 - the outcome is random here
                assert self.last_final().outcome == "escalated"
                assert self.last_final().escalation_id == pending.escalation_id  # noqa: PT017
                return external
        assert self.guard.shadow
        assert isinstance(result, ShadowResult)
        assert result.escalation is not None
        assert result.escalation["route"] == "leads"
        self.opened_in_shadow += len(self.router.list()) - opened_before
        assert self.last_final().outcome == "shadowed"
        return external

    def _refund(self) -> str:
        self.writes_run += 1
        return "refund-1"

    @rule(case=cases, verdict=st.sampled_from(["approve", "reject", "expire"]))
    def decide(self, case: str, verdict: str) -> None:
        found = self.router.find(case)
        if found is None or found.is_terminal:
            return
        if verdict == "approve":
            self.router.approve(found.id, by=Identity("lena", method="test"), reason="fine")
        elif verdict == "reject":
            self.router.reject(found.id, by=Identity("lena", method="test"), reason="no")
        else:
            self.clock.advance(timedelta(hours=2))
            self.router.tick()

    @precondition(lambda self: not self.guard.shadow)
    @rule(case=cases, is_async=st.booleans())
    def resume(self, case: str, is_async: bool) -> None:
        found = self.router.find(case)
        if found is None:
            return  # opened in shadow mode: there is no case
        self.calls += 1
        ran = self.writes_run
        with acting_as(BOT):
            try:
                result = self.drive(
                    is_async,
                    request("billing.refund.create", invoice="inv-1", amount=400),
                    self._refund,
                    write=True,
                    external_id=case,
                )
            except EscalationRequired as pending:
                assert not found.is_terminal
                assert pending.escalation_id == found.id  # noqa: PT017
                assert self.last_final().outcome == "escalated"
                return
            except (PermissionDenied, EscalationError):
                assert self.writes_run == ran
                assert self.last_final().outcome == "denied"
                assert self.last_final().escalation_id == found.id
                return
        assert result == "refund-1"
        assert found.allowed is True
        self.approved_once[found.id] = self.approved_once.get(found.id, 0) + 1
        record = self.last_final()
        assert (record.outcome, record.escalation_id) == ("executed", found.id)
        assert record.idempotency_key == found.id

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def one_final_record_per_call(self) -> None:
        assert len(finals(self.log)) == self.calls

    @invariant()
    def no_write_without_its_record(self) -> None:
        written = [r for r in finals(self.log) if r.outcome in ("executed", "failed")]
        writes = [r for r in written if r.action not in ("crm.contact.list", "crm.note.list")]
        assert self.writes_run == len(writes)

    @invariant()
    def no_case_in_shadow_mode_and_an_approval_runs_once(self) -> None:
        assert self.opened_in_shadow == 0
        assert all(n == 1 for n in self.approved_once.values())


TestOneFlow = OneFlow.TestCase
TestOneFlow.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


# -- the sync and async drivers agree ------------------------------------------------------


def _script_records(is_async: bool, script: list[tuple[str, int]]) -> list[tuple[Any, ...]]:
    with capture_telemetry() as captured:
        records = _run_script(is_async, script, captured.telemetry)
    spans = [
        {k: v for k, v in span.attributes.items() if k != "handrail.audit.record_id"}
        for span in captured.spans
        if span.name.startswith("handrail.action") or "handrail.action" in (span.attributes or {})
    ]
    return [*records, ("spans", spans)]


def _run_script(
    is_async: bool, script: list[tuple[str, int]], telemetry: Any
) -> list[tuple[Any, ...]]:
    clock = FakeClock()
    log = AuditLog.memory(clock=clock)
    router = EscalationRouter([LEADS], MemoryStore(), clock=clock, audit=log)
    guard = Guard(POLICY, audit=log, escalations=router, shadow=False, telemetry=telemetry)

    def run(req: ActionRequest, fn: Any, **options: Any) -> Any:
        if not is_async:
            return guard.call(req, fn, **options)

        async def wrapped() -> Any:
            return fn()

        return asyncio.run(guard.acall(req, wrapped, **options))

    def boom() -> None:
        raise Boom("no")

    for n, (step, amount) in enumerate(script):
        with acting_as(BOT):
            try:
                if step == "read":
                    run(request("crm.contact.read", contact_id=f"c-{n}"), lambda: 1)
                elif step == "fail":
                    run(request("crm.contact.update", contact_id="c"), boom, write=True)
                elif step == "deny":
                    run(request("crm.contact.delete", contact_id="c"), lambda: 1)
                elif step == "shadow":
                    guard.shadow = not guard.shadow
                else:
                    run(
                        request("billing.refund.create", invoice="i", amount=amount),
                        lambda: 1,
                        write=True,
                        external_id=f"call-{n}",
                    )
            except (Boom, PermissionDenied, EscalationRequired):
                pass
    return [
        (
            r.action,
            r.outcome.value,
            r.attempts,
            r.effect,
            r.rule_id,
            r.args,
            r.escalation_id is None,
            r.idempotency_key is None,
            r.error_type,
        )
        for r in log.records()
    ]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["read", "fail", "deny", "shadow", "refund"]),
            st.sampled_from([40, 400]),
        ),
        max_size=8,
    )
)
def test_the_sync_and_async_drivers_leave_the_same_records(script: list[tuple[str, int]]) -> None:
    """A differential property: one script, driven both ways, leaves the same audit trail and
    the same span attributes."""
    assert _script_records(False, script) == _script_records(True, script)


# -- idempotency keys ----------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(calls=st.integers(min_value=2, max_value=6), failures=st.integers(0, 2))
def test_calls_never_share_a_key_and_retries_always_do(calls: int, failures: int) -> None:
    """Identical calls without an explicit key each get a key of their own; retries reuse it."""
    guard = Guard(POLICY, audit=AuditLog.memory(), retry=RetryPolicy(attempts=3))
    keys: list[list[str | None]] = []

    def flaky(left: list[int]) -> str:
        keys[-1].append(current_idempotency_key())
        if left[0] > 0:
            left[0] -= 1
            raise httpx.ConnectError("reset")
        return "ok"

    with acting_as(BOT), no_waits():
        for _ in range(calls):
            keys.append([])
            left = [failures]
            guard.call(
                request("billing.refund.create", invoice="inv-1", amount=40),
                lambda left=left: flaky(left),  # type: ignore[misc]
                write=True,
                idempotent=True,
            )
    firsts = [k[0] for k in keys]
    assert None not in firsts
    assert len(set(firsts)) == calls
    assert all(len(set(k)) == 1 and len(k) == failures + 1 for k in keys)


# -- every front end refuses a call with no principal alike ----------------------------------


def test_every_front_end_denies_a_call_without_a_principal() -> None:
    """@requires_permission, @audited, Guard.protect and Guard.call: no principal, no call."""
    log = AuditLog.memory()
    guard = Guard(POLICY, audit=log)
    ran: list[str] = []

    @requires_permission("crm.contact.read", policy=POLICY)
    def a() -> None:
        ran.append("a")

    @audited(log, action="crm.contact.read")
    def b() -> None:
        ran.append("b")

    @guard.protect("crm.contact.read")
    def c() -> None:
        ran.append("c")

    for fn in (a, b, c):
        with pytest.raises(PermissionDenied, match="no principal"):
            fn()
    assert ran == []
    assert [r.outcome for r in log.records()] == ["denied", "denied"]


async def _aiter(items: list[int]) -> AsyncIterator[int]:
    for item in items:
        yield item


def test_an_async_lazy_read_is_recorded_once_when_it_ends() -> None:
    """The async twin of the lazy read: nothing before iteration, one record after."""
    log = AuditLog.memory()
    guard = Guard(POLICY, audit=log)

    async def main() -> list[int]:
        with acting_as(BOT):
            records = await guard.acall(request("crm.contact.list"), _afn, lazy=True)
            assert list(log.records()) == []
            return [item async for item in records]

    async def _afn() -> AsyncIterator[int]:
        return _aiter([1, 2])

    assert asyncio.run(main()) == [1, 2]
    (record,) = log.records()
    assert record.outcome == "executed"
