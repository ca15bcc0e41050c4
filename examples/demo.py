"""A tour of a real policy: what the sales assistant may do, and why.

Loads ``policies/crm-agent.yaml``, decides a dozen requests the assistant
makes for Acme's sales staff, explains one decision in full, and runs the
policy's own test cases.  Then runs three of the assistant's tools behind a
``Guard`` against a flaky CRM, writing an audit log, and verifies the log's
hash chain at the end.  Run it from the repository root::

    .venv/bin/python examples/demo.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from handrail import (
    ActionRequest,
    Decision,
    EscalationRequired,
    Guard,
    PermissionDenied,
    Policy,
    Principal,
    Resource,
    User,
    acting_as,
)
from handrail.audit import AuditLog
from handrail.policy import PolicyCases
from handrail.resilience import RetryPolicy

POLICIES = Path(__file__).resolve().parent / "policies"

PEOPLE = {
    "alice": User(id="alice", roles=frozenset({"sales_rep"}), groups=frozenset({"sales"})),
    "maya": User(id="maya", roles=frozenset({"sales_manager"}), groups=frozenset({"sales"})),
    "ivan": User(id="ivan", roles=frozenset({"sales_intern"}), groups=frozenset({"sales"})),
    "carl": User(
        id="carl", roles=frozenset({"sales_rep"}), groups=frozenset({"sales", "contractors"})
    ),
}


def request(
    user: str,
    action: str,
    resource: tuple[str, str] | None = None,
    *,
    region: str | None = None,
    environment: str = "production",
    **args: Any,
) -> ActionRequest:
    """A request from the sales assistant acting for one of the people above."""
    return ActionRequest(
        principal=Principal(agent="sales-assistant", on_behalf_of=PEOPLE[user]),
        action=action,
        resource=None
        if resource is None
        else Resource(
            type=resource[0], id=resource[1], attributes={"region": region} if region else {}
        ),
        args=args,
        context={"environment": environment},
    )


REQUESTS = [
    request("alice", "crm.contact.read", ("contact", "c-1"), region="us"),
    request("alice", "crm.contact.read", ("contact", "c-7"), region="eu"),
    request("ivan", "crm.contact.update", ("contact", "c-1"), phone="+1 415 555 0100"),
    request("alice", "crm.opportunity.update", ("opportunity", "opp-9"), stage="negotiation"),
    request("alice", "crm.opportunity.update", ("opportunity", "opp-9"), discount_pct=35),
    request("carl", "crm.opportunity.update", ("opportunity", "opp-9"), discount_pct=5),
    request("maya", "crm.contact.delete", ("contact", "c-1")),
    request("alice", "email.send", to_domain="acme.com"),
    request("alice", "email.send", to_domain="globex.com"),
    request("ivan", "email.send", to_domain="globex.com"),
    request("alice", "email.send", to_domain="mailinator.com"),
    request("maya", "crm.contact.export", environment="production"),
]


def details(req: ActionRequest) -> str:
    """The arguments and attributes that decide this request, as ``key=value``."""
    shown: dict[str, Any] = dict(req.args)
    if req.resource is not None:
        shown.update(req.resource.attributes)
    if req.action.endswith(".export"):
        shown["env"] = req.context["environment"]
    return " ".join(f"{key}={value}" for key, value in shown.items()) or "-"


def who(req: ActionRequest) -> str:
    """``agent for user``."""
    user = req.principal.on_behalf_of
    return req.principal.agent if user is None else f"{req.principal.agent} for {user.id}"


def table(decisions: list[Decision]) -> list[str]:
    """The decisions as aligned columns, each with its reason on the line below."""
    header = ("who", "action", "details", "effect", "deciding rule")
    rows = [
        (
            who(d.request),
            d.request.action,
            details(d.request),
            d.effect.value.upper(),
            d.rule_id or "(default deny)",
        )
        for d in decisions
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    lines = [line(header).rstrip(), line(tuple("-" * w for w in widths))]
    for row, decision in zip(rows, decisions, strict=True):
        lines.append(line(row).rstrip())
        lines.append(f"    why: {decision.reason}")
    return lines


class FlakyCRM:
    """Stands in for the CRM's API: the first write answers 503, as real ones do."""

    def __init__(self) -> None:
        self.calls = 0

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            request = httpx.Request("PATCH", f"https://crm.example.com{path}")
            response = httpx.Response(503, request=request)
            raise httpx.HTTPStatusError(
                "503 Service Unavailable", request=request, response=response
            )
        return {"path": path, **body}


