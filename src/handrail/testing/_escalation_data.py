"""Small builders of escalations and deliveries for store tests: valid, fixed, readable.

Used by the store contract (``handrail.testing.contracts``) and by handrail's
own tests.  A change function here is the router's work simplified: it
moves the case and writes one delivery naming who moved it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..escalation import Change, Delivery, Escalation, EscalationState, Event, Level, Route

__all__ = [
    "HOUR",
    "NOW",
    "ROUTE",
    "approve",
    "fire",
    "make_delivery",
    "make_escalation",
]

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""A Monday morning: the tests' fixed "now"."""

HOUR = timedelta(hours=1)

ROUTE = Route(
    name="ops",
    levels=(
        Level(
            name="on-call",
            notify=("#ops",),
            deciders=("alice",),
            resolve_within=HOUR,
        ),
    ),
)


def make_escalation(
    id: str = "esc-1",
    *,
    next_due: datetime | None = NOW + HOUR,
    opened_at: datetime = NOW,
    route: Route = ROUTE,
    state: EscalationState = EscalationState.OPEN,
    version: int = 0,
    external_id: str | None = None,
) -> Escalation:
    """A valid escalation on a one-level route, its resolve timer at ``next_due``.

    ``next_due`` defaults to an hour after ``NOW`` (not due yet); ``None``
    means no timer at all.  ``external_id`` is the caller's name for it, if any.
    """
    due = next_due
    return Escalation(
        id=id,
        external_id=external_id,
        route=route,
        request={"action": "crm.contact.delete", "agent": "agent-7", "args": {"id": id}},
        decision={"effect": "escalate", "rule_id": "big-delete", "escalate_to": route.name},
        state=state,
        deciders=("alice",),
        opened_at=opened_at,
        level_started_at=opened_at,
        resolve_due=due,
        next_due=due,
        version=version,
    )


def make_delivery(
    escalation_id: str = "esc-1",
    number: int | str = 1,
    *,
    target: str = "slack",
    not_before: datetime = NOW,
) -> Delivery:
    """A pending notification delivery with the id ``<escalation id>:<number>``."""
    return Delivery(
        id=f"{escalation_id}:{number}",
        escalation_id=escalation_id,
        target=target,
        payload={"kind": "opened", "escalation_id": escalation_id, "n": number},
        not_before=not_before,
    )


def fire(escalation: Escalation, *, by: str = "worker-1", at: datetime = NOW) -> Change:
    """What a router does when a timer fires, simplified: the timers stop and one
    delivery, ``<id>:<by>-v<version>`` with target ``by``, records who fired it."""
    new = escalation.changed(
        Event(at=at, kind="breached", level=escalation.level, by=by),
        ack_due=None,
        warn_due=None,
        resolve_due=None,
    )
    return new, [make_delivery(escalation.id, f"{by}-v{new.version}", target=by, not_before=at)]


def approve(escalation: Escalation, *, by: str = "alice", at: datetime = NOW) -> Change:
    """A decision: the escalation becomes final; one delivery ``<id>:approved-v<version>``."""
    new = escalation.changed(
        Event(at=at, kind="approved", level=escalation.level, by=by),
        state=EscalationState.APPROVED,
        decided_by=by,
        decided_at=at,
        allowed=True,
        ack_due=None,
        warn_due=None,
        resolve_due=None,
    )
    return new, [make_delivery(escalation.id, f"approved-v{new.version}", not_before=at)]
