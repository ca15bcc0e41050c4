"""How retries wait between attempts, and the process-wide switch that makes them not wait.

The switch is public as ``handrail.testing.set_no_waits`` / ``is_no_waits`` /
``no_waits``; it lives in the foundation so that retries (``handrail.resilience``)
and rate limits (``handrail.connectors``) read the same switch without
importing ``handrail.testing`` (and with it, Hypothesis).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import cast

import tenacity

__all__ = ["async_sleep", "is_no_waits", "no_waits", "set_no_waits", "sleep"]

_no_waits = False

# tenacity's own async sleep: asyncio's, or trio's when trio is running.
_tenacity_async_sleep = cast(Callable[[float], Awaitable[None]], tenacity.AsyncRetrying().sleep)


def set_no_waits(on: bool) -> bool:
    """Turn no-waits mode on or off for the whole process; returns the previous setting.

    While it is on, retries skip their waits (backoff and ``Retry-After``
    alike) but keep every other bound: the attempts, the time budget, which
    errors are retried.  The waits they would have made are still reported in
    ``AttemptDetails.wait`` and telemetry.  For test suites only.
    """
    global _no_waits  # the one documented process-wide test switch
    previous, _no_waits = _no_waits, bool(on)
    return previous


def is_no_waits() -> bool:
    """True while no-waits mode is on (see ``set_no_waits``)."""
    return _no_waits


@contextmanager
def no_waits() -> Iterator[None]:
    """Skip retry waits inside the block, then restore the previous setting.

    Also works as a decorator on a (sync) test function: ``@no_waits()``.
    """
    previous = set_no_waits(True)
    try:
        yield
    finally:
        set_no_waits(previous)


def sleep(seconds: float) -> None:
    """Wait between attempts, unless no-waits mode is on."""
    if seconds > 0 and not _no_waits:
        time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    """Wait between attempts without blocking the event loop, unless no-waits mode is on."""
    if seconds > 0 and not _no_waits:
        await _tenacity_async_sleep(seconds)
