"""EscalationRouter over every store: opening, notifying, deciding, timers, the outbox, restarts."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import enum
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from handrail import (
    ActionRequest,
    AuditError,
    ConfigurationError,
    Decision,
    Policy,
    Principal,
    User,
)
from handrail._values import MAX_VALUE_ITEMS
from handrail.approvals import Identity
from handrail.audit import AuditLog, AuditRecord, MemorySink
from handrail.escalation import (
    AlreadyExecuted,
    Change,
    Delivery,
    Escalation,
    EscalationRouter,
    EscalationState,
    EscalationStore,
    IllegalTransition,
    Level,
    NotADecider,
    NotAuthenticated,
    Notification,
    OnTimeout,
    Route,
    UnknownEscalation,
    request_fingerprint,
)
from handrail.escalation import _machine as machine
from handrail.testing import FakeClock, capture_telemetry

MakeStore = Callable[[], EscalationStore]

T0 = datetime(2025, 1, 1, tzinfo=UTC)  # a Wednesday
MILLISECOND = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
API_KEY = "sk-live-0123456789abcdef"
PASSWORD = "hunter2-correct-horse"
HOOK_URL = f"https://bot:{PASSWORD}@hooks.example.com/notify?key={API_KEY}"

MANAGER = Level(
    name="manager",
    notify=("#sales", "maria@example.com"),
    deciders=("maria", "group:leads"),
    ack_within=HOUR,
    resolve_within=4 * HOUR,
)
VP = Level(name="vp", notify="vp@example.com", deciders="group:vps", resolve_within=8 * HOUR)
SALES = Route(name="sales", levels=(MANAGER, VP), on_timeout=OnTimeout.ALLOW)
GROUPS = {"leads": ["lena"], "vps": ["victor", "vera"]}

POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "crm", "effect": "allow", "actions": "crm.*.*"},
            {
                "id": "big-discount",
                "effect": "escalate",
                "actions": "crm.deal.discount",
                "escalate_to": "sales",
                "on_timeout": "allow",
            },
            {
                "id": "delete-deal",
                "effect": "escalate",
                "actions": "crm.deal.delete",
                "escalate_to": "sales",
            },
            {
                "id": "lost",
                "effect": "escalate",
                "actions": "crm.deal.archive",
                "escalate_to": "nowhere",
            },
        ]
    }
)


def decision(action: str = "crm.deal.discount", **args: Any) -> Decision:
    """The policy's decision for ``bot`` acting for ``alice`` with ``args`` (a 30% discount)."""
    request = ActionRequest(
        action=action,
        principal=Principal(agent="bot", on_behalf_of="alice"),
        args=args or {"deal": "d-1", "pct": 30},
    )
    return POLICY.evaluate(request)


