"""Opening by external id (idempotent, race-safe, fail closed), previews, and the async twins."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from handrail import ConfigurationError
from handrail.approvals import Identity
from handrail.audit import AuditLog
from handrail.escalation import (
    Escalation,
    EscalationError,
    EscalationPreview,
    EscalationRouter,
    EscalationState,
    EscalationStore,
    ExternalIdConflict,
    OnTimeout,
)
from handrail.testing import FakeClock

from .conftest import StoreMaker
from .test_router import GROUPS, SALES, T0, CountingStore, Inbox, decision

MakeStore = Callable[[], EscalationStore]

HOUR = timedelta(hours=1)
CALL = "call_7f3a9c2e"  # a framework's tool-call id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    log = AuditLog.memory()
    yield log
    log.close()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def router(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog, inbox: Inbox
) -> EscalationRouter:
    """A router over a fresh store of each backend, on a fake clock, with an audit log."""
    return EscalationRouter(
        [SALES], make_store(), channels=[inbox], clock=clock, audit=audit, groups=GROUPS
    )


def escalated(audit: AuditLog) -> list[str | None]:
    """The escalation ids of the ``opened`` audit records, in order."""
    return [r.escalation_id for r in audit.records() if r.context.get("event") == "opened"]


# --- opening by external id ----------------------------------------------------------------


def test_a_case_opened_by_external_id_carries_it_and_is_found_by_it(
    router: EscalationRouter,
) -> None:
    """``open(external_id=)`` stores the id on the case; ``find`` returns the case, or None."""
    opened = router.open(decision(), external_id=CALL)
    assert opened.external_id == CALL
    assert router.get(opened.id) == opened
    assert router.find(CALL) == opened
    assert router.find("call_unknown") is None
    assert router.open(decision()).external_id is None


def test_opening_twice_under_one_external_id_returns_the_same_case_once_notified(
    router: EscalationRouter, audit: AuditLog, inbox: Inbox, clock: FakeClock
) -> None:
    """A retried tool call opens nothing new: the same case comes back, with no second
    notification and no second audit record."""
    first = router.open(decision(), external_id=CALL)
    router.tick()
    clock.advance(timedelta(minutes=5))
    again = router.open(decision(), external_id=CALL)
    router.tick()
    assert again == first
    assert [e.id for e in router.list()] == [first.id]
    assert inbox.kinds() == [("opened", 0)]
    assert escalated(audit) == [first.id]
    assert [d.target for d in router.store.pending_deliveries(first.id)] == []


def test_the_same_external_id_returns_the_case_whatever_its_state(
    router: EscalationRouter,
) -> None:
    """Once decided (or executed), the case opened under the id is returned as it is now:
    resuming by external id sees the human's decision."""
    opened = router.open(decision(), external_id=CALL)
    router.approve(opened.id, by=Identity("maria", method="test"))
    router.claim_execution(opened.id)
    again = router.open(decision(), external_id=CALL)
    assert again.id == opened.id
    assert (again.state, again.allowed) == (EscalationState.APPROVED, True)
    assert again.executed_at is not None


def test_an_external_id_used_for_another_request_is_refused(
    router: EscalationRouter, audit: AuditLog
) -> None:
    """The same id for a different request (another discount, another agent's action) fails
    closed with ExternalIdConflict naming both ids; nothing is opened."""
    opened = router.open(decision(), external_id=CALL)
    for other in (
        decision(deal="d-1", pct=40),
        decision("crm.deal.delete", deal="d-1", pct=30),
    ):
        with pytest.raises(ExternalIdConflict) as refused:
            router.open(other, external_id=CALL)
        assert isinstance(refused.value, EscalationError)
        assert (refused.value.escalation_id, refused.value.external_id) == (opened.id, CALL)
        assert CALL in str(refused.value)
    assert [e.id for e in router.list()] == [opened.id]
    assert escalated(audit) == [opened.id]


@pytest.mark.parametrize(
    ("external_id", "why"),
    [
        ("", "must not be empty"),
        ("x" * 257, "257 characters long, more than 256"),
        ("call\x1b[2J", r"call\\x1b\[2J' holds a character that is not printable"),
        ("call\u202e1", "not printable"),
        ("call 1\n", "not printable"),
        (42, "must be a str"),
        (b"call", "must be a str"),
    ],
)
def test_a_malformed_external_id_is_refused_naming_it(
    router: EscalationRouter, external_id: Any, why: str
) -> None:
    """An external id is a non-empty printable str of at most 256 characters; anything else is
    a ConfigurationError naming ``external_id``, for open and find, and nothing is opened."""
    with pytest.raises(ConfigurationError, match=f"external_id.*{why}"):
        router.open(decision(), external_id=external_id)
    with pytest.raises(ConfigurationError, match="external_id"):
        router.find(external_id)
    assert router.list() == []


