"""The escalation state machine: pure functions from (escalation, time, who) to a new escalation.

No I/O and no clock: the router reads the time once and passes it in, so the
same inputs always give the same result (the stateful tests rely on it).
Every function either returns a new ``Escalation`` (version + 1, events
appended) or raises an ``EscalationError`` having changed nothing.

States and transitions::

    open ──ack──▶ acknowledged ──decide──▶ approved | rejected
      │                │
      └──── timers ────┴──▶ next level (open) … last level ──▶ expired (on_timeout)
    open | acknowledged ──cancel──▶ cancelled

Who may act (``may_decide``, ``own_case``, ``check_binding``) is decided here
too, from the case and what the router passes in; the router only supplies
its directory.  A level may require several approvals
(``Level.required_approvals``): each one before the last is an
``approval`` event that leaves the state as it was; they reset when the case
moves to another level.

Timers, per level, measured from the moment the case reached it in the
route's business hours: ``warn`` (a reminder at ``warn_at`` of
``resolve_within``), ``ack`` (while open) and ``resolve``.  A breached ack or
resolve deadline moves the case to the next level (or a repeat of the last);
on the last step a breached ack is recorded and the case keeps waiting for
the resolve deadline, whose breach is the final timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._errors import AlreadyExecuted, IllegalTransition, NotADecider, NotAuthenticated
from .._names import canonical_name
from ..approvals import LinkBinding
from ._model import Escalation, EscalationState, Event, Level, OnTimeout, Route

__all__ = [
    "acknowledge",
    "cancel",
    "check_binding",
    "claim_execution",
    "decide",
    "expand_deciders",
    "fire_due",
    "level_timers",
    "may_decide",
    "new_escalation",
    "own_case",
]

Groups = Mapping[str, frozenset[str]]

_OPEN = EscalationState.OPEN
_ACKNOWLEDGED = EscalationState.ACKNOWLEDGED


def expand_deciders(level: Level, groups: Groups) -> tuple[str, ...]:
    """The level's deciders with every ``group:NAME`` followed by its members (sorted, unique)."""
    found: list[str] = []
    for who in level.deciders:
        found.append(who)
        if who.startswith("group:"):
            found.extend(sorted(groups.get(who.removeprefix("group:"), frozenset())))
    return tuple(dict.fromkeys(found))


def may_decide(escalation: Escalation, user: str, directory: tuple[str, ...] | None) -> bool:
    """True when the verified user ``user`` is a decider of ``escalation`` at its current level.

    Both must list the user by id:

    (a) ``escalation.deciders``, the snapshot taken when the case reached
        its level (the level's deciders, every ``group:NAME`` expanded with
        the groups of the router that opened or moved it); and
    (b) ``directory``, the deciders of the case's route at that level as the
        router deciding now defines the route and expands its own groups:
        the stored case (which anyone with the store's credentials can
        write) never widens who may decide.  ``None`` only when that router
        does not know the route by name; then the snapshot alone counts.

    Nothing else counts: a ``group:`` entry never matches a user id, and
    the groups a caller says a user is in are not asked.  The four-eyes
    rule (``own_case``) is checked separately.
    """
    if user.startswith("group:"):
        return False
    return user in escalation.deciders and (directory is None or user in directory)


def own_case(escalation: Escalation, user: str) -> str | None:
    """Why ``user`` may not act on ``escalation`` though listed (four eyes), or ``None``.

    The agent that asked and the user it acted for never acknowledge or
    decide their own case.
    """
    request = escalation.request
    for field, why in (
        ("agent", "the agent that asked may not decide its own case"),
        ("on_behalf_of", "the user the agent acts for may not decide their own case"),
    ):
        value = request.get(field)
        if isinstance(value, str) and value and _same_name(value, user):
            return why
    return None


def _same_name(stored: str, user: str) -> bool:
    try:
        return canonical_name(stored, "name") == user
    except ValueError:  # not a name any Identity can carry; compare as stored
        return stored == user


