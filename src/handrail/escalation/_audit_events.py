"""The audit records an ``EscalationRouter`` writes about its cases.

One record per event of a case (``opened``, ``acknowledged``, ``reassigned``,
``approved`` ...), one per refused decider and one per notification that
could not be delivered; and the error log for what the router could not do.
``AuditEvents`` is a base of ``EscalationRouter``, not used on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._errors import NotADecider, NotAuthenticated
from ..audit import AuditEntry
from ..identity import Principal
from ..policy import Effect
from ..redaction import Redactor
from ..telemetry import Telemetry, default_telemetry
from ._model import Delivery, Escalation, Event

if TYPE_CHECKING:
    from ..audit import AuditLog
    from ._store import EscalationStore

__all__ = ["AUDIT_TARGET", "EVENT_OUTCOMES", "AuditEvents"]

AUDIT_TARGET = "audit"

EVENT_OUTCOMES = {
    "opened": "opened",
    "escalated": "reassigned",
    "warned": "warned",
    "breached": "breached",
    "timed_out": "breached",
    "acknowledged": "acknowledged",
    # One of several approvals a level requires: the case still waits, as when taken on
    # (the record's context says event "approval").
    "approval": "acknowledged",
    "approved": "approved",
    "rejected": "rejected",
    "expired": "expired",
    "cancelled": "cancelled",
}


class AuditEvents:
    """What ``EscalationRouter`` records: audit entries for its cases, and its error log."""

    # Set by EscalationRouter.__init__.
    audit: AuditLog | None
    store: EscalationStore
    telemetry: Telemetry | None
    redactor: Redactor

    def _audit_event(self, escalation: Escalation, event: Event) -> None:
        audit = self.audit
        if audit is None:
            return
        request = escalation.request
        decision = escalation.decision
        audit.append(
            AuditEntry.of(
                _principal(request),
                escalation.action,
                EVENT_OUTCOMES[event.kind],
                resource=request.get("resource"),
                args=request.get("args") or {},
                context={
                    "event": event.kind,
                    "event_at": event.at.isoformat(),
                    "level": event.level,
                    "by": event.by,
                    **({"via": event.via} if event.via else {}),
                    "route": escalation.route.name,
                    "state": escalation.state.value,
                },
                effect=Effect.ESCALATE,
                rule_id=decision.get("rule_id"),
                reason=event.reason or None,
                escalation_id=escalation.id,
            )
        )

    def _refused(
        self,
        escalation_id: str,
        refusal: NotADecider | NotAuthenticated,
        attempted: str,
        now: datetime,
        *,
        by: str,
        level: int | None,
        via: str = "",
    ) -> None:
        """Record a refused act: ``by`` is the name offered (escaped, maybe unverified).

        ``level`` ``None``: the case's current level.  A case that does not
        exist gets telemetry only (an audit record names its case).
        """
        try:
            escalation = self.store.get(escalation_id)
        except Exception as exc:  # the refusal stands; report what could not be recorded
            self._log_error("audit_failed", exc, escalation_id=escalation_id)
            escalation = None
        if level is None and escalation is not None:
            level = escalation.level
        authenticated = isinstance(refusal, NotADecider)
        telemetry = self.telemetry or default_telemetry()
        telemetry.escalation_event("refused", escalation_id=escalation_id, by=by, level=level)
        if self.audit is None or escalation is None:
            return
        self.audit.append(
            AuditEntry.of(
                _principal(escalation.request),
                escalation.action,
                "refused",
                resource=escalation.request.get("resource"),
                args=escalation.request.get("args") or {},
                context={
                    "event": "refused",
                    "event_at": now.isoformat(),
                    "attempted": attempted,
                    "level": level,
                    "by": by,
                    "authenticated": authenticated,
                    **({"via": via} if via else {}),
                    "route": escalation.route.name,
                    "state": escalation.state.value,
                },
                effect=Effect.ESCALATE,
                rule_id=escalation.decision.get("rule_id"),
                reason=str(refusal),
                escalation_id=escalation_id,
            )
        )

    def _undelivered(self, delivery: Delivery, message: str, gave_up: bool, now: datetime) -> None:
        telemetry = self.telemetry or default_telemetry()
        telemetry.escalation_event(
            "undelivered",
            escalation_id=delivery.escalation_id,
            target=delivery.target,
            attempts=delivery.attempts,
            gave_up=gave_up,
        )
        if self.audit is None or delivery.target == AUDIT_TARGET:
            return
        escalation = self.store.get(delivery.escalation_id)
        if escalation is None:
            return
        try:
            self.audit.append(
                AuditEntry.of(
                    _principal(escalation.request),
                    escalation.action,
                    "undelivered",
                    context={
                        "event": "undelivered",
                        "event_at": now.isoformat(),
                        "delivery": delivery.id,
                        "attempts": delivery.attempts,
                        "gave_up": gave_up,
                        "route": escalation.route.name,
                    },
                    effect=Effect.ESCALATE,
                    rule_id=escalation.decision.get("rule_id"),
                    reason=message,
                    escalation_id=escalation.id,
                )
            )
        except Exception as exc:
            self._log_error("audit_failed", exc, escalation_id=escalation.id)

    def _log_error(self, event: str, exc: BaseException, **fields: Any) -> None:
        logger = (self.telemetry or default_telemetry()).logger
        if logger is not None:
            logger.error(
                f"handrail.escalation.{event}",
                error_type=type(exc).__name__,
                error=self.redactor.scrub(str(exc), ()),
                **fields,
            )


def _principal(request: Mapping[str, Any]) -> Principal:
    return Principal(
        agent=str(request.get("agent") or "unknown"), on_behalf_of=request.get("on_behalf_of")
    )
