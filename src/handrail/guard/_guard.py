"""``Guard``: policy, retries, the circuit breaker, the audit trail and telemetry around one call.

The pipeline, for every guarded call::

    request ─▶ decide ─▶ DENY/ESCALATE: audit, raise
                      └▶ ALLOW/AUDIT: run (retry ∘ breaker ∘ fn) ─▶ audit ─▶ return / raise

all inside one ``handrail.action`` span whose ids the audit record carries.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from .._errors import ConfigurationError, EscalationRequired, PermissionDenied
from ..audit import AuditLog, AuditRecord
from ..permissions._context import current_policy
from ..permissions._decorator import NO_POLICY
from ..permissions._request import ContextSpec, RequestBuilder, ResourceSpec, refusal
from ..policy import ActionRequest, Decision, Effect, Policy
from ..policy._model import ACTION_RE
from ..resilience import AttemptDetails, CircuitBreakers, RetryPolicy, idempotency_key
from ..telemetry import ActionScope, Telemetry, default_telemetry

__all__ = ["Guard"]

P = ParamSpec("P")
R = TypeVar("R")

KeySpec = bool | Callable[..., str] | None
AuditHook = Callable[[Decision], object]


class Guard:
    """The composition most users start with: one object that guards every tool call.

    ``policy`` decides (else ``using_policy`` / ``set_default_policy``, at call
    time); ``audit`` records every decided call (denied, escalated, executed,
    failed); ``retry`` retries transient failures of allowed calls (writes
    only with an idempotency key); ``breakers`` fail fast while a system is
    down; ``telemetry`` (default: ``default_telemetry()``) wraps each call in
    one span.  Every part but the policy is optional.

    A guard that cannot decide denies; an audit record that cannot be written
    raises ``AuditError`` (after the call, if it ran: the action happened and
    must not pass unrecorded silently).  Thread-safe and async-safe.
    """

    __slots__ = ("audit", "breakers", "on_audit", "policy", "retry", "telemetry")

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        audit: AuditLog | None = None,
        retry: RetryPolicy | None = None,
        breakers: CircuitBreakers | None = None,
        telemetry: Telemetry | None = None,
        on_audit: AuditHook | None = None,
    ) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigurationError(f"Guard: policy must be a Policy, got {type(policy).__name__}")
        self.policy = policy
        self.audit = audit
        self.retry = retry
        self.breakers = breakers
        self.telemetry = telemetry
        self.on_audit = on_audit

    def protect(
        self,
        action: str,
        *,
        resource: ResourceSpec | None = None,
        context: ContextSpec | None = None,
        is_write: bool = False,
        idempotency_key: KeySpec = None,
        breaker: str | None = None,
        tool_name: str | None = None,
        principal_arg: str = "principal",
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Guard a function (sync or async) as ``action``.

        ``resource``, ``context`` and ``principal_arg`` build the request as in
        ``requires_permission``.  ``is_write`` marks a write: retried only with
        an idempotency key — ``idempotency_key=True`` derives one from the
        request (action, principal, resource, arguments), a callable receives
        the call's arguments by name.  ``breaker`` names the circuit breaker
        (from ``breakers``) the call goes through, e.g. the host.
        ``tool_name`` sets ``gen_ai.tool.name`` on the span.
        """
        if not isinstance(action, str) or not ACTION_RE.fullmatch(action):
            raise ConfigurationError(
                f"Guard.protect: action {action!r} is not a dotted name such as "
                "'crm.contact.update'"
            )
        if breaker is not None and self.breakers is None:
            raise ConfigurationError(
                f"Guard.protect: breaker {breaker!r} named, but the Guard has no breakers="
            )

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            call = _GuardedCall(
                self,
                fn,
                RequestBuilder(
                    fn, action, resource=resource, context=context, principal_arg=principal_arg
                ),
                is_write=is_write,
                key=idempotency_key,
                breaker=breaker,
                tool_name=tool_name,
            )
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                    return await call.arun(args, kwargs)

                return cast(Callable[P, R], async_guarded)

            @functools.wraps(fn)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
                return cast(R, call.run(args, kwargs))

            return guarded

        return decorate

    def __repr__(self) -> str:
        parts = [f"policy={self.policy!r}"]
        if self.audit is not None:
            parts.append(f"audit={self.audit!r}")
        if self.retry is not None:
            parts.append(f"retry={self.retry!r}")
        return f"Guard({', '.join(parts)})"


