"""The client-side rate limiter: token buckets per host, honouring a server's Retry-After."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handrail._errors import ConfigurationError
from handrail.connectors._ratelimit import RateLimits, TokenBucket, default_rate_limits
from handrail.testing import FakeClock, no_waits

# Waits are timedeltas (whole microseconds): allow for that rounding, never for a whole token.
EPSILON = 1e-5

steps = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.integers(min_value=1, max_value=5)),
        st.tuples(st.just("advance"), st.floats(min_value=0, max_value=5, allow_nan=False)),
        st.tuples(st.just("penalize"), st.floats(min_value=0, max_value=5, allow_nan=False)),
    ),
    max_size=60,
)


def _grants(bucket: TokenBucket, clock: FakeClock, plan: list[tuple[str, float]]) -> list[float]:
    """Run the plan; return the monotonic time at which each acquire's token was granted."""
    grants: list[float] = []
    for kind, amount in plan:
        if kind == "acquire":
            for _ in range(int(amount)):
                grants.append(clock.monotonic() + bucket.reserve().total_seconds())
        elif kind == "advance":
            clock.advance(dt.timedelta(seconds=amount))
        else:
            bucket.penalize(amount)
    return grants


@given(
    rate=st.floats(min_value=0.05, max_value=50, allow_nan=False),
    burst=st.integers(min_value=1, max_value=10),
    plan=steps,
)
def test_no_window_holds_more_than_burst_plus_rate_times_its_length(
    rate: float, burst: int, plan: list[tuple[str, float]]
) -> None:
    """Over any sequence of acquires, a window of length T holds at most burst + rate*T grants."""
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock=clock)
    grants = _grants(bucket, clock, plan)
    # Callers are served in the order they asked.
    assert all(later >= earlier - EPSILON for earlier, later in itertools.pairwise(grants))
    for i in range(len(grants)):
        for j in range(i, len(grants)):
            window = grants[j] - grants[i]
            assert j - i + 1 <= burst + rate * (window + EPSILON)


@given(
    rate=st.floats(min_value=0.05, max_value=50, allow_nan=False),
    burst=st.integers(min_value=1, max_value=10),
    before=steps,
    penalty=st.floats(min_value=0.001, max_value=100, allow_nan=False),
    after=steps,
)
def test_a_penalty_blocks_every_caller_until_it_ends(
    rate: float,
    burst: int,
    before: list[tuple[str, float]],
    penalty: float,
    after: list[tuple[str, float]],
) -> None:
    """After penalize(until), no token is granted before until, whatever else happens."""
    clock = FakeClock()
    bucket = TokenBucket(rate, burst, clock=clock)
    _grants(bucket, clock, before)
    until = clock.monotonic() + penalty
    bucket.penalize(penalty)
    for grant in _grants(bucket, clock, after):
        assert grant >= until - EPSILON


def test_a_burst_is_granted_at_once_then_the_rate_sets_the_pace() -> None:
    """A full bucket of 3 grants 3 at once; the 4th waits one interval (1 / rate)."""
    clock = FakeClock()
    bucket = TokenBucket(2.0, 3, clock=clock)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == [
        dt.timedelta(0),
        dt.timedelta(0),
        dt.timedelta(0),
        dt.timedelta(seconds=0.5),
        dt.timedelta(seconds=1),
    ]
    clock.advance(dt.timedelta(seconds=10))  # idle: the bucket refills, up to burst only
    assert [bucket.reserve() for _ in range(4)][-1] == dt.timedelta(seconds=0.5)


def test_penalize_takes_a_date_a_timedelta_or_seconds_and_never_shortens() -> None:
    """Retry-After as seconds or as a date both become a wait; a shorter one changes nothing."""
    clock = FakeClock()
    bucket = TokenBucket(math.inf, 1, clock=clock)
    bucket.penalize(clock.now() + dt.timedelta(seconds=30))
    assert bucket.blocked_for == dt.timedelta(seconds=30)
    bucket.penalize(dt.timedelta(seconds=5))
    bucket.penalize(1.5)
    bucket.penalize(clock.now() - dt.timedelta(hours=1))  # already over
    assert bucket.reserve() == dt.timedelta(seconds=30)
    clock.advance(dt.timedelta(seconds=30))
    assert bucket.reserve() == dt.timedelta(0)
    assert bucket.blocked_for == dt.timedelta(0)
    with pytest.raises(ValueError, match="naive"):
        bucket.penalize(dt.datetime(2030, 1, 1))
    with pytest.raises(TypeError):
        bucket.penalize("30")  # type: ignore[arg-type]


