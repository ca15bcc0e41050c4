"""The one guarded call: its flow, written once.

Every front end — ``Guard.call``/``acall``/``protect``, ``requires_permission``,
``audited``, connector operations, framework adapters — turns its inputs into an
``ActionRequest`` and a ``Plan`` and hands them to ``flow``.  ``flow`` is a
generator in the manner of httpx's ``Auth.auth_flow``: it decides, and
*yields* every step that touches the outside world (open or resume an
escalation, wait for it, claim it, shadow, attempt, record) as a ``Step``
object.  ``run`` (sync) and ``arun`` (async) are the only drivers: each sends
the step's result back in, or throws its error, until the flow returns.
Nothing here blocks: the async driver awaits each step's async form.  The steps
and the drivers are in ``_steps``; ``CallProgress``, what the code beneath the
guard reports, in ``_progress``.

::

    decide ─▶ DENY ─────────────────────────────▶ record denied ─▶ raise PermissionDenied
          ├▶ ESCALATE ─ shadow? ─▶ preview route ─▶ record shadowed ─▶ ShadowResult
          │           └ open/resume ─▶ wait ─▶ pending: record escalated ─▶ raise
          │                                 ├▶ refused: record denied ─▶ raise
          │                                 └▶ approved: claim ─▶ (run, keyed by its id)
          └▶ ALLOW/AUDIT ─▶ audit writable? ─▶ shadow? ─▶ record shadowed
                                             └▶ attempt (retry ∘ breaker ∘ fn) ─▶ record ─▶ result

Exactly one final record per call; for a lazy read it is written when the
iteration ends, fails or is abandoned (``_records``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Generator, Mapping
from hmac import compare_digest
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace

from .._errors import AuditError, ConfigurationError, EscalationError
from ..audit import AuditEntry, AuditLog, AuditRecord
from ..clock import Clock
from ..policy import Decision, Effect, EscalationRequired, PermissionDenied
from ..resilience import CircuitBreakers, RetryPolicy
from ..telemetry import ActionScope, Telemetry
from ._progress import CallProgress
from ._steps import Step, _Attempt, _Claim, _Get, _Open, _Record, _Shadow, _Wait

if TYPE_CHECKING:
    from ..escalation import Escalation, EscalationPreview, EscalationRouter

__all__ = ["Plan", "flow", "runs_at_once"]

_ALLOW: Final = Effect.ALLOW
_AUDIT: Final = Effect.AUDIT
_ESCALATE: Final = Effect.ESCALATE


class Plan:
    """How one call is to be guarded: the parts of the guard and the call's own options.

    Built by the front ends; ``flow`` reads it and never changes it.
    """

    __slots__ = (
        "audit",
        "bare",
        "breaker",
        "breakers",
        "clock",
        "decided",
        "idempotent",
        "lazy",
        "on_audit",
        "read_without_audit",
        "retry",
        "router",
        "shadow_aware",
        "telemetry",
        "tool_name",
        "wait",
        "write",
    )

    def __init__(
        self,
        *,
        telemetry: Telemetry,
        clock: Clock,
        audit: AuditLog | None = None,
        router: EscalationRouter | None = None,
        retry: RetryPolicy | None = None,
        breakers: CircuitBreakers | None = None,
        breaker: str | None = None,
        on_audit: Callable[[Decision], object] | None = None,
        wait: dt.timedelta | None = None,
        write: bool = False,
        idempotent: bool = False,
        shadow_aware: bool = False,
        lazy: bool = False,
        tool_name: str | None = None,
        decided: bool = True,
        read_without_audit: bool = False,
    ) -> None:
        self.telemetry = telemetry
        self.clock = clock
        self.audit = audit
        self.router = router
        self.retry = retry
        self.breakers = breakers
        self.breaker = breaker
        self.on_audit = on_audit
        self.wait = wait
        self.write = write
        self.idempotent = idempotent
        self.shadow_aware = shadow_aware
        self.lazy = lazy
        self.tool_name = tool_name
        self.decided = decided  # False for @audited alone: no policy, no effect recorded
        self.read_without_audit = read_without_audit
        # Nothing to record, escalate, retry or shadow: a call is its decision, then fn.
        self.bare = (
            audit is None
            and router is None
            and retry is None
            and (breaker is None or breakers is None)
            and not write
            and not lazy
        )


def runs_at_once(plan: Plan, decision: Decision) -> bool:
    """For a bare plan with nobody listening: the whole flow, without the generator.

    Returns True when the call may run now (ALLOW; AUDIT after the hook),
    raises the refusal the flow would raise, and returns False when the call
    needs the full flow.  The hot path of ``requires_permission``.
    """
    if not plan.bare or not plan.telemetry.is_quiet():
        return False
    effect = decision.effect
    if effect is _ALLOW:
        return True
    if effect is _AUDIT:
        if plan.on_audit is not None:
            plan.on_audit(decision)
        return True
    if effect is _ESCALATE:
        raise EscalationRequired(decision)
    raise PermissionDenied(decision)


# -- the flow ----------------------------------------------------------------------------


def flow(
    plan: Plan,
    decision: Decision,
    fn: Callable[[], Any],
    *,
    key: str | None = None,
    external_id: str | None = None,
    resume: str | None = None,
    shadow: bool = False,
) -> Generator[Step, Any, Any]:
    """The steps of one guarded call, from its decision to its one final record.

    ``key`` is the caller's idempotency key; ``external_id`` the framework's
    id for this call (a case opened for it is found again by it);
    ``resume`` an escalation id to resume; ``shadow`` puts a write in shadow mode.
    """
    request = decision.request
    with plan.telemetry.action(request, tool_name=plan.tool_name) as scope:
        call = _Call(plan, decision, scope)
        call.key, call.external_id, call.resume = key, external_id, resume
        scope.decided(decision)
        effect = decision.effect
        if effect is _ESCALATE:
            if plan.router is None:
                yield from call.finish("escalated")
                raise EscalationRequired(decision)
            if shadow:
                return (yield from call.shadowed(fn, preview=_preview(plan.router, decision)))
            yield from call.escalate()
        elif effect is not _ALLOW and effect is not _AUDIT:
            yield from call.finish("denied")
            raise PermissionDenied(decision)
        elif effect is _AUDIT and plan.on_audit is not None:
            plan.on_audit(decision)
        call.check_audit()
        if call.key is None and plan.write:
            call.key = _fresh_key()
        if shadow:
            return (yield from call.shadowed(fn))
        try:
            result = yield _Attempt(plan, fn, request.action, call.key, call.progress)
        except BaseException as exc:
            yield from call.finish(_failure_outcome(exc), error=exc)
            raise
        if plan.lazy:
            return call.lazy(result)
        yield from call.finish("executed")
        return result


class _Call:
    """One call in progress: its decision, span, key, attempts and escalation."""

    __slots__ = (
        "decision",
        "escalation_id",
        "external_id",
        "key",
        "plan",
        "progress",
        "resume",
        "scope",
        "started",
        "unrecorded",
    )

    def __init__(self, plan: Plan, decision: Decision, scope: ActionScope) -> None:
        self.plan = plan
        self.decision = decision
        self.scope = scope
        self.key: str | None = None
        self.escalation_id: str | None = None
        self.external_id: str | None = None
        self.resume: str | None = None
        self.progress = CallProgress()
        self.unrecorded = False  # a read let through while the audit trail is down
        self.started = plan.clock.monotonic()

    # -- escalations -------------------------------------------------------------------

    def escalate(self) -> Generator[Step, Any, None]:
        """Open or resume the case; return when it was approved and claimed, else raise."""
        plan = self.plan
        router = plan.router
        assert router is not None
        decision = self.decision
        try:
            if self.resume is not None:
                case = yield _Get(router, self.resume)
                differs = _check_same_request(case, decision, router)
                if differs is not None:
                    self.decision = _denied(
                        decision,
                        f"escalation {case.id} does not cover this call: {differs} from what "
                        "was escalated (an approval covers exactly one request)",
                    )
                    yield from self.finish("denied", escalation_id=case.id)
                    raise PermissionDenied(self.decision)
            else:
                case = yield _Open(router, decision, self.external_id)
        except (EscalationError, ConfigurationError) as exc:
            self.decision = _denied(decision, f"cannot escalate: {exc}")
            yield from self.finish("denied", escalation_id=self.resume)
            raise PermissionDenied(self.decision) from exc
        self.escalation_id = case.id
        if plan.wait is not None and not case.is_terminal:
            case = yield _Wait(router, case.id, plan.wait)
        if not case.is_terminal:
            yield from self.finish("escalated")
            raise EscalationRequired(decision, case.id)
        if case.allowed is not True:
            why = case.reason or "no reason given"
            self.decision = _denied(decision, f"escalation {case.id} {case.state}: {why}")
            yield from self.finish("denied")
            raise PermissionDenied(self.decision)
        try:
            yield _Claim(router, case.id)
        except EscalationError as exc:  # claimed before: an approval is used once
            self.decision = _denied(decision, str(exc))
            yield from self.finish("denied")
            raise
        who = case.decided_by or f"the route's on_timeout ({case.route.on_timeout})"
        self.decision = decision._replace(
            effect=_ALLOW, reason=f"escalation {case.id} approved by {who}: {case.reason}"
        )
        self.key = self.key or case.id  # an approved escalation runs once, under its own id
        self.started = self.plan.clock.monotonic()  # the call's time, not the human's

    # -- the record ----------------------------------------------------------------------

    def check_audit(self) -> None:
        """Fail closed: refuse a call the audit trail could not record, before it runs."""
        audit = self.plan.audit
        if audit is None:
            return
        try:
            audit.ensure_writable()
        except AuditError as exc:
            if self.plan.write or not self.plan.read_without_audit:
                self.scope.finished("denied")
                raise
            self.plan.telemetry.audit_unavailable(self.decision.request.action, exc)
            self.unrecorded = True

    def finish(
        self,
        outcome: str,
        *,
        error: BaseException | None = None,
        escalation_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Generator[Step, Any, AuditRecord | None]:
        """Write the call's one final record (if there is an audit log) and close the span."""
        attempts = self.progress.total_attempts if outcome in ("executed", "failed") else 0
        counts: dict[str, Any] | None = None
        if self.progress.counts or details:
            counts = {**self.progress.counts, **(details or {})}
        record = None
        audit = self.plan.audit
        if audit is not None and not self.unrecorded:
            entry = self.entry(outcome, error, escalation_id, attempts, counts)
            record = yield _Record(audit, entry)
        self.scope.finished(
            outcome,
            error=error,
            record_id=None if record is None else record.id,
            attempts=attempts or None,
        )
        return record

    def entry(
        self,
        outcome: str,
        error: BaseException | None,
        escalation_id: str | None,
        attempts: int,
        details: Mapping[str, Any] | None,
    ) -> AuditEntry:
        decision = self.decision
        refused = error is not None and isinstance(error, PermissionDenied | EscalationRequired)
        if refused:
            decision = error.decision  # type: ignore[union-attr]  # a guard beneath refused
        timing = None
        if outcome in ("executed", "failed"):
            seconds = self.plan.clock.monotonic() - self.started
            timing = dt.timedelta(seconds=max(0.0, seconds))
        trace_id, span_id = self.scope.trace_id, self.scope.span_id
        if trace_id is None:  # handrail's telemetry is off: name the caller's span, if any
            trace_id, span_id = _current_span_ids()
        if self.plan.decided or refused:
            return AuditEntry.for_decision(
                decision,
                outcome,
                error=error,
                duration=timing,
                attempts=attempts,
                trace_id=trace_id,
                span_id=span_id,
                escalation_id=escalation_id or self.escalation_id,
                idempotency_key=self.key,
                details=details,
            )
        fields: dict[str, Any] = {
            "error": error,
            "duration": timing,
            "attempts": attempts,
            "trace_id": trace_id,
            "span_id": span_id,
            "escalation_id": escalation_id or self.escalation_id,
            "idempotency_key": self.key,
            "details": details,
        }
        request = decision.request  # @audited alone: no policy decided, no effect to record
        return AuditEntry.of(
            request.principal,
            request.action,
            outcome,
            resource=request.resource,
            args=request.args,
            context=request.context,
            **fields,
        )

    # -- shadow mode and lazy reads --------------------------------------------------------

    def shadowed(
        self, fn: Callable[[], Any], *, preview: EscalationPreview | None = None
    ) -> Generator[Step, Any, Any]:
        """Record a write that did not happen and say what it would have done; touch no human."""
        from ..shadow import ShadowResult

        plan = self.plan
        self.key = self.key or _fresh_key()
        details: dict[str, Any] = {}
        if preview is not None:
            details["escalation"] = preview.to_dict()
        intercepted = None
        if plan.shadow_aware:
            try:
                intercepted = yield _Shadow(fn, self.key)
            except BaseException as exc:
                yield from self.finish("failed", error=exc)
                raise
        if intercepted is not None:
            details["shadow_request"] = intercepted.model_dump()
        record = yield from self.finish("shadowed", details=details or None)
        request = self.decision.request
        redactor = plan.audit.redactor if plan.audit is not None else plan.telemetry.redactor
        return ShadowResult(
            action=request.action,
            args=redactor.redact(_plain(request.args)),
            request=intercepted,
            idempotency_key=self.key,
            record_id=None if record is None else record.id,
            escalation=None if preview is None else preview.to_dict(),
        )

    def lazy(self, result: Any) -> Any:
        from ._records import AsyncRecorded, Recorded

        if hasattr(result, "__aiter__"):
            return AsyncRecorded(self, result)
        return Recorded(self, result)