class _GuardedCall:
    """One guarded function: the shared steps of the sync and async drivers."""

    __slots__ = ("breaker", "builder", "fn", "guard", "is_write", "key", "tool_name")

    def __init__(
        self,
        guard: Guard,
        fn: Callable[..., Any],
        builder: RequestBuilder,
        *,
        is_write: bool,
        key: KeySpec,
        breaker: str | None,
        tool_name: str | None,
    ) -> None:
        self.guard = guard
        self.fn = fn
        self.builder = builder
        self.is_write = is_write
        self.key = key
        self.breaker = breaker
        self.tool_name = tool_name

    # -- the steps both drivers share ---------------------------------------------

    def decide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Decision:
        built = self.builder.build(args, kwargs)
        if type(built) is Decision:
            return built
        request = cast(ActionRequest, built)
        policy = self.guard.policy
        if policy is None:
            policy = current_policy()
        if policy is None:
            return refusal(request.action, request.principal, NO_POLICY)
        return policy.evaluate(request)

    def key_for(
        self, decision: Decision, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> str | None:
        spec = self.key
        if not self.is_write or spec is None or spec is False:
            return None
        if spec is True:
            try:
                return idempotency_key(decision.request)
            except TypeError:
                return None  # arguments with no stable form: the write is not retried
        return spec(**self.builder.bind(args, kwargs))

    def refuse(self, decision: Decision, scope: ActionScope) -> BaseException:
        """Audit a refusal and return the error to raise."""
        outcome = "escalated" if decision.effect is Effect.ESCALATE else "denied"
        record = self.record(decision, outcome, scope)
        scope.finished(outcome, record_id=record.id if record else None)
        if decision.effect is Effect.ESCALATE:
            return EscalationRequired(decision)
        return PermissionDenied(decision)

    def record(
        self,
        decision: Decision,
        outcome: str,
        scope: ActionScope,
        *,
        error: BaseException | None = None,
        started: float | None = None,
        attempts: int = 1,
        key: str | None = None,
    ) -> AuditRecord | None:
        audit = self.guard.audit
        if audit is None:
            return None
        duration = None if started is None else dt.timedelta(seconds=time.perf_counter() - started)
        return audit.append_decision(
            decision,
            outcome,
            error=error,
            duration=duration,
            attempts=attempts,
            trace_id=scope.trace_id,
            span_id=scope.span_id,
            idempotency_key=key,
        )

    def finish(self, run: _Run, error: BaseException | None) -> None:
        outcome = "failed" if error is not None else "executed"
        attempts = run.attempts.count
        record = self.record(
            run.decision,
            outcome,
            run.scope,
            error=error,
            started=run.started,
            attempts=attempts,
            key=run.key,
        )
        run.scope.finished(
            outcome, error=error, record_id=record.id if record else None, attempts=attempts
        )

    def target(self) -> Callable[..., Any]:
        if self.breaker is None:
            return self.fn
        assert self.guard.breakers is not None
        circuit = self.guard.breakers.for_key(self.breaker)
        return functools.partial(circuit.call, self.fn)

    def atarget(self) -> Callable[..., Any]:
        if self.breaker is None:
            return self.fn
        assert self.guard.breakers is not None
        circuit = self.guard.breakers.for_key(self.breaker)
        return functools.partial(circuit.acall, self.fn)

    def allowed(self, decision: Decision) -> None:
        if decision.effect is Effect.AUDIT and self.guard.on_audit is not None:
            self.guard.on_audit(decision)

    def admit(
        self, decision: Decision, scope: ActionScope, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Run:
        """Raise a refusal (audited); or call the audit hook and return what the run needs."""
        scope.decided(decision)
        if not decision.effect.is_grant:
            raise self.refuse(decision, scope)
        self.allowed(decision)
        return _Run(decision, scope)

    def retry_options(self, run: _Run, telemetry: Telemetry) -> dict[str, Any]:
        return {
            "action": run.decision.request.action,
            "is_write": self.is_write,
            "idempotency_key": run.key,
            "on_attempt": run.attempts,
            "telemetry": telemetry,
        }

    # -- the drivers: the same steps, one calling and one awaiting -----------------

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        decision = self.decide(args, kwargs)
        telemetry = self.guard.telemetry or default_telemetry()
        with telemetry.action(decision.request, tool_name=self.tool_name) as scope:
            run = self.admit(decision, scope, args, kwargs)
            try:
                run.key = self.key_for(decision, args, kwargs)
                retry = self.guard.retry
                if retry is None:
                    run.attempts.count = 1
                    result = self.target()(*args, **kwargs)
                else:
                    # A partial: the tool's own arguments never clash with retry's.
                    call = functools.partial(self.target(), *args, **kwargs)
                    result = retry.call(call, **self.retry_options(run, telemetry))
            except BaseException as exc:
                self.finish(run, exc)
                raise
            self.finish(run, None)
            return result

    async def arun(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        decision = self.decide(args, kwargs)
        telemetry = self.guard.telemetry or default_telemetry()
        with telemetry.action(decision.request, tool_name=self.tool_name) as scope:
            run = self.admit(decision, scope, args, kwargs)
            try:
                run.key = self.key_for(decision, args, kwargs)
                retry = self.guard.retry
                target = cast(Callable[..., Awaitable[Any]], self.atarget())
                if retry is None:
                    run.attempts.count = 1
                    result = await target(*args, **kwargs)
                else:
                    call = functools.partial(target, *args, **kwargs)
                    result = await retry.acall(call, **self.retry_options(run, telemetry))
            except BaseException as exc:
                self.finish(run, exc)
                raise
            self.finish(run, None)
            return result


class _Run:
    """One admitted call in progress: its decision, span, idempotency key, attempts and start."""

    __slots__ = ("attempts", "decision", "key", "scope", "started")

    def __init__(self, decision: Decision, scope: ActionScope) -> None:
        self.decision = decision
        self.scope = scope
        self.key: str | None = None  # set inside the drivers' try: a failing key is audited
        self.attempts = _Attempts()
        self.started = time.perf_counter()


class _Attempts:
    """Counts attempts as the retry layer reports them (its ``on_attempt`` hook)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, details: AttemptDetails) -> None:
        self.count = details.attempt
