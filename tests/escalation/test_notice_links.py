"""Signed decision links in notifications: made at send time, one per user decider, never stored."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handrail import ActionRequest, ConfigurationError, Decision, Policy, Principal
from handrail.approvals import DecisionLinks
from handrail.audit import AuditLog
from handrail.escalation import (
    Escalation,
    EscalationRouter,
    Level,
    LogChannel,
    MemoryStore,
    Notification,
    OnTimeout,
    Route,
    SQLiteStore,
)
from handrail.testing import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
KEY = b"router-key-" * 4
BASE = "https://approvals.example.com"

FIRST = Level(
    name="leads",
    notify="#leads",
    deciders=("maria", "group:leads", "bot", "alice"),
    resolve_within=4 * HOUR,
    warn_at=0.5,
)
SECOND = Level(name="vps", notify="#vps", deciders="group:vps", resolve_within=8 * HOUR)
ROUTE = Route(name="sales", levels=(FIRST, SECOND), on_timeout=OnTimeout.DENY)
GROUPS = {"leads": ["lena"], "vps": ["victor", "vera"]}
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "crm", "effect": "allow", "actions": "crm.*.*"},
            {
                "id": "discount",
                "effect": "escalate",
                "actions": "crm.deal.discount",
                "escalate_to": "sales",
            },
        ]
    }
)


def decision() -> Decision:
    """bot, acting for alice, asks for a 30% discount: escalated to the sales route."""
    request = ActionRequest(
        action="crm.deal.discount",
        principal=Principal(agent="bot", on_behalf_of="alice"),
        args={"deal": "d-1", "pct": 30},
    )
    return POLICY.evaluate(request)


class Inbox:
    """A channel that keeps what it is sent; its first ``failures`` sends fail quoting a link."""

    def __init__(self, failures: int = 0) -> None:
        self.name = "inbox"
        self.failures = failures
        self.sent: list[Notification] = []
        self.attempts: list[dict[str, str]] = []

    async def send(self, notification: Notification) -> None:
        self.attempts.append(notification.links)
        if self.failures:
            self.failures -= 1
            raise ConnectionError(f"could not post {sorted(notification.links.values())}")
        self.sent.append(notification)


class Harness:
    def __init__(self, tmp_path: Path, *, links: bool = True, failures: int = 0) -> None:
        self.clock = FakeClock(T0)
        self.path = tmp_path / "escalations.db"
        self.inbox = Inbox(failures)
        self.audit = AuditLog.memory()
        self.links = DecisionLinks(KEY, base_url=BASE, clock=self.clock)
        self.router = EscalationRouter(
            [ROUTE],
            SQLiteStore(self.path),
            channels=[self.inbox],
            clock=self.clock,
            audit=self.audit,
            groups=GROUPS,
            links=self.links if links else None,
        )

    def stored_text(self) -> str:
        """Everything the store and the audit trail hold, as text."""
        with sqlite3.connect(self.path) as db:
            dump = "\n".join(db.iterdump())
        audit = b"\n".join(self.audit.sink.read()).decode()
        return dump + "\n" + audit

    def verified(self, notice: Notification) -> dict[str, Any]:
        """Each link's decider and binding, as DecisionLinks verifies it."""
        out = {}
        for decider, url in notice.links.items():
            assert url.startswith(f"{BASE}/link/")
            identity = self.links.verify(url.removeprefix(f"{BASE}/link/"))
            assert identity.user == decider
            assert identity.binding is not None
            out[decider] = (identity.binding.escalation_id, identity.binding.level)
            assert identity.binding.fingerprint == self.case_fingerprint(notice.escalation_id)
        return out

    def case_fingerprint(self, escalation_id: str) -> str:
        return str(self.router.get(escalation_id).request["fingerprint"])


def test_opened_notice_carries_a_link_per_user_decider(tmp_path: Path) -> None:
    """Each user decider at the level gets a link (group members included, groups and the
    agent and its user skipped), bound to the case, the level and the request's fingerprint."""
    h = Harness(tmp_path)
    case = h.router.open(decision())
    h.router.tick()
    (notice,) = h.inbox.sent
    assert notice.kind == "opened"
    assert h.verified(notice) == {"maria": (case.id, 0), "lena": (case.id, 0)}


def test_links_are_never_stored_nor_audited(tmp_path: Path) -> None:
    """The outbox rows, failure messages and audit records hold no link or token."""
    h = Harness(tmp_path, failures=1)
    h.router.open(decision())
    h.router.tick()  # fails, quoting the links in its error
    h.clock.advance(timedelta(minutes=1))
    h.router.tick()
    (notice,) = h.inbox.sent
    assert notice.links
    stored = h.stored_text()
    assert "[signed link]" in stored  # the failure was recorded, the links cut out
    assert "/link/" not in stored
    for url in notice.links.values():
        body, signature = url.removeprefix(f"{BASE}/link/").split(".")
        assert body not in stored
        assert signature not in stored


