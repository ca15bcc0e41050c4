"""``@requires_permission`` and ``@audited``: a guard with only a policy, or only an audit log.

Both are thin: they build the request from the decorated function's
arguments (``RequestBuilder``) and hand the call to the one flow
(``_core``), exactly as ``Guard.protect`` does.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from .._errors import ConfigurationError
from .._names import check_action
from ..audit import AuditLog
from ..policy import ActionRequest, Decision, Effect, Policy
from ._core import flow
from ._guard import Guard
from ._request import ContextSpec, RequestBuilder, ResourceSpec
from ._steps import arun, run

__all__ = ["audited", "requires_permission"]

P = ParamSpec("P")
R = TypeVar("R")

AuditHook = Callable[[Decision], object]


def requires_permission(
    action: str,
    *,
    resource: ResourceSpec | None = None,
    context: ContextSpec | None = None,
    policy: Policy | None = None,
    on_audit: AuditHook | None = None,
    principal_arg: str = "principal",
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Guard a function (sync or async, plain or method) with a policy decision.

    Each call builds an ``ActionRequest``: ``action``; the principal from the
    function's ``principal_arg`` parameter if it has one, else from
    ``acting_as``; the resource from ``resource`` (a Resource, a mapping, or a
    callable receiving the call's arguments by name, e.g.
    ``lambda contact_id, **_: {"type": "contact", "id": contact_id}``); the
    call's arguments as ``args`` (without ``self``, ``cls`` and the principal);
    and the ``acting_as`` context merged with ``context``.

    ALLOW runs the call.  AUDIT calls ``on_audit(decision)`` and runs the call.
    DENY raises ``PermissionDenied``; ESCALATE raises ``EscalationRequired``;
    both carry the ``Decision``.  No principal, no policy, or an error while
    building the request are DENY too: a guard that fails never allows.

    The policy comes from ``policy=``, else ``using_policy``, else
    ``set_default_policy``, looked up at call time.  It is ``Guard(policy,
    on_audit=on_audit).protect(action, ...)``: a guard with only a policy.
    """
    check_action(action, "requires_permission")
    if policy is not None and not isinstance(policy, Policy):
        raise ConfigurationError(
            f"requires_permission: policy must be a Policy, got {type(policy).__name__}"
        )
    guard = Guard(policy, on_audit=on_audit)
    return guard.protect(action, resource=resource, context=context, principal_arg=principal_arg)


def audited(
    log: AuditLog,
    *,
    action: str | None = None,
    resource: ResourceSpec | None = None,
    principal_arg: str = "principal",
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each call of the decorated function (sync or async) in ``log``.

    A guard with only an audit log.

    A call that returns is recorded as ``executed``; one that raises as
    ``failed``, with the error's type and its message scrubbed of the secrets
    in the call's arguments.  ``PermissionDenied`` and ``EscalationRequired``
    (from a guard beneath) are recorded as ``denied`` and ``escalated``, with
    the decision's effect, rule and reason.  Every record carries the
    duration, the trace and span ids.  No policy decides here: a record's
    ``effect`` is empty unless a guard beneath refused.

    The principal is the function's ``principal_arg`` argument, else the
    innermost ``acting_as``; a call with neither is refused
    (``PermissionDenied``, recorded ``denied``), as every front end refuses
    it.  ``action`` defaults to the function's module and qualified name.
    The log that cannot record refuses the call before it runs (``AuditError``).
    """
    if action is not None:
        check_action(action, "audited")
    if not isinstance(log, AuditLog):
        raise ConfigurationError(f"audited: log must be an AuditLog, got {type(log).__name__}")
    guard = Guard(audit=log)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = action or check_action(
            f"{fn.__module__}.{fn.__qualname__}".replace(".<locals>", ""), "audited"
        )
        builder = RequestBuilder(fn, name, resource=resource, principal_arg=principal_arg)

        def steps(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            built = builder.build(args, kwargs)
            if type(built) is Decision:  # no principal, or a resource that failed: refused
                return flow(guard._plan(), built, _never)
            request = cast(ActionRequest, built)
            unpoliced = Decision(Effect.ALLOW, "", request)
            return flow(
                guard._plan(decided=False), unpoliced, functools.partial(fn, *args, **kwargs)
            )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_audited(*args: Any, **kwargs: Any) -> Any:
                return await arun(steps(args, kwargs))

            return cast(Callable[P, R], async_audited)

        @functools.wraps(fn)
        def sync_audited(*args: P.args, **kwargs: P.kwargs) -> R:
            return cast(R, run(steps(args, kwargs)))

        return sync_audited

    return decorate


def _never() -> None:  # pragma: no cover - the flow refuses before it would call this
    raise AssertionError("a refused call was run")
