"""Resilience: retry transient failures, never writes without an idempotency key; circuit breakers.

See ``docs/retries.md``.  The errors it raises, ``CircuitOpen`` and
``WriteNotRetried``, are exported by ``handrail``.  For fast test suites,
``handrail.testing.no_waits()`` removes the waits between attempts.
"""

from ._breaker import CircuitBreaker, CircuitBreakers, CircuitState
from ._classify import is_transient
from ._idempotency import current_idempotency_key, stable_key, using_idempotency_key
from ._retry import AttemptDetails, RetryPolicy, retry

__all__ = [
    "AttemptDetails",
    "CircuitBreaker",
    "CircuitBreakers",
    "CircuitState",
    "RetryPolicy",
    "current_idempotency_key",
    "is_transient",
    "retry",
    "stable_key",
    "using_idempotency_key",
]
