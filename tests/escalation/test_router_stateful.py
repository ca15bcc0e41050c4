"""A Hypothesis state machine drives the router over real stores: humans, timers and restarts
interleave at random, and the escalation contracts hold after every step."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from handrail import ActionRequest, Policy, Principal, User
from handrail.approvals import Identity
from handrail.audit import AuditLog
from handrail.escalation import (
    AlreadyExecuted,
    Escalation,
    EscalationRouter,
    EscalationState,
    EscalationStore,
    ExternalIdConflict,
    IllegalTransition,
    Level,
    MemoryStore,
    NotADecider,
    NotAuthenticated,
    Notification,
    OnTimeout,
    Route,
)
from handrail.escalation import _machine as machine
from handrail.escalation._postgres import PostgresStore
from handrail.escalation._sqlite import SQLiteStore
from handrail.testing import FakeClock, PostgresServer

T0 = datetime(2025, 1, 6, 8, tzinfo=UTC)  # a Monday, 09:00 in Berlin
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

# The agent ("bot") and the user it acts for ("erin") are in ops: four eyes refuses them.
GROUPS = {"leads": ["dave"], "ops": ["erin", "alice", "bot"]}
ROUTES = (
    Route(
        name="deny",
        levels=(
            Level(deciders=("alice", "group:leads"), ack_within=HOUR, resolve_within=4 * HOUR),
            Level(deciders="bob", resolve_within=8 * HOUR, warn_at=0.5),
        ),
    ),
    Route(
        name="allow",
        levels=(Level(deciders="alice", resolve_within=2 * HOUR, warn_at=0.5),),
        on_timeout=OnTimeout.ALLOW,
        repeat_last=1,
    ),
    Route(
        name="keep",
        levels=(
            Level(deciders="carol", ack_within=30 * MINUTE, resolve_within=HOUR),
            Level(deciders="group:ops", ack_within=HOUR, resolve_within=3 * HOUR, warn_at=None),
        ),
        on_timeout=OnTimeout.KEEP_OPEN,
    ),
    Route(
        name="office",
        levels=(
            Level(deciders="bob", ack_within=2 * HOUR, resolve_within=8 * HOUR),
            Level(deciders="group:leads", resolve_within=16 * HOUR),
        ),
        on_timeout=OnTimeout.ALLOW,
        hours={"timezone": "Europe/Berlin"},
    ),
)
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "all", "effect": "allow", "actions": "act.*.*"},
            *(
                {
                    "id": f"{route.name}-{consent}",
                    "effect": "escalate",
                    "actions": f"act.{route.name}.{consent}",
                    "escalate_to": route.name,
                    **({"on_timeout": "allow"} if consent == "yes" else {}),
                }
                for route in ROUTES
                for consent in ("yes", "no")
            ),
        ]
    }
)

# Who acts: verified identities, and unverified names (a bare id, a User with its own
# groups), which are always refused.
USERS: tuple[object, ...] = (
    *(Identity(name, method="test") for name in ("alice", "bob", "carol", "dave", "erin")),
    Identity("mallory", method="test"),
    Identity("bot", method="test"),
    "alice",
    User(id="frank", groups=frozenset({"leads"})),
    User(id="dave", groups=frozenset({"leads"})),
)

durations = st.one_of(
    st.integers(1, 120).map(lambda m: m * MINUTE),
    st.integers(2, 30).map(lambda h: h * HOUR),
    st.integers(2, 20).map(lambda d: d * timedelta(days=1)),
)

Opener = Callable[[], EscalationStore]


class Inbox:
    name = "inbox"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


def _may_decide(escalation: Escalation, who: str) -> bool:
    """The rule, restated: listed by id in the snapshot and this router's directory; four eyes."""
    route = next(r for r in ROUTES if r.name == escalation.route.name)
    directory = machine.expand_deciders(route.level(escalation.level), _GROUPS)
    own = who in ("bot", escalation.request.get("on_behalf_of"))
    return who in escalation.deciders and who in directory and not own


_GROUPS = {name: frozenset(members) for name, members in GROUPS.items()}


def _breach(reason: str) -> str:
    return reason.split(" ", 1)[0]