def check_binding(escalation: Escalation, binding: LinkBinding) -> None:
    """Refuse (``NotAuthenticated``) a signed link not issued for this case as it is now.

    The link must name this case, its current level and the fingerprint of
    its request, and its token id must be in none of the case's events (a
    link is used once).  Call it inside the store's atomic update, so two
    racing uses of one token cannot both pass.
    """
    if binding.escalation_id != escalation.id or binding.level != escalation.level:
        raise NotAuthenticated(escalation.id, "link for another case/level")
    if binding.fingerprint != escalation.request.get("fingerprint"):
        raise NotAuthenticated(escalation.id, "request changed")
    if any(event.token == binding.token_id for event in escalation.history):
        raise NotAuthenticated(escalation.id, "link already used")


def level_timers(route: Route, index: int, start: datetime) -> dict[str, datetime | None]:
    """The timers of step ``index`` of ``route`` when the case reaches it at ``start``."""
    level = route.level(index)
    hours = route.calendar()
    ack = None if level.ack_within is None else hours.add(start, level.ack_within)
    warn = None if level.warn_at is None else hours.add(start, level.resolve_within * level.warn_at)
    return {"ack_due": ack, "warn_due": warn, "resolve_due": hours.add(start, level.resolve_within)}


def new_escalation(
    *,
    escalation_id: str,
    route: Route,
    request: dict[str, Any],
    decision: dict[str, Any],
    allow_on_timeout: bool,
    now: datetime,
    groups: Groups,
) -> Escalation:
    """A freshly opened escalation at level 0, its timers running from ``now``."""
    opened = Escalation(
        id=escalation_id,
        route=route,
        request=request,
        decision=decision,
        allow_on_timeout=allow_on_timeout,
        deciders=expand_deciders(route.level(0), groups),
        opened_at=now,
        level_started_at=now,
        version=-1,  # changed() makes it 0
    )
    reason = str(decision.get("reason") or "")
    return opened.changed(
        Event(at=now, kind="opened", level=0, reason=reason), **level_timers(route, 0, now)
    )


def acknowledge(
    escalation: Escalation,
    *,
    by: str,
    now: datetime,
    via: str = "",
    token: str | None = None,
) -> Escalation:
    """``open → acknowledged`` by a decider: the ack timer stops; the resolve timer runs on."""
    if escalation.state is not _OPEN:
        raise IllegalTransition(escalation.id, escalation.state.value, "acknowledge")
    return escalation.changed(
        Event(at=now, kind="acknowledged", level=escalation.level, by=by, via=via, token=token),
        state=_ACKNOWLEDGED,
        acknowledged_by=by,
        ack_due=None,
    )


def decide(
    escalation: Escalation,
    *,
    approve: bool,
    by: str,
    reason: str,
    now: datetime,
    via: str = "",
    token: str | None = None,
    required: int = 1,
) -> Escalation:
    """``open | acknowledged → approved | rejected``: final; every timer stops.

    When the level needs ``required`` approvals, each approval before the
    last is recorded (an ``approval`` event, ``approvals`` grows) and the
    state and timers stay as they are; one person approves once per level
    (a second time: ``NotADecider``).  A rejection is always final.
    """
    attempted = "approve" if approve else "reject"
    if escalation.state not in (_OPEN, _ACKNOWLEDGED):
        raise IllegalTransition(escalation.id, escalation.state.value, attempted)
    if approve:
        if by in escalation.approvals:
            raise NotADecider(
                escalation.id,
                by,
                escalation.level,
                escalation.deciders,
                why="already approved at this level",
            )
        if len(escalation.approvals) + 1 < required:
            count = len(escalation.approvals) + 1
            return escalation.changed(
                Event(
                    at=now,
                    kind="approval",
                    level=escalation.level,
                    by=by,
                    reason=reason or f"approval {count} of {required}",
                    via=via,
                    token=token,
                ),
                approvals=(*escalation.approvals, by),
            )
    state = EscalationState.APPROVED if approve else EscalationState.REJECTED
    return escalation.changed(
        Event(
            at=now,
            kind="approved" if approve else "rejected",
            level=escalation.level,
            by=by,
            reason=reason,
            via=via,
            token=token,
        ),
        state=state,
        decided_by=by,
        decided_at=now,
        reason=reason,
        allowed=approve,
        ack_due=None,
        warn_due=None,
        resolve_due=None,
    )


