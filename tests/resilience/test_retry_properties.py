"""The retry contract under Hypothesis: what is never retried, how many attempts, how long."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from handrail import CircuitOpen, WriteNotRetried
from handrail.resilience import AttemptDetails, RetryPolicy, is_transient
from handrail.resilience._classify import TRANSIENT_STATUS_CODES

REQUEST = httpx.Request("POST", "https://erp.example.com/orders")


def status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    response = httpx.Response(status, headers=headers, request=REQUEST)
    return httpx.HTTPStatusError(str(status), request=REQUEST, response=response)


def validation_error() -> ValidationError:
    class Order(BaseModel):
        amount: int

    try:
        Order.model_validate({})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


PERMANENT_STATUSES = st.integers(400, 599).filter(lambda s: s not in TRANSIENT_STATUS_CODES)
PERMANENT = st.one_of(
    PERMANENT_STATUSES.map(status_error),
    st.builds(ValueError, st.text(max_size=10)),
    st.builds(KeyError, st.text(max_size=10)),
    st.builds(lambda: httpx.UnsupportedProtocol("ftp://", request=REQUEST)),
)
NEVER_RETRIED = st.one_of(
    st.builds(CircuitOpen, st.just("crm")),
    st.builds(lambda: WriteNotRetried("erp.order.create", TimeoutError())),
    st.builds(validation_error),
    st.builds(KeyboardInterrupt),
)
TRANSIENT = st.one_of(
    st.sampled_from(sorted(TRANSIENT_STATUS_CODES)).map(status_error),
    st.builds(lambda: httpx.ConnectError("refused", request=REQUEST)),
    st.builds(lambda: httpx.ReadTimeout("slow", request=REQUEST)),
)
OK = st.just("ok")


def run(
    policy: RetryPolicy, outcomes: list[Any], *, use_async: bool = False, **control: Any
) -> tuple[Any, list[AttemptDetails], int]:
    """Call through ``policy`` a function that returns or raises ``outcomes`` in turn.

    Returns (result or raised error, the attempts reported, how many calls were made).
    """
    queue = list(outcomes)
    calls = [0]
    attempts: list[AttemptDetails] = []

    def work() -> Any:
        calls[0] += 1
        outcome = queue.pop(0) if queue else status_error(503)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def awork() -> Any:
        return work()

    try:
        if use_async:
            result = asyncio.run(policy.acall(awork, on_attempt=attempts.append, **control))
        else:
            result = policy.call(work, on_attempt=attempts.append, **control)
    except BaseException as exc:
        result = exc
    return result, attempts, calls[0]


@given(error=PERMANENT, attempts=st.integers(1, 8), use_async=st.booleans())
def test_permanent_errors_are_never_retried(
    error: BaseException, attempts: int, use_async: bool
) -> None:
    """A permanent error is raised, itself, after exactly one attempt."""
    raised, reported, calls = run(RetryPolicy(attempts=attempts), [error], use_async=use_async)
    assert raised is error
    assert calls == 1
    assert [d.attempt for d in reported] == [1]


@given(
    error=NEVER_RETRIED,
    classifier=st.functions(like=lambda error: True, returns=st.booleans(), pure=True),
    attempts=st.integers(1, 8),
)
def test_no_classifier_retries_refusals(
    error: BaseException, classifier: Callable[[BaseException], bool], attempts: int
) -> None:
    """Whatever the classifier says, refusals, validation errors and interrupts raise at once."""
    policy = RetryPolicy(attempts=attempts, is_transient=classifier)
    raised, _, calls = run(policy, [error])
    assert raised is error
    assert calls == 1


@given(
    outcomes=st.lists(st.one_of(TRANSIENT, PERMANENT, OK), min_size=1, max_size=10),
    attempts=st.integers(1, 6),
    is_write=st.booleans(),
    keyed=st.booleans(),
    use_async=st.booleans(),
)
def test_attempts_never_exceed_the_bound(
    outcomes: list[Any], attempts: int, is_write: bool, keyed: bool, use_async: bool
) -> None:
    """For any outcomes: at most the bound, stopping at the first success or permanent error."""
    policy = RetryPolicy(attempts=attempts, timeout=timedelta(minutes=5))
    key = "order-o-1" if keyed else None
    padded = [*outcomes, *[status_error(503) for _ in range(attempts)]]
    result, reported, calls = run(
        policy, padded, use_async=use_async, is_write=is_write, idempotency_key=key
    )
    bound = attempts if (not is_write or keyed) else 1
    ends = (i + 1 for i, o in enumerate(padded) if o == "ok" or not is_transient(o))
    assert calls == min(bound, next(ends, bound)) <= attempts
    assert [d.attempt for d in reported] == list(range(1, calls + 1))
    last = padded[calls - 1]
    if last == "ok":
        assert result == "ok"
    elif not is_transient(last):
        assert result is last
    elif is_write and not keyed:
        assert isinstance(result, WriteNotRetried)
        assert result.__cause__ is last
    else:
        assert result is last, "exhausted retries raise the last error itself"


@given(retry_after=st.floats(0, 120), timeout=st.integers(1, 60), use_async=st.booleans())
def test_retry_after_is_honoured_within_the_budget(
    retry_after: float, timeout: int, use_async: bool
) -> None:
    """The next attempt waits at least Retry-After if that fits the budget; else none is made."""
    assume(abs(retry_after - timeout) > 0.5)  # clear of the boundary, whatever time has passed
    busy = status_error(429, {"Retry-After": repr(retry_after)})
    policy = RetryPolicy(attempts=2, timeout=timedelta(seconds=timeout))
    result, reported, calls = run(policy, [busy, "ok"], use_async=use_async)
    if retry_after < timeout:
        assert result == "ok"
        assert reported[1].wait >= timedelta(seconds=retry_after)
        assert reported[1].wait < timedelta(seconds=timeout)
    else:
        assert result is busy
        assert calls == 1


@given(
    outcomes=st.lists(TRANSIENT, min_size=1, max_size=8),
    initial=st.integers(0, 1000),
    maximum=st.integers(0, 10_000),
)
def test_backoff_stays_within_its_window(
    outcomes: list[BaseException], initial: int, maximum: int
) -> None:
    """Without Retry-After, retry n waits between 0 and min(wait_max, wait_initial * 2**(n-1))."""
    assume(initial <= maximum)
    policy = RetryPolicy(
        attempts=len(outcomes) + 1,
        timeout=timedelta(hours=1),
        wait_initial=timedelta(milliseconds=initial),
        wait_max=timedelta(milliseconds=maximum),
    )
    _, reported, _ = run(policy, [*outcomes, "ok"])
    for details in reported[1:]:
        window = min(maximum, initial * 2 ** (details.attempt - 2))
        assert timedelta(0) <= details.wait <= timedelta(milliseconds=window)
