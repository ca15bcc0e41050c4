"""capture_telemetry: a test's spans, metric points and log events, in memory, nothing global."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta

import pytest
import structlog
from opentelemetry import trace
from pydantic import SecretStr

from handrail import ActionRequest, Policy, Principal, Rule
from handrail.redaction import Redactor
from handrail.telemetry import Telemetry, default_telemetry
from handrail.testing import MetricPoint, capture_telemetry

REQUEST = ActionRequest(
    principal=Principal(agent="sales-bot", on_behalf_of="alice"),
    action="crm.contact.update",
    args={"contact_id": "c-1"},
)
POLICY = Policy([Rule(id="update", effect="allow", actions=("crm.contact.update",))])


def act(telemetry: Telemetry, outcome: str = "executed") -> None:
    """One instrumented action through ``telemetry``, decided by POLICY."""
    with telemetry.action(REQUEST) as scope:
        scope.decided(POLICY.evaluate(REQUEST))
        scope.finished(outcome, record_id="rec-1")


def test_an_action_is_one_span_its_metric_points_and_one_event() -> None:
    """The span, the decision counter, the duration histogram and the log event, all captured."""
    with capture_telemetry() as captured:
        act(captured.telemetry)
    (span,) = captured.spans
    assert span.name == "handrail.action"
    assert dict(span.attributes or {})["handrail.outcome"] == "executed"
    assert captured.points("handrail.decisions") == [
        MetricPoint(
            "handrail.decisions",
            {
                "handrail.action": "crm.contact.update",
                "handrail.effect": "allow",
                "handrail.outcome": "executed",
            },
            1,
        )
    ]
    (duration,) = captured.points("handrail.action.duration")
    assert duration.value == 1  # one measurement recorded
    assert duration.sum is not None
    assert duration.sum >= 0
    (event,) = captured.events
    assert (event["event"], event["log_level"]) == ("handrail.action", "info")
    assert event["trace_id"] == f"{span.context.trace_id:032x}"
    assert event["record_id"] == "rec-1"


def test_counters_add_up_and_stay_readable_after_the_block() -> None:
    """Points are cumulative while the block runs and frozen, still readable, once it ends."""
    with capture_telemetry() as captured:
        act(captured.telemetry)
        act(captured.telemetry)
        assert [p.value for p in captured.points("handrail.decisions")] == [2]
        act(captured.telemetry, "denied")
    by_outcome = {
        p.attributes["handrail.outcome"]: p.value for p in captured.points("handrail.decisions")
    }
    assert by_outcome == {"executed": 2, "denied": 1}
    assert len(captured.spans) == 3
    assert len(captured.events) == 3
    assert "3 spans" in repr(captured)


def test_resilience_events_are_captured_with_their_level() -> None:
    """A retry is a warning event and a counter; a breaker transition too."""
    with capture_telemetry() as captured:
        captured.telemetry.retry_attempted(
            action="crm.contact.read", attempt=2, error=TimeoutError("slow"), wait=timedelta(0)
        )
        captured.telemetry.breaker_transitioned(name="crm", old="closed", new="open")
    assert [(e["event"], e["log_level"]) for e in captured.events] == [
        ("handrail.retry", "warning"),
        ("handrail.circuit_breaker", "warning"),
    ]
    assert [p.name for p in captured.metrics] == [
        "handrail.retries",
        "handrail.circuit_breaker.transitions",
    ]


def test_a_callers_span_can_surround_the_code_under_test() -> None:
    """tracer_provider is the block's own: a span started from it is the action's parent."""
    with capture_telemetry() as captured:
        tracer = captured.tracer_provider.get_tracer("test")
        with tracer.start_as_current_span("agent-step") as step:
            act(captured.telemetry)
    action, outer = captured.spans
    assert (action.name, outer.name) == ("handrail.action", "agent-step")
    assert action.parent is not None
    assert action.parent.span_id == step.get_span_context().span_id


def test_the_redactor_given_scrubs_what_is_captured() -> None:
    """A secret in the request never reaches a captured span or event, masked as told."""
    request = REQUEST.model_copy(update={"args": {"api_key": SecretStr("sk-live-abcdef")}})
    with (
        capture_telemetry(redactor=Redactor(mask="[hidden]")) as captured,
        pytest.raises(RuntimeError),
        captured.telemetry.action(request),
    ):
        raise RuntimeError("CRM rejected key sk-live-abcdef")
    (span,) = captured.spans
    assert "sk-live-abcdef" not in span.to_json()
    assert "sk-live-abcdef" not in repr(captured.events)
    assert captured.events[0]["error"] == "CRM rejected key [hidden]"


def test_nothing_global_changes(capsys: pytest.CaptureFixture[str]) -> None:
    """structlog stays unconfigured, no global provider is set, and nothing is printed."""
    structlog.reset_defaults()
    provider = trace.get_tracer_provider()
    with capture_telemetry() as captured:
        act(captured.telemetry)
    assert not structlog.is_configured()
    assert trace.get_tracer_provider() is provider
    assert default_telemetry().tracer() is None
    assert capsys.readouterr() == ("", "")


def test_events_are_captured_whatever_structlog_is_configured_to() -> None:
    """A global filter at ERROR, or a printing logger, changes nothing in the capture."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    with capture_telemetry() as captured:
        act(captured.telemetry)
    assert [e["event"] for e in captured.events] == ["handrail.action"]


def test_a_missing_sdk_is_an_import_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the OpenTelemetry SDK, the block refuses to start and says what to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ImportError, match=r"pip install opentelemetry-sdk"), capture_telemetry():
        pytest.fail("the block must not run")  # pragma: no cover


def test_importing_handrail_testing_needs_no_sdk() -> None:
    """The SDK is a test dependency: handrail.testing imports without it, and never loads it."""
    code = (
        "import sys\n"
        "sys.modules['opentelemetry.sdk'] = None\n"
        "import handrail.testing\n"
        "from handrail.testing import capture_telemetry\n"
        "try:\n"
        "    with capture_telemetry(): pass\n"
        "except ImportError as error:\n"
        "    print('refused:', error)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("refused: capture_telemetry() needs the OpenTelemetry SDK")
