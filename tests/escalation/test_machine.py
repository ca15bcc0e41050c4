"""The escalation state machine: pure transitions and SLA timers, no I/O and no clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handrail.escalation import (
    AlreadyExecuted,
    BusinessHours,
    Escalation,
    EscalationState,
    Event,
    IllegalTransition,
    Level,
    OnTimeout,
    Route,
)
from handrail.escalation import _machine as machine

T0 = datetime(2025, 1, 1, tzinfo=UTC)  # a Wednesday
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
GROUPS = {"vps": frozenset({"victor", "vera"}), "empty": frozenset[str]()}

MANAGER = Level(
    name="manager", deciders=("maria",), ack_within=HOUR, resolve_within=4 * HOUR, notify="#sales"
)
VP = Level(name="vp", deciders=("group:vps",), resolve_within=8 * HOUR)
TWO_LEVELS = Route(name="sales", levels=(MANAGER, VP))


def route(*levels: Level, **fields: Any) -> Route:
    """A route named ``sales`` over ``levels`` (manager then VP by default)."""
    return Route(name="sales", levels=levels or (MANAGER, VP), **fields)


def opened(
    on: Route = TWO_LEVELS, *, now: datetime = T0, allow_on_timeout: bool = False
) -> Escalation:
    """A fresh escalation on ``on`` at ``now``, for rule ``big``."""
    return machine.new_escalation(
        escalation_id="esc-1",
        route=on,
        request={"action": "crm.deal.discount", "agent": "bot", "args": {"pct": 30}},
        decision={"effect": "escalate", "rule_id": "big", "reason": "over 20%"},
        allow_on_timeout=allow_on_timeout,
        now=now,
        groups=GROUPS,
    )


def fire(escalation: Escalation, now: datetime) -> Escalation:
    """``fire_due`` that must fire something."""
    fired = machine.fire_due(escalation, now, GROUPS)
    assert fired is not None, f"nothing was due at {now}"
    return fired


def kinds(escalation: Escalation) -> list[tuple[str, int]]:
    return [(event.kind, event.level) for event in escalation.history]


# --- opening and timers ------------------------------------------------------------------


def test_a_new_escalation_starts_every_timer_of_level_zero_from_now() -> None:
    """Opening starts the ack, warning (75% of resolve) and resolve timers at once."""
    e = opened()
    assert e.state is EscalationState.OPEN
    assert (e.level, e.version) == (0, 0)
    assert (e.opened_at, e.level_started_at) == (T0, T0)
    assert e.ack_due == T0 + HOUR
    assert e.warn_due == T0 + 3 * HOUR
    assert e.resolve_due == T0 + 4 * HOUR
    assert e.next_due == e.ack_due
    assert e.deciders == ("maria",)
    assert kinds(e) == [("opened", 0)]
    assert e.history[0].reason == "over 20%"


def test_timers_run_in_business_hours() -> None:
    """Deadlines count working time: Friday 16:00 + 2h in Berlin office hours is Monday 10:00."""
    office = BusinessHours(timezone="Europe/Berlin")
    level = Level(deciders="maria", ack_within=30 * MINUTE, resolve_within=2 * HOUR)
    friday_4pm = datetime(2025, 1, 3, 15, tzinfo=UTC)  # 16:00 in Berlin (UTC+1)
    e = opened(route(level, hours=office), now=friday_4pm)
    assert e.ack_due == datetime(2025, 1, 3, 15, 30, tzinfo=UTC)
    assert e.warn_due == datetime(2025, 1, 6, 8, 30, tzinfo=UTC)  # Monday 09:30 Berlin
    assert e.resolve_due == datetime(2025, 1, 6, 9, tzinfo=UTC)  # Monday 10:00 Berlin


def test_level_timers_start_at_the_given_moment_and_omit_unset_ones() -> None:
    """A level without ``ack_within`` or ``warn_at`` has no such timer."""
    quiet = Level(deciders="maria", resolve_within=HOUR, warn_at=None)
    timers = machine.level_timers(route(quiet), 0, T0 + MINUTE)
    assert timers == {"ack_due": None, "warn_due": None, "resolve_due": T0 + MINUTE + HOUR}


def test_deciders_expand_groups_sorted_and_unique() -> None:
    """``group:NAME`` is kept and followed by its members, sorted, without duplicates."""
    level = Level(
        deciders=("vera", "group:vps", "group:empty", "group:unknown"), resolve_within=HOUR
    )
    assert machine.expand_deciders(level, GROUPS) == (
        "vera",
        "group:vps",
        "victor",
        "group:empty",
        "group:unknown",
    )


def test_may_decide_by_id_in_the_snapshot_and_the_directory() -> None:
    """A decider is listed by id in the case's snapshot and, when given, the router's directory."""
    e = fire(opened(), T0 + HOUR)  # level 1: group:vps, expanded to its members
    assert machine.may_decide(e, "victor", None)
    assert machine.may_decide(e, "victor", ("group:vps", "victor"))
    assert not machine.may_decide(e, "victor", ("group:vps",))  # this router's groups say no
    assert not machine.may_decide(e, "maria", None)
    assert not machine.may_decide(e, "group:vps", None)  # a group entry is nobody's user id
    assert not machine.may_decide(e, "maria", ("maria",))  # the directory never widens


# --- acknowledging -------------------------------------------------------------------------


def test_acknowledging_stops_the_ack_timer_only() -> None:
    """``open → acknowledged``: the ack timer stops; the warning and resolve timers run on."""
    e = opened()
    acked = machine.acknowledge(e, by="maria", now=T0 + 10 * MINUTE)
    assert acked.state is EscalationState.ACKNOWLEDGED
    assert acked.acknowledged_by == "maria"
    assert acked.ack_due is None
    assert (acked.warn_due, acked.resolve_due) == (e.warn_due, e.resolve_due)
    assert acked.next_due == e.warn_due
    assert acked.version == e.version + 1
    assert acked.history[:-1] == e.history
    assert kinds(acked)[-1] == ("acknowledged", 0)
    assert machine.fire_due(acked, T0 + 2 * HOUR, GROUPS) is None  # the ack deadline is moot


# --- breaches move the case up -----------------------------------------------------------


def test_an_ack_breach_moves_to_the_next_level_with_new_deciders_and_timers_from_now() -> None:
    """A breached ack deadline escalates: next level, its deciders, its timers from the breach."""
    late = T0 + HOUR + 5 * MINUTE  # the tick ran five minutes after the deadline
    e = fire(opened(), late)
    assert e.level == 1
    assert e.state is EscalationState.OPEN
    assert e.deciders == ("group:vps", "vera", "victor")
    assert e.level_started_at == late
    assert e.ack_due is None  # the VP level has no ack deadline
    assert e.warn_due == late + 6 * HOUR
    assert e.resolve_due == late + 8 * HOUR
    assert e.next_due == e.warn_due
    assert kinds(e)[-2:] == [("breached", 0), ("escalated", 1)]
    assert "ack deadline" in e.history[-2].reason


def test_a_resolve_breach_after_acknowledging_reopens_at_the_next_level() -> None:
    """An acknowledged case not decided in time escalates too, open again, nobody holding it."""
    acked = machine.acknowledge(opened(), by="maria", now=T0 + MINUTE)
    warned = fire(acked, T0 + 3 * HOUR)
    assert kinds(warned)[-1] == ("warned", 0)
    e = fire(warned, T0 + 4 * HOUR)
    assert (e.level, e.state, e.acknowledged_by) == (1, EscalationState.OPEN, None)
    assert kinds(e)[-2:] == [("breached", 0), ("escalated", 1)]
    assert "resolve deadline" in e.history[-2].reason


def test_a_late_tick_fires_one_breach_and_no_stale_reminder() -> None:
    """Far past every deadline, one tick moves one level: later deadlines run from now."""
    much_later = T0 + 100 * HOUR
    e = fire(opened(), much_later)
    assert kinds(e) == [("opened", 0), ("breached", 0), ("escalated", 1)]
    assert e.resolve_due == much_later + 8 * HOUR


def test_on_the_last_level_an_ack_breach_waits_for_the_resolve_deadline() -> None:
    """The last level has nowhere to go: a breached ack is recorded and the resolve timer runs."""
    e = opened(route(MANAGER))
    e = fire(e, T0 + HOUR)
    assert (e.level, e.state) == (0, EscalationState.OPEN)
    assert e.ack_due is None
    assert e.resolve_due == T0 + 4 * HOUR
    assert kinds(e)[-1] == ("breached", 0)
    e = fire(e, T0 + 3 * HOUR)
    assert kinds(e)[-1] == ("warned", 0)
    e = fire(e, T0 + 4 * HOUR)
    assert e.state is EscalationState.EXPIRED
    assert kinds(e)[-2:] == [("breached", 0), ("expired", 0)]


def test_repeat_last_runs_the_last_level_again_before_the_final_timeout() -> None:
    """``repeat_last=2`` gives the last level two more rounds, each with fresh timers."""
    e = opened(route(MANAGER, VP, repeat_last=2))
    for step in (1, 2, 3):
        due = e.resolve_due if e.ack_due is None else e.ack_due
        assert due is not None
        e = fire(e, due)
        assert (e.level, e.state) == (step, EscalationState.OPEN)
        assert e.deciders == ("group:vps", "vera", "victor")
        assert e.resolve_due == due + 8 * HOUR
    assert e.route.level(3) == VP
    assert e.resolve_due is not None
    e = fire(e, e.resolve_due)
    assert e.state is EscalationState.EXPIRED
    assert [level for kind, level in kinds(e) if kind == "breached"] == [0, 1, 2, 3]


# --- the final timeout -------------------------------------------------------------------


def expire(on_timeout: OnTimeout, *, allow_on_timeout: bool) -> Escalation:
    e = opened(route(VP, on_timeout=on_timeout), allow_on_timeout=allow_on_timeout)
    return fire(e, T0 + 8 * HOUR)


def test_the_final_timeout_denies_by_default() -> None:
    """With no decision in time, the default ``deny`` expires the case, not allowed."""
    e = expire(OnTimeout.DENY, allow_on_timeout=True)
    assert (e.state, e.allowed, e.decided_at) == (EscalationState.EXPIRED, False, T0 + 8 * HOUR)
    assert e.next_due is None
    assert "on_timeout: deny" in e.reason
    assert kinds(e)[-1] == ("expired", 0)


def test_the_final_timeout_allows_only_when_route_and_rule_both_say_allow() -> None:
    """``allow`` needs the rule's consent too; without it the case is denied and says why."""
    allowed = expire(OnTimeout.ALLOW, allow_on_timeout=True)
    assert (allowed.state, allowed.allowed) == (EscalationState.EXPIRED, True)
    assert "allowed" in allowed.reason
    refused = expire(OnTimeout.ALLOW, allow_on_timeout=False)
    assert (refused.state, refused.allowed) == (EscalationState.EXPIRED, False)
    assert "big does not say on_timeout: allow" in refused.reason


