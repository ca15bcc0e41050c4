"""PostgreSQL roles: the agent's database role opens and runs cases but can never decide.

The roles are set up by running the SQL block of docs/escalation-postgres.md
("Roles: the agent must not be able to decide") as written, on a server of
this module's own (roles belong to the whole server, not to one database).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pwd
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from handrail import ActionRequest, Policy, Principal
from handrail.approvals import Identity
from handrail.cli import main
from handrail.escalation import (
    EscalationRouter,
    EscalationState,
    Level,
    NotAuthenticated,
    OnTimeout,
    Route,
)
from handrail.escalation._postgres import PostgresStore
from handrail.testing import FakeClock, PostgresServer

DOCS = Path(__file__).parents[2] / "docs" / "escalation-postgres.md"
SCHEMA = "handrail"
ME = pwd.getpwuid(os.geteuid()).pw_name
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
GRANT = "GRANT UPDATE ON handrail.decision_grant TO handrail_agent"
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "payments", "effect": "allow", "actions": "pay.invoice"},
            {
                "id": "big-payment",
                "effect": "escalate",
                "actions": "pay.invoice",
                "escalate_to": "finance",
                "on_timeout": "allow",
            },
        ]
    }
)
ROUTE = Route(
    name="finance",
    levels=[
        Level(deciders=["maria", ME], ack_within=dt.timedelta(minutes=30),
              resolve_within=dt.timedelta(hours=1)),
        Level(deciders=["maria", ME], resolve_within=dt.timedelta(hours=1)),
    ],
    on_timeout=OnTimeout.ALLOW,
)  # fmt: skip

MARIA = Identity("maria", method="test")


def docs_sql() -> str:
    """The ```sql block of the roles section, as a reader would copy it."""
    section = DOCS.read_text(encoding="utf-8").split("## Roles: the agent must not")[1]
    found = re.search(r"^```sql\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    assert found is not None, "docs/escalation-postgres.md: the roles section has no sql block"
    return found.group(1)


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    """A server of its own whose schema `handrail` is set up with the documented roles."""
    with PostgresServer() as started:
        PostgresStore(started.url, schema=SCHEMA).close()  # the owner migrates
        with psycopg.connect(started.url, autocommit=True) as owner:
            owner.execute(docs_sql())  # type: ignore[arg-type]  # the docs' text, as written
        yield started


def url(server: PostgresServer, role: str) -> str:
    """The server's URL as ``role`` (the test server trusts every local connection)."""
    return server.url.replace("postgres@", f"{role}@")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def as_agent(server: PostgresServer, clock: FakeClock) -> Iterator[EscalationRouter]:
    """A router whose store connects as the agent's role (it cannot migrate: create=False)."""
    with PostgresStore(url(server, "handrail_agent"), schema=SCHEMA, create=False) as store:
        yield EscalationRouter([ROUTE], store, clock=clock)


@pytest.fixture
def as_alice(server: PostgresServer, clock: FakeClock) -> Iterator[EscalationRouter]:
    """A router whose store connects as alice, a member of handrail_decider."""
    with PostgresStore(url(server, "alice"), schema=SCHEMA, create=False) as store:
        yield EscalationRouter([ROUTE], store, clock=clock)


def request(amount: int = 250_000) -> ActionRequest:
    return ActionRequest(
        action="pay.invoice",
        principal=Principal(agent="pay-bot", on_behalf_of="tom"),
        resource={"type": "invoice", "id": "inv-7"},
        args={"amount": amount},
    )


def test_the_agent_opens_reads_cancels_ticks_and_runs_but_cannot_decide(
    as_agent: EscalationRouter, as_alice: EscalationRouter, clock: FakeClock
) -> None:
    """As the agent's role: open, get, list, cancel and tick work; acknowledging and approving
    are refused naming the missing grant, and change nothing; alice's role approves; the
    agent then claims the approved case's execution, once."""
    case = as_agent.open(POLICY.evaluate(request()))
    other = as_agent.open(POLICY.evaluate(request(10)))
    assert as_agent.get(case.id) == case
    assert {e.id for e in as_agent.list()} >= {case.id, other.id}
    assert as_agent.cancel(other.id, reason="withdrawn").state is EscalationState.CANCELLED

    clock.advance(dt.timedelta(minutes=31))  # the ack deadline passes: up one level
    assert as_agent.tick().fired == 1
    assert as_agent.get(case.id).level == 1

    for attempt in (
        lambda: as_agent.approve(case.id, by=MARIA, reason="self-approved"),
        lambda: as_agent.reject(case.id, by=MARIA),
        lambda: as_agent.acknowledge(case.id, by=MARIA),
    ):
        with pytest.raises(NotAuthenticated) as refused:
            attempt()
        assert refused.value.escalation_id == case.id
        assert "role handrail_agent may not move it to" in refused.value.why
        assert GRANT in refused.value.why
    assert as_agent.get(case.id).state is EscalationState.OPEN
    assert as_agent.get(case.id).version == 1

    approved = as_alice.approve(case.id, by=MARIA, reason="checked")
    assert (approved.state, approved.decided_by) == (EscalationState.APPROVED, "maria")
    assert as_agent.claim_execution(case.id).executed_at is not None


def test_the_agent_runs_a_routes_own_allow_on_timeout(
    as_agent: EscalationRouter, clock: FakeClock
) -> None:
    """Firing the last deadline is the agent's to do: a route and rule that allow on timeout
    expire the case allowed (the one way to `allowed` without the grant)."""
    case = as_agent.open(POLICY.evaluate(request()))
    for step in (dt.timedelta(minutes=31), dt.timedelta(hours=2)):  # each level's deadline
        clock.advance(step)
        as_agent.tick()
    expired = as_agent.get(case.id)
    assert (expired.state, expired.allowed) == (EscalationState.EXPIRED, True)


