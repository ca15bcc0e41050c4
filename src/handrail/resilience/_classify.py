"""Which failures are worth trying again, and how long the server asked us to wait.

A failure is *transient* when the same call, made again a little later, may
succeed: the network dropped, the server timed out, was overloaded or asked
us to slow down.  Anything else — a 4xx the caller caused, a refusal by
policy, a validation error — fails the same way every time, so retrying it
only adds load and delay.

httpx is consulted only if the application has already imported it, so
``import handrail.resilience`` never loads an HTTP client.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from .._errors import CircuitOpen, Refusal, WriteNotRetried
from .._retry_after import parse_retry_after

__all__ = [
    "TRANSIENT_STATUS_CODES",
    "is_never_transient",
    "is_transient",
    "retry_after",
]

TRANSIENT_STATUS_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Request Timeout, Too Early, Too Many Requests, and the server errors that mean "not now"."""

# Refusals and broken input: the same call fails the same way every time.
_NEVER_TRANSIENT: tuple[type[BaseException], ...] = (
    Refusal,  # PermissionDenied, EscalationRequired
    CircuitOpen,
    WriteNotRetried,
    ValidationError,
)


def is_never_transient(error: BaseException) -> bool:
    """True for failures no classifier may retry: refusals, validation errors, cancellation.

    ``KeyboardInterrupt``, ``SystemExit`` and task cancellation are not
    ``Exception``s and are never retried either.
    """
    return not isinstance(error, Exception) or isinstance(error, _NEVER_TRANSIENT)


def is_transient(error: BaseException) -> bool:
    """True when the same call may succeed if made again a little later.

    Transient: httpx transport errors and timeouts (except
    ``UnsupportedProtocol`` and ``LocalProtocolError``, which are bugs in the
    request, not the network), ``httpx.HTTPStatusError`` with status 408, 425,
    429, 500, 502, 503 or 504, and the built-in ``TimeoutError`` and
    ``ConnectionError``.  Never transient: ``PermissionDenied``,
    ``EscalationRequired``, ``CircuitOpen``, ``WriteNotRetried``, pydantic's
    ``ValidationError``, and anything else.

    This is the default classifier; pass your own as ``is_transient=`` to widen
    or narrow it (``lambda e: isinstance(e, MyBusy) or is_transient(e)``).
    Whatever it says, the never-transient errors above are not retried.
    """
    if is_never_transient(error):
        return False
    if isinstance(error, TimeoutError | ConnectionError):
        return True
    httpx = _httpx()
    if httpx is None:
        return False
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in TRANSIENT_STATUS_CODES
    if isinstance(error, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return False
    return isinstance(error, httpx.TransportError)


def retry_after(error: BaseException, *, now: datetime | None = None) -> timedelta | None:
    """How long the server asked us to wait before trying again, or None if it did not say.

    Reads the ``Retry-After`` header of ``error.response`` when that is an
    ``httpx.Response`` (``httpx.HTTPStatusError`` and the errors of SDKs built
    on httpx carry one).  The header is either seconds (``120``) or an
    HTTP-date, counted from ``now`` (the current UTC time by default); a date
    in the past means no wait.  An unparseable or negative value is ignored.
    """
    httpx = _httpx()
    if httpx is None:
        return None
    response: Any = getattr(error, "response", None)
    if not isinstance(response, httpx.Response):
        return None
    value = response.headers.get("retry-after")
    if value is None:
        return None
    return parse_retry_after(value, now=now)


def _httpx() -> Any:
    # An error can only be an httpx error if httpx has been imported.
    return sys.modules.get("httpx")