def _current_span_ids() -> tuple[str | None, str | None]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


def _failure_outcome(error: BaseException) -> str:
    if isinstance(error, EscalationRequired):
        return "escalated"
    if isinstance(error, PermissionDenied):
        return "denied"
    return "failed"


def _preview(router: EscalationRouter, decision: Decision) -> EscalationPreview | None:
    try:
        return router.preview(decision)
    except ConfigurationError:
        return None  # shadow mode reports what it can; a missing route shows in `policy check`


def _check_same_request(
    case: Escalation, decision: Decision, router: EscalationRouter
) -> str | None:
    """What of the resumed call differs from what ``case`` was opened for, or None.

    The policy was evaluated again for the resumed call: an approval given
    for one rule and route (sales leads, in staging) never covers a call the
    policy now sends elsewhere (the CFO, in production).  The request itself
    must have the case's keyed fingerprint (a case stored before fingerprints
    were keyed never matches: fail closed).  Raises ``ConfigurationError``
    when the router cannot fingerprint the call (no key, an unreadable value).
    """
    opened = case.decision
    differs = [
        name
        for name, then, now in (
            ("the effect", opened.get("effect"), decision.effect.value),
            ("the rule", opened.get("rule_id"), decision.rule_id),
            ("the route", case.route.name, decision.escalate_to),
        )
        if then != now
    ]
    stored = str(case.request.get("fingerprint", "")).encode("utf-8", "surrogatepass")
    if not compare_digest(stored, router.fingerprint(decision.request).encode("ascii")):
        differs.append("the request (action, principal, resource, arguments or context)")
    if not differs:
        return None
    if len(differs) == 1:
        return f"{differs[0]} differs"
    return f"{', '.join(differs[:-1])} and {differs[-1]} differ"


def _denied(decision: Decision, reason: str) -> Decision:
    return decision._replace(effect=Effect.DENY, reason=reason)


def _plain(value: Any) -> Any:
    from .._encoding import plain

    return plain(value)


def _fresh_key() -> str:
    """A key for one call and its retries only: two calls never share one."""
    return uuid.uuid4().hex
