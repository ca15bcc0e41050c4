"""Who is acting and under which policy, carried in context variables.

Context variables follow asyncio tasks (each task sees the values set when
it was created) and are per-thread (a new thread starts empty: pass the
principal explicitly, or run it with ``contextvars.copy_context().run``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ..identity import Principal
from ..policy import Policy

__all__ = [
    "acting_as",
    "current_context",
    "current_policy",
    "current_principal",
    "set_default_policy",
    "using_policy",
]

_principal: ContextVar[Principal | None] = ContextVar("handrail_principal", default=None)
_context: ContextVar[Mapping[str, Any]] = ContextVar("handrail_context", default={})  # noqa: B039 - never mutated
_policy: ContextVar[Policy | None] = ContextVar("handrail_policy", default=None)

# The one process-wide default: the policy used when neither the decorator nor
# `using_policy` names one.  None until set_default_policy is called.
_default_policy: Policy | None = None


@contextmanager
def acting_as(
    principal: Principal, *, context: Mapping[str, Any] | None = None
) -> Iterator[Principal]:
    """Run the block as ``principal``; guarded calls inside build requests for it.

    ``context`` (environment, channel, ...) is merged into each request's
    context.  Nesting replaces the principal and extends the context; leaving
    the block restores both.
    """
    if not isinstance(principal, Principal):
        raise TypeError(f"acting_as takes a Principal, got {type(principal).__name__}")
    token = _principal.set(principal)
    context_token = _context.set({**_context.get(), **context} if context else _context.get())
    try:
        yield principal
    finally:
        _context.reset(context_token)
        _principal.reset(token)


def current_principal() -> Principal | None:
    """The principal set by the innermost ``acting_as``, or None."""
    return _principal.get()


def current_context() -> Mapping[str, Any]:
    """The request context set by enclosing ``acting_as`` blocks."""
    return _context.get()


@contextmanager
def using_policy(policy: Policy) -> Iterator[Policy]:
    """Guarded calls inside the block that name no policy use this one."""
    if not isinstance(policy, Policy):
        raise TypeError(f"using_policy takes a Policy, got {type(policy).__name__}")
    token = _policy.set(policy)
    try:
        yield policy
    finally:
        _policy.reset(token)


def set_default_policy(policy: Policy | None) -> Policy | None:
    """Set the process-wide fallback policy (None clears it); returns the previous one.

    This is handrail's one global default.  Prefer passing ``policy=`` to the
    decorator or ``using_policy``; the default suits scripts and notebooks.
    """
    global _default_policy
    if policy is not None and not isinstance(policy, Policy):
        raise TypeError(f"set_default_policy takes a Policy or None, got {type(policy).__name__}")
    previous, _default_policy = _default_policy, policy
    return previous


def current_policy() -> Policy | None:
    """The policy from the innermost ``using_policy``, else the default, else None."""
    policy = _policy.get()
    return _default_policy if policy is None else policy
