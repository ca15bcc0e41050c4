"""Shadow mode: reads go through, writes are recorded as intents instead of executed.

This is how an operator runs a new agent against live systems for a week
before letting it write.  It is switched on per ``Guard`` or connector
(``shadow=True``), or for the whole process with ``HANDRAIL_SHADOW=1``
(read at call time, never at import).

A write in shadow mode never reaches the system.  Code that knows how to
stop at the last moment — an ``HTTPConnector`` stops at its transport — runs
inside ``shadowing()`` and raises ``ShadowIntercepted`` with the exact request
it would have sent; any other guarded write is simply not called.  Either way
the call returns a ``ShadowResult`` and the audit trail records the intent
with outcome ``shadowed``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "SHADOW_ENV",
    "ShadowIntercepted",
    "ShadowRequest",
    "ShadowResult",
    "in_shadow",
    "shadow_from_environment",
    "shadowing",
]

SHADOW_ENV = "HANDRAIL_SHADOW"
"""Set to ``1`` (or ``true``, ``yes``, ``on``) to put every guard without an explicit
``shadow=`` into shadow mode."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_shadowing: ContextVar[bool] = ContextVar("handrail_shadowing", default=False)


class ShadowRequest(BaseModel):
    """The request a shadowed write would have sent: method, URL, headers and body, redacted."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    method: str
    url: str
    headers: dict[str, str] = {}
    body: Any = None


class ShadowResult(BaseModel):
    """What a write returns in shadow mode instead of its result: it did not happen.

    ``args`` are the call's (redacted) arguments, ``request`` the exact
    request that would have been sent when the write stopped at its
    transport (``None`` when the write was simply not called),
    ``idempotency_key`` the key it would have carried and ``record_id`` the
    audit record of the intent.  ``escalation`` is set when the policy would
    have escalated the write: the route, level, deciders and SLA that would
    have been asked (``EscalationPreview.to_dict()``) — in shadow mode no case
    is opened and no human is notified.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    action: str
    args: dict[str, Any] = {}
    request: ShadowRequest | None = None
    idempotency_key: str | None = None
    record_id: str | None = None
    escalation: dict[str, Any] | None = None

    @property
    def executed(self) -> bool:
        """Always False: a shadowed write did not run."""
        return False


class ShadowIntercepted(Exception):
    """Raised by a transport in shadow mode at the moment a write would have been sent."""

    def __init__(self, request: ShadowRequest) -> None:
        self.request = request
        super().__init__(f"shadow mode: {request.method} {request.url} was not sent")


@contextmanager
def shadowing() -> Iterator[None]:
    """Inside this block, shadow-aware code must stop writes and raise ``ShadowIntercepted``."""
    token = _shadowing.set(True)
    try:
        yield
    finally:
        _shadowing.reset(token)


def in_shadow() -> bool:
    """True inside ``shadowing()``: a transport checks this before sending a write."""
    return _shadowing.get()


def shadow_from_environment() -> bool:
    """True when ``HANDRAIL_SHADOW`` says shadow mode (read now, every time)."""
    return os.environ.get(SHADOW_ENV, "").strip().lower() in _TRUE