def test_a_redelivered_notice_gets_fresh_links(tmp_path: Path) -> None:
    """A notice sent again after a failure carries new tokens for the same deciders."""
    h = Harness(tmp_path, failures=1)
    h.router.open(decision())
    h.router.tick()
    h.clock.advance(timedelta(minutes=1))
    h.router.tick()
    first, second = h.inbox.attempts
    assert set(first) == set(second) == {"maria", "lena"}
    assert not set(first.values()) & set(second.values())


def test_escalated_and_warning_notices_carry_links_resolved_do_not(tmp_path: Path) -> None:
    """Warnings and escalations ask for a decision (links for the level's deciders);
    resolved notices do not."""
    h = Harness(tmp_path)
    case = h.router.open(decision())
    h.router.tick()
    h.clock.advance(2 * HOUR + timedelta(seconds=1))  # past warn_at (half of 4 hours)
    h.router.tick()
    h.clock.advance(2 * HOUR)  # the level's 4 hours are up: on to the vps
    h.router.tick()
    h.router.cancel(case.id, reason="withdrawn")
    h.router.tick()
    seen = [(n.kind, n.level, sorted(n.links)) for n in h.inbox.sent]
    assert seen == [
        ("opened", 0, ["lena", "maria"]),
        ("warning", 0, ["lena", "maria"]),
        ("escalated", 1, ["vera", "victor"]),
        ("resolved", 1, []),
    ]
    assert set(h.verified(h.inbox.sent[1]).values()) == {(case.id, 0)}
    assert set(h.verified(h.inbox.sent[2]).values()) == {(case.id, 1)}


def test_a_notice_for_a_level_the_case_has_left_carries_none(tmp_path: Path) -> None:
    """A notice still pending when the case moves on gets no links: they would be refused."""
    h = Harness(tmp_path)
    case = h.router.open(decision())
    h.clock.advance(5 * HOUR)  # breach level 0 before anything was sent
    h.router.tick()
    by_kind = {(n.kind, n.level): n for n in h.inbox.sent}
    assert by_kind[("opened", 0)].links == {}
    assert set(by_kind[("escalated", 1)].links) == {"vera", "victor"}
    assert h.router.get(case.id).level == 1


def test_without_links_notices_carry_none(tmp_path: Path) -> None:
    """A router without links= sends notices with empty links."""
    h = Harness(tmp_path, links=False)
    h.router.open(decision())
    h.router.tick()
    assert h.inbox.sent[0].links == {}


def test_async_tick_adds_links_too(tmp_path: Path) -> None:
    """atick signs links as tick does."""
    h = Harness(tmp_path)
    h.router.open(decision())
    asyncio.run(h.router.atick())
    assert sorted(h.inbox.sent[0].links) == ["lena", "maria"]


def test_links_must_be_decision_links(tmp_path: Path) -> None:
    """links= takes a DecisionLinks, refusing anything else at construction."""
    with pytest.raises(ConfigurationError, match="DecisionLinks"):
        EscalationRouter([ROUTE], SQLiteStore(tmp_path / "x.db"), links="https://x")  # type: ignore[arg-type]


def test_log_channel_never_logs_links() -> None:
    """LogChannel leaves the links out of the log event: logs are read widely."""
    events: list[dict[str, Any]] = []

    class Logger:
        def info(self, event: str, **fields: Any) -> None:
            events.append(fields)

    notice = Notification(
        id="esc-1:0",
        escalation_id="esc-1",
        kind="opened",
        route="sales",
        level=0,
        state="open",
        summary="s",
        action="crm.deal.discount",
        agent="bot",
        created_at=T0,
        links={"maria": f"{BASE}/link/secret-token"},
    )
    asyncio.run(LogChannel(logger=Logger()).send(notice))
    assert "links" not in events[0]
    assert "secret-token" not in repr(events)


class FlakyStore(MemoryStore):
    """A memory store whose next ``failures`` reads of a case fail."""

    failures = 0

    def get(self, escalation_id: str) -> Escalation | None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database is down")
        return super().get(escalation_id)


def test_a_notice_whose_links_cannot_be_made_is_retried() -> None:
    """If the case cannot be read to sign its links, the notice fails and is retried, never
    sent without them."""
    clock = FakeClock(T0)
    store = FlakyStore()
    inbox = Inbox()
    router = EscalationRouter(
        [ROUTE],
        store,
        channels=[inbox],
        clock=clock,
        groups=GROUPS,
        links=DecisionLinks(KEY, base_url=BASE, clock=clock),
    )
    router.open(decision())
    store.failures = 1
    assert router.tick().failed == 1
    assert inbox.attempts == []
    clock.advance(timedelta(minutes=1))
    assert router.tick().delivered == 1
    assert sorted(inbox.sent[0].links) == ["lena", "maria"]