class Inbox:
    """A channel that keeps what it is sent; fails its first ``failures`` sends."""

    def __init__(self, name: str = "inbox", *, failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.sent: list[Notification] = []
        self.tries = 0

    async def send(self, notification: Notification) -> None:
        self.tries += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError(f"{self.name} is down: {HOOK_URL} refused the connection")
        self.sent.append(notification)

    def kinds(self) -> list[tuple[str, int]]:
        return [(n.kind, n.level) for n in self.sent]


class CountingStore:
    """Wraps a store and counts the escalations ``process_due`` hands to the change function."""

    def __init__(self, inner: EscalationStore) -> None:
        self.inner = inner
        self.handed: list[str] = []

    def create(self, escalation: Escalation, deliveries: Sequence[Delivery] = ()) -> Escalation:
        return self.inner.create(escalation, deliveries)

    def get(self, escalation_id: str) -> Escalation | None:
        return self.inner.get(escalation_id)

    def find(self, external_id: str) -> Escalation | None:
        return self.inner.find(external_id)

    def list(
        self,
        *,
        state: EscalationState | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Escalation]:
        return self.inner.list(state=state, route=route, limit=limit)

    def update(self, escalation_id: str, change: Callable[[Escalation], Change]) -> Escalation:
        return self.inner.update(escalation_id, change)

    def process_due(
        self, now: datetime, change: Callable[[Escalation], Change | None], *, limit: int = 500
    ) -> int:
        def counted(escalation: Escalation) -> Change | None:
            self.handed.append(escalation.id)
            return change(escalation)

        return self.inner.process_due(now, counted, limit=limit)

    def claim_deliveries(
        self, now: datetime, *, limit: int = 100, lease: timedelta = timedelta(seconds=60)
    ) -> builtins.list[Delivery]:
        return self.inner.claim_deliveries(now, limit=limit, lease=lease)

    def complete_delivery(self, delivery_id: str) -> None:
        self.inner.complete_delivery(delivery_id)

    def fail_delivery(self, delivery_id: str, *, error: str, retry_at: datetime | None) -> None:
        self.inner.fail_delivery(delivery_id, error=error, retry_at=retry_at)

    def pending_deliveries(self, escalation_id: str | None = None) -> builtins.list[Delivery]:
        return self.inner.pending_deliveries(escalation_id)

    def is_admin(self) -> bool:
        return self.inner.is_admin()

    def close(self) -> None:
        self.inner.close()


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
    """A router over a fresh store (closed by ``make_store``), with a fake clock, an in-memory
    audit log and an inbox."""
    return EscalationRouter(
        [SALES], make_store(), channels=[inbox], clock=clock, audit=audit, groups=GROUPS
    )


def records(audit: AuditLog, escalation_id: str) -> list[AuditRecord]:
    return [r for r in audit.records() if r.escalation_id == escalation_id]


def audited_events(audit: AuditLog, escalation_id: str) -> list[str]:
    return [str(r.context["event"]) for r in records(audit, escalation_id)]


# --- opening -------------------------------------------------------------------------------


def test_open_stores_an_escalation_for_an_escalate_decision(router: EscalationRouter) -> None:
    """An ESCALATE decision becomes a stored, open case at level 0 with the rule's consent."""
    opened = router.open(decision())
    stored = router.get(opened.id)
    assert stored == opened
    assert (stored.state, stored.level, stored.route.name) == (EscalationState.OPEN, 0, "sales")
    assert stored.deciders == ("maria", "group:leads", "lena")
    assert stored.action == "crm.deal.discount"
    assert stored.request["agent"] == "bot"
    assert stored.request["on_behalf_of"] == "alice"
    assert stored.decision["rule_id"] == "big-discount"
    assert stored.allow_on_timeout is True
    assert (stored.ack_due, stored.resolve_due) == (T0 + HOUR, T0 + 4 * HOUR)
    assert stored.idempotency_key == stored.id
    assert router.open(decision("crm.deal.delete")).allow_on_timeout is False


def test_open_refuses_a_decision_that_does_not_escalate(router: EscalationRouter) -> None:
    """Only an ESCALATE decision opens a case; anything else is a configuration mistake."""
    with pytest.raises(ConfigurationError, match="not escalate"):
        router.open(decision("crm.deal.read"))
    assert router.list() == []


def test_open_refuses_an_unknown_route(router: EscalationRouter) -> None:
    """A rule escalating to a route the router does not know is refused, naming both."""
    with pytest.raises(ConfigurationError, match=r"no route named 'nowhere'.*lost.*sales"):
        router.open(decision("crm.deal.archive"))
    assert router.list() == []


def test_open_refuses_arguments_an_approval_could_not_tell_apart(
    router: EscalationRouter,
) -> None:
    """Values handrail could not read, or only shows by repr(), cannot be fingerprinted."""

    class Shown:
        def __repr__(self) -> str:
            return "<rows>"  # says nothing of what it holds

    for value in (
        list(range(MAX_VALUE_ITEMS + 1)),
        np.array([1, 2]),
        {"nested": [Shown()]},
        Point(x=1, y=Shown()),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError, match="argument rows cannot be fingerprinted"):
            router.open(decision(rows=value))
    assert router.list() == []


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Tag(enum.Enum):
    RED = "red"


def test_plain_data_is_fingerprinted_and_told_apart() -> None:
    """Numbers, text, dates, Decimal, enums, secrets, dataclasses and models are fingerprinted."""
    values: list[Any] = [
        1, 2, 1.5, "a", None, b"x", Decimal("1.10"), Fraction(1, 3), 1j,
        datetime(2024, 1, 1, tzinfo=UTC), timedelta(hours=1), Tag.RED, SecretStr("pw"),
        [1, 2], (2, 1), {"a": 1}, frozenset({"a"}), Point(x=1, y=2),
        Level(deciders=("maria",), resolve_within=HOUR),
    ]  # fmt: skip
    key = b"k" * 32
    prints = {request_fingerprint(decision(rows=value).request, key=key) for value in values}
    assert len(prints) == len(values)


def test_get_and_list(router: EscalationRouter, clock: FakeClock) -> None:
    """``get`` raises ``UnknownEscalation`` for an unknown id; ``list`` filters, oldest first."""
    first = router.open(decision())
    clock.advance(SECOND)
    second = router.open(decision())
    router.reject(second.id, by=Identity("maria", method="test"))
    assert [e.id for e in router.list()] == [first.id, second.id]
    assert [e.id for e in router.list(state="rejected")] == [second.id]
    assert [e.id for e in router.list(route="sales", limit=1)] == [first.id]
    assert router.list(route="other") == []
    with pytest.raises(UnknownEscalation):
        router.get("no-such-id")
    with pytest.raises(UnknownEscalation):
        router.approve("no-such-id", by=Identity("maria", method="test"))


# --- notifications ---------------------------------------------------------------------------


def test_opening_notifies_the_first_level(router: EscalationRouter, inbox: Inbox) -> None:
    """The next tick tells level 0's recipients who may decide, by when, and how."""
    e = router.open(decision())
    report = router.tick()
    assert report.fired == 0
    assert report.delivered >= 1
    assert report.failed == 0
    (notice,) = inbox.sent
    assert notice.kind == "opened"
    assert notice.id == f"{e.id}:0"
    assert (notice.escalation_id, notice.route, notice.level, notice.level_name) == (
        e.id,
        "sales",
        0,
        "manager",
    )
    assert notice.recipients == ("#sales", "maria@example.com")
    assert notice.deciders == ("maria", "group:leads", "lena")
    assert notice.due == T0 + HOUR
    assert (notice.action, notice.agent, notice.on_behalf_of) == (
        "crm.deal.discount",
        "bot",
        "alice",
    )
    assert notice.summary == "bot for alice wants to crm.deal.discount (rule big-discount)"
    assert f"handrail escalations approve {e.id} --reason '...'" in notice.commands
    assert router.tick() == (0, 0, 0)  # delivered once


def test_a_warning_goes_out_at_75_percent_of_the_deadline(
    router: EscalationRouter, clock: FakeClock, inbox: Inbox
) -> None:
    """At 75% of ``resolve_within`` the level is reminded, once."""
    e = router.acknowledge(router.open(decision()).id, by=Identity("maria", method="test"))
    router.tick()
    clock.advance(3 * HOUR - SECOND)
    assert router.tick().fired == 0
    clock.advance(SECOND)
    assert router.tick().fired == 1
    clock.advance(MINUTE)
    assert router.tick().fired == 0
    assert inbox.kinds() == [("opened", 0), ("warning", 0)]
    assert inbox.sent[-1].due == e.resolve_due


def test_a_breach_notifies_the_next_level(
    router: EscalationRouter, clock: FakeClock, inbox: Inbox
) -> None:
    """A missed ack deadline moves the case to the VPs and tells them, with their deadline."""
    e = router.open(decision())
    clock.advance(HOUR)
    report = router.tick()
    assert report.fired == 1
    moved = router.get(e.id)
    assert (moved.level, moved.state) == (1, EscalationState.OPEN)
    assert moved.deciders == ("group:vps", "vera", "victor")
    assert inbox.kinds() == [("opened", 0), ("escalated", 1)]
    notice = inbox.sent[-1]
    assert notice.recipients == ("vp@example.com",)
    assert notice.deciders == moved.deciders
    assert notice.due == T0 + HOUR + 8 * HOUR
    assert notice.reason == "ack deadline breached"


def test_a_decision_sends_a_resolved_notice(router: EscalationRouter, inbox: Inbox) -> None:
    """A decision tells the level the case is settled: no deadline, no commands."""
    e = router.open(decision())
    router.approve(e.id, by=Identity("maria", method="test"), reason="within budget")
    router.tick()
    assert inbox.kinds() == [("opened", 0), ("resolved", 0)]
    resolved = inbox.sent[-1]
    assert (resolved.state, resolved.due, resolved.commands) == (
        EscalationState.APPROVED,
        None,
        (),
    )
    assert resolved.reason == "within budget"


def test_a_level_may_pick_its_channels(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """``Level.channels`` sends that level's notices through the named channels only."""
    slack, mail = Inbox("slack"), Inbox("mail")
    only_slack = Route(
        name="sales", levels=(MANAGER.model_copy(update={"channels": ("slack",)}), VP)
    )
    store = make_store()
    router = EscalationRouter(
        [only_slack], store, channels=[slack, mail], clock=clock, audit=audit, groups=GROUPS
    )
    router.open(decision())
    clock.advance(HOUR)
    router.tick()
    assert slack.kinds() == [("opened", 0), ("escalated", 1)]
    assert mail.kinds() == [("escalated", 1)]


# --- deciders --------------------------------------------------------------------------------


def test_a_listed_user_id_decides(router: EscalationRouter) -> None:
    """A user listed by id at the current level may acknowledge, then decide."""
    e = router.open(decision())
    acked = router.acknowledge(e.id, by=Identity("maria", method="test"))
    assert (acked.state, acked.acknowledged_by) == (EscalationState.ACKNOWLEDGED, "maria")
    rejected = router.reject(e.id, by=Identity("maria", method="test"), reason="too much")
    assert (rejected.state, rejected.allowed, rejected.decided_by) == (
        EscalationState.REJECTED,
        False,
        "maria",
    )


def test_a_member_of_a_listed_group_decides(router: EscalationRouter) -> None:
    """``group:leads`` lets every member the router's ``groups`` lists decide."""
    e = router.open(decision())
    approved = router.approve(e.id, by=Identity("lena", method="test"))
    assert (approved.state, approved.allowed, approved.decided_by) == (
        EscalationState.APPROVED,
        True,
        "lena",
    )


def test_a_user_object_with_a_listed_group_is_not_a_decider(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """A ``User``'s own groups count for nothing: only a verified, listed ``Identity`` decides."""
    store = make_store()
    router = EscalationRouter([SALES], store, clock=clock, audit=audit)
    e = router.open(decision())
    with pytest.raises(NotAuthenticated):
        router.approve(e.id, by=User(id="lena", groups=frozenset({"leads"})))  # type: ignore[arg-type]
    with pytest.raises(NotADecider):
        router.approve(e.id, by=Identity("lena", method="test"))  # the router knows no leads
    assert router.get(e.id) == e


def test_only_the_current_levels_deciders_may_act(
    router: EscalationRouter, clock: FakeClock
) -> None:
    """Once escalated, the previous level's deciders are refused; the new level's decide."""
    e = router.open(decision())
    clock.advance(HOUR)
    router.tick()
    with pytest.raises(NotADecider):
        router.approve(e.id, by=Identity("maria", method="test"))
    assert router.approve(e.id, by=Identity("vera", method="test")).decided_by == "vera"


def test_a_non_decider_is_refused_audited_and_nothing_changes(
    router: EscalationRouter, audit: AuditLog
) -> None:
    """Someone not listed raises ``NotADecider``; the refusal is audited; the case is untouched."""
    e = router.open(decision())
    attempts: list[Callable[[], object]] = [
        lambda: router.acknowledge(e.id, by=Identity("mallory", method="test")),
        lambda: router.approve(e.id, by=Identity("mallory", method="test"), reason="trust me"),
        lambda: router.reject(e.id, by=Identity("mallory", method="test")),
    ]
    for attempt in attempts:
        with pytest.raises(NotADecider) as caught:
            attempt()
        assert (caught.value.escalation_id, caught.value.by, caught.value.level) == (
            e.id,
            "mallory",
            0,
        )
        assert caught.value.allowed == ("maria", "group:leads", "lena")
    assert router.get(e.id) == e
    refused = [r for r in records(audit, e.id) if r.outcome == "refused"]
    assert [r.context["attempted"] for r in refused] == ["acknowledge", "approve", "reject"]
    assert all(r.context["by"] == "mallory" and r.context["level"] == 0 for r in refused)
    assert all("mallory" in (r.reason or "") for r in refused)


def test_a_final_case_refuses_every_move(router: EscalationRouter) -> None:
    """After a decision, acknowledging, deciding or cancelling again raises and changes nothing."""
    e = router.approve(router.open(decision()).id, by=Identity("maria", method="test"))
    moves: list[Callable[[], object]] = [
        lambda: router.acknowledge(e.id, by=Identity("maria", method="test")),
        lambda: router.reject(e.id, by=Identity("maria", method="test")),
        lambda: router.cancel(e.id, reason="oops"),
    ]
    for move in moves:
        with pytest.raises(IllegalTransition):
            move()
    assert router.get(e.id) == e


def test_cancel_withdraws_the_request(router: EscalationRouter, inbox: Inbox) -> None:
    """The agent cancels: final, not allowed, and the level hears it is settled."""
    e = router.open(decision())
    cancelled = router.cancel(e.id, reason="customer left", by="bot")
    assert (cancelled.state, cancelled.allowed, cancelled.reason) == (
        EscalationState.CANCELLED,
        False,
        "customer left",
    )
    router.tick()
    assert inbox.kinds()[-1] == ("resolved", 0)
    with pytest.raises(IllegalTransition):
        router.claim_execution(e.id)


# --- the final timeout ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "allowed"), [("crm.deal.discount", True), ("crm.deal.delete", False)]
)
def test_the_final_timeout_allows_only_with_the_rules_consent(
    router: EscalationRouter, clock: FakeClock, audit: AuditLog, action: str, allowed: bool
) -> None:
    """Route ``on_timeout: allow`` lets the action run only if the rule says so too."""
    e = router.open(decision(action))
    clock.advance(HOUR)
    router.tick()
    clock.advance(8 * HOUR)
    assert router.tick().fired == 1
    expired = router.get(e.id)
    assert (expired.state, expired.allowed) == (EscalationState.EXPIRED, allowed)
    assert audited_events(audit, e.id)[-2:] == ["breached", "expired"]
    if allowed:
        assert router.claim_execution(e.id).executed_at == clock.now()


# --- audit and secrets -----------------------------------------------------------------------


def test_every_transition_is_audited_with_the_escalation_id(
    router: EscalationRouter, clock: FakeClock, audit: AuditLog
) -> None:
    """Each event in a case's history is one audit record naming the case, in order."""
    e = router.open(decision())
    router.acknowledge(e.id, by=Identity("maria", method="test"))
    clock.advance(3 * HOUR)
    router.tick()  # warned
    clock.advance(HOUR)
    router.tick()  # resolve breached: escalated to the VPs
    router.acknowledge(e.id, by=Identity("victor", method="test"))
    final = router.approve(e.id, by=Identity("victor", method="test"), reason="ok")
    router.claim_execution(e.id)
    kinds = [event.kind for event in final.history]
    assert kinds == [
        "opened",
        "acknowledged",
        "warned",
        "breached",
        "escalated",
        "acknowledged",
        "approved",
    ]
    found = records(audit, e.id)
    assert [r.context["event"] for r in found] == kinds
    # Case events have outcomes of their own: never "escalated", the guard's final record.
    assert [r.outcome for r in found] == [
        "opened",
        "acknowledged",
        "warned",
        "breached",
        "reassigned",
        "acknowledged",
        "approved",
    ]
    assert all(r.action == "crm.deal.discount" and r.agent == "bot" for r in found)
    assert all(r.rule_id == "big-discount" and r.effect == "escalate" for r in found)
    assert [r.context["by"] for r in found] == [
        None,
        "maria",
        None,
        None,
        None,
        "victor",
        "victor",
    ]
    assert [r.context["level"] for r in found] == [0, 0, 0, 0, 1, 1, 1]
    assert audit.verify().ok
    # The outbox copies of the audit records were completed by the router that appended them.
    clock.advance(HOUR)
    router.tick()
    assert len(records(audit, e.id)) == len(kinds)


def test_secrets_never_reach_the_store_notifications_or_audit(
    router: EscalationRouter, clock: FakeClock, audit: AuditLog, inbox: Inbox
) -> None:
    """Secret-named args and ``SecretStr`` values are masked everywhere a case is kept or told."""
    e = router.open(
        decision(
            deal="d-1",
            api_key=API_KEY,
            login={"user": "bot", "password": SecretStr(PASSWORD)},
            note=SecretStr(PASSWORD),
        )
    )
    assert e.request["args"] == {
        "deal": "d-1",
        "api_key": "***",
        "login": {"user": "bot", "password": "***"},
        "note": "***",
    }
    with pytest.raises(NotADecider):
        router.approve(e.id, by=Identity("mallory", method="test"))
    clock.advance(HOUR)
    router.tick()
    router.approve(e.id, by=Identity("vera", method="test"))
    router.tick()
    kept = [escalation.model_dump_json() for escalation in router.list()]
    told = [notice.model_dump_json() for notice in inbox.sent]
    trail = [record.model_dump_json() for record in audit.records()]
    pending = [json.dumps(d.payload) for d in router.store.pending_deliveries()]
    assert len(told) == 3
    assert len(trail) == 5  # opened, refused, breached, escalated, approved
    for text in [*kept, *told, *trail, *pending]:
        assert API_KEY not in text
        assert PASSWORD not in text
    (record,) = [r for r in audit.records() if r.outcome == "approved"]
    assert record.args["api_key"] == "***"


def test_a_secret_repeated_under_a_plain_name_is_scrubbed_from_the_case(
    router: EscalationRouter, audit: AuditLog
) -> None:
    """A token masked under ``api_key`` is masked in a note that repeats it, as in the audit."""
    url_password = "url-pa55word"
    e = router.open(
        decision(
            api_key=API_KEY,
            login=SecretStr(PASSWORD),
            db=f"postgresql://u:{url_password}@h/db",
            note=f"key {API_KEY}, password {PASSWORD}, again {url_password}",
        )
    )
    assert e.request["args"]["note"] == "key ***, password ***, again ***"
    text = router.get(e.id).model_dump_json()
    for secret in (API_KEY, PASSWORD, url_password):
        assert secret not in text
    (record,) = records(audit, e.id)
    assert record.args["note"] == e.request["args"]["note"]


def test_a_failing_channels_error_is_scrubbed(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """A channel's error is kept and audited with URL credentials and query strings masked."""
    store = make_store()
    router = EscalationRouter(
        [SALES], store, channels=[Inbox(failures=1)], clock=clock, audit=audit
    )
    e = router.open(decision())
    assert router.tick().failed == 1
    (undelivered,) = [r for r in audit.records() if r.outcome == "undelivered"]
    assert undelivered.escalation_id == e.id
    assert "is down" in (undelivered.reason or "")
    assert "https://***@hooks.example.com/notify?***" in (undelivered.reason or "")
    kept = [
        undelivered.model_dump_json(),
        *(d.last_error or "" for d in store.pending_deliveries()),
    ]
    assert all(API_KEY not in text and PASSWORD not in text for text in kept)


# --- the outbox ------------------------------------------------------------------------------


def test_a_failing_channel_does_not_block_another_and_is_retried_with_backoff(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """One channel down: the other still delivers, the failure is audited, and the notice is
    retried after 5 s, then 10 s (doubling), and delivered once the channel is back."""
    good, bad = Inbox("good"), Inbox("bad", failures=2)
    store = make_store()
    router = EscalationRouter(
        [SALES],
        store,
        channels=[good, bad],
        clock=clock,
        audit=audit,
        delivery_backoff=5 * SECOND,
    )
    e = router.open(decision())
    assert router.tick().failed == 1
    assert good.kinds() == [("opened", 0)]
    assert (bad.tries, bad.sent) == (1, [])
    (undelivered,) = [r for r in records(audit, e.id) if r.outcome == "undelivered"]
    assert undelivered.context["attempts"] == 1
    assert undelivered.context["gave_up"] is False
    assert "bad: ConnectionError" in (undelivered.reason or "")
    (pending,) = [d for d in store.pending_deliveries(e.id) if d.target != "audit"]
    assert pending.not_before == T0 + 5 * SECOND

    clock.advance(4 * SECOND)
    assert router.tick() == (0, 0, 0)  # not yet
    clock.advance(SECOND)
    assert router.tick().failed == 1  # second try, then wait 10 s
    assert bad.tries == 2
    clock.advance(9 * SECOND)
    assert router.tick() == (0, 0, 0)
    clock.advance(SECOND)
    assert router.tick() == (0, 1, 0)
    assert bad.kinds() == [("opened", 0)]
    assert good.sent[0].id == good.sent[-1].id  # redelivered under the same id: receivers dedupe
    assert [d for d in store.pending_deliveries(e.id) if d.target != "audit"] == []


def test_a_delivery_is_given_up_after_max_attempts(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """After ``max_delivery_attempts`` failures the notice is dropped, and the give-up audited."""
    down = Inbox("down", failures=100)
    store = make_store()
    router = EscalationRouter(
        [SALES],
        store,
        channels=[down],
        clock=clock,
        audit=audit,
        delivery_backoff=SECOND,
        max_delivery_attempts=3,
    )
    e = router.open(decision())
    for _ in range(10):
        router.tick()
        clock.advance(MINUTE)
    assert down.tries == 3
    gave_up = [r.context["gave_up"] for r in records(audit, e.id) if r.outcome == "undelivered"]
    assert gave_up == [False, False, True]
    assert [d for d in store.pending_deliveries(e.id) if d.target != "audit"] == []


def test_a_notice_for_an_unknown_channel_fails_and_is_audited(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """A level naming a channel the router lacks fails that delivery, saying which channel."""
    typo = Route(name="sales", levels=(MANAGER.model_copy(update={"channels": ("slak",)}),))
    store = make_store()
    router = EscalationRouter([typo], store, channels=[Inbox()], clock=clock, audit=audit)
    e = router.open(decision())
    assert router.tick().failed == 1
    (undelivered,) = [r for r in records(audit, e.id) if r.outcome == "undelivered"]
    assert "no channel named 'slak'" in (undelivered.reason or "")


# --- resolution callbacks --------------------------------------------------------------------


def test_on_resolved_is_called_once_per_final_case(
    router: EscalationRouter, clock: FakeClock
) -> None:
    """Callbacks see each case once, when it becomes final, by a human or by a timer."""
    seen: list[tuple[str, EscalationState]] = []

    @router.on_resolved
    def record(escalation: Escalation) -> None:
        seen.append((escalation.id, escalation.state))

    decided = router.open(decision())
    timed_out = router.open(decision())
    router.acknowledge(decided.id, by=Identity("maria", method="test"))
    router.approve(decided.id, by=Identity("maria", method="test"))
    router.claim_execution(decided.id)  # a change, but not a resolution
    clock.advance(HOUR)
    router.tick()
    clock.advance(8 * HOUR)
    router.tick()
    router.tick()
    assert seen == [
        (decided.id, EscalationState.APPROVED),
        (timed_out.id, EscalationState.EXPIRED),
    ]


def test_a_raising_callback_is_logged_and_undoes_nothing(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """A broken callback does not undo the decision, nor stop the next callback."""
    later: list[str] = []

    def broken(escalation: Escalation) -> None:
        raise RuntimeError(f"cannot reach the CRM for {escalation.id}")

    with capture_telemetry() as captured:
        router = EscalationRouter(
            [SALES],
            make_store(),
            clock=clock,
            audit=audit,
            on_resolved=[broken, lambda e: later.append(e.id)],
            telemetry=captured.telemetry,
        )
        e = router.open(decision())
        approved = router.approve(e.id, by=Identity("maria", method="test"))
    logs = captured.events
    assert approved.state is EscalationState.APPROVED
    assert router.get(e.id).state is EscalationState.APPROVED
    assert later == [e.id]
    (failure,) = [log for log in logs if log["event"] == "handrail.escalation.callback_failed"]
    assert failure["error_type"] == "RuntimeError"
    assert failure["escalation_id"] == e.id


class FlakySink(MemorySink):
    """An in-memory audit sink that fails while ``broken`` (a full disk, a lost mount)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def append(self, lines: Sequence[bytes]) -> None:
        if self.broken:
            raise AuditError("no space left on device")
        super().append(lines)


def test_a_failing_audit_log_undoes_nothing_and_loses_no_record(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """When the audit log fails after a decision is stored, the decision stands (no error for a
    change that happened), callbacks still run, and the record waits in the outbox until a
    later tick appends it."""
    sink = FlakySink()
    seen: list[str] = []
    router = EscalationRouter(
        [SALES],
        make_store(),
        clock=clock,
        audit=AuditLog(sink, fsync="never"),
        on_resolved=[lambda e: seen.append(e.id)],
    )
    e = router.open(decision())
    sink.broken = True
    approved = router.approve(e.id, by=Identity("maria", method="test"))
    assert approved.state is EscalationState.APPROVED
    assert router.get(e.id).state is EscalationState.APPROVED
    assert seen == [e.id]

    clock.advance(2 * MINUTE)  # past the grace a router gives itself to append its own records
    with AuditLog.memory() as repaired:
        restarted = EscalationRouter([SALES], make_store(), clock=clock, audit=repaired)
        restarted.tick()
        assert audited_events(repaired, e.id) == ["approved"]


def test_the_worker_loop_ticks_until_stopped(router: EscalationRouter, inbox: Inbox) -> None:
    """``run()`` ticks every ``interval`` until its stop event is set."""
    e = router.open(decision())

    async def scenario() -> None:
        stop = asyncio.Event()
        original = inbox.send

        async def send_then_stop(notification: Notification) -> None:
            await original(notification)
            stop.set()

        inbox.send = send_then_stop  # type: ignore[method-assign]
        await asyncio.wait_for(router.run(interval=10 * MILLISECOND, stop=stop), timeout=30)

    asyncio.run(scenario())
    assert [n.escalation_id for n in inbox.sent] == [e.id]


def test_a_case_keeps_the_route_it_opened_under(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """Editing (or removing) a route does not change the cases already open on it."""
    store = make_store()
    EscalationRouter([SALES], store, clock=clock, audit=audit, groups=GROUPS).open(decision())
    edited = Route(name="sales", levels=(Level(deciders="someone-else", resolve_within=HOUR),))
    for routes in ([edited], []):
        restarted = EscalationRouter(routes, make_store(), clock=clock, audit=audit, groups=GROUPS)
        (e,) = restarted.list()
        assert e.route == SALES
        assert e.deciders == ("maria", "group:leads", "lena")
    clock.advance(HOUR)
    assert restarted.tick().fired == 1
    (e,) = restarted.list()
    assert (e.level, e.deciders) == (1, ("group:vps", "vera", "victor"))
    assert (
        restarted.approve(e.id, by=Identity("vera", method="test")).state
        is EscalationState.APPROVED
    )


# --- restarts, cost, concurrency ---------------------------------------------------------------


def test_a_restart_keeps_everything_and_processes_what_is_due(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """A new store object and router over the same data see every case and pick up the work:
    undelivered notices and timers that fell due while nothing ran."""
    before = Inbox()
    store = make_store()
    first = EscalationRouter([SALES], store, channels=[before], clock=clock, audit=audit)
    waiting = first.open(decision())
    acked = first.acknowledge(first.open(decision()).id, by=Identity("maria", method="test"))
    decided = first.reject(first.open(decision()).id, by=Identity("maria", method="test"))
    store.close()  # "crash": no tick ran, nothing was sent

    clock.advance(2 * HOUR)
    after = Inbox()
    store = make_store()
    second = EscalationRouter(
        [SALES], store, channels=[after], clock=clock, audit=audit, groups=GROUPS
    )
    assert [e.id for e in second.list()] == [waiting.id, acked.id, decided.id]
    assert second.get(acked.id) == acked
    assert second.get(decided.id) == decided
    report = second.tick()
    assert report.fired == 1  # the unacknowledged one breached its ack deadline
    assert before.sent == []
    assert sorted(n.escalation_id for n in after.sent if n.kind == "opened") == sorted(
        [waiting.id, acked.id, decided.id]
    )
    others = {(n.escalation_id, n.kind, n.level) for n in after.sent if n.kind != "opened"}
    assert others == {(decided.id, "resolved", 0), (waiting.id, "escalated", 1)}
    assert len(after.sent) == 5
    assert second.get(waiting.id).level == 1
    assert second.get(acked.id).level == 0
    assert (
        second.approve(waiting.id, by=Identity("victor", method="test")).state
        is EscalationState.APPROVED
    )
    assert audited_events(audit, waiting.id) == ["opened", "breached", "escalated", "approved"]


def test_a_tick_costs_what_is_due_not_what_is_open(make_store: MakeStore, clock: FakeClock) -> None:
    """With 2,000 cases not due and 10 due, the store hands exactly the 10 to the timer code."""
    counting = CountingStore(make_store())
    router = EscalationRouter([SALES], counting, clock=clock, groups=GROUPS)
    due = [router.open(decision()).id for _ in range(10)]
    clock.advance(30 * MINUTE)
    quiet = Route(name="sales", levels=(VP.model_copy(update={"warn_at": None}),))
    for index in range(2000):
        counting.create(
            machine.new_escalation(
                escalation_id=f"quiet-{index:04d}",
                route=quiet,
                request={"action": "crm.deal.discount", "agent": "bot", "args": {}},
                decision={"effect": "escalate", "rule_id": "big-discount"},
                allow_on_timeout=False,
                now=clock.now(),
                groups={},
            )
        )
    clock.advance(30 * MINUTE)  # the first ten breach their ack deadline; the rest have 7.5 h
    report = router.tick()
    assert report.fired == 10
    assert sorted(counting.handed) == sorted(due)
    counting.handed.clear()
    assert router.tick().fired == 0
    assert counting.handed == []


def test_an_approved_action_is_claimed_once_across_routers(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """Two routers (own store objects, same data) claim at once: one wins, one AlreadyExecuted."""
    stores = [make_store(), make_store()]
    routers = [
        EscalationRouter([SALES], store, clock=clock, worker=f"worker-{n}")
        for n, store in enumerate(stores)
    ]
    for _ in range(5):
        e = routers[0].approve(routers[0].open(decision()).id, by=Identity("maria", method="test"))
        start = threading.Barrier(2)
        outcomes: list[object] = []

        def claim(
            router: EscalationRouter,
            e: Escalation = e,
            start: threading.Barrier = start,
            outcomes: list[object] = outcomes,
        ) -> None:
            start.wait()
            try:
                outcomes.append(router.claim_execution(e.id).executed_by)
            except AlreadyExecuted as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=claim, args=(r,)) for r in routers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [o for o in outcomes if isinstance(o, str)]
        losers = [o for o in outcomes if isinstance(o, AlreadyExecuted)]
        assert len(winners) == 1
        assert len(losers) == 1
        assert losers[0].by == winners[0]
        assert routers[1].get(e.id).executed_by == winners[0]
        assert [event.kind for event in routers[1].get(e.id).history].count("executed") == 1


def test_routers_ticking_at_once_fire_each_timer_once(
    make_store: MakeStore, clock: FakeClock, audit: AuditLog
) -> None:
    """Two routers (own store objects, same data) tick together: every due timer fires once,
    every notice is sent once, every transition is audited once."""
    inbox = Inbox()
    routers = [
        EscalationRouter(
            [SALES], make_store(), channels=[inbox], clock=clock, audit=audit, groups=GROUPS,
            batch_size=7,
        )
        for _ in range(2)
    ]  # fmt: skip
    opened = [routers[n % 2].open(decision()).id for n in range(30)]
    clock.advance(HOUR)
    start = threading.Barrier(2)
    fired: list[int] = []

    def tick(router: EscalationRouter) -> None:
        start.wait()
        fired.append(router.tick().fired)

    threads = [threading.Thread(target=tick, args=(router,)) for router in routers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(fired) == 30
    for escalation_id in opened:
        e = routers[0].get(escalation_id)
        assert [event.kind for event in e.history] == ["opened", "breached", "escalated"]
        assert audited_events(audit, escalation_id) == ["opened", "breached", "escalated"]
    while routers[0].tick().delivered:  # a tick sends at most batch_size notices
        pass
    ids = [notice.id for notice in inbox.sent]
    assert len(ids) == len(set(ids)) == 60


def test_tick_inside_an_event_loop_points_to_atick(router: EscalationRouter, inbox: Inbox) -> None:
    """``tick`` inside an event loop refuses, pointing to ``atick``, and leaves the pending notices
    to it (it must not lease them first, or ``atick`` finds nothing to send for a minute)."""
    router.open(decision())

    async def scenario() -> None:
        with pytest.raises(ConfigurationError, match="atick"):
            router.tick()
        assert (await router.atick()).delivered >= 1

    asyncio.run(scenario())
    assert inbox.kinds() == [("opened", 0)]


# --- telemetry -------------------------------------------------------------------------------


def test_transitions_are_span_events_in_the_agents_trace(
    make_store: MakeStore, clock: FakeClock
) -> None:
    """Opening inside the agent's span records a ``handrail.escalation.opened`` span event in
    the agent's trace (on its span or a child), with ids and states and no secrets."""
    with capture_telemetry() as captured:
        router = EscalationRouter([SALES], make_store(), clock=clock, telemetry=captured.telemetry)
        agent = captured.tracer_provider.get_tracer("agent")
        with agent.start_as_current_span("agent-step") as step:
            e = router.open(decision(api_key=API_KEY))
            router.acknowledge(e.id, by=Identity("maria", method="test"))
    spans = captured.spans
    trace_id = step.get_span_context().trace_id
    assert {span.context.trace_id for span in spans} == {trace_id}
    events = sorted((event for span in spans for event in span.events), key=lambda e: e.timestamp)
    assert [event.name for event in events] == [
        "handrail.escalation.opened",
        "handrail.escalation.acknowledged",
    ]
    opened = dict(events[0].attributes or {})
    assert opened["handrail.escalation.id"] == e.id
    assert opened["handrail.escalation.route"] == "sales"
    assert opened["handrail.escalation.level"] == 0
    assert opened["handrail.escalation.state"] == "open"
    assert dict(events[1].attributes or {})["handrail.escalation.by"] == "maria"
    assert all(API_KEY not in span.to_json() for span in spans)


def test_transitions_and_refusals_are_logged(make_store: MakeStore, clock: FakeClock) -> None:
    """Each transition, and each refusal, is a structlog event naming the case."""
    with capture_telemetry() as captured:
        router = EscalationRouter([SALES], make_store(), clock=clock, telemetry=captured.telemetry)
        e = router.open(decision(api_key=API_KEY))
        with pytest.raises(NotADecider):
            router.approve(e.id, by=Identity("mallory", method="test"))
        router.approve(e.id, by=Identity("maria", method="test"))
    logs = captured.events
    assert [log["event"] for log in logs] == [
        "handrail.escalation.opened",
        "handrail.escalation.refused",
        "handrail.escalation.approved",
    ]
    assert all(log["escalation_id"] == e.id for log in logs)
    assert logs[1]["by"] == "mallory"
    assert (logs[2]["by"], logs[2]["state"]) == ("maria", "approved")
    assert API_KEY not in repr(logs)