def raw_refused(connection: psycopg.Connection[object], statement: str, *params: object) -> str:
    """Run ``statement`` expecting the trigger's refusal; returns its message."""
    with pytest.raises(psycopg.Error) as refused:
        connection.execute(statement, params)  # type: ignore[arg-type]
    assert refused.value.sqlstate == "HR001", refused.value
    assert refused.value.diag.message_hint == GRANT
    return str(refused.value.diag.message_primary)


def test_raw_sql_as_the_agent_cannot_decide_nor_rewrite_a_case(
    server: PostgresServer, as_agent: EscalationRouter
) -> None:
    """A bare UPDATE or INSERT by the agent's role cannot approve, allow, add an approval or
    rewrite the request; nor can the role drop the trigger or grant itself the right."""
    case = as_agent.open(POLICY.evaluate(request()))
    table = f"{SCHEMA}.escalations"
    with psycopg.connect(url(server, "handrail_agent"), autocommit=True) as agent:
        said = [
            raw_refused(agent, f"UPDATE {table} SET state = 'approved' WHERE id = %s", case.id),
            raw_refused(
                agent,
                f"UPDATE {table} SET body = jsonb_set(body, '{{state}}', '\"approved\"') "
                "WHERE id = %s",
                case.id,
            ),
            raw_refused(
                agent,
                f"UPDATE {table} SET body = jsonb_set(body, '{{allowed}}', 'true') WHERE id = %s",
                case.id,
            ),
            raw_refused(
                agent,
                f"UPDATE {table} SET body = jsonb_set(body, '{{approvals}}', '[\"maria\"]') "
                "WHERE id = %s",
                case.id,
            ),
            raw_refused(
                agent,
                f"UPDATE {table} SET body = jsonb_set(body, '{{request,args,amount}}', '12') "
                "WHERE id = %s",
                case.id,
            ),
            raw_refused(
                agent,
                f"UPDATE {table} SET body = jsonb_set(body, '{{deciders}}', '[\"pay-bot\"]') "
                "WHERE id = %s",
                case.id,
            ),
            raw_refused(
                agent,
                f"INSERT INTO {table} (id, state, route, opened_at, version, body) "
                "SELECT 'forged', 'approved', route, opened_at, version, "
                "jsonb_set(jsonb_set(body, '{id}', '\"forged\"'), '{state}', '\"approved\"') "
                f"FROM {table} WHERE id = %s",
                case.id,
            ),
        ]
        assert (
            said[0]
            == "role handrail_agent may not move it to approved: it lacks the decision grant"
        )
        assert "allow its action" in said[2]
        assert "add an approval" in said[3]
        assert "change its id, request, decision or route" in said[4]
        assert "change who may decide it" in said[5]
        # A write the agent may make goes through: the trigger guards decisions, not the row.
        agent.execute(f"UPDATE {table} SET next_due = next_due WHERE id = %s", (case.id,))
        for statement in (
            f"ALTER TABLE {table} DISABLE TRIGGER escalations_decision_grant",
            f"GRANT UPDATE ON {SCHEMA}.decision_grant TO handrail_agent",
            f"DROP FUNCTION {SCHEMA}.check_decision_grant() CASCADE",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                agent.execute(statement)  # type: ignore[arg-type]
    stored = as_agent.get(case.id)
    assert (stored.state, stored.allowed, stored.request["args"]) == (
        EscalationState.OPEN, None, {"amount": 250_000},
    )  # fmt: skip
    assert as_agent.store.get("forged") is None


def test_is_admin_is_membership_of_the_admin_role(server: PostgresServer) -> None:
    """ops_lead (in handrail_admin) is an admin; alice (a decider) and the agent are not;
    an admin role that does not exist has no members."""
    answers = {}
    for role in ("ops_lead", "alice", "handrail_agent"):
        with PostgresStore(url(server, role), schema=SCHEMA, create=False) as store:
            answers[role] = store.is_admin()
    assert answers == {"ops_lead": True, "alice": False, "handrail_agent": False}
    with PostgresStore(
        url(server, "ops_lead"), schema=SCHEMA, create=False, admin_role="no_such_role"
    ) as store:
        assert store.is_admin() is False


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["escalations", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_decides_only_through_a_role_with_the_grant(
    server: PostgresServer,
    as_agent: EscalationRouter,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`approve` as the OS user through the agent's role is refused naming the GRANT; through
    alice's it approves as the OS user; `--as maria` needs ops_lead's admin role."""
    audit = str(tmp_path / "decisions.jsonl")
    first = as_agent.open(POLICY.evaluate(request()))
    second = as_agent.open(POLICY.evaluate(request(99)))

    def approve(role: str, case_id: str, *extra: str) -> tuple[int, str, str]:
        store = ("--store", url(server, role), "--schema", SCHEMA, "--audit", audit)
        return cli(capsys, "approve", case_id, "--reason", "ok", *store, *extra)

    code, out, err = approve("handrail_agent", first.id)
    assert (code, out) == (1, "")
    assert GRANT in err
    code, out, err = approve("alice", first.id)
    assert (code, err) == (0, "")
    assert f"approved by {ME}" in out

    code, out, err = approve("alice", second.id, "--as", "maria")
    assert (code, out) == (1, "")
    assert "--as maria refused" in err
    code, out, err = approve("ops_lead", second.id, "--as", "maria", "--json")
    assert (code, err) == (0, "")
    assert (json.loads(out)["state"], json.loads(out)["decided_by"]) == ("approved", "maria")
