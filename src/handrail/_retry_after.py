"""``Retry-After``: how long a server asked us to wait, read from the header's value.

Shared by retries (``handrail.resilience`` waits at least this long before
the next attempt) and connectors' rate limits (a 429 slows the host's bucket
for every caller).  The value is either seconds (``120``) or an HTTP-date
(``Wed, 21 Oct 2015 07:28:00 GMT``); anything else is ignored, never guessed.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

__all__ = ["LONGEST_RETRY_AFTER", "parse_retry_after"]

LONGEST_RETRY_AFTER = timedelta(days=365)
"""A longer wait is nonsense: clamped to this, so ``timedelta`` cannot overflow."""


def parse_retry_after(value: str, *, now: datetime | None = None) -> timedelta | None:
    """A ``Retry-After`` header value (seconds or HTTP-date) as a wait, or None if malformed."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _wait_until(value, now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return timedelta(seconds=min(seconds, LONGEST_RETRY_AFTER.total_seconds()))


def _wait_until(value: str, now: datetime | None) -> timedelta | None:
    # Imported here: the email package costs milliseconds at import, and an
    # HTTP-date Retry-After is rare (most servers send seconds).
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322 for "UTC, source unknown"
        when = when.replace(tzinfo=UTC)
    wait = when - (now if now is not None else datetime.now(UTC))
    return max(timedelta(0), min(wait, LONGEST_RETRY_AFTER))
