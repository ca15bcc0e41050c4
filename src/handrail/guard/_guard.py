"""``Guard``: policy, retries, the circuit breaker, the audit trail and telemetry around one call.

The pipeline, for every guarded call::

    request ─▶ decide ─▶ DENY: audit, raise PermissionDenied
                      ├▶ ESCALATE: open (or resume) an escalation ─▶ pending: audit, raise
                      │      EscalationRequired(id) │ approved: run once │ else: refuse
                      └▶ ALLOW/AUDIT: run (retry ∘ breaker ∘ fn) ─▶ audit ─▶ return / raise

all inside one ``handrail.action`` span whose ids the audit record carries.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from .._encoding import plain
from .._errors import ConfigurationError, EscalationError
from .._names import check_action
from ..audit import AuditLog, AuditRecord
from ..permissions._context import current_policy
from ..permissions._decorator import NO_POLICY
from ..permissions._request import ContextSpec, RequestBuilder, ResourceSpec, refusal
from ..policy import ActionRequest, Decision, Effect, EscalationRequired, PermissionDenied, Policy
from ..policy._model import trusted_request
from ..redaction import Redactor
from ..resilience import AttemptDetails, CircuitBreakers, RetryPolicy, idempotency_key
from ..resilience._idempotency import using_idempotency_key
from ..shadow import (
    ShadowIntercepted,
    ShadowRequest,
    ShadowResult,
    shadow_from_environment,
    shadowing,
)
from ..telemetry import ActionScope, Telemetry, default_telemetry

if TYPE_CHECKING:
    # Imported when an escalation is handled: `import handrail` stays free of the
    # router, its stores and its channels until someone uses them.
    from ..escalation import Escalation, EscalationRouter

__all__ = ["Guard"]

P = ParamSpec("P")
R = TypeVar("R")

KeySpec = bool | Callable[..., str] | None
_REDACTOR = Redactor()
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

    __slots__ = (
        "audit",
        "breakers",
        "escalations",
        "on_audit",
        "policy",
        "retry",
        "shadow",
        "telemetry",
        "wait_for_decision",
    )

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        audit: AuditLog | None = None,
        retry: RetryPolicy | None = None,
        breakers: CircuitBreakers | None = None,
        telemetry: Telemetry | None = None,
        on_audit: AuditHook | None = None,
        escalations: EscalationRouter | None = None,
        wait_for_decision: float | dt.timedelta | None = None,
        shadow: bool | None = None,
    ) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigurationError(f"Guard: policy must be a Policy, got {type(policy).__name__}")
        if escalations is not None and not _is_router(escalations):
            raise ConfigurationError(
                f"Guard: escalations must be an EscalationRouter, got {type(escalations).__name__}"
            )
        if wait_for_decision is not None and escalations is None:
            raise ConfigurationError("Guard: wait_for_decision needs escalations=")
        self.escalations = escalations
        self.shadow = shadow
        self.wait_for_decision = (
            wait_for_decision.total_seconds()
            if isinstance(wait_for_decision, dt.timedelta)
            else wait_for_decision
        )
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
        shadow_aware: bool = False,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Guard a function (sync or async) as ``action``.

        ``resource``, ``context`` and ``principal_arg`` build the request as in
        ``requires_permission``.  ``is_write`` marks a write: retried only with
        an idempotency key — ``idempotency_key=True`` derives one from the
        request (action, principal, resource, arguments), a callable receives
        the call's arguments by name.  ``breaker`` names the circuit breaker
        (from ``breakers``) the call goes through, e.g. the host.
        ``tool_name`` sets ``gen_ai.tool.name`` on the span.

        In shadow mode a write (``is_write=True``) returns a ``ShadowResult``
        and is audited as ``shadowed``: it is not called, unless
        ``shadow_aware`` says the function stops its own write (it is then
        called inside ``handrail.shadow.shadowing()`` and must raise
        ``ShadowIntercepted`` with the request it would have sent).
        """
        check_action(action, "Guard.protect")
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
                shadow_aware=shadow_aware,
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

    __slots__ = (
        "breaker",
        "builder",
        "fn",
        "guard",
        "is_write",
        "key",
        "shadow_aware",
        "tool_name",
    )

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
        shadow_aware: bool = False,
    ) -> None:
        self.guard = guard
        self.shadow_aware = shadow_aware
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

    def key_for(self, run: _Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        if run.escalation_id is not None:
            return run.escalation_id  # an approved escalation runs once, under its own id
        decision = run.decision
        spec = self.key
        if not self.is_write or spec is None or spec is False:
            return None
        if spec is True:
            try:
                return idempotency_key(decision.request)
            except TypeError:
                return None  # arguments with no stable form: the write is not retried
        return spec(**self.builder.bind(args, kwargs))

    def refuse(
        self, decision: Decision, scope: ActionScope, escalation_id: str | None = None
    ) -> BaseException:
        """Audit a refusal and return the error to raise."""
        outcome = "escalated" if decision.effect is Effect.ESCALATE else "denied"
        record = self.record(decision, outcome, scope, escalation_id=escalation_id)
        scope.finished(outcome, record_id=record.id if record else None)
        if decision.effect is Effect.ESCALATE:
            return EscalationRequired(decision, escalation_id)
        return PermissionDenied(decision)

    # -- escalations ------------------------------------------------------------------

    def escalation_for(self, decision: Decision, scope: ActionScope) -> Escalation:
        """Open the case for an ESCALATE decision, or look up the one being resumed.

        Fails closed: a router error, an unknown id or a different request is
        refused (audited as denied).
        """
        router = self.guard.escalations
        assert router is not None
        from ..escalation import current_resume, request_fingerprint

        resume = current_resume()
        try:
            if resume is None:
                return router.open(decision)
            escalation = router.get(resume)
            fingerprint = request_fingerprint(decision.request)
        except (EscalationError, ConfigurationError) as exc:
            raise self.refuse(_denied(decision, f"cannot escalate: {exc}"), scope) from exc
        if escalation.request.get("fingerprint") != fingerprint:
            denied = _denied(
                decision,
                f"escalation {resume} was opened for a different request "
                "(action, principal, resource or arguments differ)",
            )
            raise self.refuse(denied, scope, resume)
        return escalation

    def resolve(self, run: _Run, escalation: Escalation) -> None:
        """Act on a case once waited for: raise while pending or refused; claim it if approved."""
        decision = run.decision
        if not escalation.is_terminal:
            raise self.refuse(decision, run.scope, escalation.id)
        if escalation.allowed is not True:
            why = escalation.reason or "no reason given"
            denied = _denied(decision, f"escalation {escalation.id} {escalation.state}: {why}")
            raise self.refuse(denied, run.scope, escalation.id)
        router = self.guard.escalations
        assert router is not None
        try:
            router.claim_execution(escalation.id)
        except EscalationError as exc:
            denied = _denied(decision, str(exc))
            self.record(denied, "denied", run.scope, escalation_id=escalation.id)
            run.scope.finished("denied")
            raise
        who = escalation.decided_by or f"the route's on_timeout ({escalation.route.on_timeout})"
        run.decision = decision._replace(
            effect=Effect.ALLOW,
            reason=f"escalation {escalation.id} approved by {who}: {escalation.reason}",
        )
        run.escalation_id = escalation.id
        run.started = time.perf_counter()  # the call's duration, not the human's

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
        escalation_id: str | None = None,
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
            escalation_id=escalation_id,
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
            escalation_id=run.escalation_id,
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
        """Raise a refusal (audited); or call the audit hook and return what the run needs.

        An escalated call comes back with ``run.pending`` set: the drivers
        wait for it (or not) and call ``resolve``.
        """
        scope.decided(decision)
        if decision.effect is Effect.ESCALATE and self.guard.escalations is not None:
            run = _Run(decision, scope)
            run.pending = self.escalation_for(decision, scope)
            return run
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

    # -- shadow mode --------------------------------------------------------------------

    def in_shadow(self) -> bool:
        if not self.is_write:
            return False
        shadow = self.guard.shadow
        return shadow_from_environment() if shadow is None else shadow

    def shadowed(self, run: _Run, intercepted: ShadowRequest | None) -> ShadowResult:
        """Audit a write that did not happen, and say what it would have done."""
        request = run.decision.request
        decision = run.decision
        if intercepted is not None:
            context = {**request.context, "shadow_request": intercepted.model_dump()}
            decision = decision._replace(
                request=trusted_request(
                    request.principal, request.action, request.resource, request.args, context
                )
            )
        record = self.record(
            decision, "shadowed", run.scope, key=run.key, escalation_id=run.escalation_id
        )
        run.scope.finished("shadowed", record_id=record.id if record else None)
        audit = self.guard.audit
        redactor = audit.redactor if audit is not None else _REDACTOR
        return ShadowResult(
            action=request.action,
            args=redactor.redact(plain(request.args)),
            request=intercepted,
            idempotency_key=run.key,
            record_id=record.id if record else None,
        )

    def shadow_run(self, run: _Run, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ShadowResult:
        intercepted = None
        try:
            run.key = self.key_for(run, args, kwargs)
            if self.shadow_aware:
                with shadowing(), using_idempotency_key(run.key):
                    self.fn(*args, **kwargs)
        except ShadowIntercepted as stopped:
            intercepted = stopped.request
        except BaseException as exc:
            self.finish(run, exc)
            raise
        return self.shadowed(run, intercepted)

    async def ashadow_run(
        self, run: _Run, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ShadowResult:
        intercepted = None
        try:
            run.key = self.key_for(run, args, kwargs)
            if self.shadow_aware:
                with shadowing(), using_idempotency_key(run.key):
                    await self.fn(*args, **kwargs)
        except ShadowIntercepted as stopped:
            intercepted = stopped.request
        except BaseException as exc:
            self.finish(run, exc)
            raise
        return self.shadowed(run, intercepted)

    # -- the drivers: the same steps, one calling and one awaiting -----------------

    def run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        decision = self.decide(args, kwargs)
        telemetry = self.guard.telemetry or default_telemetry()
        with telemetry.action(decision.request, tool_name=self.tool_name) as scope:
            run = self.admit(decision, scope, args, kwargs)
            if run.pending is not None:
                pending = run.pending
                wait = self.guard.wait_for_decision
                if wait is not None and not pending.is_terminal:
                    assert self.guard.escalations is not None
                    pending = self.guard.escalations.wait(pending.id, wait)
                self.resolve(run, pending)
            if self.in_shadow():
                return self.shadow_run(run, args, kwargs)
            try:
                run.key = self.key_for(run, args, kwargs)
                retry = self.guard.retry
                if retry is None:
                    run.attempts.count = 1
                    if run.key is None:
                        result = self.target()(*args, **kwargs)
                    else:  # the tool reads it with current_idempotency_key()
                        with using_idempotency_key(run.key):
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
            if run.pending is not None:
                pending = run.pending
                wait = self.guard.wait_for_decision
                if wait is not None and not pending.is_terminal:
                    assert self.guard.escalations is not None
                    pending = await self.guard.escalations.await_decision(pending.id, wait)
                self.resolve(run, pending)
            if self.in_shadow():
                return await self.ashadow_run(run, args, kwargs)
            try:
                run.key = self.key_for(run, args, kwargs)
                retry = self.guard.retry
                target = cast(Callable[..., Awaitable[Any]], self.atarget())
                if retry is None:
                    run.attempts.count = 1
                    if run.key is None:
                        result = await target(*args, **kwargs)
                    else:
                        with using_idempotency_key(run.key):
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

    __slots__ = ("attempts", "decision", "escalation_id", "key", "pending", "scope", "started")

    def __init__(self, decision: Decision, scope: ActionScope) -> None:
        self.decision = decision
        self.scope = scope
        self.key: str | None = None  # set inside the drivers' try: a failing key is audited
        self.attempts = _Attempts()
        self.started = time.perf_counter()
        self.pending: Escalation | None = None
        self.escalation_id: str | None = None


class _Attempts:
    """Counts attempts as the retry layer reports them (its ``on_attempt`` hook)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, details: AttemptDetails) -> None:
        self.count = details.attempt


def _denied(decision: Decision, reason: str) -> Decision:
    """``decision`` turned into a refusal, saying why."""
    return decision._replace(effect=Effect.DENY, reason=reason)


def _is_router(value: object) -> bool:
    from ..escalation import EscalationRouter

    return isinstance(value, EscalationRouter)
