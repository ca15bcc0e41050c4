"""A worker process for the crash tests: opens, decides and ticks escalations until it is killed.

Usage: ``python _crash_worker.py KIND TARGET SCHEMA WORKDIR START SEED``.  ``KIND`` is
``sqlite`` or ``postgres``; ``TARGET`` the SQLite path or PostgreSQL URL and
``SCHEMA`` the PostgreSQL schema (``-`` for SQLite); ``WORKDIR`` holds the
audit log (``audit.jsonl``), the delivered notices (``notices.log``) and the
ids the worker opened (``progress.log``, a line once ``open`` has returned).
The worker's clock starts at ``START`` (ISO 8601; each run starts after the
last one ended, so time never runs backwards across restarts) and moves on
every round, so timers fall due.  It prints ``ready`` once set up, then loops
forever: the test kills it with SIGKILL.

The test imports the routes, policy and channel from here, so the final
clean restart runs the same configuration.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

from handrail import ActionRequest, Decision, Policy, Principal
from handrail.approvals import Identity
from handrail.audit import AuditLog
from handrail.escalation import (
    EscalationError,
    EscalationRouter,
    EscalationState,
    EscalationStore,
    Level,
    Notification,
    OnTimeout,
    Route,
)
from handrail.testing import FakeClock

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

ROUTES = (
    Route(
        name="sales",
        levels=(
            Level(
                name="manager",
                deciders=("maria", "group:leads"),
                ack_within=HOUR,
                resolve_within=4 * HOUR,
            ),
            Level(name="vp", deciders="group:vps", resolve_within=8 * HOUR, warn_at=0.5),
        ),
        on_timeout=OnTimeout.ALLOW,
        repeat_last=1,
    ),
)
GROUPS = {"leads": ["lena"], "vps": ["victor", "vera"]}
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "crm", "effect": "allow", "actions": "crm.*.*"},
            {
                "id": "big-discount",
                "effect": "escalate",
                "actions": "crm.deal.discount",
                "escalate_to": "sales",
                "on_timeout": "allow",
            },
            {
                "id": "delete-deal",
                "effect": "escalate",
                "actions": "crm.deal.delete",
                "escalate_to": "sales",
            },
        ]
    }
)
STEPS = (MINUTE, 20 * MINUTE, HOUR, 3 * HOUR)
RUN_LENGTH = timedelta(days=300)
"""How far one run's clock may move; the test starts each run a year after the last."""


class NoticeFile:
    """A channel that appends each notification's id to a file (one ``write`` per notice)."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, notification: Notification) -> None:
        with self.path.open("a") as out:
            out.write(f"{notification.id}\n")


def open_store(kind: str, target: str, schema: str) -> EscalationStore:
    if kind == "sqlite":
        from handrail.escalation._sqlite import SQLiteStore

        return SQLiteStore(target)
    from handrail.escalation._postgres import PostgresStore

    return PostgresStore(target, schema=schema)


def make_router(
    store: EscalationStore, workdir: Path, clock: FakeClock, audit: AuditLog
) -> EscalationRouter:
    return EscalationRouter(
        ROUTES,
        store,
        channels=[NoticeFile(workdir / "notices.log")],
        clock=clock,
        audit=audit,
        groups=GROUPS,
    )


def decision(rng: random.Random) -> Decision:
    action = rng.choice(("crm.deal.discount", "crm.deal.delete"))
    request = ActionRequest(
        action=action,
        principal=Principal(agent="bot", on_behalf_of="alice"),
        args={"deal": f"d-{rng.randrange(1000)}", "api_key": "sk-crash-test-key"},
    )
    return POLICY.evaluate(request)


def act(router: EscalationRouter, rng: random.Random) -> None:
    """Acknowledge, approve, reject or cancel one undecided escalation, as a listed decider."""
    waiting = router.list(state=EscalationState.OPEN, limit=20) + router.list(
        state=EscalationState.ACKNOWLEDGED, limit=20
    )
    if not waiting:
        return
    escalation = rng.choice(waiting)
    who = rng.choice([d for d in escalation.deciders if not d.startswith("group:")])
    move = rng.choice(("acknowledge", "approve", "reject", "cancel"))
    try:
        if move == "acknowledge":
            router.acknowledge(escalation.id, by=Identity(who, method="test"))
        elif move == "cancel":
            router.cancel(escalation.id, reason="withdrawn", by="bot")
        else:
            router.decide(
                escalation.id,
                approve=move == "approve",
                by=Identity(who, method="test"),
                reason=move,
            )
    except EscalationError:
        pass  # acknowledging twice is illegal; the test checks what was stored


def main(kind: str, target: str, schema: str, workdir: str, start: str, seed: str) -> None:
    work = Path(workdir)
    rng = random.Random(seed)
    clock = FakeClock(datetime.fromisoformat(start))
    limit = clock.now() + RUN_LENGTH
    store = open_store(kind, target, schema)
    audit = AuditLog.open(work / "audit.jsonl")
    router = make_router(store, work, clock, audit)
    with (work / "progress.log").open("a") as progress:
        print("ready", flush=True)
        while True:
            if clock.now() < limit:
                clock.advance(rng.choice(STEPS))
            roll = rng.random()
            if roll < 0.35:
                opened = router.open(decision(rng))
                progress.write(f"created {opened.id}\n")
                progress.flush()  # in the OS's hands: survives SIGKILL
            elif roll < 0.7:
                act(router, rng)
            router.tick()


if __name__ == "__main__":
    main(*sys.argv[1:])
