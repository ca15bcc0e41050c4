"""``@requires_permission``: turn a function call into an ActionRequest and enforce the decision."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from .._errors import ConfigurationError
from .._names import check_action
from ..policy import ActionRequest, Decision, Effect, EscalationRequired, PermissionDenied, Policy
from ._context import current_policy
from ._request import ContextSpec, RequestBuilder, ResourceSpec, refusal

__all__ = ["requires_permission"]

P = ParamSpec("P")
R = TypeVar("R")

AuditHook = Callable[[Decision], object]

# Module constants: reading Effect.X goes through EnumType.__getattr__ (~150 ns).
_ALLOW, _AUDIT, _ESCALATE = Effect.ALLOW, Effect.AUDIT, Effect.ESCALATE


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
    ``set_default_policy``, looked up at call time.
    """
    check_action(action, "requires_permission")

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        check = _Check(fn, action, resource, context, policy, on_audit, principal_arg)
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                check(args, kwargs)
                return await async_fn(*args, **kwargs)

            return cast(Callable[P, R], async_guarded)

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            check(args, kwargs)
            return fn(*args, **kwargs)

        return guarded

    return decorate


class _Check:
    """Everything about the guarded function worked out once, at decoration time."""

    __slots__ = ("_builder", "_on_audit", "_policy")

    def __init__(
        self,
        fn: Callable[..., Any],
        action: str,
        resource: ResourceSpec | None,
        context: ContextSpec | None,
        policy: Policy | None,
        on_audit: AuditHook | None,
        principal_arg: str,
    ) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigurationError(
                f"requires_permission: policy must be a Policy, got {type(policy).__name__}"
            )
        self._builder = RequestBuilder(
            fn, action, resource=resource, context=context, principal_arg=principal_arg
        )
        self._policy = policy
        self._on_audit = on_audit

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Decision:
        """Decide for this call; raise unless the decision lets it run."""
        decision = self._decide(args, kwargs)
        effect = decision.effect
        if effect is _ALLOW:
            return decision
        if effect is _AUDIT:
            if self._on_audit is not None:
                self._on_audit(decision)
            return decision
        if effect is _ESCALATE:
            raise EscalationRequired(decision)
        raise PermissionDenied(decision)

    def _decide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Decision:
        request = self._builder.build(args, kwargs)
        if type(request) is Decision:
            return request
        request = cast(ActionRequest, request)
        policy = self._policy
        if policy is None:
            policy = current_policy()
            if policy is None:
                return refusal(request.action, request.principal, NO_POLICY)
        return policy.evaluate(request)


NO_POLICY = (
    "no policy in scope: pass policy= to requires_permission, use "
    "`with using_policy(policy):`, or call set_default_policy(policy)"
)
