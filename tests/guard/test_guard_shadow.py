"""Shadow mode in the Guard: reads run, writes are recorded as intents and never executed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from handrail import Policy, Principal, acting_as
from handrail.audit import AuditLog
from handrail.escalation import CallableChannel, EscalationRouter, Level, MemoryStore, Route
from handrail.guard import Guard
from handrail.shadow import (
    SHADOW_ENV,
    ShadowIntercepted,
    ShadowRequest,
    ShadowResult,
    in_shadow,
)
from handrail.testing import FakeClock

POLICY = Policy.from_yaml(
    """
rules:
  - {id: crm, effect: allow, actions: ["crm.*.*"]}
"""
)
BOT = Principal(agent="sales-bot")


class Tools:
    def __init__(self, guard: Guard) -> None:
        self.ran: list[str] = []

        @guard.protect("crm.contact.read")
        def read(contact_id: str) -> str:
            self.ran.append(f"read {contact_id}")
            return contact_id

        @guard.protect("crm.contact.update", is_write=True, idempotent=True)
        def update(contact_id: str, phone: str, token: SecretStr) -> str:
            self.ran.append(f"update {contact_id}")
            return phone

        @guard.protect("crm.contact.update", is_write=True, shadow_aware=True)
        def send(contact_id: str, phone: str) -> str:
            if in_shadow():  # what a transport does at the last moment
                raise ShadowIntercepted(
                    ShadowRequest(
                        method="PATCH", url=f"https://crm/{contact_id}", body={"phone": phone}
                    )
                )
            self.ran.append(f"send {contact_id}")
            return phone

        @guard.protect("crm.contact.update", is_write=True)
        async def aupdate(contact_id: str) -> str:
            self.ran.append(f"aupdate {contact_id}")
            return contact_id

        self.read, self.update, self.send, self.aupdate = read, update, send, aupdate


def test_writes_are_recorded_not_run_and_reads_run() -> None:
    log = AuditLog.memory()
    tools = Tools(Guard(POLICY, audit=log, shadow=True))
    with acting_as(BOT):
        assert tools.read("c-1") == "c-1"
        result = tools.update("c-1", phone="+1 555", token=SecretStr("sek-123456"))
    assert isinstance(result, ShadowResult)
    assert not result.executed
    assert result.args == {"contact_id": "c-1", "phone": "+1 555", "token": "***"}
    assert result.idempotency_key is not None
    assert tools.ran == ["read c-1"]
    records = list(log.records())
    assert [r.outcome for r in records] == ["executed", "shadowed"]
    assert records[1].id == result.record_id
    assert "sek-123456" not in records[1].to_json()


def test_a_shadow_aware_write_stops_at_its_transport_and_keeps_the_request() -> None:
    log = AuditLog.memory()
    tools = Tools(Guard(POLICY, audit=log, shadow=True))
    with acting_as(BOT):
        result = tools.send("c-2", phone="+1 555")
    assert isinstance(result, ShadowResult)
    assert result.request == ShadowRequest(
        method="PATCH", url="https://crm/c-2", body={"phone": "+1 555"}
    )
    assert tools.ran == []
    record = list(log.records())[-1]
    assert record.details is not None
    assert record.details["shadow_request"]["method"] == "PATCH"


def test_the_environment_switches_guards_without_an_explicit_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tools = Tools(Guard(POLICY))
    explicit = Tools(Guard(POLICY, shadow=False))
    monkeypatch.setenv(SHADOW_ENV, "1")
    with acting_as(BOT):
        assert isinstance(tools.update("c-1", "1", SecretStr("x")), ShadowResult)
        assert explicit.update("c-1", "1", SecretStr("x")) == "1"
        monkeypatch.setenv(SHADOW_ENV, "0")
        assert tools.update("c-1", "2", SecretStr("x")) == "2"
    assert tools.ran == ["update c-1"]


def test_async_writes_are_shadowed_too() -> None:
    tools = Tools(Guard(POLICY, shadow=True))

    async def main() -> object:
        with acting_as(BOT):
            return await tools.aupdate("c-3")

    assert isinstance(asyncio.run(main()), ShadowResult)
    assert tools.ran == []


def test_a_denied_write_is_denied_not_shadowed() -> None:
    log = AuditLog.memory()
    guard = Guard(Policy.from_yaml("rules: []"), audit=log, shadow=True)
    tools = Tools(guard)
    with acting_as(BOT), pytest.raises(Exception, match="denied"):
        tools.update("c-1", "1", SecretStr("x"))
    assert [r.outcome for r in log.records()] == ["denied"]


def test_an_escalated_write_in_shadow_mode_touches_no_human(tmp_path: Path) -> None:
    """The regression: shadow mode opened a real case and notified the approvers.

    Now no case is opened, no channel hears of it, and the write is recorded
    ``shadowed`` with the route, level and deciders that would have been asked;
    ``handrail shadow report`` shows it.  Sync and async alike.
    """
    policy = Policy.from_yaml(
        """
rules:
  - {id: refunds, effect: allow, actions: [billing.refund.create]}
  - {id: big, effect: escalate, actions: [billing.refund.create],
     when: {args.amount: {gt: 100}}, escalate_to: leads}
"""
    )
    sent: list[object] = []
    inbox = CallableChannel(sent.append, name="inbox")
    leads = Route(
        name="leads",
        levels=[
            Level(deciders=["lena", "li"], notify=["inbox"], resolve_within=timedelta(hours=1))
        ],
    )
    log = AuditLog.jsonl(tmp_path / "audit.jsonl")
    router = EscalationRouter(
        [leads], MemoryStore(), channels=[inbox], clock=FakeClock(), audit=log
    )
    guard = Guard(policy, audit=log, escalations=router, shadow=True)
    ran: list[int] = []

    @guard.protect("billing.refund.create", is_write=True)
    def refund(invoice: str, amount: int) -> str:
        ran.append(amount)
        return "refund-1"

    @guard.protect("billing.refund.create", is_write=True)
    async def arefund(invoice: str, amount: int) -> str:
        ran.append(amount)
        return "refund-2"

    with acting_as(BOT):
        shadowed = refund("inv-1", 250_000)
        ashadowed = asyncio.run(arefund("inv-1", 400))
    router.tick()
    assert ran == []
    assert router.list() == []
    assert sent == []
    for result in (shadowed, ashadowed):
        assert isinstance(result, ShadowResult)
        assert result.escalation is not None
        assert (result.escalation["route"], result.escalation["deciders"]) == (
            "leads",
            ["lena", "li"],
        )
    records = list(log.records())
    assert [r.outcome for r in records] == ["shadowed", "shadowed"]
    assert all(r.details and r.details["escalation"]["level"] == 0 for r in records)
    log.close()
    out = subprocess.run(
        [sys.executable, "-m", "handrail", "shadow", "report", str(tmp_path / "audit.jsonl")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "would escalate to leads (lena, li)" in out
