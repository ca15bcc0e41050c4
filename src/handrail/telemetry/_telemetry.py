"""The tracer, meter instruments and structlog logger the other primitives use.

handrail depends on ``opentelemetry-api`` only.  With no SDK configured the
API's providers are no-ops; handrail notices and skips span and metric work
altogether, so instrumentation costs next to nothing.  Logging goes through
structlog and stays quiet until the application configures structlog (or
passes a logger): handrail never configures logging itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from datetime import timedelta
from types import TracebackType
from typing import Any, Protocol

import structlog
from opentelemetry import metrics, trace
from opentelemetry import trace as _trace_module
from opentelemetry.environment_variables import (
    OTEL_PYTHON_METER_PROVIDER,
    OTEL_PYTHON_TRACER_PROVIDER,
)
from opentelemetry.metrics import _internal as _metrics_module
from opentelemetry.trace import SpanKind, Status, StatusCode, format_span_id, format_trace_id

from .._version import __version__
from ..identity import Principal
from ..redaction import Redactor

__all__ = ["ActionScope", "AuditUnavailableWarning", "Telemetry", "default_telemetry"]

_SCOPE = "handrail"


# Telemetry is the foundation, below policy: it reads requests and decisions
# through what they have (handrail.ActionRequest and Decision have it), never
# their classes.


class _Request(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def principal(self) -> Principal: ...
    @property
    def resource(self) -> object: ...
    @property
    def args(self) -> Mapping[str, Any]: ...
    @property
    def context(self) -> Mapping[str, Any]: ...


class _Effect(Protocol):
    @property
    def value(self) -> str: ...


class _Decision(Protocol):
    @property
    def effect(self) -> _Effect: ...
    @property
    def rule_id(self) -> str | None: ...


def _is_api_only(provider: object) -> bool:
    # The API's own providers (proxy or no-op) live in the API package; any SDK's do not.
    module = type(provider).__module__
    return module.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


_UNSET: Any = object()


def _global_provider(module: Any, name: str, getter: Any, from_environment: bool) -> Any:
    # get_*_provider() reads os.environ on every call while no provider is set,
    # which costs a microsecond: read the module's global instead, falling back
    # to the public getter when the environment names a provider or the
    # private name has moved.
    provider = getattr(module, name, _UNSET)
    if provider is _UNSET or from_environment:
        return getter()
    return provider


class _Instruments:
    __slots__ = (
        "audit_unavailable",
        "breaker_transitions",
        "decisions",
        "duration",
        "provider",
        "retries",
    )

    def __init__(self, provider: metrics.MeterProvider) -> None:
        meter = provider.get_meter(_SCOPE, __version__)
        self.provider = provider
        self.decisions = meter.create_counter(
            "handrail.decisions",
            unit="{decision}",
            description="Guarded actions by effect and outcome",
        )
        self.duration = meter.create_histogram(
            "handrail.action.duration", unit="s", description="Duration of guarded actions"
        )
        self.retries = meter.create_counter(
            "handrail.retries", unit="{retry}", description="Retries of failed attempts"
        )
        self.breaker_transitions = meter.create_counter(
            "handrail.circuit_breaker.transitions",
            unit="{transition}",
            description="Circuit breaker state changes",
        )
        self.audit_unavailable = meter.create_counter(
            "handrail.audit.unavailable",
            unit="{call}",
            description="Reads let through while the audit trail could not record them",
        )


class AuditUnavailableWarning(UserWarning):
    """A read ran although the audit trail could not record it (``read_without_audit=True``)."""


class Telemetry:
    """Where handrail sends spans, metrics and log events.

    Pass providers to use them directly (tests pass the SDK's in-memory
    ones); leave them None to follow OpenTelemetry's global providers, looked
    up on each use so an SDK configured later is picked up.  ``logger`` is a
    structlog logger; by default ``structlog.get_logger("handrail")``, used
    only once structlog is configured.  Thread-safe.
    """

    __slots__ = (
        "_environment",
        "_instruments",
        "_logger",
        "_meter_provider",
        "_tracer",
        "_tracer_provider",
        "redactor",
    )

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        logger: Any = None,
        redactor: Redactor | None = None,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._logger = logger
        self._instruments: _Instruments | None = None
        self._tracer: tuple[trace.TracerProvider, trace.Tracer] | None = None
        self._environment = (
            OTEL_PYTHON_TRACER_PROVIDER in os.environ,
            OTEL_PYTHON_METER_PROVIDER in os.environ,
        )
        self.redactor = redactor or Redactor()

    # -- the three outputs, each None when nobody listens ----------------------

    def tracer(self) -> trace.Tracer | None:
        """handrail's tracer, or None when no SDK is configured."""
        provider = self._tracer_provider
        if provider is None:
            provider = _global_provider(
                _trace_module, "_TRACER_PROVIDER", trace.get_tracer_provider, self._environment[0]
            )
            if provider is None or _is_api_only(provider):
                return None
        cached = self._tracer
        if cached is not None and cached[0] is provider:
            return cached[1]
        tracer = provider.get_tracer(_SCOPE, __version__)
        self._tracer = (provider, tracer)
        return tracer

    def _metrics(self) -> _Instruments | None:
        provider = self._meter_provider
        if provider is None:
            provider = _global_provider(
                _metrics_module, "_METER_PROVIDER", metrics.get_meter_provider, self._environment[1]
            )
            if provider is None or _is_api_only(provider):
                return None
        instruments = self._instruments
        if instruments is None or instruments.provider is not provider:
            instruments = self._instruments = _Instruments(provider)
        return instruments

    @property
    def logger(self) -> Any:
        """The structlog logger for handrail's events, or None while structlog is unconfigured."""
        if self._logger is not None:
            return self._logger
        if structlog.is_configured():
            return structlog.get_logger(_SCOPE)
        return None

    def is_quiet(self) -> bool:
        """True when nothing listens: no SDK for traces or metrics, structlog unconfigured."""
        return self.tracer() is None and self._metrics() is None and self.logger is None

    # -- actions ----------------------------------------------------------------

    def action(
        self, request: _Request, *, tool_name: str | None = None
    ) -> AbstractContextManager[ActionScope]:
        """Instrument one guarded action: a span, the decision and duration metrics, a log event.

        Use as ``with telemetry.action(request) as scope:`` and call
        ``scope.decided(decision)`` and ``scope.finished(outcome, ...)``.  An
        exception escaping the block marks the span as an error (with a
        redacted message) and is re-raised.  When nothing listens (no SDK, no
        structlog configuration) this returns a shared no-op scope.
        """
        tracer = self.tracer()
        if tracer is None and self._metrics() is None and self.logger is None:
            return _NOOP
        return _ActionContext(self, tracer, ActionScope(self, request, tool_name))

    # -- resilience events -------------------------------------------------------

    def retry_attempted(
        self,
        *,
        action: str | None,
        attempt: int,
        error: BaseException,
        wait: timedelta,
        secrets: Iterable[str] = (),
    ) -> None:
        """Count a retry and log it (error type and a scrubbed message only).

        The message loses URL credentials and query strings, ``secrets`` (the
        retried call's, which the retry layer passes), and the secrets of the
        action this retry happens in (the innermost ``action()`` block of
        this thread or task), as the span's and the audit record's messages
        do.
        """
        instruments = self._metrics()
        attributes = {"handrail.action": action or "", "error.type": type(error).__name__}
        if instruments is not None:
            instruments.retries.add(1, attributes)
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "handrail.retry",
                {
                    **attributes,
                    "handrail.attempt": attempt,
                    "handrail.wait_s": wait.total_seconds(),
                },
            )
        logger = self.logger
        if logger is not None:
            logger.warning(
                "handrail.retry",
                action=action,
                attempt=attempt,
                wait_s=wait.total_seconds(),
                error_type=type(error).__name__,
                error=self.redactor.scrub(str(error), _with_current_secrets(secrets)),
            )

    def escalation_event(self, kind: str, *, escalation_id: str, **fields: Any) -> None:
        """Record an escalation's transition: a span event on the current span and a log event.

        ``fields`` (route, level, state, by, ...) must hold no secrets: the
        router passes ids and states only.
        """
        attributes = {
            f"handrail.escalation.{key}": value
            for key, value in fields.items()
            if value is not None
        }
        attributes["handrail.escalation.id"] = escalation_id
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(f"handrail.escalation.{kind}", attributes)
        logger = self.logger
        if logger is not None:
            logger.info(f"handrail.escalation.{kind}", escalation_id=escalation_id, **fields)

    def audit_unavailable(self, action: str, error: BaseException) -> None:
        """A read runs unrecorded (``read_without_audit=True``): count it, log it, warn."""
        import warnings

        instruments = self._metrics()
        if instruments is not None:
            instruments.audit_unavailable.add(1, {"handrail.action": action})
        logger = self.logger
        if logger is not None:
            logger.warning("handrail.audit.unavailable", action=action, error=str(error))
        warnings.warn(
            f"{action}: the audit trail cannot record this read ({error}); it runs "
            "unrecorded because the guard has read_without_audit=True",
            AuditUnavailableWarning,
            stacklevel=2,
        )

    def breaker_transitioned(self, *, name: str, old: str, new: str) -> None:
        """Count a circuit breaker's state change and log it."""
        instruments = self._metrics()
        if instruments is not None:
            instruments.breaker_transitions.add(
                1,
                {
                    "handrail.circuit_breaker.name": name,
                    "handrail.circuit_breaker.from": old,
                    "handrail.circuit_breaker.to": new,
                },
            )
        logger = self.logger
        if logger is not None:
            logger.warning("handrail.circuit_breaker", name=name, old=old, new=new)


