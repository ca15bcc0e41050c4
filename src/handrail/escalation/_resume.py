"""``resuming``: retry an escalated call under its escalation, to run it once a human approved."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_resume", "resuming"]

_resuming: ContextVar[str | None] = ContextVar("handrail_resuming", default=None)


@contextmanager
def resuming(escalation_id: str) -> Iterator[str]:
    """Within this block, a guarded call that escalates resumes ``escalation_id``.

    Instead of opening a new case, the ``Guard`` looks the escalation up: if
    it is still pending it raises ``EscalationRequired`` again (same id); if a
    human approved it, the call runs — once, across every worker, with the
    escalation id as its idempotency key; if it was rejected, expired
    (denied) or cancelled, the call is refused.  The call must be the same
    request that escalated (its keyed fingerprint: action, principal,
    resource, arguments and context), and the policy must still escalate it
    by the same rule to the same route, or it is refused.  Works in threads
    and async tasks (a ``ContextVar``).
    """
    if not isinstance(escalation_id, str) or not escalation_id:
        raise TypeError(f"resuming: expected an escalation id, got {escalation_id!r}")
    token = _resuming.set(escalation_id)
    try:
        yield escalation_id
    finally:
        _resuming.reset(token)


def current_resume() -> str | None:
    """The escalation id set by the innermost ``resuming`` block, if any."""
    return _resuming.get()