def test_keep_open_stops_the_timers_and_waits_for_a_human() -> None:
    """``keep_open`` records the timeout, stops every timer and still accepts a decision."""
    e = expire(OnTimeout.KEEP_OPEN, allow_on_timeout=False)
    assert (e.state, e.allowed, e.next_due) == (EscalationState.OPEN, None, None)
    assert (e.ack_due, e.warn_due, e.resolve_due) == (None, None, None)
    assert kinds(e)[-1] == ("timed_out", 0)
    assert machine.fire_due(e, T0 + 1000 * HOUR, GROUPS) is None
    decided = machine.decide(
        e, approve=True, by="victor", reason="late but fine", now=T0 + 9 * HOUR
    )
    assert (decided.state, decided.allowed) == (EscalationState.APPROVED, True)


# --- warnings ------------------------------------------------------------------------------


def test_a_warning_fires_once_per_level() -> None:
    """The reminder at ``warn_at`` fires once; firing again at the same time does nothing."""
    e = opened(route(VP))
    assert machine.fire_due(e, T0 + 6 * HOUR - MINUTE, GROUPS) is None
    e = fire(e, T0 + 6 * HOUR)
    assert kinds(e)[-1] == ("warned", 0)
    assert e.history[-1].reason == f"resolve by {(T0 + 8 * HOUR).isoformat()}"
    assert (e.warn_due, e.next_due) == (None, T0 + 8 * HOUR)
    assert machine.fire_due(e, T0 + 7 * HOUR, GROUPS) is None
    assert [kind for kind, _ in kinds(e)].count("warned") == 1


