"""Shared builders for the audit tests: principals, a policy, decisions, and filled logs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest

from handrail import ActionRequest, Decision, Policy, Principal, Rule
from handrail.audit import AuditEntry, AuditLog, AuditRecord
from handrail.testing import FakeClock

BOT = Principal(agent="billing-bot", roles=frozenset({"billing"}))
ALICE = Principal(
    agent="billing-bot",
    roles=frozenset({"billing"}),
    on_behalf_of={"id": "alice", "roles": ["billing"]},
)
POLICY = Policy(
    [
        Rule(id="invoices.edit", effect="allow", actions=["billing.invoice.update"],
             principals={"roles": ["billing"]}, description="billing edits invoices"),
        Rule(id="refunds.large", effect="escalate", actions=["billing.refund.create"],
             when={"args.amount": {"gt": 1_000}}, escalate_to="finance"),
        Rule(id="refunds", effect="audit", actions=["billing.refund.create"],
             principals={"roles": ["billing"]}),
    ]
)  # fmt: skip


def decide(
    action: str = "billing.invoice.update",
    args: Mapping[str, Any] | None = None,
    *,
    principal: Principal = BOT,
    resource: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    """The example policy's decision on one request."""
    request = ActionRequest(
        principal=principal,
        action=action,
        resource=resource,
        args=args or {},
        context=context or {},
    )
    return POLICY.evaluate(request)


def fill(log: AuditLog, count: int, *, start: int = 0) -> list[AuditRecord]:
    """Append ``count`` varied records (every outcome and shape) and return them."""
    records = []
    for i in range(start, start + count):
        kind = i % 4
        if kind == 0:
            decision = decide(args={"invoice_id": f"inv-{i}", "amount": i * 10})
            records.append(
                log.append(AuditEntry.for_decision(decision, duration=dt.timedelta(milliseconds=i)))
            )
        elif kind == 1:
            decision = decide("billing.refund.create", {"amount": 5_000 + i}, principal=ALICE)
            records.append(log.append(AuditEntry.for_decision(decision, escalation_id=f"esc-{i}")))
        elif kind == 2:
            decision = decide("crm.contact.delete", {"contact_id": f"c-{i}"})
            records.append(log.append(AuditEntry.for_decision(decision)))
        else:
            records.append(
                log.append(
                    AuditEntry.of(
                        BOT,
                        "billing.invoice.update",
                        "failed",
                        resource={"type": "invoice", "id": f"inv-{i}"},
                        args={"amount": 1.5, "tags": ["a", "é"], "nested": {"k": None}},
                        error=TimeoutError(f"upstream timed out after {i} s"),
                        attempts=3,
                        idempotency_key=f"key-{i}",
                        details={"pages": 2, "records": i, "quarantined": 0},
                    )
                )
            )
    return records


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test moves it."""
    return FakeClock()
