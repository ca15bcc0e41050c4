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

    A clock may also offer ``sleep(seconds)`` and ``async asleep(seconds)``
    (``SystemClock`` and ``FakeClock`` do): waits pause through them, so a
    fake clock's wait moves its own time instead of really sleeping.  They
    are optional: a clock without them is waited on in real time until its
    ``monotonic()`` passes the deadline.
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

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of real time (``time.sleep``).

        ``EscalationRouter`` pauses a real clock's wait on its own condition
        instead, so a decision it makes meanwhile ends the wait at once.
        """
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """Await ``seconds`` of real time (``asyncio.sleep``) without blocking the loop."""
        import asyncio  # here: importing handrail stays light

        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"