class ActionScope:
    """One instrumented action: carries the span's ids so the audit record can name them."""

    __slots__ = (
        "_error",
        "_outcome",
        "_start",
        "_telemetry",
        "attempts",
        "decision",
        "record_id",
        "request",
        "span",
        "span_id",
        "tool_name",
        "trace_id",
    )

    def __init__(self, telemetry: Telemetry, request: _Request, tool_name: str | None) -> None:
        self._telemetry = telemetry
        self.request = request
        self.tool_name = tool_name
        self.decision: _Decision | None = None
        self.span: trace.Span | None = None
        self.trace_id: str | None = None
        self.span_id: str | None = None
        self.record_id: str | None = None
        self.attempts = 0
        self._outcome: str | None = None
        self._error: BaseException | None = None
        self._start = time.perf_counter()

    def start_attributes(self) -> dict[str, str]:
        principal = self.request.principal
        attributes = {
            "handrail.action": self.request.action,
            "handrail.principal.agent": principal.agent,
        }
        if principal.on_behalf_of is not None:
            attributes["handrail.principal.on_behalf_of"] = principal.on_behalf_of.id
        if self.tool_name is not None:
            attributes["gen_ai.tool.name"] = self.tool_name
            attributes["gen_ai.operation.name"] = "execute_tool"
        return attributes

    def decided(self, decision: _Decision) -> None:
        """Record the policy's decision on the span."""
        self.decision = decision
        if self.span is not None:
            self.span.set_attribute("handrail.effect", decision.effect.value)
            self.span.set_attribute("handrail.rule_id", decision.rule_id or "")

    def finished(
        self,
        outcome: str,
        *,
        error: BaseException | None = None,
        record_id: str | None = None,
        attempts: int | None = None,
    ) -> None:
        """Record how the action ended (an audit outcome such as ``executed`` or ``denied``)."""
        self._outcome = outcome
        if error is not None:
            self._error = error
        if record_id is not None:
            self.record_id = record_id
        if attempts is not None:
            self.attempts = attempts

    def error(self, exc: BaseException) -> None:
        """Note an exception escaping the action (outcome ``failed`` unless already set)."""
        self._error = exc
        if self._outcome is None:
            self._outcome = "failed"

    def secrets(self) -> set[str]:
        """The raw secrets of the request (arguments, context, resource), to scrub from text."""
        redactor = self._telemetry.redactor
        return redactor.secrets_in(
            {"args": self.request.args, "context": self.request.context}
        ) | redactor.secrets_in(self.request.resource)

    def _redacted_message(self, exc: BaseException) -> str:
        return self._telemetry.redactor.scrub(str(exc), self.secrets())

    def close(self) -> None:
        """Finish the span, record metrics and log the event."""
        telemetry = self._telemetry
        duration = time.perf_counter() - self._start
        outcome = self._outcome or "unknown"
        decision = self.decision
        effect = decision.effect.value if decision is not None else "none"
        error = self._error
        message = self._redacted_message(error) if error is not None else None
        span = self.span
        if span is not None:
            span.set_attribute("handrail.outcome", outcome)
            if self.attempts:
                span.set_attribute("handrail.attempts", self.attempts)
            if self.record_id is not None:
                span.set_attribute("handrail.audit.record_id", self.record_id)
            if error is not None:
                span.set_attribute("error.type", type(error).__name__)
                span.add_event(
                    "exception",
                    {"exception.type": type(error).__name__, "exception.message": message or ""},
                )
                if outcome == "failed":
                    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {message}"))
        instruments = telemetry._metrics()
        if instruments is not None:
            attributes: Mapping[str, str] = {
                "handrail.action": self.request.action,
                "handrail.effect": effect,
                "handrail.outcome": outcome,
            }
            instruments.decisions.add(1, attributes)
            instruments.duration.record(duration, attributes)
        logger = telemetry.logger
        if logger is not None:
            principal = self.request.principal
            event = logger.warning if outcome == "failed" else logger.info
            event(
                "handrail.action",
                action=self.request.action,
                agent=principal.agent,
                on_behalf_of=principal.on_behalf_of.id if principal.on_behalf_of else None,
                effect=effect,
                rule_id=decision.rule_id if decision is not None else None,
                outcome=outcome,
                record_id=self.record_id,
                trace_id=self.trace_id,
                span_id=self.span_id,
                duration_ms=round(duration * 1000, 3),
                error_type=type(error).__name__ if error is not None else None,
                error=message,
            )


