"""FakeApprover: a scripted human deciding escalations through the router's public API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from handrail import ActionRequest, Policy, Principal, User
from handrail.approvals import Identity
from handrail.escalation import (
    Escalation,
    EscalationRouter,
    EscalationState,
    Level,
    MemoryStore,
    NotADecider,
    Route,
)
from handrail.testing import FakeApprover, FakeClock

FINANCE = Route(
    name="finance",
    levels=(Level(name="lead", notify=(), deciders=("lead",), resolve_within=timedelta(hours=4)),),
)
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "refunds", "effect": "allow", "actions": "billing.refund.create"},
            {
                "id": "big-refunds",
                "effect": "escalate",
                "actions": "billing.refund.create",
                "escalate_to": "finance",
            },
        ]
    }
)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def router(clock: FakeClock) -> Iterator[EscalationRouter]:
    with EscalationRouter([FINANCE], MemoryStore(), clock=clock) as opened:
        yield opened


def escalate(router: EscalationRouter, clock: FakeClock, amount: int) -> Escalation:
    """Open a case for a refund of ``amount`` asked by a bot for alice, a minute after the last."""
    clock.advance(timedelta(minutes=1))
    request = ActionRequest(
        principal=Principal(agent="billing-bot", on_behalf_of="alice"),
        action="billing.refund.create",
        args={"amount": amount},
    )
    return router.open(POLICY.evaluate(request))


def test_approve_next_decides_the_oldest_waiting_case(
    router: EscalationRouter, clock: FakeClock
) -> None:
    """The oldest open case is approved, by the decider named, and the router says so."""
    first = escalate(router, clock, 100)
    second = escalate(router, clock, 200)
    approver = FakeApprover(router, decider="lead")
    approved = approver.approve_next(reason="fine")
    assert approved.id == first.id
    stored = router.get(first.id)
    assert (stored.state, stored.allowed, stored.decided_by) == ("approved", True, "lead")
    assert router.get(second.id).state is EscalationState.OPEN
    assert [e.id for e in approver.decided] == [first.id]


def test_reject_next_and_decisions_by_id(router: EscalationRouter, clock: FakeClock) -> None:
    """reject_next rejects the oldest waiting case; approve and reject take an id."""
    first, second, third = (escalate(router, clock, n) for n in (1, 2, 3))
    approver = FakeApprover(router, decider=Identity("lead", method="sso", detail="idp"))
    assert approver.reject_next("too big").id == first.id
    assert approver.approve(third.id).state is EscalationState.APPROVED
    assert approver.reject(second.id, reason="duplicate").state is EscalationState.REJECTED
    assert [(e.id, e.state.value) for e in approver.decided] == [
        (first.id, "rejected"),
        (third.id, "approved"),
        (second.id, "rejected"),
    ]
    assert {e.history[-1].via for e in approver.decided} == {"sso idp"}


def test_nothing_waiting_is_a_lookup_error(router: EscalationRouter, clock: FakeClock) -> None:
    """approve_next with no case waiting fails loudly: the code under test did not escalate."""
    approver = FakeApprover(router, decider="lead")
    with pytest.raises(LookupError, match="no escalation is waiting"):
        approver.approve_next()
    approver.approve(escalate(router, clock, 5).id)
    with pytest.raises(LookupError):
        approver.reject_next()


def test_a_script_decides_waiting_cases_in_order(
    router: EscalationRouter, clock: FakeClock
) -> None:
    """Scripted decisions apply to the waiting cases, oldest first, until the script runs out."""
    cases = [escalate(router, clock, n) for n in (10, 20, 30)]
    approver = FakeApprover(router, decider="lead").will_approve().will_reject(reason="no")
    assert approver.scripted == 2
    decided = approver.decide_waiting()
    assert [(e.id, e.state.value) for e in decided] == [
        (cases[0].id, "approved"),
        (cases[1].id, "rejected"),
    ]
    assert router.get(cases[1].id).history[-1].reason == "no"
    assert router.get(cases[2].id).state is EscalationState.OPEN
    assert approver.scripted == 0
    assert approver.decide_waiting() == []


def test_times_must_be_a_positive_count(router: EscalationRouter) -> None:
    """A script of zero or a negative number of decisions is a mistake in the test."""
    with pytest.raises(ValueError, match="times must be an int >= 1"):
        FakeApprover(router).will_approve(0)


def test_deciding_in_the_background_unblocks_code_that_waits(
    router: EscalationRouter, clock: FakeClock
) -> None:
    """While the block runs, a thread applies the script to cases as they open."""
    resolved = threading.Event()
    router.on_resolved(lambda escalation: resolved.set())
    approver = FakeApprover(router, decider="lead").will_approve()
    with approver.deciding(every=timedelta(milliseconds=1)):
        case = escalate(router, clock, 50)
        assert resolved.wait(timeout=30), "the fake approver never decided"
    assert router.get(case.id).allowed is True


def test_a_refused_decider_fails_the_block(router: EscalationRouter, clock: FakeClock) -> None:
    """The router refuses a decider not on the route: the error reaches the test at block end."""
    case = escalate(router, clock, 50)
    approver = FakeApprover(router, decider="mallory").will_approve()
    with pytest.raises(NotADecider), approver.deciding():
        pass
    assert router.get(case.id).state is EscalationState.OPEN
    assert approver.decided == []


def test_a_decider_id_is_a_test_identity_and_a_user_is_refused(
    router: EscalationRouter, clock: FakeClock
) -> None:
    """A user id becomes ``Identity(id, method="test")``; a ``User`` is no identity at all."""
    approver = FakeApprover(router, decider="Lead")
    assert approver.decider == Identity("lead", method="test")
    decided = approver.approve(escalate(router, clock, 7).id)
    assert (decided.decided_by, decided.history[-1].via) == ("lead", "test")
    with pytest.raises(TypeError, match="a user id or an Identity"):
        FakeApprover(router, decider=User(id="lead"))  # type: ignore[arg-type]
