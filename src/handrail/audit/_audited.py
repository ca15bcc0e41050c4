"""``@audited``: record every call of a function (sync or async) in an audit log."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry import trace

from .._errors import ConfigurationError
from .._names import check_action
from ..identity import Principal
from ..permissions import current_context, current_principal
from ..permissions._request import RequestBuilder, ResourceSpec
from ..policy import EscalationRequired, PermissionDenied, Resource
from ..policy._model import resource_from
from ._log import AuditLog
from ._record import Outcome

__all__ = ["UNKNOWN_AGENT", "audited"]

P = ParamSpec("P")
R = TypeVar("R")

UNKNOWN_AGENT = "<unknown>"
"""The agent recorded for a call with no principal argument, made outside ``acting_as``."""

# Built without validation: "<unknown>" is deliberately not a valid agent id.
_NOBODY = Principal.model_construct(agent=UNKNOWN_AGENT)


def audited(
    log: AuditLog,
    *,
    action: str | None = None,
    resource: ResourceSpec | None = None,
    principal_arg: str = "principal",
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each call of the decorated function (sync or async) in ``log``.

    A call that returns is recorded as ``executed``; one that raises as
    ``failed``, with the error's type and its message scrubbed of the secrets
    in the call's arguments.  ``PermissionDenied`` and ``EscalationRequired``
    (from a ``@requires_permission`` beneath) are recorded as ``denied`` and
    ``escalated``, with the decision's effect, rule and reason.  Every record
    carries the duration and, inside an OpenTelemetry span, its trace and
    span ids.  The function's own exception always propagates unchanged; if
    the record cannot be written, ``AuditError`` is raised instead (the
    function's exception is its ``__context__``).

    ``action`` defaults to the function's module and qualified name.  The
    principal is the function's ``principal_arg`` argument if it is a
    ``Principal``, else the innermost ``acting_as``, else the agent
    ``"<unknown>"``.  ``resource`` is a ``Resource``, a mapping, or a callable
    given the call's arguments by name; ``args`` are the call's arguments,
    without ``self``, ``cls`` and the principal.  Async functions append with
    ``AuditLog.aappend``.
    """
    if action is not None:
        check_action(action, "audited")
    if not isinstance(log, AuditLog):
        raise ConfigurationError(f"audited: log must be an AuditLog, got {type(log).__name__}")

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        name = action or f"{fn.__module__}.{fn.__qualname__}".replace(".<locals>", "")
        recorder = _Recorder(fn, log, name, resource, principal_arg)
        clock = log.clock
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_audited(*args: Any, **kwargs: Any) -> Any:
                call = recorder.prepare(args, kwargs)
                start = clock.monotonic()
                try:
                    result = await async_fn(*args, **kwargs)
                except BaseException as exc:
                    await log.aappend(**recorder.fields(call, start, exc))
                    raise
                await log.aappend(**recorder.fields(call, start, None))
                return result

            return cast(Callable[P, R], async_audited)

        @functools.wraps(fn)
        def sync_audited(*args: P.args, **kwargs: P.kwargs) -> R:
            call = recorder.prepare(args, kwargs)
            start = clock.monotonic()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                log.append(**recorder.fields(call, start, exc))
                raise
            log.append(**recorder.fields(call, start, None))
            return result

        return sync_audited

    return decorate


class _Recorder:
    """What ``@audited`` worked out about the function once, at decoration time."""

    __slots__ = ("_action", "_builder", "_clock", "_principal_arg", "_resource", "_skipped")

    def __init__(
        self,
        fn: Callable[..., Any],
        log: AuditLog,
        action: str,
        resource: ResourceSpec | None,
        principal_arg: str,
    ) -> None:
        self._builder = RequestBuilder(fn, action, resource=resource, principal_arg=principal_arg)
        params = list(inspect.signature(fn).parameters)
        self._skipped = {principal_arg} | ({"self", "cls"} & set(params[:1]))
        self._action = action
        self._resource = resource
        self._principal_arg = principal_arg
        self._clock = log.clock

    def prepare(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Everything known before the call: who, what, on what, with which arguments."""
        bound = self._builder.bind(args, kwargs)
        principal = bound.get(self._principal_arg)
        if not isinstance(principal, Principal):
            principal = current_principal() or _NOBODY
        spec = self._resource
        found: Resource | None = None
        if spec is not None:
            value = spec(**bound) if callable(spec) else spec
            found = None if value is None else resource_from(value)
        return {
            "principal": principal,
            "action": self._action,
            "resource": found,
            "args": {k: v for k, v in bound.items() if k not in self._skipped},
            "context": current_context(),
        }

    def fields(
        self, call: dict[str, Any], start: float, error: BaseException | None
    ) -> dict[str, Any]:
        """The keyword arguments of ``AuditLog.append`` for a call that ended with ``error``."""
        fields = dict(call)
        fields["duration"] = dt.timedelta(seconds=max(0.0, self._clock.monotonic() - start))
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            fields["trace_id"] = trace.format_trace_id(span.trace_id)
            fields["span_id"] = trace.format_span_id(span.span_id)
        if error is None:
            fields["outcome"] = Outcome.EXECUTED
            return fields
        fields["error"] = error
        if isinstance(error, PermissionDenied | EscalationRequired):
            decision = error.decision
            fields["effect"] = decision.effect
            fields["rule_id"] = decision.rule_id
            fields["reason"] = decision.reason
            if isinstance(error, EscalationRequired):
                fields["outcome"] = Outcome.ESCALATED
                fields["escalation_id"] = error.escalation_id
            else:
                fields["outcome"] = Outcome.DENIED
        else:
            fields["outcome"] = Outcome.FAILED
        return fields
