"""build_request: a front end's request from its parts, or the refusal every front end gives."""

from __future__ import annotations

import asyncio

import pytest

from handrail import (
    ActionRequest,
    ConfigurationError,
    Decision,
    Effect,
    PermissionDenied,
    Policy,
    Principal,
    Resource,
    acting_as,
)
from handrail.audit import AuditLog
from handrail.guard import Guard, build_request, current_call
from handrail.resilience import RetryPolicy
from handrail.testing import no_waits

POLICY = Policy.from_yaml(
    """
rules:
  - {id: refunds, effect: allow, actions: [billing.refund.create]}
"""
)
CLERK = Principal(agent="billing-clerk")


def test_the_request_is_built_from_the_acting_principal_and_the_parts() -> None:
    """Principal from acting_as, resource from a function of the args, context merged over it."""
    with acting_as(CLERK, context={"channel": "chat", "operation": "outer"}):
        built = build_request(
            "billing.refund.create",
            {"invoice": "inv-1", "amount": 5},
            resource=lambda invoice, **_: {"type": "invoice", "id": invoice},
            context={"operation": "billing.refund.create"},
        )
    assert isinstance(built, ActionRequest)
    assert built.principal == CLERK
    assert built.resource == Resource(type="invoice", id="inv-1")
    assert built.args == {"invoice": "inv-1", "amount": 5}
    assert built.context == {"channel": "chat", "operation": "billing.refund.create"}


def test_without_a_principal_it_is_a_refusal_the_guard_records_and_raises() -> None:
    """No principal: a DENY decision; guard.call records it denied and raises, fn never runs."""
    refused = build_request("billing.refund.create", {"invoice": "inv-1"})
    assert isinstance(refused, Decision)
    assert refused.effect is Effect.DENY
    assert "no principal" in refused.reason
    log = AuditLog.memory()
    guard = Guard(POLICY, audit=log)
    ran: list[bool] = []
    with pytest.raises(PermissionDenied, match="no principal"):
        guard.call(refused, lambda: ran.append(True))

    async def fn() -> None:
        ran.append(True)

    with pytest.raises(PermissionDenied):
        asyncio.run(guard.acall(refused, fn))
    assert ran == []
    assert [(r.outcome, r.agent) for r in log.records()] == [
        ("denied", "<no principal>"),
        ("denied", "<no principal>"),
    ]


def test_a_resource_that_cannot_be_built_refuses_the_call() -> None:
    """A resource function that raises is a refusal naming the error, never an unguarded call."""

    def broken(**_: object) -> dict[str, str]:
        raise KeyError("invoice")

    with acting_as(CLERK):
        refused = build_request("billing.refund.create", {}, resource=broken)
    assert isinstance(refused, Decision)
    assert refused.effect is Effect.DENY
    assert "could not build the request: KeyError" in refused.reason
    with pytest.raises(ConfigurationError, match="not a dotted name"):
        build_request("not an action", {})


def test_a_decision_that_is_not_a_refusal_is_never_a_way_round_the_policy() -> None:
    """An ALLOW Decision handed to call or check is a ConfigurationError; nothing runs."""
    with acting_as(CLERK):
        request = build_request("billing.refund.create", {})
    assert isinstance(request, ActionRequest)
    forged = Decision(Effect.ALLOW, "trust me", request)
    guard = Guard(Policy.from_yaml("rules: []"))
    with pytest.raises(ConfigurationError, match="only a refusal"):
        guard.call(forged, lambda: None)
    with pytest.raises(ConfigurationError, match="only a refusal"):
        guard.check(forged)


def test_retry_false_leaves_the_retrying_to_fn_and_records_its_attempts() -> None:
    """retry=False: fn is called once; the attempts it reports are the record's attempts."""
    log = AuditLog.memory()
    guard = Guard(POLICY, audit=log, retry=RetryPolicy(attempts=3))
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        progress = current_call()
        assert progress is not None
        progress.attempted()
        progress.attempted()  # e.g. a request that was sent twice
        raise ConnectionError("down")

    with acting_as(CLERK):
        request = build_request("billing.refund.create", {})
    assert isinstance(request, ActionRequest)
    with no_waits(), pytest.raises(ConnectionError):
        guard.call(request, fn, retry=False)
    assert calls == [1]
    [record] = log.records()
    assert (record.outcome, record.attempts) == ("failed", 2)
    with no_waits(), pytest.raises(ConnectionError):
        guard.call(request, fn)  # the guard's own retries: three calls of fn
    assert len(calls) == 4
