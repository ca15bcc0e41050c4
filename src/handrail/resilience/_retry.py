"""Retrying transient failures: ``RetryPolicy``, ``@retry`` and ``AttemptDetails``.

tenacity does the retrying (its ``Retrying``/``AsyncRetrying`` are the pure
decide-attempt-or-sleep core with sync and async drivers); this module
chooses what it is told: which errors, how many attempts, how long in all,
how long between, and what to report.  A write is retried only when it
carries an idempotency key.  One rule for that key, as everywhere in
handrail: a decorator's ``idempotency_key`` names an argument; a call's
takes the key.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, cast

import tenacity
from tenacity.wait import wait_random_exponential

from .._errors import ConfigurationError, WriteNotRetried
from .._sleep import async_sleep, sleep
from ..clock import Clock
from ..redaction import Redactor
from ..telemetry import Telemetry, default_telemetry
from ._classify import is_never_transient, is_transient, retry_after
from ._idempotency import using_idempotency_key

__all__ = ["AttemptDetails", "OnAttempt", "RetryPolicy", "retry"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class AttemptDetails:
    """One attempt about to start; ``on_attempt`` receives one before every attempt, the first too.

    ``action`` names the call (the ``action=`` given, else the function's
    qualified name); ``attempt`` counts from 1; ``error`` is the failure that
    caused this retry (None on the first attempt); ``wait`` is how long the
    policy waited before this attempt (zero on the first; under
    ``handrail.testing.no_waits`` the wait it chose but skipped);
    ``elapsed`` is the time since the first attempt started.
    """

    action: str
    attempt: int
    error: BaseException | None
    wait: timedelta
    elapsed: timedelta


OnAttempt = Callable[[AttemptDetails], object]
"""Called with the details of each attempt just before it starts."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How to retry transient failures: at most ``attempts`` tries within ``timeout`` in all.

    Between attempts it waits a random time up to ``wait_initial`` doubled
    per retry and capped at ``wait_max`` (exponential backoff with full
    jitter), but never less than the server's ``Retry-After``.  An attempt
    never starts after ``timeout`` has passed: when the next wait would end
    beyond it, the last error is raised at once.  Which errors are retried is
    ``is_transient``'s decision (``handrail.resilience.is_transient`` by
    default), except that refusals and validation errors never are.

    ``clock`` times the budget and the waits (default: the real clock).  A
    clock with ``sleep``/``asleep`` — ``handrail.testing.FakeClock`` — waits
    through them, so a test's retries move fake time and never really sleep.

    Immutable and thread-safe: share one policy between calls.  Raises
    ``ConfigurationError`` for a bound that makes no sense.
    """

    attempts: int = 3
    timeout: timedelta = timedelta(seconds=30)
    wait_initial: timedelta = timedelta(milliseconds=100)
    wait_max: timedelta = timedelta(seconds=10)
    is_transient: Callable[[BaseException], bool] = is_transient
    clock: Clock | None = None

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ConfigurationError(
                f"RetryPolicy: attempts must be an int, got {type(self.attempts).__name__}"
            )
        if self.attempts < 1:
            raise ConfigurationError(
                f"RetryPolicy: attempts={self.attempts}; it counts the first try, so use 1 or more"
            )
        for name in ("timeout", "wait_initial", "wait_max"):
            value = getattr(self, name)
            if not isinstance(value, timedelta):
                raise ConfigurationError(
                    f"RetryPolicy: {name} must be a datetime.timedelta, got {value!r}; "
                    f"write {name}=timedelta(seconds=...)"
                )
        if self.timeout <= timedelta(0):
            raise ConfigurationError(f"RetryPolicy: timeout={self.timeout} must be positive")
        if self.wait_initial < timedelta(0) or self.wait_max < self.wait_initial:
            raise ConfigurationError(
                f"RetryPolicy: need 0 <= wait_initial <= wait_max, got "
                f"wait_initial={self.wait_initial}, wait_max={self.wait_max}"
            )
        if not callable(self.is_transient):
            raise ConfigurationError("RetryPolicy: is_transient must be a function of the error")

    def call(
        self,
        fn: Callable[..., R],
        /,
        *args: Any,
        action: str | None = None,
        is_write: bool = False,
        idempotency_key: str | None = None,
        on_attempt: OnAttempt | None = None,
        telemetry: Telemetry | None = None,
        **kwargs: Any,
    ) -> R:
        """Call ``fn(*args, **kwargs)``, retrying transient failures; return its result.

        On failure raises the last error itself (never a wrapper), once it is
        not transient, the attempts are used up or the time is.  A write
        (``is_write=True``) is retried only with an ``idempotency_key``: the
        key itself, a non-empty str (a decorator's ``idempotency_key`` names
        an argument; a call's takes the key), which
        ``current_idempotency_key()`` returns inside ``fn``.  Without one, a
        transient failure raises ``WriteNotRetried`` (the error is its
        ``__cause__``) after the first attempt.  The key names one intended
        write: give the retries of one write the same key and no other write
        that key (see ``stable_key``); never derive it from the arguments.

        ``on_attempt`` is called with ``AttemptDetails`` before every
        attempt; the last ``attempt`` it saw is how many were made (for an
        audit record).  Each retry is counted and logged through
        ``telemetry`` (``default_telemetry()`` if None).  ``action`` names the
        call in both (default: ``fn``'s qualified name).  Pass ``fn``
        arguments that clash with these names through ``functools.partial``.

        Blocks the calling thread while it waits; ``await acall(...)`` in
        async code.  Raises ``TypeError`` for an async ``fn``.
        """
        run = _Run(self, fn, action, is_write, idempotency_key, on_attempt, telemetry)
        return _call(fn, args, kwargs, run)

    async def acall(
        self,
        fn: Callable[..., Awaitable[R]],
        /,
        *args: Any,
        action: str | None = None,
        is_write: bool = False,
        idempotency_key: str | None = None,
        on_attempt: OnAttempt | None = None,
        telemetry: Telemetry | None = None,
        **kwargs: Any,
    ) -> R:
        """Await ``fn(*args, **kwargs)``, retrying transient failures; as ``call``, for async code.

        Waits without blocking the event loop.  Raises ``TypeError`` when
        ``fn`` does not return an awaitable (use ``call`` for sync functions).
        """
        run = _Run(self, fn, action, is_write, idempotency_key, on_attempt, telemetry)
        return await _acall(fn, args, kwargs, run)


def retry(
    *,
    attempts: int = 3,
    timeout: timedelta = timedelta(seconds=30),
    wait_initial: timedelta = timedelta(milliseconds=100),
    wait_max: timedelta = timedelta(seconds=10),
    is_transient: Callable[[BaseException], bool] = is_transient,
    is_write: bool = False,
    idempotency_key: str | None = None,
    action: str | None = None,
    on_attempt: OnAttempt | None = None,
    telemetry: Telemetry | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry a function's transient failures (sync or async; its signature is kept).

    The arguments are ``RetryPolicy``'s and ``RetryPolicy.call``'s, with
    the one rule for keys: a decorator's ``idempotency_key`` names an
    argument; a call's takes the key.  Here it is the name of the parameter
    that carries the caller's key (e.g. ``idempotency_key="request_id"``),
    read once per call so every attempt sends the same key, which the
    function reads with ``current_idempotency_key()``.  When that argument
    is None the call has no key, and a write is not retried (see
    ``RetryPolicy.call``); any other value but a non-empty str raises
    ``TypeError`` before the first attempt.

    Raises ``ConfigurationError`` at decoration time for bad bounds, or when
    ``idempotency_key`` is not a named parameter of the function, or has a
    default other than None (every call omitting it would share one key).
    """
    policy = RetryPolicy(
        attempts=attempts,
        timeout=timeout,
        wait_initial=wait_initial,
        wait_max=wait_max,
        is_transient=is_transient,
    )
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not idempotency_key.isidentifier()
    ):
        raise ConfigurationError(
            "retry: idempotency_key names the argument that carries the caller's key, "
            f'e.g. idempotency_key="request_id"; got {idempotency_key!r}. A key computed '
            "from the arguments would merge two intended writes with the same arguments"
        )
    key_arg = idempotency_key

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = action if action is not None else _name_of(fn)
        read_key = _KeyArgument(fn, key_arg) if key_arg is not None else None
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_retried(*args: Any, **kwargs: Any) -> Any:
                key = read_key(name, args, kwargs) if read_key is not None else None
                run = _Run(policy, fn, name, is_write, key, on_attempt, telemetry)
                return await _acall(async_fn, args, kwargs, run)

            return cast(Callable[P, R], async_retried)

        @functools.wraps(fn)
        def retried(*args: P.args, **kwargs: P.kwargs) -> R:
            key = read_key(name, args, kwargs) if read_key is not None else None
            run = _Run(policy, fn, name, is_write, key, on_attempt, telemetry)
            return _call(fn, args, kwargs, run)

        return retried

    return decorate


class _KeyArgument:
    """The argument of ``fn`` that carries the caller's key: checked once, read per call."""

    __slots__ = ("index", "keyword", "name")

    def __init__(self, fn: Callable[..., object], name: str) -> None:
        where = f"retry(idempotency_key={name!r}) on {_name_of(fn)}"
        try:
            parameters = inspect.signature(fn).parameters
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: its parameters cannot be read") from exc
        parameter = parameters.get(name)
        kind = parameter.kind if parameter is not None else None
        if parameter is None or kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ConfigurationError(
                f"{where}: {name!r} is not a named parameter of the function; "
                "idempotency_key names the argument that carries the caller's key"
            )
        if parameter.default is not parameter.empty and parameter.default is not None:
            # A fixed default would give every call that omits the argument one key.
            raise ConfigurationError(
                f"{where}: its default {parameter.default!r} would be the key of every call "
                "that omits the argument, merging their writes; default to None"
            )
        positional = (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        self.name = name
        # Positional parameters precede *args in a signature, so this is its index in a call.
        self.index = list(parameters).index(name) if kind in positional else None
        self.keyword = kind is not parameter.POSITIONAL_ONLY

    def __call__(self, action: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The key of this call, or None; ``TypeError`` for anything but a non-empty str."""
        if self.keyword and self.name in kwargs:
            key = kwargs[self.name]
        elif self.index is not None and self.index < len(args):
            key = args[self.index]
        else:
            key = None  # omitted: its default is None (checked), or the call fails on its own
        if key is None or (type(key) is str and key):
            return key
        got = "an empty str" if isinstance(key, str) and not key else type(key).__name__
        raise TypeError(
            f"{action}: the idempotency key argument {self.name!r} must be a non-empty str "
            f"or None, got {got}"
        )


# -- the drivers: tenacity loops, fed the policy; writes without a key tried once --------------


def _call(fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any], run: _Run) -> R:
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"{run.action} is async: use `await policy.acall(...)` to retry it")
    run.call = (fn, args, kwargs)
    with using_idempotency_key(run.key):
        # Fast path: most calls succeed at once, and building tenacity's machinery
        # costs more than the rest of a guarded call.  A first failure is replayed
        # into tenacity as its attempt 1, so retries, waits, stops and telemetry
        # are exactly what they would have been.
        run.first_attempt()
        try:
            return _attempt(fn, args, kwargs, run)
        except Exception as exc:
            first: Exception = exc
        try:
            if not (run.is_retryable_write and run.policy.attempts > 1 and run.should_retry(first)):
                raise first
            retrying = tenacity.Retrying(sleep=run.sleep, **run.tenacity_arguments())
            run.replay = first
            return cast(R, retrying(_attempt, fn, args, kwargs, run))
        except Exception as exc:
            refusal = run.refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc


async def _acall(
    fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any], run: _Run
) -> R:
    run.call = (fn, args, kwargs)
    with using_idempotency_key(run.key):
        run.first_attempt()  # the fast path of _call, awaited
        try:
            return await _async_attempt(fn, args, kwargs, run)
        except Exception as exc:
            first: Exception = exc
        try:
            if not (run.is_retryable_write and run.policy.attempts > 1 and run.should_retry(first)):
                raise first
            retrying = tenacity.AsyncRetrying(sleep=run.asleep, **run.tenacity_arguments())
            run.replay = first
            return cast(R, await retrying(_async_attempt, fn, args, kwargs, run))
        except Exception as exc:
            refusal = run.refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc


def _attempt(fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any], run: _Run) -> R:
    replay = run.replay
    if replay is not None:  # tenacity's attempt 1: the failure the fast path already had
        run.replay = None
        raise replay
    result = fn(*args, **kwargs)
    if inspect.iscoroutine(result):
        result.close()
        raise TypeError(
            f"{run.action} returned a coroutine: use `await policy.acall(...)` to retry it"
        )
    return result


async def _async_attempt(
    fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any], run: _Run
) -> R:
    replay = run.replay
    if replay is not None:
        run.replay = None
        raise replay
    result = fn(*args, **kwargs)
    if not inspect.isawaitable(result):
        raise TypeError(
            f"{run.action} returned {type(result).__name__}, not an awaitable: "
            "use `policy.call(...)` to retry a sync function"
        )
    return await result


class _Run:
    """One retried call: what it is, and the error and wait that led to the next attempt."""

    __slots__ = (
        "action",
        "call",
        "error",
        "is_write",
        "key",
        "on_attempt",
        "policy",
        "replay",
        "started",
        "telemetry",
        "wait",
    )

    def __init__(
        self,
        policy: RetryPolicy,
        fn: Callable[..., object],
        action: str | None,
        is_write: bool,
        key: str | None,
        on_attempt: OnAttempt | None,
        telemetry: Telemetry | None,
    ) -> None:
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(
                f"idempotency_key must be the key itself, a non-empty str, got {key!r}; "
                "give each intended write its own (a request id, or "
                "handrail.resilience.stable_key({...}) of a business id)"
            )
        self.policy = policy
        self.action = action if action is not None else _name_of(fn)
        self.is_write = is_write
        self.key = key
        self.on_attempt = on_attempt
        self.telemetry = telemetry
        self.error: BaseException | None = None
        self.wait = timedelta(0)
        self.replay: Exception | None = None  # the first attempt's error, for tenacity to see
        self.started = 0.0
        self.call: tuple[Callable[..., object], tuple[Any, ...], dict[str, Any]] | None = None

    def monotonic(self) -> float:
        clock = self.policy.clock
        return time.monotonic() if clock is None else clock.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait between attempts: through the policy's clock when it can sleep."""
        pause = getattr(self.policy.clock, "sleep", None)
        if pause is None:
            sleep(seconds)
        elif seconds > 0:  # fake time costs nothing: no-waits mode need not skip it
            pause(seconds)

    async def asleep(self, seconds: float) -> None:
        pause = getattr(self.policy.clock, "asleep", None)
        if pause is None:
            await async_sleep(seconds)
        elif seconds > 0:
            await pause(seconds)

    @property
    def is_retryable_write(self) -> bool:
        return not self.is_write or self.key is not None

    def should_retry(self, error: BaseException) -> bool:
        return not is_never_transient(error) and self.policy.is_transient(error)

    def tenacity_arguments(self) -> dict[str, Any]:
        attempts = self.policy.attempts if self.is_retryable_write else 1
        schedule = _Schedule(self.policy, attempts, self.started, self.monotonic)
        return {
            "stop": schedule.stop,
            "wait": schedule.wait,
            "retry": tenacity.retry_if_exception(self.should_retry),
            "before": self.before_attempt,
            "before_sleep": self.before_sleep,
            "reraise": True,
        }

    def first_attempt(self) -> None:
        """Start the clock and report attempt 1 (made outside tenacity)."""
        self.started = self.monotonic()
        if self.on_attempt is not None:
            self.on_attempt(AttemptDetails(self.action, 1, None, timedelta(0), timedelta(0)))

    def before_attempt(self, state: tenacity.RetryCallState) -> None:
        if state.attempt_number == 1:
            return  # reported by first_attempt; this is its replay
        if self.on_attempt is not None:
            elapsed = timedelta(seconds=self.monotonic() - self.started)
            details = AttemptDetails(
                self.action, state.attempt_number, self.error, self.wait, elapsed
            )
            self.on_attempt(details)

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        assert state.outcome is not None
        error = state.outcome.exception()
        assert error is not None
        self.error = error
        assert state.next_action is not None
        self.wait = timedelta(seconds=state.next_action.sleep)
        telemetry = self.telemetry if self.telemetry is not None else default_telemetry()
        telemetry.retry_attempted(
            action=self.action,
            attempt=state.attempt_number + 1,
            error=error,
            wait=self.wait,
            secrets=self.secrets(telemetry.redactor),
        )

    def secrets(self, redactor: Redactor) -> set[str]:
        """The raw secrets in the call's arguments, to scrub from the logged error.

        Found as the audit record finds them: ``SecretStr`` values anywhere,
        values under sensitive names (the function's parameter names, when
        the arguments bind to its signature).  ``functools.partial`` layers
        (the guard passes the tool's call as one) are looked into.
        """
        if self.call is None:
            return set()
        fn, args, kwargs = self.call
        layers: list[Any] = []
        for _ in range(_MAX_PARTIALS):
            layers.append(_named_arguments(fn, args, kwargs))
            if not isinstance(fn, functools.partial):
                break
            inner: functools.partial[object] = fn
            fn, args, kwargs = inner.func, inner.args, inner.keywords
        return redactor.secrets_in(layers)

    def refusal(self, error: Exception) -> WriteNotRetried | None:
        """The error to raise instead of ``error``: a write not retried for want of a key."""
        if not self.is_retryable_write and self.should_retry(error):
            return WriteNotRetried(self.action, error)
        return None


class _Schedule:
    """When to give up, and how long to wait before the next attempt.

    The wait is exponential backoff with full jitter, but never sooner than
    the server's Retry-After.  tenacity asks ``stop`` and ``wait`` separately
    (in either order, depending on its version); both read the one wait
    planned for the attempt, so the time budget is checked against the wait
    that will really be made.
    """

    __slots__ = ("_attempts", "_budget", "_jitter", "_monotonic", "_planned", "_started")

    def __init__(
        self, policy: RetryPolicy, attempts: int, started: float, monotonic: Callable[[], float]
    ) -> None:
        self._monotonic = monotonic
        self._attempts = attempts
        self._started = started  # the call's start: tenacity's starts after attempt 1
        self._budget = policy.timeout.total_seconds()
        self._jitter = wait_random_exponential(
            multiplier=policy.wait_initial.total_seconds(), max=policy.wait_max.total_seconds()
        )
        self._planned = (0, 0.0)  # (attempt number, the wait planned after it)

    def stop(self, state: tenacity.RetryCallState) -> bool:
        """Stop when the attempts are used up, or when the next wait would end past the budget."""
        if state.attempt_number >= self._attempts:
            return True
        elapsed = self._monotonic() - self._started
        return elapsed + self.wait(state) >= self._budget

    def wait(self, state: tenacity.RetryCallState) -> float:
        """Seconds to wait after the attempt that just failed."""
        attempt, planned = self._planned
        if attempt != state.attempt_number:
            planned = self._jitter(state)
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            asked = retry_after(error) if error is not None else None
            if asked is not None:
                planned = max(planned, asked.total_seconds())
            self._planned = (state.attempt_number, planned)
        return planned


_MAX_PARTIALS = 8  # partials nest a few deep at most (guard, breaker, tool)


def _named_arguments(
    fn: Callable[..., object], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The arguments by parameter name, so sensitive names count; as they are if unbindable."""
    try:
        return dict(inspect.signature(fn).bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return {"args": list(args), "kwargs": kwargs}


def _name_of(fn: Callable[..., object]) -> str:
    name = getattr(fn, "__qualname__", None)
    if not isinstance(name, str):
        return type(fn).__name__
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if isinstance(module, str) else name
