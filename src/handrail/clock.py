"""``Clock``: where every timer in handrail reads the time, so tests never sleep."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """The time, as handrail's timers read it.

    ``now`` is wall-clock time for records and deadlines a human reads;
    ``monotonic`` measures elapsed time and never goes backwards.  Inject one
    wherever a timer is built; ``handrail.testing.FakeClock`` is the test double.
    """

    def now(self) -> dt.datetime:
        """The current time as an aware datetime in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary fixed point; only differences are meaningful."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)`` and ``time.monotonic()``.  Thread-safe."""

    __slots__ = ()

    def now(self) -> dt.datetime:
        """The current time as an aware datetime in UTC."""
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        """Seconds from an arbitrary fixed point (``time.monotonic``)."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"
