"""The outbox of an ``EscalationRouter``: what a change must deliver, and delivering it.

Each move of a case writes its deliveries (one audit entry and one
notification per new event) in the same transaction as the move
(``_deliveries``); a tick claims the pending ones, signs the decision links
the notices carry (``_links_for``: never stored), sends the notifications
through the channels at once (``_send_all``) and settles each: done, or
failed and retried with backoff until ``max_delivery_attempts``
(``_settle``).  ``Outbox`` is a base of ``EscalationRouter``, not used on its
own.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from .._errors import ConfigurationError
from ._audit_events import AUDIT_TARGET, EVENT_OUTCOMES, AuditEvents
from ._model import Delivery, Escalation, Event, Notification
from ._notice_links import LINK_KINDS, notice_links
from ._summary import summarize

if TYPE_CHECKING:
    from ..approvals import DecisionLinks
    from ._channels import Channel

# Per claimed delivery id: the links its notice carries, or why they could not be made.
Links = dict[str, dict[str, str] | BaseException]

__all__ = ["NOTIFY_TARGET", "Outbox"]

NOTIFY_TARGET = "notify"

# An audit delivery is appended by the router that made the change, right
# after the commit; the outbox copy becomes claimable only after this grace,
# so a concurrent worker does not append it a second time.
_AUDIT_GRACE = timedelta(seconds=60)

_NOTIFY_KINDS = {
    "opened": "opened",
    "escalated": "escalated",
    "warned": "warning",
    "timed_out": "warning",
    "approved": "resolved",
    "rejected": "resolved",
    "expired": "resolved",
    "cancelled": "resolved",
}


class Outbox(AuditEvents):
    """How ``EscalationRouter`` delivers the notices and audit records its changes cause."""

    # Set by EscalationRouter.__init__.
    channels: dict[str, Channel]
    store_hint: str | None
    delivery_backoff: timedelta
    max_delivery_attempts: int
    links: DecisionLinks | None

    if TYPE_CHECKING:

        def get(self, escalation_id: str) -> Escalation: ...  # EscalationRouter.get

    def _deliveries(
        self, old: Escalation | None, new: Escalation, now: datetime
    ) -> builtins.list[Delivery]:
        """The outbox entries a change causes: one audit entry and one notice per new event."""
        events = new.history[len(old.history) if old is not None else 0 :]
        out: builtins.list[Delivery] = []
        for index, event in enumerate(events, start=len(new.history) - len(events)):
            if self.audit is not None and event.kind in EVENT_OUTCOMES:
                out.append(
                    Delivery(
                        id=f"{new.id}:{index}:audit",
                        escalation_id=new.id,
                        target=AUDIT_TARGET,
                        payload=event.model_dump(mode="json"),
                        not_before=now + _AUDIT_GRACE,
                    )
                )
            kind = _NOTIFY_KINDS.get(event.kind)
            if kind is None or (event.kind == "escalated" and event.level != new.level):
                continue
            notice = self._notification(new, event, kind, f"{new.id}:{index}")
            level = new.route.level(event.level)
            out.append(
                Delivery(
                    id=f"{new.id}:{index}:notify",
                    escalation_id=new.id,
                    target=NOTIFY_TARGET,
                    payload={
                        "notification": notice.to_payload(),
                        "channels": None if level.channels is None else list(level.channels),
                    },
                    not_before=now,
                )
            )
        return out

    def _notification(
        self, escalation: Escalation, event: Event, kind: str, notice_id: str
    ) -> Notification:
        level = escalation.route.level(event.level)
        request = escalation.request
        due = escalation.ack_due or escalation.resolve_due
        store = f" --store {self.store_hint}" if self.store_hint else ""
        commands = (
            ()
            if escalation.is_terminal
            else (
                f"handrail escalations ack {escalation.id}{store}",
                f"handrail escalations approve {escalation.id} --reason '...'{store}",
                f"handrail escalations reject {escalation.id} --reason '...'{store}",
            )
        )
        return Notification(
            id=notice_id,
            escalation_id=escalation.id,
            kind=kind,
            route=escalation.route.name,
            level=event.level,
            level_name=level.name,
            state=escalation.state,
            recipients=level.notify,
            deciders=escalation.deciders,
            due=None if escalation.is_terminal else due,
            summary=summarize(escalation),
            action=escalation.action,
            agent=str(request.get("agent", "")),
            on_behalf_of=request.get("on_behalf_of"),
            resource=request.get("resource"),
            reason=event.reason or str(escalation.decision.get("reason") or ""),
            created_at=event.at,
            commands=commands,
            args=request.get("args"),
            context=request.get("context"),
            fingerprint=str(request.get("fingerprint") or ""),
        )

    def _links_for(self, claimed: Sequence[Delivery]) -> Links:
        """Sign the decision links each claimed notice carries, reading each case now.

        Store reads: run it in the store's thread, before ``_send_all``.
        """
        out: Links = {}
        if self.links is None:
            return out
        cases: dict[str, Escalation | None] = {}  # one read per case, however many notices
        for delivery in claimed:
            notice = (
                delivery.payload.get("notification") if delivery.target == NOTIFY_TARGET else None
            )
            if not isinstance(notice, dict) or notice.get("kind") not in LINK_KINDS:
                continue
            try:
                if delivery.escalation_id not in cases:
                    cases[delivery.escalation_id] = self.store.get(delivery.escalation_id)
                case = cases[delivery.escalation_id]
                out[delivery.id] = notice_links(self.links, case, notice.get("level", -1))
            except Exception as exc:  # this notice fails and is retried; the others go
                out[delivery.id] = exc
        return out

    async def _send_all(
        self, claimed: Sequence[Delivery], links: Links | None = None
    ) -> builtins.list[BaseException | None]:
        """Send every claimed notification through its channels at once; collect failures."""
        signed = links or {}
        return list(await asyncio.gather(*(self._send(d, signed.get(d.id)) for d in claimed)))

    async def _send(
        self, delivery: Delivery, links: dict[str, str] | BaseException | None = None
    ) -> BaseException | None:
        if delivery.target != NOTIFY_TARGET:
            return None  # audit entries are appended in _settle, in the store's thread
        if isinstance(links, BaseException):
            return links
        try:
            notice = Notification.model_validate(delivery.payload["notification"])
            if links:
                notice = notice.model_copy(update={"links": links})
            wanted = delivery.payload.get("channels")
            channels = list(self.channels.values())
            if wanted is not None:
                missing = [name for name in wanted if name not in self.channels]
                if missing:
                    raise ConfigurationError(
                        f"no channel named {', '.join(map(repr, missing))} in this router "
                        f"(channels: {', '.join(self.channels) or 'none'})"
                    )
                channels = [self.channels[name] for name in wanted]
        except Exception as exc:
            return exc
        results = await asyncio.gather(
            *(cast(Awaitable[None], ch.send(notice)) for ch in channels), return_exceptions=True
        )
        failures = [
            f"{ch.name}: {type(r).__name__}: {_without_links(str(r), links)}"
            for ch, r in zip(channels, results, strict=True)
            if isinstance(r, BaseException)
        ]
        if failures:
            return _DeliveryFailed("; ".join(failures))
        return None

    def _settle(
        self, claimed: Sequence[Delivery], outcomes: Sequence[BaseException | None], now: datetime
    ) -> tuple[int, int]:
        delivered = failed = 0
        appended: builtins.list[str] = []
        for delivery, outcome in zip(claimed, outcomes, strict=True):
            error = outcome
            if error is None and delivery.target == AUDIT_TARGET:
                error = self._append_pending_audit(delivery)
                if error is None:
                    appended.append(delivery.id)
                    delivered += 1
                    continue
            if error is None:
                self.store.complete_delivery(delivery.id)
                delivered += 1
                continue
            failed += 1
            message = self.redactor.scrub(f"{type(error).__name__}: {error}", ())
            give_up = delivery.attempts >= self.max_delivery_attempts
            retry_at = (
                None if give_up else now + self.delivery_backoff * 2 ** (delivery.attempts - 1)
            )
            self.store.fail_delivery(delivery.id, error=message, retry_at=retry_at)
            self._undelivered(delivery, message, give_up, now)
        self._complete_audited(appended)
        return delivered, failed

    def _complete_audited(self, delivery_ids: Sequence[str]) -> None:
        """Mark audit deliveries done, once their records are on disk.

        A ``batch`` log buffers appends for up to its interval: flushed first,
        or a crash would lose records whose outbox copies are already done.
        """
        if not delivery_ids or self.audit is None:
            return
        try:
            if self.audit.fsync == "batch":
                self.audit.flush()
        except Exception as exc:  # the outbox copies stay pending: a later tick retries them
            self._log_error("audit_failed", exc)
            return
        for delivery_id in delivery_ids:
            self.store.complete_delivery(delivery_id)

    def _append_pending_audit(self, delivery: Delivery) -> BaseException | None:
        if self.audit is None:
            return ConfigurationError("this router has no audit log to append the record to")
        try:
            escalation = self.get(delivery.escalation_id)
            self._audit_event(escalation, Event.model_validate(delivery.payload))
        except Exception as exc:
            return exc
        return None


def _without_links(message: str, links: dict[str, str] | None) -> str:
    """``message`` with any signed link a channel's error quoted cut out: it is stored."""
    for url in (links or {}).values():
        message = message.replace(url, "[signed link]")
    return message


class _DeliveryFailed(Exception):
    """One or more channels failed to deliver a notification."""
