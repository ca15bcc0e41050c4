"""Call shapes of Guard, the audit trail and telemetry, for mypy --strict (never executed)."""

from datetime import timedelta
from pathlib import Path
from typing import assert_type

from handrail import ActionRequest, Decision, Guard, Policy, Principal, Resource, audited
from handrail.audit import (
    AuditEntry,
    AuditLog,
    AuditRecord,
    Checkpoint,
    Outcome,
    VerifyReport,
)
from handrail.resilience import CircuitBreakers, RetryPolicy
from handrail.telemetry import ActionScope, Telemetry, default_telemetry

policy = Policy.from_file("policy.yaml")
log = AuditLog.jsonl(Path("audit.jsonl"), fsync="batch")
assert_type(log.verify(), VerifyReport)
assert_type(log.checkpoint(), Checkpoint)
guard = Guard(policy, audit=log, retry=RetryPolicy(), breakers=CircuitBreakers())


@guard.protect("crm.contact.update", is_write=True, idempotent=True, breaker="crm")
def update(contact_id: str, phone: str) -> dict[str, str]:
    return {"id": contact_id, "phone": phone}


@guard.protect("crm.contact.read")
async def read(contact_id: str) -> int:
    return 1


@audited(log, action="reports.build")
def build(day: str) -> bytes:
    return b""


request = ActionRequest(principal=Principal(agent="bot"), action="crm.contact.read")
record = log.append(AuditEntry.for_decision(policy.evaluate(request)))
assert_type(record, AuditRecord)
entry = AuditEntry.of(
    Principal(agent="bot"),
    "crm.contact.list",
    Outcome.EXECUTED,
    resource=Resource(type="contact"),
    duration=timedelta(milliseconds=3),
    details={"pages": 3, "records": 57},
)
assert_type(entry, AuditEntry)
assert_type(AuditEntry.for_decision(policy.evaluate(request), "shadowed", attempts=0), AuditEntry)
assert_type(log.ensure_writable(), None)
assert_type(default_telemetry(), Telemetry)


async def use() -> None:
    assert_type(await log.aappend(entry), AuditRecord)
    assert_type(update("c-1", phone="+1"), dict[str, str])
    assert_type(await read("c-1"), int)
    assert_type(build("2026-11-25"), bytes)
    with default_telemetry().action(request) as scope:
        assert_type(scope, ActionScope)


# The step API an adapter drives.
step_request = ActionRequest(principal=Principal(agent="bot"), action="crm.contact.read")
assert_type(guard.check(step_request), Decision)
assert_type(guard.call(step_request, lambda: 3, key="call-1", external_id="call-1"), int)


async def _adapter() -> None:
    async def fetch() -> str:
        return "x"

    assert_type(await guard.acall(step_request, fetch), str)
    assert_type(await guard.acheck(step_request), Decision)
