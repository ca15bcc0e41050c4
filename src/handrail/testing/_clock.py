"""``FakeClock``: a clock that moves only when the test moves it."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

__all__ = ["FakeClock"]

_DEFAULT_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


class FakeClock:
    """A ``handrail.clock.Clock`` for tests: time stands still until you ``advance`` or ``set`` it.

    It starts at ``start`` (an aware datetime, converted to UTC; 2025-01-01
    00:00 UTC if omitted) and, like real time, never goes backwards:
    ``advance`` and ``set`` raise ``ValueError`` rather than rewind it.
    ``monotonic()`` counts seconds since ``start``.  Moves are made under a
    lock (two threads advancing add up), and readers on other threads see
    either the old or the new time.

    ``sleep`` and ``asleep`` do not wait: they move the clock forward, so
    code that waits on the clock (``EscalationRouter.wait_decision``, the
    guard's ``wait_for_decision``) runs a 30-minute wait at once, and finds
    the case as pending as a real wait would with nobody answering.
    """

    __slots__ = ("_lock", "_now", "_start")

    def __init__(self, start: dt.datetime = _DEFAULT_START) -> None:
        self._start = _as_utc(start, "start")
        self._now = self._start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """The fake current time, an aware datetime in UTC."""
        return self._now

    def monotonic(self) -> float:
        """Seconds elapsed on this clock since it started."""
        return (self._now - self._start).total_seconds()

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock forward by ``delta``; raises ``ValueError`` if it is negative."""
        if delta < dt.timedelta(0):
            raise ValueError(f"a clock cannot go backwards: advance({delta!r}) is negative")
        with self._lock:
            self._now += delta

    def set(self, when: dt.datetime) -> None:
        """Move the clock to ``when`` (aware); raises ``ValueError`` if that is in its past."""
        target = _as_utc(when, "when")
        with self._lock:
            if target < self._now:
                raise ValueError(
                    f"a clock cannot go backwards: {target.isoformat()} is before "
                    f"{self._now.isoformat()}; build a new FakeClock to start over"
                )
            self._now = target

    def sleep(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` and return at once; no real time passes.

        A positive pause moves it at least one microsecond (the clock's
        resolution), so a loop waiting for a deadline always gets there.
        Raises ``ValueError`` for a negative or non-finite pause.
        """
        self.advance(_pause(seconds))

    async def asleep(self, seconds: float) -> None:
        """``sleep`` for async code: moves the clock, then yields once to the event loop."""
        self.advance(_pause(seconds))
        await asyncio.sleep(0)  # let other tasks run, as a real pause would

    def __repr__(self) -> str:
        return f"FakeClock({self._now.isoformat()})"


def _pause(seconds: float) -> dt.timedelta:
    if not isinstance(seconds, int | float) or not 0 <= seconds < float("inf"):
        raise ValueError(f"a pause is a finite number of seconds >= 0, got {seconds!r}")
    delta = dt.timedelta(seconds=seconds)
    return dt.timedelta(microseconds=1) if seconds > 0 and not delta else delta


def _as_utc(when: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, got naive {when.isoformat()}; "
            "write datetime(..., tzinfo=datetime.UTC)"
        )
    return when.astimezone(dt.UTC)