def cancel(escalation: Escalation, *, by: str | None, reason: str, now: datetime) -> Escalation:
    """``open | acknowledged → cancelled``: the agent withdrew; the action must not run."""
    if escalation.is_terminal:
        raise IllegalTransition(escalation.id, escalation.state.value, "cancel")
    return escalation.changed(
        Event(at=now, kind="cancelled", level=escalation.level, by=by, reason=reason),
        state=EscalationState.CANCELLED,
        decided_at=now,
        reason=reason,
        allowed=False,
        ack_due=None,
        warn_due=None,
        resolve_due=None,
    )


def claim_execution(escalation: Escalation, *, by: str, now: datetime) -> Escalation:
    """Mark the allowed action as executing, once: a second claim raises ``AlreadyExecuted``."""
    if escalation.allowed is not True:
        state = escalation.state.value
        raise IllegalTransition(
            escalation.id, state, "execute", "only an approved (or allowed-on-timeout) one runs"
        )
    if escalation.executed_at is not None:
        raise AlreadyExecuted(escalation.id, escalation.executed_by)
    return escalation.changed(
        Event(at=now, kind="executed", level=escalation.level, by=by),
        executed_at=now,
        executed_by=by,
    )


def fire_due(escalation: Escalation, now: datetime, groups: Groups) -> Escalation | None:
    """Fire every timer of ``escalation`` that is due at ``now``; ``None`` if none is."""
    current = escalation
    events: list[Event] = []
    fields: dict[str, Any] = {}

    def get(name: str) -> Any:
        return fields[name] if name in fields else getattr(current, name)

    # Each pass fires one timer; entering a new level starts timers from now, so
    # this ends after at most one breach and one stale reminder per call.
    for _ in range(4):
        if EscalationState(get("state")).is_terminal:
            break
        level = get("level")
        ack, warn, resolve = get("ack_due"), get("warn_due"), get("resolve_due")
        resolve_breached = resolve is not None and resolve <= now
        ack_breached = ack is not None and ack <= now
        if resolve_breached or ack_breached:
            which, due = ("resolve", resolve) if resolve_breached else ("ack", ack)
            reason = f"{which} deadline {due.isoformat()} passed at level {level}"
            events.append(Event(at=now, kind="breached", level=level, reason=reason))
            route = current.route
            if level + 1 < route.steps:
                nxt = level + 1
                events.append(
                    Event(at=now, kind="escalated", level=nxt, reason=f"{which} deadline breached")
                )
                fields.update(
                    level=nxt,
                    state=_OPEN,
                    acknowledged_by=None,
                    approvals=(),
                    level_started_at=now,
                    deciders=expand_deciders(route.level(nxt), groups),
                    **level_timers(route, nxt, now),
                )
            elif which == "ack":
                fields.update(ack_due=None)  # the last level: wait for the resolve deadline
            else:
                _final_timeout(current, now, level, events, fields)
        elif warn is not None and warn <= now:
            events.append(
                Event(
                    at=now, kind="warned", level=level, reason=f"resolve by {resolve.isoformat()}"
                )
                if resolve is not None
                else Event(at=now, kind="warned", level=level)
            )
            fields.update(warn_due=None)
        else:
            break
    if not events:
        return None
    return current.changed(*events, **fields)


def _final_timeout(
    escalation: Escalation,
    now: datetime,
    level: int,
    events: list[Event],
    fields: dict[str, Any],
) -> None:
    on_timeout = escalation.route.on_timeout
    stopped = {"ack_due": None, "warn_due": None, "resolve_due": None}
    if on_timeout is OnTimeout.KEEP_OPEN:
        events.append(
            Event(
                at=now, kind="timed_out", level=level, reason="kept open: the route says keep_open"
            )
        )
        fields.update(stopped)
        return
    allowed = on_timeout is OnTimeout.ALLOW and escalation.allow_on_timeout
    if allowed:
        reason = "no decision in time: allowed (route and rule both say on_timeout: allow)"
    elif on_timeout is OnTimeout.ALLOW:
        rule = escalation.decision.get("rule_id") or "the escalating rule"
        reason = (
            f"no decision in time: denied (the route allows on timeout but {rule} does not "
            "say on_timeout: allow)"
        )
    else:
        reason = "no decision in time: denied (on_timeout: deny)"
    events.append(Event(at=now, kind="expired", level=level, reason=reason))
    fields.update(
        stopped,
        state=EscalationState.EXPIRED,
        decided_at=now,
        reason=reason,
        allowed=allowed,
    )
