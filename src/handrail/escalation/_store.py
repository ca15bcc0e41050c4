"""``EscalationStore``: where escalations and their outbox live, behind one small protocol.

The router owns every rule about states and deadlines; a store only keeps
documents and guarantees four things, in every implementation:

1. **Atomic changes.**  ``update`` and ``process_due`` read an escalation,
   hand it to the router's function, and write what it returns — the new
   escalation and the deliveries it causes — in one transaction, with the
   row locked so no other worker (thread or process) changes it meanwhile.
   If the function raises, nothing is written and the error propagates.
2. **Due work by index.**  ``process_due`` finds the non-final escalations
   whose ``next_due`` has passed through an index on it: the cost grows with
   the number due, not the number open.  Concurrent callers skip rows another
   caller holds (``FOR UPDATE SKIP LOCKED`` in PostgreSQL, one write
   transaction at a time in SQLite), so each due timer fires exactly once.
3. **An outbox delivered at least once.**  Deliveries written with a change
   stay pending until ``complete_delivery``; ``claim_deliveries`` leases due
   ones to one caller at a time, and a lease that runs out (the worker died)
   makes them claimable again.
4. **One case per external id.**  An escalation's ``external_id`` (a
   framework's tool-call id) is unique in the store, under a UNIQUE
   constraint: ``create`` under an external id another escalation already
   has writes nothing and returns that escalation, so routers opening the
   same external id at once (threads or processes) end with one case.

A store also says whether whoever opened it is an administrator
(``is_admin``), the one capability the ``handrail escalations --as`` option
needs: only a store with roles of its own (PostgreSQL) can say yes.

``MemoryStore`` (tests), ``SQLiteStore`` (the embedded default) and
``PostgresStore`` (many workers) pass one shared contract suite.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from ._model import Delivery, Escalation, EscalationState

__all__ = ["Change", "EscalationStore"]

Change = tuple[Escalation, Sequence[Delivery]]
"""What a change function returns: the new escalation (version already + 1) and its deliveries."""


@runtime_checkable
class EscalationStore(Protocol):
    """Durable storage for escalations and their outbox.  See the module docstring."""

    def create(self, escalation: Escalation, deliveries: Sequence[Delivery] = ()) -> Escalation:
        """Insert a new escalation and its deliveries in one transaction; return what is stored.

        That is ``escalation`` itself, unless its ``external_id`` is already
        another escalation's: then nothing is written and that escalation is
        returned (the winner of a race to open it).  Raises
        ``ConfigurationError`` if the id is already taken (nothing written):
        ids are generated, so a clash is a bug, while external ids come from
        outside and clash by design when a call is retried.
        """
        ...

    def get(self, escalation_id: str) -> Escalation | None:
        """The escalation with this id, or ``None``."""
        ...

    def find(self, external_id: str) -> Escalation | None:
        """The escalation opened under this external id, or ``None``."""
        ...

    def list(
        self,
        *,
        state: EscalationState | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> list[Escalation]:
        """Escalations, oldest first (by ``opened_at``, then id), optionally filtered."""
        ...

    def update(self, escalation_id: str, change: Callable[[Escalation], Change]) -> Escalation:
        """Apply ``change`` to the escalation under a row lock and write the result atomically.

        Returns the new escalation.  Raises ``UnknownEscalation`` if there is
        none with this id; whatever ``change`` raises propagates and nothing
        is written.  The new escalation's ``version`` must be the old one + 1,
        its id and external id the same.
        """
        ...

    def process_due(
        self,
        now: datetime,
        change: Callable[[Escalation], Change | None],
        *,
        limit: int = 500,
    ) -> int:
        """Apply ``change`` to up to ``limit`` non-final escalations whose ``next_due <= now``.

        Each one is locked while ``change`` runs and its result written
        atomically (``None``: leave it unchanged).  Rows locked by another
        worker are skipped.  Returns how many escalations were handed to
        ``change``; a caller loops until it returns fewer than ``limit``.
        """
        ...

    def claim_deliveries(
        self, now: datetime, *, limit: int = 100, lease: timedelta = timedelta(seconds=60)
    ) -> builtins.list[Delivery]:
        """Lease up to ``limit`` pending deliveries whose ``not_before <= now`` to this caller.

        Each returned delivery has ``attempts`` already counted (+1) and is
        invisible to other callers until ``now + lease``.
        """
        ...

    def complete_delivery(self, delivery_id: str) -> None:
        """Mark a delivery done: it is never handed out again."""
        ...

    def fail_delivery(self, delivery_id: str, *, error: str, retry_at: datetime | None) -> None:
        """Record a failed try: pending again from ``retry_at``, or given up when ``None``."""
        ...

    def pending_deliveries(self, escalation_id: str | None = None) -> builtins.list[Delivery]:
        """Deliveries not yet done nor given up (all, or one escalation's), oldest first."""
        ...

    def is_admin(self) -> bool:
        """Whether the store's own access control says its user administers escalations.

        An administrator may decide in another decider's name (``handrail
        escalations approve ID --as USER``, recorded as such).  ``False``
        unless the store has roles that can say so: a file or memory has
        none, so a store without roles always answers ``False``.
        """
        return False

    def close(self) -> None:
        """Release connections and files.  Idempotent."""
        ...