def test_an_unlimited_bucket_only_honours_penalties() -> None:
    """rate=inf grants every caller at once until a server asks it to slow down."""
    clock = FakeClock()
    bucket = TokenBucket(math.inf, 1, clock=clock)
    assert all(bucket.reserve() == dt.timedelta(0) for _ in range(1000))
    bucket.penalize(2)
    assert bucket.reserve() == dt.timedelta(seconds=2)


def test_acquire_waits_for_real_but_not_under_no_waits() -> None:
    """acquire() sleeps the wait it reserved; under no_waits() it reports it without sleeping."""
    bucket = TokenBucket(1000.0, 1)
    bucket.acquire()
    started = time.perf_counter()
    assert bucket.acquire() > dt.timedelta(0)  # about a millisecond, slept
    assert time.perf_counter() - started >= 0.0005
    slow = TokenBucket(0.001, 1, clock=FakeClock())
    slow.acquire()
    with no_waits():
        started = time.perf_counter()
        assert slow.acquire() == dt.timedelta(seconds=1000)
        assert time.perf_counter() - started < 1


def test_aacquire_waits_without_blocking_the_loop() -> None:
    """aacquire() reserves in turn like acquire(); under no_waits() it does not sleep."""
    clock = FakeClock()
    bucket = TokenBucket(1.0, 2, clock=clock)

    async def main() -> list[dt.timedelta]:
        return list(await asyncio.gather(*(bucket.aacquire() for _ in range(4))))

    with no_waits():
        waits = asyncio.run(main())
    seconds = sorted(wait.total_seconds() for wait in waits)
    assert seconds == [0, 0, 1, 2]


def test_threads_share_a_bucket_without_losing_or_doubling_a_slot() -> None:
    """Eight threads reserving 100 slots each get 800 distinct slots, one interval apart."""
    clock = FakeClock()
    bucket = TokenBucket(10.0, 1, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [bucket.reserve().total_seconds() for _ in range(100)]
        with lock:
            waits.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(w * 10) for w in waits) == list(range(800))


def test_rate_limits_give_one_bucket_per_host_shared_by_all_holders() -> None:
    """for_host returns the same bucket for the same host (any case), others get their own."""
    limits = RateLimits(5.0, 2, hosts={"slow.example.com": (0.5, 1)})
    bucket = limits.for_host("api.example.com")
    assert limits.for_host("API.example.com") is bucket
    assert (bucket.rate, bucket.burst) == (5.0, 2)
    assert limits.for_host("api.example.com:8443") is not bucket
    slow = limits.for_host("slow.example.com")
    assert (slow.rate, slow.burst) == (0.5, 1)
    limited = limits.limit("api.example.com", rate=1.0, burst=1)
    assert limits.for_host("api.example.com") is limited
    unlimited = RateLimits().for_host("x")
    assert unlimited.rate == math.inf


def test_the_process_wide_default_is_one_object() -> None:
    """default_rate_limits() is built once and then always the same object."""
    assert default_rate_limits() is default_rate_limits()


@pytest.mark.parametrize(
    ("rate", "burst"), [(0, 1), (-1.0, 1), (float("nan"), 1), (True, 1), (1.0, 0), (1.0, 1.5)]
)
def test_nonsense_limits_are_configuration_errors(rate: float, burst: int) -> None:
    """A rate that is not positive or a burst that is not a positive int fails at construction."""
    with pytest.raises(ConfigurationError):
        TokenBucket(rate, burst)
    with pytest.raises(ConfigurationError):
        RateLimits(rate, burst)
