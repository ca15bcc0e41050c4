"""What one guarded call has done so far, as reported by the code beneath the guard.

The guard sets the call's ``CallProgress`` while its function runs (and while
a lazy read is iterated); ``current_call()`` finds it, so a transport can
count its real attempts and a list read its pages and quarantined records,
and the call's one audit record says so.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..resilience import AttemptDetails

__all__ = ["CallProgress", "current_call"]

_current: ContextVar[CallProgress | None] = ContextVar("handrail_call", default=None)


class CallProgress:
    """What one guarded call has done so far, reported by the code beneath the guard.

    A transport that retries on its own calls ``attempted()`` once per real
    attempt (so the record says how many requests reached the system); a
    list read adds its counts with ``count(pages=1)`` / ``count(quarantined=1)``.
    Read it with ``current_call()`` inside the guarded function (and inside
    each step of a lazy read's iteration).
    """

    __slots__ = ("attempts", "counts", "guard_attempts")

    def __init__(self) -> None:
        self.attempts = 0  # reported by the code beneath (real transport attempts)
        self.guard_attempts = 0  # counted by the guard's own retry layer
        self.counts: dict[str, int] = {}

    def attempted(self) -> None:
        """Count one real attempt to reach the system (one HTTP request sent)."""
        self.attempts += 1

    def count(self, **counts: int) -> None:
        """Add to the call's named counts (recorded as the audit record's ``details``)."""
        for name, n in counts.items():
            self.counts[name] = self.counts.get(name, 0) + n

    def __call__(self, details: AttemptDetails) -> None:
        # The retry layer's ``on_attempt`` hook: the last attempt it saw is how many it made.
        self.guard_attempts = details.attempt

    @property
    def total_attempts(self) -> int:
        """The attempts to record: real ones when reported, else the guard's own."""
        return self.attempts or self.guard_attempts or 1


def current_call() -> CallProgress | None:
    """The ``CallProgress`` of the guarded call running in this thread or task, if any."""
    return _current.get()
