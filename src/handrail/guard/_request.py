"""How a call to a guarded function becomes an ``ActionRequest``.

Worked out once per function (at decoration time) by every decorator front end
(``Guard.protect``, ``requires_permission``, ``audited``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .._names import check_action
from ..identity import Principal
from ..permissions import current_context, current_principal
from ..policy import ActionRequest, Decision, Effect, Resource

__all__ = ["ContextSpec", "RequestBuilder", "ResourceSpec", "build_request", "refusal"]

ResourceSpec = Resource | Mapping[str, Any] | Callable[..., Resource | Mapping[str, Any] | None]
ContextSpec = Mapping[str, Any] | Callable[..., Mapping[str, Any]]

# Stands in for the missing principal in the DENY decision it produces; never evaluated.
# Built without validation: "<no principal>" is deliberately not a valid agent id, so
# no policy rule can ever name it.
_NOBODY = Principal.model_construct(agent="<no principal>")
_SKIPPED = frozenset({"self", "cls"})


class RequestBuilder:
    """Builds the request for each call of one function; or, if it cannot, a DENY saying why."""

    __slots__ = (
        "_defaults",
        "_names",
        "_signature",
        "_skipped",
        "action",
        "context",
        "parameters",
        "principal_arg",
        "resource",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        action: str,
        *,
        resource: ResourceSpec | None = None,
        context: ContextSpec | None = None,
        principal_arg: str = "principal",
    ) -> None:
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        # Simple signatures bind with a zip (fast); *args/**kwargs use inspect.
        self._signature = None if simple else signature
        self._names = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self._skipped = (_SKIPPED & {p.name for p in params[:1]}) | {principal_arg}
        self.parameters = frozenset(p.name for p in params)
        self.action = action
        self.resource = resource
        self.context = context
        self.principal_arg = principal_arg

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, defaults applied."""
        if self._signature is None:
            bound = dict(self._defaults) if self._defaults else {}
            bound.update(zip(self._names, args, strict=False))
            if kwargs:
                bound.update(kwargs)
            return bound
        call = self._signature.bind(*args, **kwargs)
        call.apply_defaults()
        return dict(call.arguments)

    def build(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> ActionRequest | Decision:
        """The request for this call, or a DENY ``Decision`` when it cannot be built."""
        bound = self.bind(args, kwargs)
        principal = bound.get(self.principal_arg)
        if principal is None:
            principal = current_principal()
        try:
            resource = self._resource_for(bound)
            context = self._context_for(bound)
        except Exception as exc:
            who = principal if isinstance(principal, Principal) else None
            return refusal(
                self.action, who, f"could not build the request: {type(exc).__name__}: {exc}"
            )
        # `type(...) is` first: isinstance on pydantic models goes through ABCMeta.
        if type(principal) is not Principal and not isinstance(principal, Principal):
            return refusal(self.action, None, _no_principal(principal, self.principal_arg))
        skipped = self._skipped
        call_args = {k: v for k, v in bound.items() if k not in skipped}
        return ActionRequest.of(principal, self.action, resource, call_args, context)

    def _resource_for(self, bound: dict[str, Any]) -> Resource | None:
        spec = self.resource
        if spec is None:
            return None
        value = spec(**bound) if callable(spec) else spec
        if value is None or type(value) is Resource or isinstance(value, Resource):
            return value
        return Resource.of(value)

    def _context_for(self, bound: dict[str, Any]) -> Mapping[str, Any]:
        scope = current_context()
        spec = self.context
        if spec is None:
            return scope
        extra = spec(**bound) if callable(spec) else spec
        return {**scope, **extra} if scope else extra


def build_request(
    action: str,
    args: Mapping[str, Any] | None = None,
    *,
    resource: ResourceSpec | None = None,
    context: Mapping[str, Any] | None = None,
    principal: Principal | None = None,
) -> ActionRequest | Decision:
    """The request for one guarded call from its parts, or a DENY refusal saying why not.

    For front ends that build requests themselves (connector operations,
    framework adapters), by the rule every front end follows: the principal
    is ``principal``, else the innermost ``acting_as``, and a call with
    neither is refused; ``resource`` is a ``Resource``, a mapping, or a
    callable receiving ``args`` by name, and one that fails refuses the
    call; ``context`` is merged over the ``acting_as`` context.  Hand the
    result to ``guard.call``/``acall`` either way: a refusal is recorded
    ``denied`` and raised as ``PermissionDenied`` there, as the decorators'
    are.  Raises ``ConfigurationError`` for a malformed action name.
    """
    check_action(action, "build_request")
    bound = args if args is not None else {}
    if principal is None:
        principal = current_principal()
    try:
        spec = resource
        value = spec(**bound) if callable(spec) else spec
        if value is None or type(value) is Resource or isinstance(value, Resource):
            found = value
        else:
            found = Resource.of(value)
        scope = current_context()
        merged = {**scope, **context} if context and scope else (context or scope)
    except Exception as exc:
        who = principal if isinstance(principal, Principal) else None
        return refusal(action, who, f"could not build the request: {type(exc).__name__}: {exc}")
    if type(principal) is not Principal and not isinstance(principal, Principal):
        return refusal(action, None, _no_principal(principal, "principal"))
    return ActionRequest.of(principal, action, found, bound, merged)


def _no_principal(principal: object, argument: str) -> str:
    if principal is None:
        return (
            "no principal in scope: run the call inside `with acting_as(principal):` "
            f"or pass {argument}="
        )
    return f"{argument} must be a Principal, got {type(principal).__name__}"


def refusal(action: str, principal: Principal | None, reason: str) -> Decision:
    """A DENY decision made by the guard itself, not by a policy."""
    request: ActionRequest = ActionRequest.of(principal or _NOBODY, action, None, {}, {})
    subject = f"agent:{principal.agent}" if principal is not None else "nobody"
    return Decision(Effect.DENY, reason, request, subject=subject)