def test_each_new_level_gets_its_own_warning() -> None:
    """After an escalation the next level warns again, on its own schedule."""
    e = fire(opened(), T0 + HOUR)
    assert e.warn_due == T0 + 7 * HOUR
    e = fire(e, T0 + 7 * HOUR)
    assert kinds(e)[-1] == ("warned", 1)


# --- deciding, cancelling, executing -----------------------------------------------------


@pytest.mark.parametrize("approve", [True, False])
def test_a_decision_is_final_and_stops_every_timer(approve: bool) -> None:
    """Approve or reject from open: final, ``allowed`` set, no timers left."""
    e = machine.decide(opened(), approve=approve, by="maria", reason="ok", now=T0 + MINUTE)
    assert e.state is (EscalationState.APPROVED if approve else EscalationState.REJECTED)
    assert (e.allowed, e.decided_by, e.decided_at, e.reason) == (
        approve,
        "maria",
        T0 + MINUTE,
        "ok",
    )
    assert (e.ack_due, e.warn_due, e.resolve_due, e.next_due) == (None, None, None, None)
    assert machine.fire_due(e, T0 + 1000 * HOUR, GROUPS) is None


def test_cancelling_refuses_the_action() -> None:
    """The agent withdrawing its request makes the case final and not allowed."""
    acked = machine.acknowledge(opened(), by="maria", now=T0)
    e = machine.cancel(acked, by="bot", reason="no longer needed", now=T0 + MINUTE)
    assert (e.state, e.allowed, e.next_due) == (EscalationState.CANCELLED, False, None)
    assert kinds(e)[-1] == ("cancelled", 0)
    assert e.history[-1].by == "bot"


