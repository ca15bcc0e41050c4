"""``AuditEntry``: what happened, as ``AuditLog.append`` takes it.

The one type every front end hands to the audit trail (the guard, the
escalation router, ``@audited``, the command line), built with one of its
two helpers: ``AuditEntry.of`` (a principal did an action) or
``AuditEntry.for_decision`` (a decided request ended so).  ``audit`` knows
nothing of policies: a decision is read through the small structural
protocols below, and a resource is a mapping or any object with ``type``,
``id`` and ``attributes``.

A ``NamedTuple``, like ``Decision``, because one is built on every guarded
call: a frozen dataclass of twenty fields costs about 3 µs more to build on
Python 3.11 (``object.__setattr__`` per field), a tenth of an append.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol, TypedDict, Unpack

from .._effect import Effect
from ..identity import Principal
from ._outcome import Outcome

__all__ = ["AuditEntry", "DecisionLike", "ResourceLike"]


class ResourceLike(Protocol):
    """A resource as ``handrail.Resource`` has it: a type, an optional id, attributes."""

    @property
    def type(self) -> str: ...
    @property
    def id(self) -> str | None: ...
    @property
    def attributes(self) -> Mapping[str, Any]: ...


class _Acting(Protocol):
    """A decided request: who asked to do what, on what, with which arguments, in which context."""

    @property
    def principal(self) -> Principal: ...
    @property
    def action(self) -> str: ...
    @property
    def resource(self) -> ResourceLike | Mapping[str, Any] | None: ...
    @property
    def args(self) -> Mapping[str, Any]: ...
    @property
    def context(self) -> Mapping[str, Any]: ...


class DecisionLike(Protocol):
    """What ``AuditEntry.for_decision`` reads of a decision (``handrail.Decision`` has it)."""

    @property
    def effect(self) -> Effect: ...
    @property
    def rule_id(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def request(self) -> _Acting: ...


class _Fields(TypedDict, total=False):
    """The fields of ``AuditEntry`` its helpers take as keywords (a test keeps them in step)."""

    resource: Mapping[str, Any] | ResourceLike | None
    args: Mapping[str, Any] | None
    context: Mapping[str, Any] | None
    effect: Effect | str | None
    rule_id: str | None
    reason: str | None
    error: BaseException | None
    error_type: str | None
    error_message: str | None
    duration: dt.timedelta | None
    attempts: int
    trace_id: str | None
    span_id: str | None
    escalation_id: str | None
    idempotency_key: str | None
    details: Mapping[str, Any] | None


class AuditEntry(NamedTuple):
    """One thing that happened, to be appended to an audit log: ``log.append(entry)``.

    Immutable.  Build one with ``AuditEntry.of(principal, action, outcome,
    **fields)`` or ``AuditEntry.for_decision(decision, outcome, **fields)``
    (or by its keywords).  Nothing is checked here: ``AuditLog.append``
    redacts and checks every field, and raises ``TypeError``/``ValueError``
    for a malformed one before anything is written.  The fields, in the order
    of the record:
    """

    action: str
    """The dotted action name, e.g. ``crm.contact.update``."""
    agent: str
    """The id of the agent that acted (``Principal.agent``)."""
    outcome: Outcome | str
    """How it ended (``Outcome`` or its value, e.g. ``"executed"``)."""
    on_behalf_of: str | None = None
    """The id of the user the agent acted for, if any."""
    resource: Mapping[str, Any] | ResourceLike | None = None
    """What it touched: a mapping, or an object with ``type``, ``id``, ``attributes``.  Redacted."""
    args: Mapping[str, Any] | None = None
    """The call's arguments.  Redacted; the record's ``args_digest`` covers them in full."""
    context: Mapping[str, Any] | None = None
    """Where it came from (channel, environment, ticket ...).  Redacted."""
    effect: Effect | str | None = None
    """The policy's effect, when a policy decided."""
    rule_id: str | None = None
    """The id of the deciding rule."""
    reason: str | None = None
    """Why, in words (the decision's reason).  Secrets found in the record are scrubbed from it."""
    error: BaseException | None = None
    """The exception it ended with: ``error_type`` and ``error_message`` default from it."""
    error_type: str | None = None
    """The error's type, e.g. ``httpx.ReadTimeout`` (default: from ``error``)."""
    error_message: str | None = None
    """The error's message (default: ``str(error)``).  Scrubbed, and cut after 4,096 characters."""
    duration: dt.timedelta | None = None
    """How long the call took (kept to the microsecond)."""
    attempts: int = 1
    """How many times it was tried (0 if it never ran)."""
    trace_id: str | None = None
    """The OpenTelemetry trace id of the call's span."""
    span_id: str | None = None
    """The OpenTelemetry span id of the call's span."""
    escalation_id: str | None = None
    """The escalation it waited for or ran under."""
    idempotency_key: str | None = None
    """The key the call was made under (the same across its retries)."""
    details: Mapping[str, Any] | None = None
    """How the call ended beyond its outcome, e.g. ``{"pages": 3, "records": 57}`` for a list
    read, or the route, level and deciders a shadowed escalation would have asked.  Redacted."""

    @classmethod
    def of(
        cls,
        principal: Principal,
        action: str,
        outcome: Outcome | str,
        **fields: Unpack[_Fields],
    ) -> AuditEntry:
        """The entry for ``principal`` doing ``action``, ending with ``outcome``.

        ``agent`` and ``on_behalf_of`` come from the principal; every other
        field is a keyword.
        """
        if not isinstance(principal, Principal):
            raise TypeError(
                f"AuditEntry.of: principal must be a Principal, got {type(principal).__name__}"
            )
        user = principal.on_behalf_of
        # Positionally: binding keywords costs a third of building the entry.
        return cls(action, principal.agent, outcome, None if user is None else user.id, **fields)

    @classmethod
    def for_decision(
        cls,
        decision: DecisionLike,
        outcome: Outcome | str | None = None,
        **fields: Unpack[_Fields],
    ) -> AuditEntry:
        """The entry for a decided request: its principal, action, resource, args and
        context, and the decision's effect, rule and reason.

        ``outcome`` defaults from the decision: ``denied`` for DENY,
        ``escalated`` for ESCALATE, otherwise ``failed`` if an ``error`` is
        given and ``executed`` if not.  Fields given as keywords win over the
        decision's.
        """
        request = decision.request
        effect = decision.effect
        if outcome is None:
            # By identity, inline: hashing an enum member runs Python code, on every call.
            if effect is _DENY:
                outcome = _DENIED
            elif effect is _ESCALATE:
                outcome = _ESCALATED
            else:
                outcome = _EXECUTED if fields.get("error") is None else _FAILED
        principal = request.principal
        user = principal.on_behalf_of
        decided = (
            request.action,
            principal.agent,
            outcome,
            None if user is None else user.id,
            request.resource,
            request.args,
            request.context,
            effect,
            decision.rule_id,
            decision.reason,
        )
        if not fields or _DECIDED.isdisjoint(fields):
            return cls(*decided, **fields)
        return cls(*decided)._replace(**fields)


# for_decision's default outcomes, as module globals: read on every call.
_DENY, _ESCALATE = Effect.DENY, Effect.ESCALATE
_DENIED, _ESCALATED = Outcome.DENIED, Outcome.ESCALATED
_EXECUTED, _FAILED = Outcome.EXECUTED, Outcome.FAILED
# The fields for_decision takes from the decision (keywords given win over them).
_DECIDED = frozenset({"resource", "args", "context", "effect", "rule_id", "reason"})