class RouterMachine(RuleBasedStateMachine):
    """Opens, acknowledges, decides, cancels, claims, ticks and restarts; checks the contracts."""

    # Set by ``run``: makes a zero-argument opener over fresh data for each example.
    fresh_data: Callable[[], Opener]

    escalations = Bundle("escalations")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(T0)
        self.audit = AuditLog.memory()
        self.inbox = Inbox()
        self.opener = self.fresh_data()
        self.store = self.opener()
        self.router = self._router()
        self.seen: dict[str, Escalation] = {}
        self.consent: dict[str, bool] = {}
        self.refusals = 0
        # external id -> (the case opened under it, the request it was opened for)
        self.external: dict[str, tuple[str, tuple[str, int]]] = {}

    def _router(self) -> EscalationRouter:
        return EscalationRouter(
            ROUTES,
            self.store,
            channels=[self.inbox],
            clock=self.clock,
            audit=self.audit,
            groups=GROUPS,
        )

    def teardown(self) -> None:
        self.store.close()
        self.audit.close()

    # -- rules ------------------------------------------------------------------------

    @initialize(target=escalations, route=st.sampled_from(ROUTES), consent=st.booleans())
    def open_first(self, route: Route, consent: bool) -> str:
        return self._open(route, consent)

    @precondition(lambda self: len(self.consent) < 5)
    @rule(target=escalations, route=st.sampled_from(ROUTES), consent=st.booleans())
    def open(self, route: Route, consent: bool) -> str:
        return self._open(route, consent)

    @precondition(lambda self: len(self.consent) < 5)
    @rule(
        target=escalations,
        route=st.sampled_from(ROUTES),
        consent=st.booleans(),
        external_id=st.sampled_from(["call-1", "call-2"]),
        amount=st.integers(1, 2),
    )
    def open_by_external_id(
        self, route: Route, consent: bool, external_id: str, amount: int
    ) -> object:
        """Opening under an external id: one case per id, the same one for the same request
        (whatever state it is in by now), a conflict for another request."""
        action = f"act.{route.name}.{'yes' if consent else 'no'}"
        known = self.external.get(external_id)
        try:
            escalation_id = self._open(route, consent, external_id=external_id, amount=amount)
        except ExternalIdConflict as conflict:
            refused = (conflict.escalation_id, conflict.external_id)
            assert known is not None
            assert known[1] != (action, amount)
            assert refused == (known[0], external_id)
            return multiple()
        if known is not None:
            assert known == (escalation_id, (action, amount))
            return multiple()
        self.external[external_id] = (escalation_id, (action, amount))
        return escalation_id

    def _open(
        self, route: Route, consent: bool, *, external_id: str | None = None, amount: int = 0
    ) -> str:
        action = f"act.{route.name}.{'yes' if consent else 'no'}"
        args: dict[str, object] = {"api_key": "sk-secret-key-1"}
        if amount:
            args["amount"] = amount
        principal = Principal(agent="bot", on_behalf_of=User(id="erin"))
        request = ActionRequest(action=action, principal=principal, args=args)
        e = self.router.open(POLICY.evaluate(request), external_id=external_id)
        assert e.external_id == external_id
        if e.id in self.consent:  # opened before under this external id: the same case
            return e.id
        assert e.allow_on_timeout is consent
        assert e.request["args"] == {**args, "api_key": "***"}
        self.consent[e.id] = consent
        return e.id

    def _someone(self, data: st.DataObject, escalation: Escalation) -> object:
        """Often a decider at the current level, sometimes anyone (most of whom may not)."""
        listed = [who for who in escalation.deciders if not who.startswith("group:")]
        pick_listed: bool = bool(listed) and data.draw(st.booleans(), label="a decider?")
        if pick_listed:
            return Identity(data.draw(st.sampled_from(listed)), method="test")
        return data.draw(st.sampled_from(USERS))

    @rule(escalation_id=escalations, data=st.data())
    def acknowledge(self, escalation_id: str, data: st.DataObject) -> None:
        before = self.router.get(escalation_id)
        who = self._someone(data, before)
        name = who.user if isinstance(who, Identity) else ""
        try:
            after = self.router.acknowledge(escalation_id, by=who)  # type: ignore[arg-type]
        except NotAuthenticated:
            assert not isinstance(who, Identity)
            self.refusals += 1
        except IllegalTransition:  # only a listed decider learns that the case moved on
            assert isinstance(who, Identity)
            assert _may_decide(before, name)
            assert before.is_terminal or before.state is EscalationState.ACKNOWLEDGED
        except NotADecider:  # open or final alike
            assert not _may_decide(before, name)
            self.refusals += 1
        else:
            assert before.state is EscalationState.OPEN
            assert _may_decide(before, name)
            assert (after.state, after.acknowledged_by) == (EscalationState.ACKNOWLEDGED, name)
            return
        assert self.router.get(escalation_id) == before

    @rule(escalation_id=escalations, data=st.data(), approve=st.booleans())
    def decide(self, escalation_id: str, data: st.DataObject, approve: bool) -> None:
        before = self.router.get(escalation_id)
        who = self._someone(data, before)
        name = who.user if isinstance(who, Identity) else ""
        try:
            after = self.router.decide(
                escalation_id,
                approve=approve,
                by=who,  # type: ignore[arg-type]
                reason="r",
            )
        except NotAuthenticated:
            assert not isinstance(who, Identity)
            self.refusals += 1
        except IllegalTransition:  # only a listed decider learns that the case is final
            assert isinstance(who, Identity)
            assert before.is_terminal
            assert _may_decide(before, name)
        except NotADecider:  # open or final alike
            assert not _may_decide(before, name)
            self.refusals += 1
        else:
            assert not before.is_terminal
            assert _may_decide(before, name)
            assert after.allowed is approve
            assert after.decided_by == name
            return
        assert self.router.get(escalation_id) == before

    @rule(escalation_id=escalations)
    def cancel(self, escalation_id: str) -> None:
        before = self.router.get(escalation_id)
        try:
            after = self.router.cancel(escalation_id, reason="withdrawn", by="bot")
        except IllegalTransition:
            assert before.is_terminal
            assert self.router.get(escalation_id) == before
        else:
            assert not before.is_terminal
            assert (after.state, after.allowed) == (EscalationState.CANCELLED, False)

    @rule(escalation_id=escalations)
    def claim_execution(self, escalation_id: str) -> None:
        before = self.router.get(escalation_id)
        try:
            after = self.router.claim_execution(escalation_id)
        except AlreadyExecuted:
            assert before.executed_at is not None
        except IllegalTransition:
            assert before.allowed is not True
        else:
            assert before.allowed is True
            assert before.executed_at is None
            assert after.executed_by == self.router.worker
            return
        assert self.router.get(escalation_id) == before

    @rule(duration=durations)
    def advance(self, duration: timedelta) -> None:
        self.clock.advance(duration)

    @rule(duration=durations)
    def advance_and_tick(self, duration: timedelta) -> None:
        self.clock.advance(duration)
        self.tick()

    @rule()
    def tick(self) -> None:
        report = self.router.tick()
        assert report.failed == 0
        now = self.clock.now()
        for e in self.router.list():
            assert e.is_terminal or e.next_due is None or e.next_due > now, e
        assert self.store.pending_deliveries() == [] or all(
            d.target == "audit" for d in self.store.pending_deliveries()
        )

    @rule()
    def restart(self) -> None:
        self.store.close()
        self.store = self.opener()
        self.router = self._router()

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def contracts_hold(self) -> None:
        """Checked after every step, in this order (the later checks read ``seen``)."""
        self.each_escalation_is_in_exactly_one_state()
        self.histories_only_grow_and_deadlines_never_move_back()
        self.each_deadline_is_breached_at_most_once()
        self.timeouts_apply_the_routes_rule()
        self.only_listed_deciders_ever_decided()
        self.every_transition_is_audited_once_and_noticed_once()

    def each_escalation_is_in_exactly_one_state(self) -> None:
        by_state = Counter(e.id for state in EscalationState for e in self.router.list(state=state))
        assert set(by_state) == set(self.consent)
        assert set(by_state.values()) <= {1}
        for external_id, (escalation_id, _) in self.external.items():
            found = self.router.find(external_id)
            assert found is not None
            assert found.id == escalation_id

    def histories_only_grow_and_deadlines_never_move_back(self) -> None:
        for escalation_id in self.consent:
            now = self.router.get(escalation_id)
            before = self.seen.get(escalation_id)
            self.seen[escalation_id] = now
            times = [event.at for event in now.history]
            assert times == sorted(times)
            assert now.history[-1].at <= self.clock.now()
            if before is None:
                continue
            assert now.version >= before.version
            if now.version == before.version:
                assert now == before
                continue
            assert now.history[: len(before.history)] == before.history
            added = [event.kind for event in now.history[len(before.history) :]]
            assert len(added) >= 1
            if before.is_terminal:
                assert added == ["executed"]
                assert (now.state, now.allowed, now.decided_by) == (
                    before.state,
                    before.allowed,
                    before.decided_by,
                )
            assert now.level >= before.level
            if now.level == before.level:
                for timer in ("ack_due", "warn_due", "resolve_due"):
                    assert getattr(now, timer) in (None, getattr(before, timer))
                if now.next_due is not None and before.next_due is not None:
                    assert now.next_due >= before.next_due

    def each_deadline_is_breached_at_most_once(self) -> None:
        for e in self.seen.values():
            breaches = Counter(
                (event.level, _breach(event.reason))
                for event in e.history
                if event.kind == "breached"
            )
            assert set(breaches.values()) <= {1}, e.history
            warnings = Counter(event.level for event in e.history if event.kind == "warned")
            assert set(warnings.values()) <= {1}, e.history
            steps = [event.level for event in e.history if event.kind == "escalated"]
            assert steps == list(range(1, e.level + 1))

    def timeouts_apply_the_routes_rule(self) -> None:
        for e in self.seen.values():
            assert e.allow_on_timeout is self.consent[e.id]
            if e.state is EscalationState.EXPIRED:
                assert e.level == e.route.steps - 1
                assert e.allowed is (e.route.on_timeout is OnTimeout.ALLOW and e.allow_on_timeout)
                assert e.route.on_timeout is not OnTimeout.KEEP_OPEN
            if any(event.kind == "timed_out" for event in e.history):
                assert e.route.on_timeout is OnTimeout.KEEP_OPEN
                assert e.state is not EscalationState.EXPIRED

    def only_listed_deciders_ever_decided(self) -> None:
        for e in self.seen.values():
            for event in e.history:
                if event.kind in ("acknowledged", "approved", "rejected"):
                    assert event.by is not None
                    allowed = machine.expand_deciders(e.route.level(event.level), _GROUPS)
                    assert event.by in allowed
                    assert event.by not in ("bot", e.request["on_behalf_of"])  # four eyes
                    assert event.via == "test"
            if e.state in (EscalationState.APPROVED, EscalationState.REJECTED):
                assert e.decided_by == e.history[-1 if e.executed_at is None else -2].by

    def every_transition_is_audited_once_and_noticed_once(self) -> None:
        audited = Counter(
            (r.escalation_id, r.context["event"], r.context["event_at"])
            for r in self.audit.records()
        )
        expected = Counter(
            (e.id, event.kind, event.at.isoformat())
            for e in self.seen.values()
            for event in e.history
            if event.kind != "executed"
        )
        refused = sum(n for (_, kind, _), n in audited.items() if kind == "refused")
        assert refused == self.refusals
        assert +Counter({k: n for k, n in audited.items() if k[1] != "refused"}) == expected
        ids = [notice.id for notice in self.inbox.sent]
        assert len(ids) == len(set(ids))


def run(fresh_data: Callable[[], Opener], *, examples: int, steps: int) -> None:
    """Run the machine with ``fresh_data`` giving each example its own backing data."""

    class Machine(RouterMachine):
        pass

    Machine.fresh_data = staticmethod(fresh_data)
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_router_over_memory() -> None:
    """The contracts hold over MemoryStore (a restart keeps the same store object)."""

    def fresh() -> Opener:
        store = MemoryStore()
        return lambda: store

    run(fresh, examples=50, steps=40)


def test_router_over_sqlite(tmp_path: Path) -> None:
    """The contracts hold over SQLiteStore; a restart opens the file again."""

    def fresh() -> Opener:
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        return lambda: SQLiteStore(path)

    run(fresh, examples=20, steps=25)


def test_router_over_postgres(postgres_server: PostgresServer) -> None:
    """The contracts hold over PostgresStore; a restart connects again."""
    url = postgres_server.url

    def fresh() -> Opener:
        schema = f"s_{uuid.uuid4().hex[:16]}"
        return lambda: PostgresStore(url, schema=schema)

    run(fresh, examples=8, steps=25)