def finals() -> list[Escalation]:
    e = opened()
    return [
        machine.decide(e, approve=True, by="maria", reason="", now=T0),
        machine.decide(e, approve=False, by="maria", reason="", now=T0),
        machine.cancel(e, by=None, reason="", now=T0),
        expire(OnTimeout.DENY, allow_on_timeout=False),
    ]


@pytest.mark.parametrize("final", finals(), ids=lambda e: e.state.value)
def test_nothing_moves_a_final_escalation(final: Escalation) -> None:
    """Acknowledge, decide and cancel raise ``IllegalTransition`` on a final case; it stays put."""
    before = final.model_copy(deep=True)
    moves: list[Callable[[], object]] = [
        lambda: machine.acknowledge(final, by="maria", now=T0 + HOUR),
        lambda: machine.decide(final, approve=True, by="maria", reason="", now=T0 + HOUR),
        lambda: machine.decide(final, approve=False, by="maria", reason="", now=T0 + HOUR),
        lambda: machine.cancel(final, by=None, reason="", now=T0 + HOUR),
    ]
    for move in moves:
        with pytest.raises(IllegalTransition) as caught:
            move()
        assert caught.value.escalation_id == final.id
        assert caught.value.state == final.state.value
    assert final == before
    assert machine.fire_due(final, T0 + 1000 * HOUR, GROUPS) is None


def test_acknowledging_twice_is_illegal() -> None:
    """Only an open case can be acknowledged."""
    acked = machine.acknowledge(opened(), by="maria", now=T0)
    with pytest.raises(IllegalTransition, match="acknowledge") as caught:
        machine.acknowledge(acked, by="maria", now=T0)
    assert caught.value.attempted == "acknowledge"
    assert acked.acknowledged_by == "maria"


