"""``Guard``: policy, escalations, retries, breakers, audit trail and telemetry around calls.

A ``Guard`` holds the parts; the steps of a guarded call are written once in
``_core.flow``.  Three ways in, all over that one flow:

- ``guard.check(request)``: decide only (audited when it refuses);
- ``guard.call(request, fn)`` / ``await guard.acall(request, fn)``: the whole
  guarded call for a request the caller built (what framework adapters use);
- ``@guard.protect(action, ...)``: a decorator that builds the request from
  the function's arguments.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from .._errors import ConfigurationError
from .._names import check_action
from .._text import key_problem
from ..audit import AuditLog
from ..clock import Clock, SystemClock
from ..permissions import current_policy
from ..policy import ActionRequest, Decision, Effect, PermissionDenied, Policy
from ..resilience import CircuitBreakers, RetryPolicy
from ..shadow import shadow_from_environment
from ..telemetry import Telemetry, default_telemetry
from ._core import Plan, flow, runs_at_once
from ._request import ContextSpec, RequestBuilder, ResourceSpec, refusal
from ._steps import arun, run

if TYPE_CHECKING:
    # Imported when an escalation is handled: `import handrail` stays free of the
    # router, its stores and its channels until someone uses them.
    from ..escalation import EscalationRouter

__all__ = ["NO_POLICY", "Guard"]

P = ParamSpec("P")
R = TypeVar("R")

AuditHook = Callable[[Decision], object]
_SYSTEM_CLOCK = SystemClock()

NO_POLICY = (
    "no policy in scope: pass policy= to the guard, use "
    "`with using_policy(policy):`, or call set_default_policy(policy)"
)


class Guard:
    """The composition most users start with: one object that guards every tool call.

    ``policy`` decides (else ``using_policy`` / ``set_default_policy``, at call
    time); ``audit`` records every decided call — exactly one final record
    per call; ``escalations`` (an ``EscalationRouter``) opens a case for an
    ESCALATE decision, and ``wait_for_decision`` (a ``timedelta``) waits that
    long for a human before raising ``EscalationRequired``; ``retry`` retries
    transient failures (a write only when it forwards its idempotency key);
    ``breakers`` fail fast while a system is down; ``telemetry`` (default:
    ``default_telemetry()``) wraps each call in one span; ``clock`` times
    calls and waits (inject ``FakeClock`` in tests).  In shadow mode
    (``shadow=True``, or ``HANDRAIL_SHADOW=1`` when ``shadow`` is None)
    writes are recorded, not run, and no human is asked.

    Fails closed: a guard that cannot decide denies; a call whose record the
    audit trail cannot write (it failed before, or is closed) is refused
    with ``AuditError`` before it runs — reads too, unless
    ``read_without_audit=True`` (then with a warning and a metric).
    Thread-safe and async-safe.
    """

    __slots__ = (
        "_version",
        "audit",
        "breakers",
        "clock",
        "escalations",
        "on_audit",
        "policy",
        "read_without_audit",
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
        wait_for_decision: dt.timedelta | None = None,
        shadow: bool | None = None,
        clock: Clock | None = None,
        read_without_audit: bool = False,
    ) -> None:
        self._version: int = 0
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigurationError(f"Guard: policy must be a Policy, got {type(policy).__name__}")
        if audit is not None and not isinstance(audit, AuditLog):
            raise ConfigurationError(
                f"Guard: audit must be an AuditLog, got {type(audit).__name__}"
            )
        if escalations is not None and not _is_router(escalations):
            raise ConfigurationError(
                f"Guard: escalations must be an EscalationRouter, got {type(escalations).__name__}"
            )
        if wait_for_decision is not None:
            if escalations is None:
                raise ConfigurationError("Guard: wait_for_decision needs escalations=")
            if not isinstance(wait_for_decision, dt.timedelta):
                raise ConfigurationError(
                    f"Guard: wait_for_decision must be a datetime.timedelta, got "
                    f"{wait_for_decision!r}; write wait_for_decision=timedelta(minutes=...)"
                )
        self.policy = policy
        self.audit = audit
        self.retry = retry
        self.breakers = breakers
        self.telemetry = telemetry
        self.on_audit = on_audit
        self.escalations = escalations
        self.wait_for_decision = wait_for_decision
        self.shadow = shadow
        self.clock = clock
        self.read_without_audit = read_without_audit

    def __setattr__(self, name: str, value: Any) -> None:
        # Decorated functions cache their plan; any change to the guard renews it.
        object.__setattr__(self, name, value)
        if name != "_version":
            object.__setattr__(self, "_version", getattr(self, "_version", 0) + 1)

    # -- the step API: what adapters drive -----------------------------------------------

    def decide(self, request: ActionRequest) -> Decision:
        """The policy's decision for ``request`` (a DENY saying why when there is no policy)."""
        policy = self.policy or current_policy()
        if policy is None:
            return refusal(request.action, request.principal, NO_POLICY)
        return policy.evaluate(request)

    def check(self, request: ActionRequest | Decision) -> Decision:
        """Decide ``request`` without running anything; a refusal is audited (``denied``).

        Returns the decision whatever it is: an adapter maps DENY to the
        framework's refusal and ESCALATE to its pause, then calls ``call``
        (which decides again, opens the case and records the outcome).
        ``request`` may be the refusal ``build_request`` returned.
        """
        decision = self._decision(request)
        if decision.effect is Effect.DENY:
            with contextlib.suppress(PermissionDenied):  # the refusal is recorded, not raised
                run(flow(self._plan(), decision, _never))
        return decision

    async def acheck(self, request: ActionRequest | Decision) -> Decision:
        """``check`` for async code: the refusal's record is appended off the event loop."""
        decision = self._decision(request)
        if decision.effect is Effect.DENY:
            with contextlib.suppress(PermissionDenied):
                await arun(flow(self._plan(), decision, _never))
        return decision

    def call(
        self,
        request: ActionRequest | Decision,
        fn: Callable[[], R],
        *,
        write: bool = False,
        key: str | None = None,
        external_id: str | None = None,
        resume: str | None = None,
        idempotent: bool = False,
        lazy: bool = False,
        shadow_aware: bool = False,
        breaker: str | None = None,
        tool_name: str | None = None,
        retry: bool = True,
    ) -> R:
        """Run ``fn()`` as the guarded action ``request``; return its result.

        DENY raises ``PermissionDenied``; ESCALATE opens a case (found again
        by ``external_id``, e.g. the framework's tool-call id, or resumed by
        ``resume``, an escalation id) and raises ``EscalationRequired``
        while it is pending; once it is approved the call runs, once.
        ``write`` marks a write (shadowed in shadow mode, where the call
        returns a ``ShadowResult``).  Its idempotency key —
        ``current_idempotency_key()`` inside ``fn`` — is ``key`` when given,
        else the approved escalation's id, else a fresh one: two calls never
        share a key unless the caller says so; the retries of one call always
        do.  A write is retried only when ``idempotent=True`` (``fn`` sends
        the key to the system it writes to).  ``lazy=True``: ``fn`` returns
        an iterable of records; the call returns them wrapped, and is audited
        when the iteration ends (see ``Recorded``).  ``shadow_aware``: ``fn``
        stops its own write in shadow mode (see ``handrail.shadow``).
        ``retry=False``: the guard does not retry ``fn`` as a whole, because
        ``fn`` retries each of its own requests (with ``guard.retry``) and
        reports every attempt through ``current_call().attempted()``.
        ``request`` may be the refusal ``build_request`` returned: it is
        recorded ``denied`` and raised, as every front end's refusal is.
        """
        steps = self._steps(
            request, fn, write, key, external_id, resume, idempotent, lazy, shadow_aware,
            breaker, tool_name, retry,
        )  # fmt: skip
        return cast(R, run(steps))

    async def acall(
        self,
        request: ActionRequest | Decision,
        fn: Callable[[], Awaitable[R]],
        *,
        write: bool = False,
        key: str | None = None,
        external_id: str | None = None,
        resume: str | None = None,
        idempotent: bool = False,
        lazy: bool = False,
        shadow_aware: bool = False,
        breaker: str | None = None,
        tool_name: str | None = None,
        retry: bool = True,
    ) -> R:
        """``call`` for async code: ``fn()`` returns an awaitable; nothing blocks the loop."""
        steps = self._steps(
            request, fn, write, key, external_id, resume, idempotent, lazy, shadow_aware,
            breaker, tool_name, retry,
        )  # fmt: skip
        return cast(R, await arun(steps))

    def _steps(
        self,
        request: ActionRequest | Decision,
        fn: Callable[[], Any],
        write: bool,
        key: str | None,
        external_id: str | None,
        resume: str | None,
        idempotent: bool,
        lazy: bool,
        shadow_aware: bool,
        breaker: str | None,
        tool_name: str | None,
        retry: bool,
    ) -> Generator[Any, Any, Any]:
        """The flow of one ``call``/``acall``; bad options refused before anything runs."""
        if key is not None and (problem := key_problem(key)) is not None:
            raise ConfigurationError(f"Guard.call: key {problem}")
        if resume is not None and (problem := key_problem(resume)) is not None:
            raise ConfigurationError(f"Guard.call: resume {problem}")
        if breaker is not None and self.breakers is None:
            raise ConfigurationError(
                f"Guard.call: breaker {breaker!r} named, but the Guard has no breakers="
            )
        plan = self._plan(
            write=write,
            idempotent=idempotent,
            lazy=lazy,
            shadow_aware=shadow_aware,
            breaker=breaker,
            tool_name=tool_name,
            retried=retry,
        )
        return flow(
            plan,
            self._decision(request),
            fn,
            key=key,
            external_id=external_id,
            resume=resume if resume is not None else _current_resume(self),
            shadow=write and self.in_shadow(),
        )

    def in_shadow(self) -> bool:
        """True when this guard's writes are shadowed (``shadow=``, else ``HANDRAIL_SHADOW``)."""
        return shadow_from_environment() if self.shadow is None else self.shadow

    # -- the decorator front end ---------------------------------------------------------

    def protect(
        self,
        action: str,
        *,
        resource: ResourceSpec | None = None,
        context: ContextSpec | None = None,
        is_write: bool = False,
        idempotency_key: str | None = None,
        idempotent: bool = False,
        breaker: str | None = None,
        tool_name: str | None = None,
        principal_arg: str = "principal",
        shadow_aware: bool = False,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Guard a function (sync or async) as ``action``: ``call`` for each of its calls.

        ``resource``, ``context`` and ``principal_arg`` build the request as in
        ``requires_permission``.  ``is_write`` marks a write.
        ``idempotency_key`` names the argument that carries the caller's
        idempotency key (else each call gets a fresh one; see ``call``);
        ``idempotent`` says the function sends it on, so the write may be
        retried.  ``breaker`` names the circuit breaker (from ``breakers``)
        the call goes through, e.g. the host; ``tool_name`` sets
        ``gen_ai.tool.name`` on the span.
        """
        check_action(action, "Guard.protect")
        if breaker is not None and self.breakers is None:
            raise ConfigurationError(
                f"Guard.protect: breaker {breaker!r} named, but the Guard has no breakers="
            )
        options = {
            "write": is_write,
            "idempotent": idempotent or idempotency_key is not None,
            "shadow_aware": shadow_aware,
            "breaker": breaker,
            "tool_name": tool_name,
        }

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            builder = RequestBuilder(
                fn, action, resource=resource, context=context, principal_arg=principal_arg
            )
            if idempotency_key is not None and idempotency_key not in builder.parameters:
                raise ConfigurationError(
                    f"Guard.protect({action!r}): idempotency_key={idempotency_key!r} is not "
                    f"a parameter of {fn.__qualname__}"
                )
            front = _Decorated(self, builder, options, idempotency_key)
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_guarded(*args: Any, **kwargs: Any) -> Any:
                    steps = front.steps(fn, args, kwargs)
                    if steps is None:  # nothing but the decision to do, and it allowed
                        return await fn(*args, **kwargs)
                    return await arun(steps)

                return cast(Callable[P, R], async_guarded)

            @functools.wraps(fn)
            def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
                steps = front.steps(fn, args, kwargs)
                if steps is None:
                    return fn(*args, **kwargs)
                return cast(R, run(steps))

            return guarded

        return decorate

    # -- internals -----------------------------------------------------------------------

    def _decision(self, request: ActionRequest | Decision) -> Decision:
        # A Decision comes in only as a refusal (build_request's): never as a way round the policy.
        if type(request) is Decision or isinstance(request, Decision):
            if request.effect is not Effect.DENY:
                raise ConfigurationError(
                    f"Guard: a Decision ({request.effect.value}) was given where a request is "
                    "decided; only a refusal (DENY, from build_request) may be passed"
                )
            return request
        return self.decide(request)

    def _plan(self, *, retried: bool = True, **options: Any) -> Plan:
        return Plan(
            telemetry=self.telemetry or default_telemetry(),
            clock=self.clock or (self.audit.clock if self.audit is not None else _SYSTEM_CLOCK),
            audit=self.audit,
            router=self.escalations,
            retry=self.retry if retried else None,
            breakers=self.breakers,
            on_audit=self.on_audit,
            wait=self.wait_for_decision,
            read_without_audit=self.read_without_audit,
            **options,
        )

    def __repr__(self) -> str:
        parts = [f"policy={self.policy!r}"]
        for name in ("audit", "escalations", "retry"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"Guard({', '.join(parts)})"


class _Decorated:
    """A function guarded by ``protect``: builds each call's request and hands it to the flow."""

    __slots__ = ("_cached", "builder", "guard", "key_arg", "options")

    def __init__(
        self, guard: Guard, builder: RequestBuilder, options: dict[str, Any], key_arg: str | None
    ) -> None:
        self.guard = guard
        self.builder = builder
        self.options = options
        self.key_arg = key_arg
        self._cached: tuple[int, Telemetry, Plan] | None = None

    def plan(self) -> Plan:
        """The guard's plan for this function, rebuilt only when the guard changed."""
        guard = self.guard
        telemetry = guard.telemetry or default_telemetry()
        cached = self._cached
        if cached is not None and cached[0] == guard._version and cached[1] is telemetry:
            return cached[2]
        plan = guard._plan(**self.options)
        self._cached = (guard._version, telemetry, plan)
        return plan

    def steps(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Generator[Any, Any, Any] | None:
        """The flow of this call; None when the decision lets it run with nothing else to do."""
        guard = self.guard
        built = self.builder.build(args, kwargs)
        decision = built if type(built) is Decision else guard.decide(cast(ActionRequest, built))
        key = None
        if self.key_arg is not None:
            key = self.builder.bind(args, kwargs).get(self.key_arg)
            if key is not None and (problem := key_problem(key)) is not None:
                decision = refusal(
                    decision.request.action,
                    decision.request.principal,
                    f"idempotency key argument {self.key_arg!r}: {problem}",
                )
                key = None
        plan = self.plan()
        if key is None and runs_at_once(plan, decision):
            return None
        write = self.options["write"]
        return flow(
            plan,
            decision,
            functools.partial(fn, *args, **kwargs),
            key=key,
            resume=_current_resume(guard),
            shadow=write and guard.in_shadow(),
        )


def _current_resume(guard: Guard) -> str | None:
    if guard.escalations is None:
        return None
    from ..escalation import current_resume

    return current_resume()


def _never() -> None:  # pragma: no cover - the flow refuses before it would call this
    raise AssertionError("a refused call was run")


def _is_router(value: object) -> bool:
    from ..escalation import EscalationRouter

    return isinstance(value, EscalationRouter)
