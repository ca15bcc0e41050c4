"""Every public call shape of handrail.resilience, checked by mypy --strict (never executed)."""

from datetime import datetime, timedelta
from typing import assert_type

from handrail import CircuitOpen
from handrail.resilience import (
    AttemptDetails,
    CircuitBreaker,
    CircuitBreakers,
    CircuitState,
    RetryPolicy,
    current_idempotency_key,
    is_transient,
    retry,
    stable_key,
    using_idempotency_key,
)
from handrail.testing import FakeClock
from handrail.testing._resilience import is_no_waits, no_waits, set_no_waits

policy = RetryPolicy(attempts=5, timeout=timedelta(seconds=10), is_transient=is_transient)
key = stable_key({"action": "erp.order.create", "order": "o-1"})
assert_type(key, str)
assert_type(current_idempotency_key(), str | None)
with using_idempotency_key(key):
    pass
assert_type(is_transient(TimeoutError()), bool)


def read(contact_id: str, fields: tuple[str, ...] = ()) -> dict[str, str]:
    return {"id": contact_id}


async def aread(contact_id: str) -> int:
    return 1


def record(details: AttemptDetails) -> None:
    assert_type(details.attempt, int)
    assert_type(details.error, BaseException | None)
    assert_type(details.wait, timedelta)


assert_type(policy.call(read, "c-1", action="crm.contact.read", on_attempt=record), dict[str, str])
assert_type(policy.call(read, "c-1", is_write=True, idempotency_key=key), dict[str, str])


@retry(attempts=4, action="crm.contact.read")
def retried(contact_id: str) -> str:
    return contact_id


# A decorator's idempotency_key names an argument; a call's takes the key.  A key function
# (the old API) is a type error: were it accepted, this ignore would be unused, and fail.
retry(is_write=True, idempotency_key=lambda order_id: order_id)  # type: ignore[arg-type]
stable_key(policy)  # type: ignore[arg-type]


@retry(is_write=True, idempotency_key="request_id")
async def aretried(order_id: str, request_id: str | None = None) -> int:
    return 1


breaker = CircuitBreaker(
    "crm", failure_threshold=3, cooldown=timedelta(seconds=5), clock=FakeClock()
)
breakers = CircuitBreakers(failure_threshold=3)
assert_type(breakers.for_key("crm.example.com"), CircuitBreaker)
assert_type(breaker.state, CircuitState)
assert_type(breaker.call(read, "c-1"), dict[str, str])
assert_type(set_no_waits(True), bool)
assert_type(is_no_waits(), bool)


async def use() -> None:
    assert_type(retried("c-1"), str)
    assert_type(await aretried("o-1"), int)
    assert_type(await aretried("o-1", request_id="rq-1"), int)
    assert_type(await policy.acall(aread, "c-1"), int)
    assert_type(await breaker.acall(aread, "c-1"), int)
    with no_waits():
        breaker.before_call()
        breaker.record_success()
        breaker.record_failure(TimeoutError())
    try:
        breaker.before_call()
    except CircuitOpen as exc:
        assert_type(exc.retry_at, datetime | None)