def guarded_tools(policy: Policy, log_path: Path) -> bool:
    """Run three tools behind a Guard, then verify the audit log they wrote."""
    crm = FlakyCRM()

    def contact(contact_id: str, **_: Any) -> dict[str, str]:
        return {"type": "contact", "id": contact_id}

    with AuditLog.jsonl(log_path, fsync="batch") as log:
        guard = Guard(policy, audit=log, retry=RetryPolicy(attempts=3))

        @guard.protect("crm.contact.update", resource=contact, is_write=True, idempotency_key=True)
        def update_contact(contact_id: str, phone: str) -> dict[str, Any]:
            return crm.patch(f"/contacts/{contact_id}", {"phone": phone})

        @guard.protect("crm.opportunity.update", is_write=True, idempotency_key=True)
        def update_opportunity(opportunity_id: str, discount_pct: float) -> dict[str, Any]:
            return crm.patch(f"/opportunities/{opportunity_id}", {"discount_pct": discount_pct})

        @guard.protect("crm.contact.delete", resource=contact)
        def delete_contact(contact_id: str) -> None:
            raise AssertionError("never runs: deletes are denied")

        with acting_as(Principal(agent="sales-assistant", on_behalf_of=PEOPLE["alice"])):
            update_contact("c-1", phone="+1 415 555 0100")
            try:
                update_opportunity("opp-9", discount_pct=35)
            except EscalationRequired as exc:
                print(f"  escalated to {exc.decision.escalate_to}: {exc.decision.rule_id}")
            try:
                delete_contact("c-1")
            except PermissionDenied as exc:
                print(f"  denied: {exc.decision.rule_id}")

    with AuditLog.open(log_path, read_only=True) as log:
        for record in log.records():
            print(
                f"  {record.seq}  {record.action:<23} {record.outcome:<9} "
                f"rule={record.rule_id}  attempts={record.attempts}  hash={record.hash[:12]}…"
            )
        report = log.verify()
    print(f"  audit log {log_path.name}: {report.message}")
    print(f"  (from a shell: handrail audit verify {log_path.name})")
    return report.ok


def main() -> int:
    """Print the tour; exit 1 if the policy's own test cases fail."""
    policy = Policy.from_file(POLICIES / "crm-agent.yaml")
    print(f"policy {policy.name!r}: {len(policy.rules)} rules, {policy.description}")
    print()
    for text in table([policy.evaluate(r) for r in REQUESTS]):
        print(text)

    print()
    print("Why may ivan, an intern, not email a customer when the assistant may?")
    print(policy.explain(REQUESTS[9]))

    cases = PolicyCases.from_file(POLICIES / "crm-agent.tests.yaml")
    report = cases.run(policy)
    print()
    print(
        f"policy tests: {len(report.results)} cases, {len(report.failures)} failed; "
        f"rule coverage {len(report.covered_rules)}/{len(report.rule_ids)} ({report.coverage:.0%})"
    )
    if not report.passed:
        print(report)

    print()
    print("The tools behind a Guard (the CRM fails the first write with 503; it is retried):")
    with tempfile.TemporaryDirectory() as directory:
        verified = guarded_tools(policy, Path(directory) / "audit.jsonl")
    return 0 if report.passed and verified else 1


if __name__ == "__main__":
    sys.exit(main())
