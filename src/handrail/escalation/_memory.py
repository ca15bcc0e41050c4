"""``MemoryStore``: escalations in a dict, for tests and single-process experiments."""

from __future__ import annotations

import builtins
import heapq
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from .._errors import ConfigurationError, UnknownEscalation
from ._model import Delivery, Escalation, EscalationState
from ._store import Change

__all__ = ["MemoryStore"]


class MemoryStore:
    """An ``EscalationStore`` in memory: nothing survives the process.  Thread-safe.

    Due escalations are kept in a heap on ``next_due`` (stale entries are
    skipped when popped), so a tick costs what is due, not what is open.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._escalations: dict[str, Escalation] = {}
        self._external: dict[str, str] = {}  # external id -> escalation id
        self._due: list[tuple[datetime, str]] = []
        self._deliveries: dict[str, Delivery] = {}
        self._leases: dict[str, datetime] = {}

    def create(self, escalation: Escalation, deliveries: Sequence[Delivery] = ()) -> Escalation:
        with self._lock:
            if escalation.id in self._escalations:
                raise ConfigurationError(f"escalation {escalation.id} already exists")
            if escalation.external_id is not None:
                taken = self._external.get(escalation.external_id)
                if taken is not None:
                    return self._escalations[taken]
                self._external[escalation.external_id] = escalation.id
            self._write(escalation, deliveries)
            return escalation

    def get(self, escalation_id: str) -> Escalation | None:
        with self._lock:
            return self._escalations.get(escalation_id)

    def find(self, external_id: str) -> Escalation | None:
        with self._lock:
            escalation_id = self._external.get(external_id)
            return None if escalation_id is None else self._escalations[escalation_id]

    def list(
        self,
        *,
        state: EscalationState | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> list[Escalation]:
        with self._lock:
            found = [
                e
                for e in self._escalations.values()
                if (state is None or e.state == state) and (route is None or e.route.name == route)
            ]
        found.sort(key=lambda e: (e.opened_at, e.id))
        return found if limit is None else found[:limit]

    def update(self, escalation_id: str, change: Callable[[Escalation], Change]) -> Escalation:
        with self._lock:
            current = self._escalations.get(escalation_id)
            if current is None:
                raise UnknownEscalation(escalation_id, "the memory store")
            new, deliveries = change(current)
            _check_version(current, new)
            self._write(new, deliveries)
            return new

    def process_due(
        self,
        now: datetime,
        change: Callable[[Escalation], Change | None],
        *,
        limit: int = 500,
    ) -> int:
        handled = 0
        unchanged: list[tuple[datetime, str]] = []
        with self._lock:
            try:
                while self._due and handled < limit and self._due[0][0] <= now:
                    due, escalation_id = heapq.heappop(self._due)
                    current = self._escalations.get(escalation_id)
                    if current is None or current.next_due != due or current.is_terminal:
                        continue  # a stale heap entry: the escalation moved on
                    handled += 1
                    # Until written, it stays due (also when change() or the check raises).
                    unchanged.append((due, escalation_id))
                    result = change(current)
                    if result is None:
                        continue
                    new, deliveries = result
                    _check_version(current, new)
                    unchanged.pop()
                    self._write(new, deliveries)
            finally:
                for entry in unchanged:
                    heapq.heappush(self._due, entry)
        return handled

    def claim_deliveries(
        self, now: datetime, *, limit: int = 100, lease: timedelta = timedelta(seconds=60)
    ) -> builtins.list[Delivery]:
        claimed: list[Delivery] = []
        with self._lock:
            for delivery_id, delivery in self._deliveries.items():
                if len(claimed) >= limit:
                    break
                leased_until = self._leases.get(delivery_id)
                if delivery.not_before > now or (leased_until is not None and leased_until > now):
                    continue
                taken = delivery.model_copy(update={"attempts": delivery.attempts + 1})
                self._deliveries[delivery_id] = taken
                self._leases[delivery_id] = now + lease
                claimed.append(taken)
        return claimed

    def complete_delivery(self, delivery_id: str) -> None:
        with self._lock:
            self._deliveries.pop(delivery_id, None)
            self._leases.pop(delivery_id, None)

    def fail_delivery(self, delivery_id: str, *, error: str, retry_at: datetime | None) -> None:
        with self._lock:
            delivery = self._deliveries.get(delivery_id)
            if delivery is None:
                return
            self._leases.pop(delivery_id, None)
            if retry_at is None:
                del self._deliveries[delivery_id]
                return
            self._deliveries[delivery_id] = delivery.model_copy(
                update={"last_error": error, "not_before": retry_at}
            )

    def pending_deliveries(self, escalation_id: str | None = None) -> builtins.list[Delivery]:
        with self._lock:
            return [
                d
                for d in self._deliveries.values()
                if escalation_id is None or d.escalation_id == escalation_id
            ]

    def is_admin(self) -> bool:
        """``False``: memory has no users nor roles to say who administers it."""
        return False

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._escalations)} escalations)"

    def _write(self, escalation: Escalation, deliveries: Sequence[Delivery]) -> None:
        self._escalations[escalation.id] = escalation
        if escalation.next_due is not None:
            heapq.heappush(self._due, (escalation.next_due, escalation.id))
        for delivery in deliveries:
            self._deliveries[delivery.id] = delivery


def _check_version(old: Escalation, new: Escalation) -> None:
    if new.id != old.id or new.external_id != old.external_id or new.version != old.version + 1:
        raise ConfigurationError(
            f"escalation {old.id}: a change must keep the id and external id and raise the "
            f"version by one (was {old.version}, got {new.id} v{new.version})"
        )
