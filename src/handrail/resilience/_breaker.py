"""Circuit breakers: stop calling a system that keeps failing, and probe it after a cool-down.

The whole logic is ``_step``, a pure function from (snapshot, event, now) to
(next snapshot, refusal); ``CircuitBreaker`` is a thin, locked driver that
feeds it the clock and the outcomes of calls.  The only transitions::

    closed ──(failure_threshold transient failures in a row)──▶ open
    open ──(cooldown elapsed; on the next call, which becomes the probe)──▶ half_open
    half_open ──(a probe succeeded)──▶ closed
    half_open ──(a probe failed)──▶ open
"""

from __future__ import annotations

import enum
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import ParamSpec, TypeVar

from .._errors import CircuitOpen, ConfigurationError
from ..clock import Clock, SystemClock
from ..telemetry import Telemetry, default_telemetry
from ._classify import is_never_transient, is_transient

__all__ = ["CircuitBreaker", "CircuitBreakers", "CircuitState"]

P = ParamSpec("P")
R = TypeVar("R")


class CircuitState(enum.StrEnum):
    """Where a circuit breaker stands: calls flow, fail fast, or one probe decides."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


LEGAL_TRANSITIONS: frozenset[tuple[CircuitState, CircuitState]] = frozenset(
    {
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
        (CircuitState.HALF_OPEN, CircuitState.OPEN),
    }
)


# -- the pure core ---------------------------------------------------------------------------


class _Event(enum.Enum):
    CALL = "call"  # a call asks to go ahead
    SUCCESS = "success"  # a call ended, and the system answered
    FAILURE = "failure"  # a call failed transiently: the system is struggling
    ABANDON = "abandon"  # a call ended with no outcome (cancelled, interrupted)


@dataclass(frozen=True, slots=True)
class _Settings:
    failure_threshold: int
    cooldown: float  # seconds
    half_open_max_calls: int


@dataclass(frozen=True, slots=True)
class _Snapshot:
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0  # transient failures in a row, while closed
    opened_at: float = 0.0  # monotonic seconds when it last opened
    probes: int = 0  # probe calls in flight, while half-open
    probed_at: float = 0.0  # monotonic seconds when the last probe started


def _step(
    snapshot: _Snapshot, event: _Event, now: float, settings: _Settings
) -> tuple[_Snapshot, float | None]:
    """The next snapshot, and for a refused CALL the seconds until a call may go ahead.

    The refusal is None for an admitted call and for every other event.
    Results arriving while open (from calls admitted before it opened) change
    nothing: only a probe may close an open circuit.
    """
    state = snapshot.state
    if event is _Event.CALL:
        if state is CircuitState.CLOSED:
            return snapshot, None
        if state is CircuitState.OPEN:
            remaining = settings.cooldown - (now - snapshot.opened_at)
            if remaining > 0:
                return snapshot, remaining
            return _Snapshot(CircuitState.HALF_OPEN, probes=1, probed_at=now), None
        if snapshot.probes < settings.half_open_max_calls:
            return replace(snapshot, probes=snapshot.probes + 1, probed_at=now), None
        # A probe that never reports (its caller vanished) must not wedge the circuit:
        # after a cool-down with no word, another call may probe.
        remaining = settings.cooldown - (now - snapshot.probed_at)
        if remaining > 0:
            return snapshot, remaining
        return replace(snapshot, probes=1, probed_at=now), None
    if event is _Event.SUCCESS:
        if state is CircuitState.OPEN:
            return snapshot, None
        return _Snapshot(CircuitState.CLOSED), None
    if event is _Event.FAILURE:
        if state is CircuitState.OPEN:
            return snapshot, None
        failures = snapshot.failures + 1
        if state is CircuitState.HALF_OPEN or failures >= settings.failure_threshold:
            return _Snapshot(CircuitState.OPEN, opened_at=now), None
        return replace(snapshot, failures=failures), None
    if state is CircuitState.HALF_OPEN:  # ABANDON frees the probe's place
        return replace(snapshot, probes=max(0, snapshot.probes - 1)), None
    return snapshot, None


def _settings(failure_threshold: int, cooldown: timedelta, half_open_max_calls: int) -> _Settings:
    for name, value in (
        ("failure_threshold", failure_threshold),
        ("half_open_max_calls", half_open_max_calls),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"CircuitBreaker: {name}={value!r} must be an int >= 1")
    if not isinstance(cooldown, timedelta) or cooldown < timedelta(0):
        raise ConfigurationError(
            f"CircuitBreaker: cooldown={cooldown!r} must be a non-negative datetime.timedelta"
        )
    return _Settings(failure_threshold, cooldown.total_seconds(), half_open_max_calls)


# -- the driver ------------------------------------------------------------------------------


class CircuitBreaker:
    """A circuit breaker for one remote system (a host, a connector), named ``name``.

    Closed, calls go ahead; ``failure_threshold`` transient failures in a row
    open it.  Open, calls fail fast with ``CircuitOpen`` (carrying
    ``retry_at``) for ``cooldown``; the first call after that becomes a
    probe and the breaker is half-open, admitting at most
    ``half_open_max_calls`` probes.  A probe that succeeds closes it; one that
    fails opens it again.  Only transient failures (``is_transient``) count
    against the system: any other outcome, errors included, shows it is
    answering.  The state changes on calls, never on a timer, so an open
    breaker reports ``open`` until the next call after its cool-down.

    Every timer reads ``clock`` (the system clock by default;
    ``handrail.testing.FakeClock`` in tests).  Each transition is counted and
    logged through ``telemetry`` (``default_telemetry()`` if None).
    Thread-safe, and usable from async code (it never blocks).
    """

    __slots__ = ("_clock", "_is_transient", "_lock", "_settings", "_snapshot", "_telemetry", "name")

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        cooldown: timedelta = timedelta(seconds=30),
        half_open_max_calls: int = 1,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
        is_transient: Callable[[BaseException], bool] = is_transient,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"CircuitBreaker: name must be a non-empty str, got {name!r}")
        self.name = name
        self._settings = _settings(failure_threshold, cooldown, half_open_max_calls)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._telemetry = telemetry
        self._is_transient = is_transient
        self._snapshot = _Snapshot()
        self._lock = threading.Lock()

    @property
    def state(self) -> CircuitState:
        """The current state, as of the last call or outcome."""
        return self._snapshot.state

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``fn(*args, **kwargs)`` through the breaker and record how it went.

        Raises ``CircuitOpen`` without calling ``fn`` while the circuit is
        open; otherwise returns what ``fn`` returns or raises what it raises.
        Raises ``TypeError`` for an async ``fn`` (use ``await acall(...)``).
        """
        if inspect.iscoroutinefunction(fn):
            name = getattr(fn, "__qualname__", repr(fn))
            raise TypeError(f"{name} is async: use `await breaker.acall(...)`")
        self.before_call()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self.record_failure(exc)
            raise
        self.record_success()
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` through the breaker; as ``call``, for async code."""
        self.before_call()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self.record_failure(exc)
            raise
        self.record_success()
        return result

    def before_call(self) -> None:
        """Ask to make a call; raises ``CircuitOpen`` if it must not be made now.

        For manual use: after a call this admits, report its outcome with
        ``record_success`` or ``record_failure``.
        """
        refusal = self._apply(_Event.CALL)
        if refusal is not None:
            raise CircuitOpen(self.name, self._clock.now() + timedelta(seconds=refusal))

    def record_success(self) -> None:
        """Report that an admitted call succeeded."""
        self._apply(_Event.SUCCESS)

    def record_failure(self, error: BaseException) -> None:
        """Report that an admitted call raised ``error``.

        Only a transient error counts as a failure; any other shows the system
        answered and counts as a success.  A cancellation or interrupt
        (not an ``Exception``) counts as neither.
        """
        if not isinstance(error, Exception):
            self._apply(_Event.ABANDON)
        elif not is_never_transient(error) and self._is_transient(error):
            self._apply(_Event.FAILURE)
        else:
            self._apply(_Event.SUCCESS)

    def _apply(self, event: _Event) -> float | None:
        with self._lock:
            old = self._snapshot
            new, refusal = _step(old, event, self._clock.monotonic(), self._settings)
            self._snapshot = new
        if new.state is not old.state:
            telemetry = self._telemetry if self._telemetry is not None else default_telemetry()
            telemetry.breaker_transitioned(name=self.name, old=old.state.value, new=new.state.value)
        return refusal

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value})"


class CircuitBreakers:
    """One ``CircuitBreaker`` per key — a host, a connector — made on first use.

    Every breaker gets the settings given here and is named after its key.
    Keep one ``CircuitBreakers`` for the application (or per connector) and
    ask it for the breaker of each call's target.  Thread-safe.
    """

    __slots__ = ("_breakers", "_clock", "_is_transient", "_lock", "_settings", "_telemetry")

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown: timedelta = timedelta(seconds=30),
        half_open_max_calls: int = 1,
        clock: Clock | None = None,
        telemetry: Telemetry | None = None,
        is_transient: Callable[[BaseException], bool] = is_transient,
    ) -> None:
        _settings(failure_threshold, cooldown, half_open_max_calls)  # fail here, not on first use
        self._settings = (failure_threshold, cooldown, half_open_max_calls)
        self._clock = clock
        self._telemetry = telemetry
        self._is_transient = is_transient
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def for_key(self, key: str) -> CircuitBreaker:
        """The breaker for ``key`` (e.g. ``"crm.example.com"``), made on first use."""
        breaker = self._breakers.get(key)
        if breaker is not None:
            return breaker
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                failure_threshold, cooldown, half_open_max_calls = self._settings
                breaker = self._breakers[key] = CircuitBreaker(
                    key,
                    failure_threshold=failure_threshold,
                    cooldown=cooldown,
                    half_open_max_calls=half_open_max_calls,
                    clock=self._clock,
                    telemetry=self._telemetry,
                    is_transient=self._is_transient,
                )
            return breaker

    def __repr__(self) -> str:
        return f"CircuitBreakers({len(self._breakers)} keys)"
