"""``@requires_permission``: turn a function call into an ActionRequest and enforce the decision."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from handrail._errors import ConfigurationError, EscalationRequired, PermissionDenied
from handrail.identity import Principal
from handrail.policy import ActionRequest, Decision, Effect, Policy, Resource
from handrail.policy._model import ACTION_RE, resource_from, trusted_request

from ._context import _context, _principal, current_policy

__all__ = ["requires_permission"]

P = ParamSpec("P")
R = TypeVar("R")

ResourceSpec = Resource | Mapping[str, Any] | Callable[..., Resource | Mapping[str, Any] | None]
ContextSpec = Mapping[str, Any] | Callable[..., Mapping[str, Any]]
AuditHook = Callable[[Decision], object]

# Stands in for the missing principal in the DENY decision it produces; never evaluated.
_NOBODY = Principal(agent="<no principal>")
_SKIPPED = frozenset({"self", "cls"})


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
    if not isinstance(action, str) or not ACTION_RE.fullmatch(action):
        raise ConfigurationError(
            f"requires_permission: action {action!r} is not a dotted name such as "
            "'crm.contact.update'"
        )

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

    __slots__ = (
        "_action",
        "_context",
        "_defaults",
        "_names",
        "_on_audit",
        "_policy",
        "_principal_arg",
        "_resource",
        "_signature",
        "_skipped",
    )

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
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        # Simple signatures bind with a zip (fast); *args/**kwargs use inspect.
        self._signature = None if simple else signature
        self._names = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self._skipped = (_SKIPPED & {p.name for p in params[:1]}) | {principal_arg}
        self._action = action
        self._resource = resource
        self._context = context
        self._policy = policy
        self._on_audit = on_audit
        self._principal_arg = principal_arg

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Decision:
        """Decide for this call; raise unless the decision lets it run."""
        decision = self._decide(args, kwargs)
        effect = decision.effect
        if effect is Effect.ALLOW:
            return decision
        if effect is Effect.AUDIT:
            if self._on_audit is not None:
                self._on_audit(decision)
            return decision
        if effect is Effect.ESCALATE:
            raise EscalationRequired(decision)
        raise PermissionDenied(decision)

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._signature is None:
            bound = dict(self._defaults) if self._defaults else {}
            bound.update(zip(self._names, args, strict=False))
            if kwargs:
                bound.update(kwargs)
            return bound
        call = self._signature.bind(*args, **kwargs)
        call.apply_defaults()
        return dict(call.arguments)

    def _decide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Decision:
        bound = self._bind(args, kwargs)
        principal = bound.get(self._principal_arg)
        if principal is None:
            principal = _principal.get()
        policy = self._policy
        if policy is None:
            policy = current_policy()
        try:
            resource = self._resource_for(bound)
            context = self._context_for(bound)
        except Exception as exc:
            return _refuse(
                self._action,
                principal,
                f"could not build the request: {type(exc).__name__}: {exc}",
            )
        # `type(...) is` first: isinstance on pydantic models goes through ABCMeta.
        if type(principal) is not Principal and not isinstance(principal, Principal):
            if principal is None:
                why = (
                    "no principal in scope: run the call inside `with acting_as(principal):` "
                    f"or pass {self._principal_arg}="
                )
            else:
                why = f"{self._principal_arg} must be a Principal, got {type(principal).__name__}"
            return _refuse(self._action, None, why)
        if policy is None:
            return _refuse(
                self._action,
                principal,
                "no policy in scope: pass policy= to requires_permission, use "
                "`with using_policy(policy):`, or call set_default_policy(policy)",
            )
        skipped = self._skipped
        call_args = {k: v for k, v in bound.items() if k not in skipped}
        request = trusted_request(principal, self._action, resource, call_args, context)
        return policy.evaluate(request)

    def _resource_for(self, bound: dict[str, Any]) -> Resource | None:
        spec = self._resource
        if spec is None:
            return None
        value = spec(**bound) if callable(spec) else spec
        if value is None or type(value) is Resource or isinstance(value, Resource):
            return value
        return resource_from(value)

    def _context_for(self, bound: dict[str, Any]) -> Mapping[str, Any]:
        scope = _context.get()
        spec = self._context
        if spec is None:
            return scope
        extra = spec(**bound) if callable(spec) else spec
        return {**scope, **extra} if scope else extra


def _refuse(action: str, principal: Principal | None, reason: str) -> Decision:
    request: ActionRequest = trusted_request(principal or _NOBODY, action, None, {}, {})
    subject = f"agent:{principal.agent}" if principal is not None else "nobody"
    return Decision(Effect.DENY, reason, request, subject=subject)