class _ActionContext:
    """Opens the span on enter; on exit notes any exception and closes the scope."""

    __slots__ = ("_span_context", "_token", "_tracer", "scope")

    def __init__(
        self, telemetry: Telemetry, tracer: trace.Tracer | None, scope: ActionScope
    ) -> None:
        self._tracer = tracer
        self.scope = scope
        self._span_context: AbstractContextManager[trace.Span] | None = None
        self._token: Token[ActionScope | None] | None = None

    def __enter__(self) -> ActionScope:
        scope = self.scope
        self._token = _current_scope.set(scope)
        if self._tracer is not None:
            self._span_context = self._tracer.start_as_current_span(
                "handrail.action",
                kind=SpanKind.INTERNAL,
                attributes=scope.start_attributes(),
                record_exception=False,
                set_status_on_exception=False,
            )
            span = scope.span = self._span_context.__enter__()
            context = span.get_span_context()
            scope.trace_id = format_trace_id(context.trace_id)
            scope.span_id = format_span_id(context.span_id)
        return scope

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.scope.error(exc)
        try:
            self.scope.close()
        finally:
            if self._token is not None:
                _current_scope.reset(self._token)
            if self._span_context is not None:
                self._span_context.__exit__(kind, exc, traceback)


class _NoopScope(ActionScope):
    """Stands in when nothing listens: every method does nothing, and fast."""

    __slots__ = ()

    def __init__(self) -> None:
        self.trace_id = self.span_id = self.record_id = None
        self.decision = None
        self.span = None
        self.attempts = 0

    def __enter__(self) -> ActionScope:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def decided(self, decision: _Decision) -> None:
        return None

    def finished(self, outcome: str, **_: Any) -> None:
        return None

    def error(self, exc: BaseException) -> None:
        return None

    def close(self) -> None:
        return None


_NOOP = _NoopScope()

# The innermost instrumented action of this thread or task: a retry logged
# inside it scrubs the action's secrets from its message, as the span does.
_current_scope: ContextVar[ActionScope | None] = ContextVar("handrail_action", default=None)


def _with_current_secrets(secrets: Iterable[str]) -> set[str]:
    found = set(secrets)
    scope = _current_scope.get()
    if scope is not None:
        found |= scope.secrets()
    return found


_default: Telemetry | None = None


def default_telemetry() -> Telemetry:
    """The process-wide default: OpenTelemetry's global providers, structlog's ``handrail`` logger.

    Built on first use.  Pass a ``Telemetry`` explicitly wherever handrail
    takes one to override it.
    """
    global _default  # noqa: PLW0603 - the one documented default, created lazily
    if _default is None:
        _default = Telemetry()
    return _default
