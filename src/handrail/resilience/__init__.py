"""Resilience: retry transient failures, never writes without an idempotency key; circuit breakers.

See ``docs/retries.md``.  For fast test suites, ``handrail.testing.no_waits()``
removes the waits between attempts.
"""

from .._errors import CircuitOpen, WriteNotRetried
from ._breaker import CircuitBreaker, CircuitBreakers, CircuitState
from ._classify import is_transient
from ._idempotency import current_idempotency_key, stable_key, using_idempotency_key
from ._retry import AttemptDetails, OnAttempt, RetryPolicy, retry

__all__ = [
    "AttemptDetails",
    "CircuitBreaker",
    "CircuitBreakers",
    "CircuitOpen",
    "CircuitState",
    "OnAttempt",
    "RetryPolicy",
    "WriteNotRetried",
    "current_idempotency_key",
    "is_transient",
    "retry",
    "stable_key",
    "using_idempotency_key",
]
