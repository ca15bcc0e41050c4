"""Spans, metrics and log events for guarded actions, against the real OpenTelemetry SDK."""

from __future__ import annotations

import string
from datetime import timedelta

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import StatusCode
from pydantic import SecretStr

from handrail import ActionRequest, Policy, Principal, Rule
from handrail.telemetry import Telemetry, default_telemetry
from handrail.testing import CapturedTelemetry, capture_telemetry

REQUEST = ActionRequest(
    principal=Principal(agent="sales-bot", on_behalf_of="alice"),
    action="crm.contact.update",
    args={"contact_id": "c-1"},
)
POLICY = Policy([Rule(id="update", effect="allow", actions=("crm.contact.update",))])


def test_one_span_per_action(captured: CapturedTelemetry) -> None:
    """An action is one `handrail.action` span carrying who, what, the decision and outcome."""
    with captured.telemetry.action(REQUEST, tool_name="update_contact") as scope:
        scope.decided(POLICY.evaluate(REQUEST))
        scope.finished("executed", record_id="01J0000000", attempts=2)
    (span,) = captured.spans
    assert span.name == "handrail.action"
    assert dict(span.attributes or {}) == {
        "handrail.action": "crm.contact.update",
        "handrail.principal.agent": "sales-bot",
        "handrail.principal.on_behalf_of": "alice",
        "gen_ai.tool.name": "update_contact",
        "gen_ai.operation.name": "execute_tool",
        "handrail.effect": "allow",
        "handrail.rule_id": "update",
        "handrail.outcome": "executed",
        "handrail.attempts": 2,
        "handrail.audit.record_id": "01J0000000",
    }
    assert scope.trace_id == f"{span.context.trace_id:032x}"
    assert scope.span_id == f"{span.context.span_id:016x}"


def test_metrics_count_decisions_and_durations(captured: CapturedTelemetry) -> None:
    """Decisions are counted by effect and outcome, and durations recorded."""
    for outcome in ("executed", "executed", "denied"):
        with captured.telemetry.action(REQUEST) as scope:
            scope.decided(POLICY.evaluate(REQUEST))
            scope.finished(outcome)
    counts = {
        point.attributes["handrail.outcome"]: point.value
        for point in captured.points("handrail.decisions")
    }
    assert counts == {"executed": 2, "denied": 1}
    durations = captured.points("handrail.action.duration")
    assert sum(point.value for point in durations) == 3  # a histogram's value: its count


def test_exception_marks_span_failed_without_secrets(captured: CapturedTelemetry) -> None:
    """An escaping exception fails the span; its message is scrubbed of the request's secrets."""
    request = REQUEST.model_copy(update={"args": {"api_key": SecretStr("sk-live-abcdef")}})
    with pytest.raises(RuntimeError), captured.telemetry.action(request):
        raise RuntimeError("CRM rejected key sk-live-abcdef")
    (span,) = captured.spans
    assert span.status.status_code is StatusCode.ERROR
    assert "sk-live-abcdef" not in str(span.status.description)
    (event,) = span.events
    assert dict(event.attributes or {})["exception.message"] == "CRM rejected key ***"
    assert dict(span.attributes or {})["handrail.outcome"] == "failed"


def test_retries_and_breaker_transitions_are_counted(captured: CapturedTelemetry) -> None:
    """Retries and circuit-breaker transitions have their own counters."""
    captured.telemetry.retry_attempted(
        action="crm.contact.read", attempt=2, error=TimeoutError("slow"), wait=timedelta(seconds=1)
    )
    captured.telemetry.breaker_transitioned(name="crm", old="closed", new="open")
    assert [(p.attributes, p.value) for p in captured.points("handrail.retries")] == [
        ({"handrail.action": "crm.contact.read", "error.type": "TimeoutError"}, 1)
    ]
    transitions = captured.points("handrail.circuit_breaker.transitions")
    assert [(p.attributes, p.value) for p in transitions] == [
        (
            {
                "handrail.circuit_breaker.name": "crm",
                "handrail.circuit_breaker.from": "closed",
                "handrail.circuit_breaker.to": "open",
            },
            1,
        )
    ]


def test_retry_inside_an_action_is_a_span_event(captured: CapturedTelemetry) -> None:
    """A retry during an action shows up as an event on its span."""
    with captured.telemetry.action(REQUEST) as scope:
        captured.telemetry.retry_attempted(
            action=REQUEST.action, attempt=2, error=OSError("reset"), wait=timedelta(0)
        )
        scope.finished("executed")
    (span,) = captured.spans
    assert [e.name for e in span.events] == ["handrail.retry"]


def test_log_events_carry_the_span_ids(captured: CapturedTelemetry) -> None:
    """The structlog event names the same trace, span and record ids as the span."""
    with captured.telemetry.action(REQUEST) as scope:
        scope.decided(POLICY.evaluate(REQUEST))
        scope.finished("executed", record_id="rec-1")
    (event,) = captured.events
    assert event["event"] == "handrail.action"
    assert event["trace_id"] == scope.trace_id
    assert event["span_id"] == scope.span_id
    assert event["record_id"] == "rec-1"
    assert event["outcome"] == "executed"
    assert event["on_behalf_of"] == "alice"


def test_quiet_until_structlog_is_configured(capsys: pytest.CaptureFixture[str]) -> None:
    """With structlog unconfigured, handrail prints nothing."""
    structlog.reset_defaults()
    telemetry = Telemetry()
    assert telemetry.logger is None
    with telemetry.action(REQUEST) as scope:
        scope.finished("executed")
    telemetry.retry_attempted(action=None, attempt=2, error=OSError(), wait=timedelta(0))
    assert capsys.readouterr() == ("", "")


def test_no_sdk_is_a_no_op() -> None:
    """Without an SDK or structlog configuration, an action yields a shared no-op scope."""
    telemetry = Telemetry()
    with telemetry.action(REQUEST) as first, telemetry.action(REQUEST) as second:
        first.decided(POLICY.evaluate(REQUEST))
        first.finished("executed")
    assert first is second
    assert first.trace_id is None
    assert telemetry.tracer() is None


def test_default_telemetry_is_one_object() -> None:
    """default_telemetry() builds the default once."""
    assert default_telemetry() is default_telemetry()


# A fixed prefix keeps a generated secret from being a substring of handrail's
# own attribute names; ASCII without quotes or backslashes survives JSON as is,
# so a leak cannot hide behind escaping.
_SECRET_CHARS = "".join(c for c in string.printable if c not in "\"'\\*" and not c.isspace())


@settings(max_examples=50, deadline=None)
@given(secret=st.text(_SECRET_CHARS, min_size=8, max_size=30).map(lambda s: f"s3cr3t-{s}"))
def test_no_secret_reaches_spans_or_logs(secret: str) -> None:
    """A secret in the request's args never appears in span attributes, events or log events."""
    request = REQUEST.model_copy(
        update={"args": {"password": secret, "nested": {"token": SecretStr(secret)}}}
    )
    with (
        capture_telemetry() as captured,
        pytest.raises(ValueError, match="bad credentials"),
        captured.telemetry.action(request),
    ):
        raise ValueError(f"bad credentials: {secret}")
    (span,) = captured.spans
    (event,) = captured.events
    dumped = span.to_json() + repr(captured.events)
    assert event["event"] == "handrail.action"
    assert secret not in dumped
