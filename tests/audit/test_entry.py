"""AuditEntry: one frozen type for every record, and the two helpers that build it."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

import pytest

from handrail import Effect, Principal
from handrail.audit import AuditEntry, AuditLog, Outcome
from handrail.audit._entry import _Fields

from .conftest import ALICE, BOT, decide


def test_of_takes_the_agent_and_user_from_the_principal() -> None:
    """AuditEntry.of fills agent and on_behalf_of from the principal; the rest are keywords."""
    entry = AuditEntry.of(ALICE, "billing.invoice.update", "executed", attempts=2)
    assert (entry.agent, entry.on_behalf_of) == ("billing-bot", "alice")
    assert (entry.action, entry.outcome, entry.attempts) == (
        "billing.invoice.update",
        "executed",
        2,
    )
    assert AuditEntry.of(BOT, "a.b", Outcome.DENIED).on_behalf_of is None


def test_of_refuses_what_is_not_a_principal() -> None:
    """A principal given as a name or None is a TypeError naming the type."""
    with pytest.raises(TypeError, match="principal must be a Principal, got str"):
        AuditEntry.of("billing-bot", "a.b", "executed")  # type: ignore[arg-type]


def test_for_decision_takes_the_request_and_the_decision() -> None:
    """for_decision records the request's parts and the decision's effect, rule and reason."""
    decision = decide(
        args={"invoice_id": "inv-7"},
        principal=ALICE,
        resource={"type": "invoice", "id": "inv-7"},
        context={"channel": "slack"},
    )
    entry = AuditEntry.for_decision(decision, attempts=3)
    request = decision.request
    assert entry.action == request.action
    assert (entry.agent, entry.on_behalf_of) == ("billing-bot", "alice")
    assert (entry.resource, entry.args, entry.context) == (
        request.resource,
        request.args,
        request.context,
    )
    assert (entry.effect, entry.rule_id, entry.reason) == (
        decision.effect,
        decision.rule_id,
        decision.reason,
    )
    assert entry.attempts == 3


def test_for_decision_keywords_win_over_the_decision() -> None:
    """A field given as a keyword replaces the one the decision would give."""
    entry = AuditEntry.for_decision(decide(args={"amount": 1}), args={"amount": 2}, reason="why")
    assert (entry.args, entry.reason, entry.rule_id) == ({"amount": 2}, "why", "invoices.edit")


def test_for_decision_error_makes_a_grant_failed() -> None:
    """Without an outcome, an allowed call with an error is failed; with one, it is kept."""
    assert AuditEntry.for_decision(decide(), error=OSError("x")).outcome is Outcome.FAILED
    assert AuditEntry.for_decision(decide(), "shadowed", error=OSError("x")).outcome == "shadowed"


@dataclasses.dataclass(frozen=True)
class Thing:
    type: str
    id: str | None
    attributes: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Request:
    principal: Principal
    action: str
    resource: Thing | None
    args: Mapping[str, Any]
    context: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Verdict:
    effect: Effect
    rule_id: str | None
    reason: str
    request: Request


def test_any_decision_shaped_object_will_do() -> None:
    """for_decision reads a decision structurally: audit needs no policy to record one."""
    request = Request(BOT, "crm.contact.read", Thing("contact", "c-1", {"vip": True}), {}, {})
    record = AuditLog.memory().append(
        AuditEntry.for_decision(Verdict(Effect.DENY, "no-crm", "not today", request))
    )
    assert record.outcome is Outcome.DENIED
    assert record.resource == {"type": "contact", "id": "c-1", "attributes": {"vip": True}}
    assert (record.effect, record.rule_id, record.reason) == (Effect.DENY, "no-crm", "not today")


def test_an_entry_cannot_be_changed() -> None:
    """Entries are immutable: a changed copy is a new entry."""
    entry = AuditEntry.of(BOT, "a.b", "executed")
    with pytest.raises(AttributeError):
        entry.action = "c.d"  # type: ignore[misc]
    assert entry._replace(action="c.d").action == "c.d"
    assert entry.action == "a.b"


def test_the_helpers_take_every_field_but_the_ones_they_fill() -> None:
    """The keywords of of/for_decision are exactly the entry's fields after the principal's."""
    filled = ["action", "agent", "outcome", "on_behalf_of"]
    assert list(AuditEntry._fields[:4]) == filled
    assert list(typing.get_type_hints(_Fields)) == list(AuditEntry._fields[4:])
    assert typing.get_type_hints(_Fields) == {
        name: hint for name, hint in typing.get_type_hints(AuditEntry).items() if name not in filled
    }


def test_append_takes_only_an_entry() -> None:
    """The old keyword form, or anything but an AuditEntry, is refused saying how to build one."""
    log = AuditLog.memory()
    with pytest.raises(TypeError, match=r"takes an AuditEntry \(build one with AuditEntry.of"):
        log.append({"action": "a.b", "agent": "bot", "outcome": "executed"})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        log.append(principal=BOT, action="a.b", outcome="executed")  # type: ignore[call-arg]
    assert list(log.records()) == []