def test_an_approved_action_is_claimed_for_execution_once() -> None:
    """``claim_execution`` marks the approved case executed; a second claim is refused."""
    approved = machine.decide(opened(), approve=True, by="maria", reason="", now=T0)
    claimed = machine.claim_execution(approved, by="worker-1", now=T0 + MINUTE)
    assert (claimed.executed_at, claimed.executed_by) == (T0 + MINUTE, "worker-1")
    assert claimed.state is EscalationState.APPROVED
    assert kinds(claimed)[-1] == ("executed", 0)
    with pytest.raises(AlreadyExecuted) as caught:
        machine.claim_execution(claimed, by="worker-2", now=T0 + HOUR)
    assert caught.value.by == "worker-1"
    assert claimed.executed_by == "worker-1"


def test_an_allowed_timeout_may_be_claimed_too() -> None:
    """An ``allow`` timeout lets the action run, once."""
    e = machine.claim_execution(expire(OnTimeout.ALLOW, allow_on_timeout=True), by="w", now=T0)
    assert e.executed_by == "w"


@pytest.mark.parametrize(
    "escalation",
    [
        opened(),
        machine.decide(opened(), approve=False, by="maria", reason="", now=T0),
        machine.cancel(opened(), by=None, reason="", now=T0),
        expire(OnTimeout.ALLOW, allow_on_timeout=False),
    ],
    ids=["open", "rejected", "cancelled", "denied-on-timeout"],
)
def test_only_an_allowed_case_may_be_claimed(escalation: Escalation) -> None:
    """Claiming a case that is not allowed raises ``IllegalTransition`` and changes nothing."""
    with pytest.raises(IllegalTransition, match="execute"):
        machine.claim_execution(escalation, by="w", now=T0)
    assert escalation.executed_at is None


# --- properties ---------------------------------------------------------------------------

levels = st.builds(
    Level,
    deciders=st.just(("maria",)),
    resolve_within=st.integers(1, 48 * 60).map(lambda m: m * MINUTE),
    warn_at=st.one_of(st.none(), st.sampled_from([0.25, 0.5, 0.75, 0.9])),
).flatmap(
    lambda level: st.one_of(
        st.just(level),
        st.integers(1, int(level.resolve_within / MINUTE)).map(
            lambda m: level.model_copy(update={"ack_within": m * MINUTE})
        ),
    )
)
routes = st.builds(
    Route,
    name=st.just("r"),
    levels=st.lists(levels, min_size=1, max_size=3).map(tuple),
    on_timeout=st.sampled_from(OnTimeout),
    repeat_last=st.integers(0, 2),
    hours=st.one_of(st.none(), st.just(BusinessHours(timezone="Europe/Berlin"))),
)


@settings(max_examples=150)
@given(
    on=routes,
    allow=st.booleans(),
    steps=st.lists(st.integers(0, 72 * 60).map(lambda m: m * MINUTE), max_size=25),
)
def test_timers_fire_in_order_and_each_level_breaches_at_most_once(
    on: Route, allow: bool, steps: list[timedelta]
) -> None:
    """Whatever the ticks: the history only grows and its times never run backwards, each
    deadline of each step is breached at most once, and nothing due is left after a tick."""
    e = opened(on, allow_on_timeout=allow)
    now = T0
    for step in steps:
        now += step
        before = e
        fired = machine.fire_due(e, now, GROUPS)
        if fired is None:
            assert e.next_due is None or e.next_due > now
            continue
        e = fired
        assert e.history[: len(before.history)] == before.history
        assert e.version == before.version + 1
        assert not before.is_terminal
        assert e.next_due is None or e.next_due > now
        assert e.level >= before.level
    times = [event.at for event in e.history]
    assert times == sorted(times)
    breaches = [breach(event) for event in e.history if event.kind == "breached"]
    assert len(breaches) == len(set(breaches))
    assert e.level < on.steps
    if e.state is EscalationState.EXPIRED:
        assert e.allowed is (on.on_timeout is OnTimeout.ALLOW and allow)
    else:
        assert e.allowed is None


def breach(event: Event) -> tuple[int, str]:
    """Which deadline of which step a ``breached`` event reports."""
    which = event.reason.split(" ", 1)[0]
    assert which in ("ack", "resolve"), event.reason
    return event.level, which
