"""Guard + EscalationRouter: an escalated call opens a case, then waits, raises or runs once."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from handrail import (
    ConfigurationError,
    EscalationRequired,
    PermissionDenied,
    Policy,
    Principal,
    acting_as,
)
from handrail._values import MAX_VALUE_DEPTH, MAX_VALUE_ITEMS
from handrail.approvals import Identity
from handrail.audit import AuditLog
from handrail.escalation import (
    AlreadyExecuted,
    EscalationRouter,
    EscalationState,
    Level,
    MemoryStore,
    Route,
    resuming,
)
from handrail.guard import Guard
from handrail.resilience import current_idempotency_key
from handrail.testing import FakeClock

POLICY = Policy.from_yaml(
    """
rules:
  - {id: deals, effect: allow, actions: [crm.deal.discount]}
  - id: big-discount
    effect: escalate
    actions: [crm.deal.discount]
    when: {args.pct: {gt: 15}}
    escalate_to: sales
  - id: refunds
    effect: escalate
    actions: [erp.refund.create]
    escalate_to: nowhere
  - {id: refunds-ok, effect: allow, actions: [erp.refund.create]}
"""
)
BOT = Principal(agent="sales-bot")
SALES = Route(
    name="sales",
    levels=(Level(deciders=("maria",), resolve_within=timedelta(hours=4)),),
)


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog.memory()


@pytest.fixture
def router(audit: AuditLog) -> EscalationRouter:
    return EscalationRouter([SALES], MemoryStore(), clock=FakeClock(), audit=audit)


class Deals:
    """A tool whose calls are counted, so 'runs once' can be checked."""

    def __init__(self, guard: Guard) -> None:
        self.calls: list[tuple[str, int, str | None]] = []

        @guard.protect("crm.deal.discount", is_write=True)
        def discount(deal: str, pct: int) -> str:
            self.calls.append((deal, pct, current_idempotency_key()))
            return f"{deal}: -{pct}%"

        @guard.protect("crm.deal.discount", is_write=True)
        async def adiscount(deal: str, pct: int) -> str:
            self.calls.append((deal, pct, current_idempotency_key()))
            return f"{deal}: -{pct}%"

        self.discount = discount
        self.adiscount = adiscount


def escalate(deals: Deals, deal: str = "d-1", pct: int = 30) -> str:
    with pytest.raises(EscalationRequired) as raised:
        deals.discount(deal, pct)
    case = raised.value.escalation_id
    assert case is not None
    assert case in str(raised.value)
    return case


def test_an_escalated_call_opens_a_case_and_raises_with_its_id(
    router: EscalationRouter, audit: AuditLog
) -> None:
    deals = Deals(Guard(POLICY, audit=audit, escalations=router))
    with acting_as(BOT):
        assert deals.discount("d-1", 10) == "d-1: -10%"  # under the threshold: no case
        case = escalate(deals)
    escalation = router.get(case)
    assert escalation.state is EscalationState.OPEN
    assert escalation.decision["rule_id"] == "big-discount"
    assert escalation.request["args"] == {"deal": "d-1", "pct": 30}
    ((deal, pct, key),) = deals.calls
    assert (deal, pct) == ("d-1", 10)
    assert isinstance(key, str)  # every write runs under a key of its own
    assert key
    # One final record for the call; the router's case event has an outcome of its own.
    escalated = [r for r in audit.records() if r.outcome == "escalated"]
    assert [r.escalation_id for r in escalated] == [case]
    opened = [r for r in audit.records() if r.outcome == "opened"]
    assert [r.escalation_id for r in opened] == [case]


def test_resuming_runs_the_approved_call_once_under_the_escalation_id(
    router: EscalationRouter, audit: AuditLog
) -> None:
    deals = Deals(Guard(POLICY, audit=audit, escalations=router))
    with acting_as(BOT):
        case = escalate(deals)
        with resuming(case), pytest.raises(EscalationRequired) as pending:
            deals.discount("d-1", 30)
        assert pending.value.escalation_id == case  # still pending: same case, no new one
        assert len(router.list()) == 1

        router.approve(case, by=Identity("maria", method="test"), reason="key account")
        with resuming(case):
            assert deals.discount("d-1", 30) == "d-1: -30%"
            with pytest.raises(AlreadyExecuted):
                deals.discount("d-1", 30)
    assert deals.calls == [("d-1", 30, case)]
    executed = [r for r in audit.records() if r.outcome == "executed"]
    assert [(r.escalation_id, r.idempotency_key) for r in executed] == [(case, case)]
    assert "approved by maria: key account" in (executed[0].reason or "")
    assert router.get(case).executed_at is not None


def test_a_resumed_call_with_different_arguments_is_refused(router: EscalationRouter) -> None:
    deals = Deals(Guard(POLICY, escalations=router))
    with acting_as(BOT):
        case = escalate(deals)
        router.approve(case, by=Identity("maria", method="test"))
        with resuming(case), pytest.raises(PermissionDenied, match=r"the request .* differs"):
            deals.discount("d-1", 90)
        with (
            acting_as(Principal(agent="other-bot")),
            resuming(case),
            pytest.raises(PermissionDenied, match=r"the request .* differs"),
        ):
            deals.discount("d-1", 30)
    assert deals.calls == []


@pytest.mark.parametrize("how", ["reject", "cancel", "expire"])
def test_a_case_that_ends_without_approval_refuses_the_call(
    router: EscalationRouter, audit: AuditLog, how: str
) -> None:
    deals = Deals(Guard(POLICY, audit=audit, escalations=router))
    with acting_as(BOT):
        case = escalate(deals)
        if how == "reject":
            router.reject(case, by=Identity("maria", method="test"), reason="margin too thin")
        elif how == "cancel":
            router.cancel(case, reason="customer left")
        else:
            assert isinstance(router.clock, FakeClock)
            router.clock.advance(timedelta(hours=5))
            router.tick()
        with resuming(case), pytest.raises(PermissionDenied) as refused:
            deals.discount("d-1", 30)
    assert case in str(refused.value)
    assert deals.calls == []
    assert list(audit.records())[-1].outcome == "denied"


def test_an_unknown_route_or_case_fails_closed(router: EscalationRouter) -> None:
    guard = Guard(POLICY, escalations=router)
    ran: list[str] = []

    @guard.protect("erp.refund.create")
    def refund(order: str) -> None:
        ran.append(order)

    with acting_as(BOT):
        with pytest.raises(PermissionDenied, match="no route named 'nowhere'"):
            refund("o-1")
        deals = Deals(guard)
        with resuming("01NOSUCHCASE"), pytest.raises(PermissionDenied, match="no such"):
            deals.discount("d-1", 30)
    assert ran == []


class Bulk:
    """A tool taking a list of ids: what an approval of one list must not run for another."""

    def __init__(self, guard: Guard) -> None:
        self.ran: list[object] = []

        @guard.protect("crm.deal.discount")
        def discount(deal: object, pct: int) -> None:
            self.ran.append(deal)

        self.discount = discount


def unreadable(tag: int) -> list[object]:
    """Two values handrail cannot read (too many items, too deep, an n-d array) per tag."""
    deep: list[object] = [tag]
    for _ in range(MAX_VALUE_DEPTH + 1):
        deep = [deep]
    return [list(range(tag, tag + MAX_VALUE_ITEMS + 1)), deep, np.array([tag, tag + 1])]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["items", "depth", "ndarray"])
def test_a_value_handrail_cannot_read_never_opens_a_case(
    router: EscalationRouter, audit: AuditLog, index: int
) -> None:
    """An approval could not tell such values apart, so escalating one is refused (denied)."""
    bulk = Bulk(Guard(POLICY, audit=audit, escalations=router))
    with acting_as(BOT), pytest.raises(PermissionDenied, match="cannot be fingerprinted"):
        bulk.discount(unreadable(1)[index], 30)
    assert router.list() == []
    assert bulk.ran == []
    assert list(audit.records())[-1].outcome == "denied"


@pytest.mark.parametrize("index", [0, 1, 2], ids=["items", "depth", "ndarray"])
def test_an_approval_never_runs_a_call_with_a_different_unreadable_value(
    router: EscalationRouter, index: int
) -> None:
    """Whatever the case held, resuming it with another unreadable value is refused."""
    bulk = Bulk(Guard(POLICY, escalations=router))
    with acting_as(BOT):
        try:
            bulk.discount(unreadable(1)[index], 30)
        except EscalationRequired as pending:  # a case for a value it cannot tell apart
            case = str(pending.escalation_id)
        except PermissionDenied:  # refused outright; resume a case opened for "d-1"
            case = escalate(Deals(Guard(POLICY, escalations=router)))
        router.approve(case, by=Identity("maria", method="test"))
        with resuming(case), pytest.raises(PermissionDenied):
            bulk.discount(unreadable(7)[index], 30)
    assert bulk.ran == []


def test_a_store_that_fails_denies(audit: AuditLog) -> None:
    class Broken(MemoryStore):
        def create(self, *args: object, **kwargs: object) -> None:
            raise ConfigurationError("the disk is full")

    router = EscalationRouter([SALES], Broken(), clock=FakeClock(), audit=audit)
    deals = Deals(Guard(POLICY, audit=audit, escalations=router))
    with acting_as(BOT), pytest.raises(PermissionDenied, match="disk is full"):
        deals.discount("d-1", 30)
    assert list(audit.records())[-1].outcome == "denied"


class ApprovingClock(FakeClock):
    """A fake clock on which maria approves the open case during the first pause of a wait."""

    def __init__(self) -> None:
        super().__init__()
        self.router: EscalationRouter | None = None
        self.pauses = 0

    def sleep(self, seconds: float) -> None:
        self._approve_once()
        super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self._approve_once()
        await super().asleep(seconds)

    def _approve_once(self) -> None:
        self.pauses += 1
        if self.pauses == 1 and self.router is not None:
            (case,) = self.router.list(state="open")
            self.router.approve(case.id, by=Identity("maria", method="test"))


@pytest.fixture
def approving(audit: AuditLog) -> tuple[EscalationRouter, ApprovingClock]:
    """A router whose clock has maria approve while the guard waits."""
    clock = ApprovingClock()
    router = EscalationRouter([SALES], MemoryStore(), clock=clock, audit=audit)
    clock.router = router
    return router, clock


def test_wait_for_decision_runs_the_call_when_a_human_approves_meanwhile(
    approving: tuple[EscalationRouter, ApprovingClock],
) -> None:
    router, clock = approving
    deals = Deals(Guard(POLICY, escalations=router, wait_for_decision=timedelta(seconds=10)))
    with acting_as(BOT):
        assert deals.discount("d-1", 30) == "d-1: -30%"
    assert len(deals.calls) == 1
    assert clock.pauses == 1


def test_wait_for_decision_times_out_into_escalation_required(router: EscalationRouter) -> None:
    deals = Deals(Guard(POLICY, escalations=router, wait_for_decision=timedelta(seconds=0.05)))
    with acting_as(BOT), pytest.raises(EscalationRequired):
        deals.discount("d-1", 30)
    assert deals.calls == []


def test_a_thirty_minute_wait_on_a_fake_clock_does_not_really_sleep(audit: AuditLog) -> None:
    """The regression: the guard's wait goes through the router's clock. On a FakeClock a
    30-minute wait with nobody answering passes at once (the fake time moves 30 minutes; the
    real-time budget is generous, far below 30 minutes) and ends in EscalationRequired, in
    sync and async calls."""
    clock = FakeClock()
    router = EscalationRouter([SALES], MemoryStore(), clock=clock, audit=audit)
    deals = Deals(Guard(POLICY, escalations=router, wait_for_decision=timedelta(minutes=30)))
    start = clock.now()
    started = time.monotonic()
    with acting_as(BOT), pytest.raises(EscalationRequired):
        deals.discount("d-1", 30)
    assert clock.now() - start == timedelta(minutes=30)

    async def main() -> None:
        with acting_as(BOT):
            await deals.adiscount("d-2", 30)

    with pytest.raises(EscalationRequired):
        asyncio.run(main())
    assert clock.now() - start == timedelta(minutes=60)
    assert time.monotonic() - started < 60
    assert deals.calls == []


def test_async_calls_await_the_decision(
    approving: tuple[EscalationRouter, ApprovingClock],
) -> None:
    router, clock = approving
    deals = Deals(Guard(POLICY, escalations=router, wait_for_decision=timedelta(seconds=10)))

    async def main() -> str:
        with acting_as(BOT):
            return await deals.adiscount("d-1", 30)

    assert asyncio.run(main()) == "d-1: -30%"
    assert len(deals.calls) == 1
    assert clock.pauses == 1


def test_two_workers_resuming_one_case_run_it_once(tmp_path: Path) -> None:
    store = MemoryStore()
    routers = [EscalationRouter([SALES], store, worker=f"w{i}") for i in range(2)]
    guards = [Deals(Guard(POLICY, escalations=r)) for r in routers]
    with acting_as(BOT):
        case = escalate(guards[0])
    routers[0].approve(case, by=Identity("maria", method="test"))
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def resume(deals: Deals) -> None:
        barrier.wait()
        with acting_as(BOT), resuming(case):
            try:
                deals.discount("d-1", 30)
                outcomes.append("ran")
            except AlreadyExecuted:
                outcomes.append("already")

    threads = [threading.Thread(target=resume, args=(g,)) for g in guards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already", "ran"]
    assert sum(len(g.calls) for g in guards) == 1


def test_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="EscalationRouter"):
        Guard(POLICY, escalations="router")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="wait_for_decision needs"):
        Guard(POLICY, wait_for_decision=5)
    with pytest.raises(TypeError), resuming(""):
        pass


def test_without_a_router_escalation_still_raises_without_an_id() -> None:
    deals = Deals(Guard(POLICY))
    with acting_as(BOT), pytest.raises(EscalationRequired) as raised:
        deals.discount("d-1", 30)
    assert raised.value.escalation_id is None
