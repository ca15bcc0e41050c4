"""A client-side rate limiter: one token bucket per host, slowed down further when a server says so.

The whole logic is ``_reserve``, a pure function from (state, now) to
(next state, the moment the caller's token is granted).  It is the generic
cell rate algorithm (GCRA): a bucket of ``burst`` tokens refilled at
``rate`` per second, kept as one number, the *theoretical arrival time*.
A caller never spins or polls: it reserves its slot under a lock and then
waits, outside the lock, until the slot comes.  ``penalize`` records a
server's ``Retry-After``: no slot is granted before it ends.

In any window of length ``T`` at most ``burst + rate * T`` tokens are
granted (property-tested in ``tests/connectors/test_ratelimit.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from .._errors import ConfigurationError
from .._sleep import async_sleep, sleep
from ..clock import Clock, SystemClock

__all__ = ["RateLimits", "TokenBucket", "default_rate_limits"]


# -- the pure core ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    tat: float = -math.inf  # when the bucket would be full again, had nobody else asked
    blocked_until: float = -math.inf  # no token before this (a server's Retry-After)


def _reserve(state: _State, now: float, interval: float, tolerance: float) -> tuple[_State, float]:
    """The next state, and the monotonic time (>= ``now``) at which this caller's token is granted.

    ``interval`` is ``1 / rate``; ``tolerance`` is ``(burst - 1) * interval``,
    how far ahead of its steady pace the bucket may run.
    """
    grant = max(now, state.blocked_until, state.tat - tolerance)
    return _State(max(state.tat, grant) + interval, state.blocked_until), grant


def _penalized(state: _State, until: float) -> _State:
    if until <= state.blocked_until:
        return state
    return _State(state.tat, until)


# -- the driver ------------------------------------------------------------------------------


class TokenBucket:
    """At most ``burst`` requests at once and ``rate`` per second on average, for one host.

    ``acquire()`` (or ``await aacquire()``) waits until the caller may send;
    callers are served in the order they asked.  ``penalize(until)`` makes
    every caller wait until then: call it with a 429's ``Retry-After``.
    ``rate`` may be ``math.inf`` (only penalties slow callers down).  Time is
    read from ``clock`` (the system clock by default; ``FakeClock`` in
    tests); the waits honour ``handrail.testing.no_waits``.  Thread-safe and
    async-safe: the lock is held only to reserve a slot, never while waiting.
    A caller cancelled while waiting keeps its slot, which then goes unused.
    """

    __slots__ = ("_interval", "_lock", "_state", "_tolerance", "burst", "clock", "rate")

    def __init__(self, rate: float, burst: int, *, clock: Clock | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
            raise ConfigurationError(
                f"TokenBucket: rate={rate!r} must be a number of requests per second > 0 "
                "(math.inf for no limit)"
            )
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigurationError(f"TokenBucket: burst={burst!r} must be an int >= 1")
        self.rate = float(rate)
        self.burst = burst
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._interval = 1.0 / self.rate
        self._tolerance = (burst - 1) * self._interval
        self._state = _State()
        self._lock = threading.Lock()

    def reserve(self) -> dt.timedelta:
        """Take the next slot and return how long to wait before using it (without waiting)."""
        with self._lock:
            now = self.clock.monotonic()
            self._state, grant = _reserve(self._state, now, self._interval, self._tolerance)
        return dt.timedelta(seconds=grant - now)

    def acquire(self) -> dt.timedelta:
        """Wait (blocking the thread) until the caller may send; return how long that was."""
        wait = self.reserve()
        sleep(wait.total_seconds())
        return wait

    async def aacquire(self) -> dt.timedelta:
        """Wait, without blocking the event loop, until the caller may send; as ``acquire``."""
        wait = self.reserve()
        await async_sleep(wait.total_seconds())
        return wait

    def penalize(self, until: dt.datetime | dt.timedelta | float) -> None:
        """Grant no token before ``until``: an aware datetime, or a delay from now.

        A delay is a ``timedelta`` or seconds (a ``Retry-After`` value).  A
        penalty never shortens an earlier, longer one.
        """
        if isinstance(until, dt.datetime):
            if until.tzinfo is None or until.utcoffset() is None:
                raise ValueError(
                    f"penalize: {until.isoformat()} is naive; pass an aware datetime "
                    "(datetime(..., tzinfo=datetime.UTC))"
                )
            delay = (until - self.clock.now()).total_seconds()
        elif isinstance(until, dt.timedelta):
            delay = until.total_seconds()
        elif isinstance(until, int | float) and not isinstance(until, bool):
            delay = float(until)
        else:
            raise TypeError(
                f"penalize takes a datetime, a timedelta or seconds, got {type(until).__name__}"
            )
        if not delay > 0:  # a date in the past, zero, or nan: nothing to wait for
            return
        with self._lock:
            self._state = _penalized(self._state, self.clock.monotonic() + delay)

    @property
    def blocked_for(self) -> dt.timedelta:
        """How long the current penalty has left (zero if none)."""
        left = self._state.blocked_until - self.clock.monotonic()
        return dt.timedelta(seconds=max(0.0, left))

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate!r}, burst={self.burst!r})"


class RateLimits:
    """One ``TokenBucket`` per host, made on first use and shared by all who hold this object.

    Hosts without their own limit get ``rate`` and ``burst`` (by default no
    limit at all: their buckets only honour penalties, so a 429 from a host
    slows every connector calling it).  ``limit(host, rate=, burst=)`` sets a
    host's own limit.  A host is a name with an optional port
    (``api.example.com``, ``127.0.0.1:8080``), compared case-insensitively.
    Pass one ``RateLimits`` to every connector of the application, or rely on
    ``default_rate_limits()``.  Thread-safe.
    """

    __slots__ = ("_buckets", "_burst", "_clock", "_limits", "_lock", "_rate")

    def __init__(
        self,
        rate: float = math.inf,
        burst: int = 1,
        *,
        hosts: Mapping[str, tuple[float, int]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        TokenBucket(rate, burst)  # fail here, not on first use
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self._limits: dict[str, tuple[float, int]] = {}
        for host, (host_rate, host_burst) in (hosts or {}).items():
            self.limit(host, rate=host_rate, burst=host_burst)

    def limit(self, host: str, *, rate: float, burst: int) -> TokenBucket:
        """Give ``host`` its own limit (replacing its bucket, and any penalty on it)."""
        key = _key(host)
        bucket = TokenBucket(rate, burst, clock=self._clock)
        with self._lock:
            self._limits[key] = (rate, burst)
            self._buckets[key] = bucket
        return bucket

    def for_host(self, host: str) -> TokenBucket:
        """The bucket of ``host``, made on first use."""
        key = _key(host)
        bucket = self._buckets.get(key)
        if bucket is not None:
            return bucket
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                rate, burst = self._limits.get(key, (self._rate, self._burst))
                bucket = self._buckets[key] = TokenBucket(rate, burst, clock=self._clock)
            return bucket

    def __repr__(self) -> str:
        return f"RateLimits(rate={self._rate!r}, burst={self._burst!r}, {len(self._buckets)} hosts)"


def _key(host: str) -> str:
    if not isinstance(host, str) or not host:
        raise ConfigurationError(f"RateLimits: host must be a non-empty str, got {host!r}")
    return host.lower()


_default: RateLimits | None = None
_default_lock = threading.Lock()


def default_rate_limits() -> RateLimits:
    """The process-wide ``RateLimits`` that connectors given no ``rate_limit=`` share.

    Built on first use with no limit per host, so it only spreads a host's
    429 ``Retry-After`` to every connector calling that host; give a host a
    limit with ``default_rate_limits().limit("api.example.com", rate=10, burst=20)``.
    This is the one process-wide default of the rate limiter: pass
    ``rate_limit=`` to a connector to use another.
    """
    global _default  # noqa: PLW0603 - the one documented default, created lazily
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = RateLimits()
    return _default
