"""Routes, levels, escalations and their history: the data the router moves between states.

Pure data, no I/O.  An ``Escalation`` is immutable; every change makes a new
one with ``version`` one higher and one or more ``Event``\\ s appended to its
history, which is how stores detect lost updates and how humans read what
happened.  Everything round-trips through JSON (``model_dump_json`` /
``model_validate_json``): that is how the stores keep them.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._errors import ConfigurationError
from .._names import canonical_name
from .._text import printable
from ._calendar import BusinessHours

__all__ = [
    "MAX_EXTERNAL_ID",
    "Delivery",
    "Escalation",
    "EscalationPreview",
    "EscalationState",
    "Event",
    "Level",
    "Notification",
    "OnTimeout",
    "Route",
    "check_external_id",
]

MAX_EXTERNAL_ID = 256
"""The longest external id (a framework's tool-call id) a case may carry, in characters."""

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*")


class EscalationState(enum.StrEnum):
    """Where an escalation is; ``approved``, ``rejected``, ``expired``, ``cancelled`` are final."""

    OPEN = "open"
    """Waiting for someone at the current level to acknowledge or decide."""
    ACKNOWLEDGED = "acknowledged"
    """Someone at the current level has taken it; waiting for the decision."""
    APPROVED = "approved"
    """A decider approved: the action may run, once."""
    REJECTED = "rejected"
    """A decider rejected: the action must not run."""
    EXPIRED = "expired"
    """The last deadline passed with no decision; the route's ``on_timeout`` was applied."""
    CANCELLED = "cancelled"
    """The agent withdrew the request."""

    @property
    def is_terminal(self) -> bool:
        """True for the final states: nothing changes an escalation after them."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        EscalationState.APPROVED,
        EscalationState.REJECTED,
        EscalationState.EXPIRED,
        EscalationState.CANCELLED,
    }
)


class OnTimeout(enum.StrEnum):
    """What happens when a route's last deadline passes with no decision."""

    DENY = "deny"
    """The escalation expires and the action is refused (the default: fail closed)."""
    ALLOW = "allow"
    """The escalation expires and the action may run; only if the escalating rule also
    says ``on_timeout: allow`` (otherwise it is denied, and the history says why)."""
    KEEP_OPEN = "keep_open"
    """The escalation stays open with no more timers, until a human decides or it is cancelled."""


class Level(BaseModel):
    """One rung of a route: who hears about the case, who may decide it, and by when.

    ``notify`` lists the recipients (people, teams, channel handles) the
    notification names; ``channels`` picks which of the router's channels
    deliver it (default: all of them).  ``deciders`` are user ids, or
    ``group:NAME`` for every member of a group (resolved by the router's
    ``groups``); nobody else may acknowledge or decide at this level.
    ``ack_within`` (optional) and ``resolve_within`` are measured from the
    moment the case reaches this level, in the route's business hours; a
    breach of either moves the case to the next level.  ``warn_at`` sends a
    reminder when that fraction of ``resolve_within`` has passed (``None``: no
    reminder).  ``required_approvals`` (1 to 10) is how many different
    deciders must approve at this level before the case is approved (four
    eyes: 2); one rejection is final.  Approvals do not carry over to the
    next level.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    notify: tuple[str, ...] = ()
    channels: tuple[str, ...] | None = None
    deciders: tuple[str, ...] = Field(min_length=1)
    ack_within: timedelta | None = None
    resolve_within: timedelta
    warn_at: float | None = 0.75
    required_approvals: int = Field(default=1, ge=1, le=10)

    @field_validator("notify", "deciders", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("deciders")
    @classmethod
    def _named(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Deciders are user ids and group names: canonical, as on a User
        # (handrail._names), so "Alice" here is the user "alice" who decides.
        canonical = []
        for who in value:
            is_group = who.startswith("group:")
            name = who.removeprefix("group:")
            if not _NAME_RE.fullmatch(unicodedata.normalize("NFKC", name)):
                raise ValueError(
                    f"decider {who!a} is not a user id or 'group:NAME' "
                    "(letters, digits and _ . : @ -, starting with a letter or digit)"
                )
            try:
                name = canonical_name(name, "group name" if is_group else "decider")
            except ValueError as exc:
                raise ValueError(str(exc)) from None
            canonical.append(f"group:{name}" if is_group else name)
        return tuple(canonical)

    @field_validator("ack_within", "resolve_within")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError(f"a deadline must be a positive duration, got {value}")
        return value

    @field_validator("warn_at")
    @classmethod
    def _fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            raise ValueError(f"warn_at is a fraction of resolve_within in (0, 1), got {value}")
        return value

    @model_validator(mode="after")
    def _enough_deciders(self) -> Self:
        # With only named users listed, more approvals than users could never be given.
        if not any(who.startswith("group:") for who in self.deciders):
            named = len(set(self.deciders))
            if self.required_approvals > named:
                raise ValueError(
                    f"required_approvals is {self.required_approvals} but the level lists "
                    f"only {named} decider(s) and no group: it could never be approved"
                )
        return self

    @model_validator(mode="after")
    def _ack_before_resolve(self) -> Self:
        if self.ack_within is not None and self.ack_within > self.resolve_within:
            raise ValueError(
                f"ack_within ({self.ack_within}) is longer than resolve_within "
                f"({self.resolve_within}): it could never be breached first"
            )
        return self


class Route(BaseModel):
    """Where an escalating rule's ``escalate_to`` sends the case: ordered levels, SLA calendar.

    ``hours`` (default: around the clock) is the business-hours calendar the
    deadlines run under.  When the last level's ``resolve_within`` passes, the
    case repeats the last level ``repeat_last`` more times, then applies
    ``on_timeout``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    levels: tuple[Level, ...] = Field(min_length=1)
    hours: BusinessHours | None = None
    on_timeout: OnTimeout = OnTimeout.DENY
    repeat_last: int = Field(default=0, ge=0)
    description: str = ""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError(
                f"route name {value!r} must start with a letter or digit and use only "
                "letters, digits and _ . : @ -"
            )
        return value

    @property
    def steps(self) -> int:
        """How many levels a case passes through before the final timeout (repeats included)."""
        return len(self.levels) + self.repeat_last

    def level(self, index: int) -> Level:
        """The level at step ``index`` (a repeat of the last level past the end)."""
        return self.levels[min(index, len(self.levels) - 1)]

    def calendar(self) -> BusinessHours:
        """The calendar deadlines run under (around the clock if ``hours`` is unset)."""
        return self.hours if self.hours is not None else _ALWAYS

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Route:
        """A route from plain data (e.g. parsed YAML), durations as seconds or ISO 8601."""
        return cls.model_validate(data)


_ALWAYS = BusinessHours.always()


EventKind = Literal[
    "opened",
    "warned",
    "breached",
    "escalated",
    "acknowledged",
    "approval",
    "approved",
    "rejected",
    "timed_out",
    "expired",
    "cancelled",
    "executed",
]


class Event(BaseModel):
    """One line of an escalation's history: what happened, when, at which level, by whom, why.

    For a human's act (``acknowledged``, ``approval``, ``approved``,
    ``rejected``) ``via`` says how the decider was verified
    (``Identity.via``) and ``token`` is the id of the signed link used, if
    any: a token id already in a case's history is refused (used once).  An
    ``approval`` event is one of several approvals a level requires
    (``Level.required_approvals``); the case is still waiting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    kind: EventKind
    level: int
    by: str | None = None
    reason: str = ""
    via: str = ""
    token: str | None = None


class Escalation(BaseModel):
    """One case waiting for (or resolved by) a human.

    ``request`` is the redacted summary of the action (action, agent,
    on_behalf_of, resource, args, context, args_digest) and ``decision`` the
    policy's decision as ``Decision.to_dict()``; ``route`` is a snapshot of
    the route when the case opened, so later edits to the configuration do
    not change a case in flight.  ``level`` counts steps through the route
    (see ``Route.level``); ``deciders`` are the user ids and ``group:`` entries
    allowed at that level, groups expanded when the level began;
    ``approvals`` who approved at that level so far, while the level needs
    more than one approval (``Level.required_approvals``).

    ``external_id`` is the caller's own name for the case (a framework's
    tool-call id), unique in its store: opening again under it returns this
    case.  ``None`` when the case was opened without one.

    ``ack_due``, ``warn_due`` and ``resolve_due`` are the current level's
    pending timers (``None`` once fired or moot); ``next_due`` is the earliest
    of them, the one index the stores keep.  ``allowed`` is whether the
    action may run: ``True`` after an approval or an ``allow`` timeout,
    ``False`` after a rejection, a ``deny`` timeout or a cancellation, ``None``
    while undecided.  ``executed_at`` is set once, when the approved action is
    claimed for execution.  ``version`` goes up by one with every change.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    external_id: str | None = None
    route: Route
    request: dict[str, Any]
    decision: dict[str, Any]
    allow_on_timeout: bool = False
    state: EscalationState = EscalationState.OPEN
    level: int = 0
    deciders: tuple[str, ...] = ()
    approvals: tuple[str, ...] = ()
    opened_at: datetime
    level_started_at: datetime
    ack_due: datetime | None = None
    warn_due: datetime | None = None
    resolve_due: datetime | None = None
    next_due: datetime | None = None
    acknowledged_by: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""
    allowed: bool | None = None
    executed_at: datetime | None = None
    executed_by: str | None = None
    history: tuple[Event, ...] = ()
    version: int = 0

    @field_validator("external_id")
    @classmethod
    def _valid_external_id(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_external_id(value)
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @property
    def action(self) -> str:
        """The escalated action's name."""
        return str(self.request.get("action", ""))

    @property
    def idempotency_key(self) -> str:
        """The key the approved action runs under: the escalation id, so it runs once."""
        return self.id

    @property
    def is_terminal(self) -> bool:
        """True once the escalation is approved, rejected, expired or cancelled."""
        return self.state.is_terminal

    def changed(self, *events: Event, **fields: Any) -> Escalation:
        """A copy with ``fields`` set, ``events`` appended, ``next_due`` recomputed, version + 1."""
        data = {**self.__dict__, **fields}
        data["history"] = self.history + events
        data["version"] = self.version + 1
        timers = [
            data[name] for name in ("ack_due", "warn_due", "resolve_due") if data[name] is not None
        ]
        terminal = EscalationState(data["state"]).is_terminal
        data["next_due"] = None if terminal or not timers else min(timers)
        # Built from already-validated parts: skip validation (copy semantics).
        return Escalation.model_construct(**data)


@dataclasses.dataclass(frozen=True, slots=True)
class EscalationPreview:
    """What ``EscalationRouter.open`` would do for a decision, without doing it.

    ``route`` is the route's name; ``level`` the index of the level the case
    would start at (always 0) and ``level_name`` its name; ``deciders`` who
    could decide there (``group:`` entries followed by their members, as on
    an opened case) and ``notify`` who would be told.  ``ack_within`` and
    ``resolve_within`` are that level's deadlines, in the route's business
    hours.  ``on_timeout`` is what the last deadline would bring for this
    decision: ``allow`` only when the route and the escalating rule both say
    so (otherwise ``deny``), as on an opened case.
    """

    route: str
    level: int
    level_name: str
    deciders: tuple[str, ...]
    notify: tuple[str, ...]
    ack_within: timedelta | None
    resolve_within: timedelta
    on_timeout: OnTimeout

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: deadlines in seconds (what a shadowed record and its report show)."""
        return {
            "route": self.route,
            "level": self.level,
            "level_name": self.level_name,
            "deciders": list(self.deciders),
            "notify": list(self.notify),
            "ack_within": None if self.ack_within is None else self.ack_within.total_seconds(),
            "resolve_within": self.resolve_within.total_seconds(),
            "on_timeout": self.on_timeout,
        }


def check_external_id(external_id: object) -> str:
    """``external_id`` if it may name a case: a non-empty, printable str of at most 256 characters.

    Raises ``ConfigurationError`` naming the parameter otherwise.  Printable
    is what ``str.isprintable`` says: an id is shown to humans and in logs,
    so no control, bidi or zero-width character may hide in it.
    """
    if not isinstance(external_id, str):
        raise ConfigurationError(
            f"external_id must be a str (a framework's tool-call id), got "
            f"{type(external_id).__name__}"
        )
    if not external_id:
        raise ConfigurationError("external_id must not be empty")
    if len(external_id) > MAX_EXTERNAL_ID:
        raise ConfigurationError(
            f"external_id is {len(external_id)} characters long, more than {MAX_EXTERNAL_ID}: "
            f"{printable(external_id[:40])}..."
        )
    if not external_id.isprintable():
        raise ConfigurationError(
            f"external_id '{printable(external_id)[:80]}' holds a character that is not "
            "printable (a control, bidi or zero-width character); pass the id as the framework "
            "gave it"
        )
    return external_id


class Notification(BaseModel):
    """What a channel is asked to deliver: one message about one escalation.

    ``id`` is stable across redeliveries (``<escalation id>:<n>``): receivers
    de-duplicate on it.  ``kind`` says why it was sent: ``opened`` (a new
    case), ``escalated`` (a deadline was breached and the case moved to this
    level), ``warning`` (``warn_at`` of the deadline has passed), ``resolved``
    (a decision, a timeout or a cancellation: FYI).  ``recipients`` are the
    level's ``notify`` list, ``deciders`` who may decide, ``due`` the deadline
    now running, ``summary`` a one-line account of the request, ``commands``
    the CLI lines a decider can run.  ``args`` and ``context`` are the
    request's arguments and context as the case stores them (redacted), so
    approvers see what would run, not only the summary; ``None`` in a
    notification made before they were carried.  ``fingerprint`` is the
    case's request fingerprint (what Slack buttons are bound to).

    ``links`` maps each user decider at the level to a signed decision link
    (``handrail.approvals.DecisionLinks``), for ``opened``, ``escalated`` and
    ``warning`` notices of a router with ``links=``.  The links are bearer
    secrets: they are added as the notice is sent, never stored in the
    outbox or the audit trail, and a channel must show each only to its
    decider (and never log them).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    escalation_id: str
    kind: Literal["opened", "escalated", "warning", "resolved"]
    route: str
    level: int
    level_name: str = ""
    state: EscalationState
    recipients: tuple[str, ...] = ()
    deciders: tuple[str, ...] = ()
    due: datetime | None = None
    summary: str
    action: str
    agent: str
    on_behalf_of: str | None = None
    resource: dict[str, Any] | None = None
    reason: str = ""
    created_at: datetime
    commands: tuple[str, ...] = ()
    args: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    fingerprint: str = ""
    links: dict[str, str] = Field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The documented JSON payload webhooks receive (see docs/escalation-channels.md)."""
        return self.model_dump(mode="json")


class Delivery(BaseModel):
    """One pending piece of outbound work in a store's outbox, done at least once.

    ``target`` is a channel's name, or ``"audit"`` for the audit record of a
    transition; ``payload`` is a ``Notification.to_payload()`` or the audit
    fields.  Written in the same transaction as the change that caused it, so
    a crash between the change and the send loses neither: the next tick
    delivers what is pending.  ``attempts`` counts tries so far; a failed try
    waits until ``not_before``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    escalation_id: str
    target: str
    payload: dict[str, Any]
    not_before: datetime
    attempts: int = 0
    last_error: str | None = None