def test_the_longest_and_unicode_external_ids_are_accepted(router: EscalationRouter) -> None:
    """256 characters, and printable non-ASCII text, are fine."""
    for external_id in ("x" * 256, "appel-outil-n°7-ünïcode"):
        assert router.open(decision(), external_id=external_id).external_id == external_id
        assert router.find(external_id) is not None


def test_an_unfingerprintable_request_is_refused_before_its_external_id_is_looked_up(
    router: EscalationRouter,
) -> None:
    """Arguments no approval could tell apart are refused whether or not the id is known."""
    with pytest.raises(ConfigurationError, match="cannot be fingerprinted"):
        router.open(decision(rows=np.array([1, 2])), external_id=CALL)
    assert router.find(CALL) is None


class HeldStore(CountingStore):
    """A store whose ``find`` waits at a barrier: every router has looked, and found nothing,
    before any of them creates, so they all race to insert the same external id."""

    def __init__(self, inner: EscalationStore, barrier: threading.Barrier) -> None:
        super().__init__(inner)
        self.barrier = barrier

    def find(self, external_id: str) -> Escalation | None:
        found = self.inner.find(external_id)
        self.barrier.wait(timeout=30)
        return found


def race(make_store: StoreMaker, audit: AuditLog, *decisions: Any) -> list[Escalation | Exception]:
    """Each decision opened under CALL at once by its own router over its own store object
    on the same data; returns what each ``open`` returned or raised."""
    barrier = threading.Barrier(len(decisions))
    routers = [
        EscalationRouter(
            [SALES], HeldStore(make_store(), barrier), audit=audit, groups=GROUPS, worker=f"w{n}"
        )
        for n in range(len(decisions))
    ]
    outcomes: list[Escalation | Exception] = [RuntimeError("did not run")] * len(decisions)

    def open_one(index: int) -> None:
        try:
            outcomes[index] = routers[index].open(decisions[index], external_id=CALL)
        except Exception as exc:  # returned, not lost in the thread
            outcomes[index] = exc

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(len(decisions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_routers_racing_to_open_one_external_id_end_with_one_case(
    make_store: StoreMaker, audit: AuditLog
) -> None:
    """Two routers (one store each, the same data) open the same external id at the same
    moment: the unique constraint lets one insert, the other reads the winner back. One case,
    both callers hold it, one audit record, one notice pending."""
    first, second = race(make_store, audit, decision(), decision())
    assert isinstance(first, Escalation)
    assert isinstance(second, Escalation)
    assert first.id == second.id
    store = make_store()
    assert [e.id for e in store.list()] == [first.id]
    assert escalated(audit) == [first.id]
    notices = [d for d in store.pending_deliveries(first.id) if d.target != "audit"]
    assert len(notices) == 1


def test_a_race_between_two_requests_for_one_external_id_refuses_the_loser(
    make_store: StoreMaker, audit: AuditLog
) -> None:
    """Racing with different requests under one external id: one is opened, the other gets
    ExternalIdConflict naming the winner, and no second case exists."""
    outcomes = race(make_store, audit, decision(), decision(deal="d-1", pct=40))
    cases = [o for o in outcomes if isinstance(o, Escalation)]
    conflicts = [o for o in outcomes if isinstance(o, ExternalIdConflict)]
    assert (len(cases), len(conflicts)) == (1, 1), outcomes
    assert conflicts[0].escalation_id == cases[0].id
    assert [e.id for e in make_store().list()] == [cases[0].id]


# --- preview ----------------------------------------------------------------------------------


def test_preview_says_what_opening_would_do_and_does_none_of_it(
    router: EscalationRouter, audit: AuditLog, inbox: Inbox
) -> None:
    """The route, the first level, its deciders (groups expanded) and recipients, deadlines and
    timeout: what a shadow run records. Nothing is stored, notified or audited."""
    preview = router.preview(decision())
    assert preview == EscalationPreview(
        route="sales",
        level=0,
        level_name="manager",
        deciders=("maria", "group:leads", "lena"),
        notify=("#sales", "maria@example.com"),
        ack_within=HOUR,
        resolve_within=4 * HOUR,
        on_timeout=OnTimeout.ALLOW,
    )
    opened = router.open(decision())
    assert (opened.route.name, opened.level, opened.deciders) == (
        preview.route,
        preview.level,
        preview.deciders,
    )
    router.tick()  # the opened case's notice goes out
    before = (router.list(), list(audit.records()), inbox.kinds())
    assert router.preview(decision()) == preview
    router.tick()
    assert (router.list(), list(audit.records()), inbox.kinds()) == before


def test_preview_reports_deny_when_only_the_route_allows_on_timeout(
    router: EscalationRouter,
) -> None:
    """Silence is consent only when route and rule both say so, in the preview as on a case."""
    preview = router.preview(decision("crm.deal.delete"))
    assert preview.on_timeout is OnTimeout.DENY
    assert router.open(decision("crm.deal.delete")).allow_on_timeout is False


def test_preview_refuses_what_open_refuses(router: EscalationRouter) -> None:
    """A decision that does not escalate, an unknown route, arguments that cannot be
    fingerprinted: ConfigurationError, as from ``open``."""
    with pytest.raises(ConfigurationError, match="preview: the decision is allow"):
        router.preview(decision("crm.deal.read"))
    with pytest.raises(ConfigurationError, match="no route named 'nowhere'"):
        router.preview(decision("crm.deal.archive"))
    with pytest.raises(ConfigurationError, match="cannot be fingerprinted"):
        router.preview(decision(rows=np.array([1, 2])))


def test_a_preview_is_a_frozen_value() -> None:
    """EscalationPreview cannot be changed after it is made (a record, not a handle)."""
    preview = EscalationPreview("r", 0, "", ("a",), (), None, HOUR, OnTimeout.DENY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        preview.route = "other"  # type: ignore[misc]


# --- async twins --------------------------------------------------------------------------------


class ThreadRecordingStore(CountingStore):
    """Records the thread every store call runs on."""

    def __init__(self, inner: EscalationStore) -> None:
        super().__init__(inner)
        self.threads: set[int] = set()

    def __getattribute__(self, name: str) -> Any:
        if name in {"create", "get", "find", "list", "update"}:
            object.__getattribute__(self, "threads").add(threading.get_ident())
        return object.__getattribute__(self, name)


def test_the_async_twins_do_what_the_sync_methods_do_off_the_event_loop(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """aopen, aget, afind, alist, aacknowledge, adecide, aapprove, areject, acancel and
    aclaim_execution give the sync results, and no store call runs on the loop's thread."""
    store = ThreadRecordingStore(make_store())
    router = EscalationRouter([SALES], store, clock=clock, audit=audit, groups=GROUPS)

    async def scenario() -> int:
        one = await router.aopen(decision(), external_id=CALL)
        assert await router.aopen(decision(), external_id=CALL) == one
        assert await router.aget(one.id) == one
        assert await router.afind(CALL) == one
        assert await router.afind("call_unknown") is None
        acknowledged = await router.aacknowledge(one.id, by=Identity("maria", method="test"))
        assert acknowledged.acknowledged_by == "maria"
        assert (await router.aapprove(one.id, by=Identity("maria", method="test"))).allowed is True
        assert (await router.aclaim_execution(one.id)).executed_by == router.worker
        two, three, four = [await router.aopen(decision()) for _ in range(3)]
        assert (await router.areject(two.id, by=Identity("maria", method="test"))).allowed is False
        decided = await router.adecide(
            three.id, approve=True, by=Identity("lena", method="test"), reason="ok"
        )
        assert (decided.allowed, decided.reason) == (True, "ok")
        assert (await router.acancel(four.id, by="bot")).state is EscalationState.CANCELLED
        rejected = await router.alist(state="rejected")
        assert [e.id for e in rejected] == [two.id]
        assert [e.id for e in await router.alist(limit=2)] == [one.id, two.id]
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert store.threads
    assert loop_thread not in store.threads


def test_every_async_method_is_the_a_twin_of_a_sync_one() -> None:
    """One naming rule: an async method is named ``a`` + the name of its sync twin (``run``,
    the worker loop, is async only and documented so)."""
    async_methods = {
        name
        for name, member in inspect.getmembers(EscalationRouter)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }
    assert "run" in async_methods
    for name in async_methods - {"run"}:
        twin = getattr(EscalationRouter, name[1:], None)
        assert name.startswith("a"), name
        assert twin is not None, f"{name} has no sync twin {name[1:]}"
        assert not inspect.iscoroutinefunction(twin), name
    assert {
        "aopen",
        "aget",
        "afind",
        "alist",
        "aacknowledge",
        "adecide",
        "aapprove",
        "areject",
        "acancel",
        "aclaim_execution",
        "await_decision",
        "atick",
    } <= async_methods
    assert not hasattr(EscalationRouter, "wait")  # renamed wait_decision, twin of await_decision
