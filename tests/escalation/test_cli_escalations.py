"""`handrail escalations`: list, show, ack, approve, reject and cancel cases in a real store."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pwd
import sqlite3
import uuid
from pathlib import Path

import pytest

from handrail import ActionRequest, Policy, Principal
from handrail.audit import AuditLog
from handrail.cli import main
from handrail.escalation import Escalation, EscalationRouter, EscalationState
from handrail.escalation._open import STORE_ENV
from handrail.escalation._postgres import PostgresStore
from handrail.escalation._routes_file import load_routes
from handrail.escalation._sqlite import SQLiteStore
from handrail.testing import FakeClock, PostgresServer

ROUTES_FILE = Path(__file__).parents[2] / "examples" / "routes" / "sales.yaml"
MONDAY = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # 10:00 in Berlin
ME = pwd.getpwuid(os.geteuid()).pw_name  # the CLI decides as the OS user running it
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "crm", "effect": "allow", "actions": "crm.*.*"},
            {
                "id": "big-discount",
                "effect": "escalate",
                "actions": "crm.opportunity.update",
                "escalate_to": "sales-managers",
                "description": "Discounts over 20 % need a sales manager",
            },
        ]
    }
)
REQUEST = ActionRequest(
    action="crm.opportunity.update",
    principal=Principal(agent="sales-assistant", on_behalf_of="tom"),
    resource={"type": "opportunity", "id": "42"},
    args={"discount_pct": 30, "api_key": "sk-live-0123456789"},
)


def open_case(
    store: SQLiteStore | PostgresStore, *, groups: bool = True, external_id: str | None = None
) -> Escalation:
    """Open one discount escalation on the example's sales-managers route.

    With ``groups``, the router knows the file's groups, with the OS user
    running the tests (``ME``) added to sales-leads, so the case stores the
    expanded user ids; without, it stores only ``group:sales-leads``.
    """
    routes = load_routes(ROUTES_FILE)
    leads = {**routes.groups, "sales-leads": routes.groups["sales-leads"] | {ME}}
    router = EscalationRouter(
        routes.routes,
        store,
        clock=FakeClock(MONDAY),
        groups=leads if groups else None,
    )
    return router.open(POLICY.evaluate(REQUEST), external_id=external_id)


@pytest.fixture(autouse=True)
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Changes must be audited: every test's changes go to this log unless it says otherwise."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("HANDRAIL_AUDIT", str(path))
    return path


def test_a_change_without_an_audit_log_is_refused_unless_a_cancel_says_no_audit(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision without an audit log is a usage error, even with --no-audit; a cancel may
    go unrecorded when told so."""
    monkeypatch.delenv("HANDRAIL_AUDIT")
    code, _, err = run(capsys, "ack", case.id, "--store", db)
    assert code == 2
    assert "must be audited" in err
    assert "--no-audit" not in err
    code, _, err = run(capsys, "ack", case.id, "--store", db, "--no-audit")
    assert code == 2
    assert "decisions are always audited" in err
    assert stored(db, case.id).state is EscalationState.OPEN
    code, _, _ = run(capsys, "cancel", case.id, "--store", db, "--no-audit")
    assert code == 0
    assert stored(db, case.id).state is EscalationState.CANCELLED


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An SQLite escalation store file holding no cases yet."""
    path = tmp_path / "escalations.db"
    SQLiteStore(path).close()
    return path


def open_in(db: Path, *, groups: bool = True, external_id: str | None = None) -> Escalation:
    """``open_case`` in the SQLite file ``db``."""
    store = SQLiteStore(db)
    try:
        return open_case(store, groups=groups, external_id=external_id)
    finally:
        store.close()


@pytest.fixture
def case(db: Path) -> Escalation:
    """One open case in ``db`` whose deciders include maria and li (groups expanded)."""
    return open_in(db)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["escalations", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def stored(db: Path, escalation_id: str) -> Escalation:
    store = SQLiteStore(db)
    try:
        found = store.get(escalation_id)
    finally:
        store.close()
    assert found is not None
    return found


# -- reading -------------------------------------------------------------------------------


def test_list_prints_one_row_per_case(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list` prints a header and a row per case: id, state, route, level, action, agent."""
    code, out, err = run(capsys, "list", "--store", db)
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == [
        "ID", "STATE", "ROUTE", "LEVEL", "ACTION", "AGENT", "OPENED", "NEXT", "DUE",
    ]  # fmt: skip
    assert row.split()[:6] == [
        case.id, "open", "sales-managers", "0", "(team-lead)", "crm.opportunity.update",
    ]  # fmt: skip
    assert "sales-assistant for tom" in row
    assert "2026-01-05 09:30:00Z" in row  # the ack deadline, 30 minutes on


def test_list_filters_by_state_route_and_limit(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--state`, `--route` and `--limit` narrow the list; an empty one says so."""
    second = open_in(db)
    assert run(capsys, "approve", second.id, "--reason", "ok", "--store", db)[0] == 0

    code, out, _ = run(capsys, "list", "--store", db, "--state", "approved")
    assert code == 0
    assert second.id in out
    assert case.id not in out
    code, out, _ = run(capsys, "list", "--store", db, "--limit", "1", "--json")
    assert [e["id"] for e in json.loads(out)] == [case.id]
    code, out, _ = run(capsys, "list", "--store", db, "--route", "finance", "--state", "open")
    assert (code, out) == (0, "no escalations in state open on route finance\n")


def test_list_json_is_the_escalations_model_dump(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """`list --json` prints a JSON array of ``Escalation.model_dump(mode="json")``."""
    code, out, _ = run(capsys, "list", "--store", db, "--json")
    assert code == 0
    # Compared as models: frozensets (the route's holidays) dump in no fixed order.
    assert [Escalation.model_validate(data) for data in json.loads(out)] == [case]


def test_show_tells_the_whole_case(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """`show` prints the request, the rule and reason, the route and level, who may decide,
    the deadlines and the history table; the request's secrets stay redacted."""
    code, out, err = run(capsys, "show", case.id, "--store", db)
    assert (code, err) == (0, "")
    assert out.startswith(f"escalation {case.id}  OPEN\n")
    assert "sales-assistant for tom wants to crm.opportunity.update on opportunity:42" in out
    assert "escalate by rule 'big-discount'" in out
    assert "sales-managers, level 0 (team-lead), step 1 of 3" in out
    assert "deciders:" in out
    assert f"group:sales-leads, li, maria, {ME}" in out
    assert "ack due:" in out
    assert "2026-01-05 09:30:00Z" in out
    assert "resolve due:" in out
    assert "2026-01-05 13:00:00Z" in out  # 4 working hours from 10:00 Berlin
    history = out.split("history:\n")[1].splitlines()
    assert history[0].split() == ["AT", "EVENT", "LEVEL", "BY", "REASON"]
    assert history[1].split()[:4] == ["2026-01-05", "09:00:00Z", "opened", "0"]
    assert "sk-live" not in out
    assert '\n  api_key: "***"\n' in out
    assert "\n  discount_pct: 30\n" in out
    assert "external id" not in out


def test_show_names_the_external_id_a_case_was_opened_under(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A case opened by a framework's tool-call id shows it, so an operator can match the two."""
    case = open_in(db, external_id="call_7f3a9c2e")
    code, out, _ = run(capsys, "show", case.id, "--store", db)
    assert code == 0
    assert "  external id:" in out
    assert out.split("external id:")[1].split("\n")[0].strip() == "call_7f3a9c2e"


def test_show_with_routes_names_the_members_of_groups(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `--routes`, `show` lists the members of each group decider from the file."""
    case = open_in(db, groups=False)
    code, out, _ = run(capsys, "show", case.id, "--store", db, "--routes", ROUTES_FILE)
    assert code == 0
    assert "group:sales-leads (li, maria)" in out


def test_show_json_is_the_model_dump(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """`show --json` prints the escalation as ``model_dump(mode="json")``: it round-trips."""
    code, out, _ = run(capsys, "show", case.id, "--store", db, "--json")
    assert code == 0
    assert Escalation.model_validate(json.loads(out)) == case


def test_store_defaults_to_the_environment_variable(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `--store`, the store named by the environment variable is used."""
    monkeypatch.setenv(STORE_ENV, str(db))
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert case.id in out


def test_a_missing_store_file_is_a_usage_error_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No store at the default path: exit 2 saying how to name one; no empty file appears."""
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "list")
    assert (code, out) == (2, "")
    assert "no escalation store at handrail-escalations.db" in err
    assert f"${STORE_ENV}" in err
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_no_store_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `--store` file that is not an SQLite database exits 1 naming it."""
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n", encoding="utf-8")
    code, out, err = run(capsys, "list", "--store", text)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {text}")


# -- deciding ------------------------------------------------------------------------------


def test_ack_takes_the_case(db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]) -> None:
    """`ack` by a decider (the OS user) acknowledges the case; the ack deadline stops."""
    code, out, err = run(capsys, "ack", case.id, "--store", db)
    assert (code, err) == (0, "")
    assert out.startswith(f"escalation {case.id}: acknowledged by {ME}")
    assert "at level 0 (team-lead)" in out
    assert "decide by 2026-01-05 13:00:00Z" in out
    now = stored(db, case.id)
    assert now.state is EscalationState.ACKNOWLEDGED
    assert now.acknowledged_by == ME
    assert now.ack_due is None


def test_approve_by_a_decider_is_final_and_audited(
    db: Path, case: Escalation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`approve` by a decider approves, with the reason kept in history and in the audit log."""
    audit = tmp_path / "audit.jsonl"
    code, out, err = run(
        capsys, "approve", case.id, "--reason", "strategic account", "--store", db,
        "--audit", audit,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert f"approved by {ME}" in out
    assert "the action may run, once" in out
    now = stored(db, case.id)
    assert (now.state, now.decided_by, now.reason, now.allowed) == (
        EscalationState.APPROVED, ME, "strategic account", True,
    )  # fmt: skip
    with AuditLog.open(audit, read_only=True) as log:
        records = list(log.records())
    assert [(r.outcome.value, r.context["by"], r.reason) for r in records] == [
        ("approved", ME, "strategic account")
    ]
    assert records[0].escalation_id == case.id


def test_reject_and_json_output(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reject --json` rejects and prints the new escalation as JSON."""
    code, out, _ = run(capsys, "reject", case.id, "--reason", "too deep", "--store", db, "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["state"], data["allowed"], data["reason"]) == ("rejected", False, "too deep")


def test_cancel_withdraws_the_case(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cancel` needs no decider: the case is cancelled, by the OS user, and will not run."""
    code, out, _ = run(capsys, "cancel", case.id, "--reason", "deal lost", "--store", db)
    assert code == 0
    assert f"cancelled by {ME}" in out
    assert "the action will not run" in out
    now = stored(db, case.id)
    assert (now.state, now.reason, now.allowed) == (EscalationState.CANCELLED, "deal lost", False)
    assert now.history[-1].by == ME


def test_approve_by_a_non_decider_is_refused_and_audited(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OS user who is not a decider: `approve` exits 1 naming the case and the deciders,
    changes nothing, and leaves a `refused` record in the audit log."""
    case = open_in(db, groups=False)  # deciders: group:sales-leads only, unexpanded
    audit = tmp_path / "audit.jsonl"
    code, out, err = run(
        capsys, "approve", case.id, "--reason", "me", "--store", db, "--audit", audit
    )
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert case.id in err
    assert f"{ME!r} may not decide at level 0" in err
    assert stored(db, case.id).state is EscalationState.OPEN
    with AuditLog.open(audit, read_only=True) as log:
        records = list(log.records())
    assert [(r.outcome.value, r.context["by"], r.context["attempted"]) for r in records] == [
        ("refused", ME, "approve")
    ]


def test_approving_twice_is_an_illegal_transition(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """Approving an approved case exits 1: its state forbids the change."""
    argv = ("approve", case.id, "--reason", "ok", "--store", db)
    assert run(capsys, *argv)[0] == 0
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == f"error: escalation {case.id}: cannot approve an escalation that is approved\n"


def test_an_unknown_id_exits_1(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`show` and `approve` of an id the store does not hold exit 1 naming it."""
    for argv in (("show", "no-such-id"), ("approve", "no-such-id", "--reason", "b")):
        code, out, err = run(capsys, *argv, "--store", db)
        assert (code, out) == (1, "")
        assert "escalation no-such-id: no such escalation" in err


def test_a_routes_file_never_widens_who_may_decide(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A case stored with only `group:sales-leads` stays closed to a user whom a `--routes`
    file (anyone can write one) puts in that group; the file only shows the members."""
    case = open_in(db, groups=False)
    assert stored(db, case.id).deciders == ("group:sales-leads",)
    mine = tmp_path / "routes.yaml"
    mine.write_text(
        ROUTES_FILE.read_text(encoding="utf-8").replace(
            "sales-leads: [maria, li]", f"sales-leads: [maria, li, {ME}]"
        ),
        encoding="utf-8",
    )
    argv = ("approve", case.id, "--reason", "ok", "--store", db)
    for extra in ((), ("--routes", mine)):
        code, out, err = run(capsys, *argv, *extra)
        assert (code, out) == (1, "")
        assert f"{ME!r} may not decide" in err
    assert stored(db, case.id).state is EscalationState.OPEN
    code, out, _ = run(capsys, "show", case.id, "--store", db, "--routes", mine)
    assert code == 0
    assert f"group:sales-leads (li, maria, {ME})" in out


def test_a_malformed_routes_file_exits_1_with_its_line(
    db: Path, case: Escalation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken `--routes` file stops the command before anything changes (exit 1, file:line)."""
    broken = tmp_path / "routes.yaml"
    broken.write_text("routes: []\ngroups:\n  leads: 5\n", encoding="utf-8")
    code, _, err = run(
        capsys,
        "approve",
        case.id,
        "--reason",
        "ok",
        "--store",
        db,
        "--routes",
        broken,
    )
    assert code == 1
    assert f"{broken}:3: groups.leads: expected a list of user ids" in err
    assert stored(db, case.id).state is EscalationState.OPEN


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("approve", "X"), "--reason"),
        (("approve", "X", "--as", " ", "--reason", "ok"), "--as: is empty"),
        (("approve", "X", "--by", "maria", "--reason", "ok"), "--by: removed"),
        (("ack", "X", "--by", "maria"), "--as USER"),
        (("cancel", "X", "--by", "maria"), "--by: removed"),
        (("reject", "X", "--reason", "no", "--no-audit"), "--no-audit: decisions are always"),
        (("list", "--limit", "0"), "--limit: expected 1 or more"),
        (("list", "--state", "pending"), "--state: invalid choice"),
        (("list", "--schema", "s"), "--schema: applies to PostgreSQL URLs only"),
        (("list", "--store", "sqlite:///x.db"), "--store: unknown escalation store URL scheme"),
        ((), "COMMAND"),
    ],
)
def test_bad_usage_exits_2(
    db: Path, argv: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong command line exits 2 with one line naming the argument."""
    store = ("--store", db) if argv and "--store" not in argv else ()
    code, out, err = run(capsys, *argv, *store)
    assert (code, out) == (2, "")
    assert says in err
    assert err.count("\n") == 1


# -- PostgreSQL: passwords never printed ---------------------------------------------------


def test_an_unreachable_postgres_url_never_prints_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A store that cannot be reached exits 1 naming it, its password masked."""
    for command in (("list",), ("approve", "X", "--reason", "b")):
        code, out, err = run(capsys, *command, "--store", "postgresql://u:sekret@127.0.0.1:1/x")
        assert (code, out) == (1, "")
        assert "127.0.0.1" in err
        assert "sekret" not in err


def test_decide_in_postgres_without_printing_the_password(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cases in PostgreSQL are decided the same way; no output carries the URL's password."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    store = PostgresStore(postgres_server.url, schema=schema)
    try:
        case = open_case(store)
    finally:
        store.close()
    # The test server trusts every connection: the password is carried, and ignored.
    url = postgres_server.url.replace("postgres@", "postgres:sekret-pw@")
    common = ("--store", url, "--schema", schema)
    outputs = [
        run(capsys, "list", *common),
        run(capsys, "show", "no-such-id", *common),
        run(capsys, "approve", case.id, "--reason", "ok", *common),
        run(capsys, "approve", case.id, "--reason", "ok", *common),
    ]
    assert [code for code, _, _ in outputs] == [0, 1, 0, 1]
    assert case.id in outputs[0][1]
    assert f"approved by {ME}" in outputs[2][1]
    assert "sekret" not in "".join(out + err for _, out, err in outputs)


# -- hostile text and store locations ------------------------------------------------------


def test_list_and_show_print_control_characters_escaped(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An agent id, user and reason holding ESC, newlines and bidi overrides print escaped.

    Names are canonical when a case is opened, so hostile ones reach the store only by
    forgery: the test writes them into the stored case the way a forger would.
    """
    store = SQLiteStore(db)
    try:
        routes = load_routes(ROUTES_FILE)
        router = EscalationRouter(routes.routes, store, clock=FakeClock(MONDAY))
        case = router.open(POLICY.evaluate(REQUEST))
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        (body,) = conn.execute("SELECT body FROM escalations WHERE id = ?", (case.id,)).fetchone()
        forged_case = json.loads(body)
        forged_case["request"]["agent"] = "bot\x1b[2J"
        forged_case["request"]["on_behalf_of"] = "tom\u202e\n"
        conn.execute(
            "UPDATE escalations SET body = ? WHERE id = ?", (json.dumps(forged_case), case.id)
        )
    forged = "no\n2026-01-05 09:00:00Z  approved  0  maria  fine\x1b[0m"
    code, _, _ = run(capsys, "cancel", case.id, "--reason", forged, "--store", db, "--no-audit")
    assert code == 0
    for command in ("list", "show"):
        argv = (command, case.id) if command == "show" else (command,)
        code, out, err = run(capsys, *argv, "--store", db)
        assert (code, err) == (0, "")
        assert all(line.isprintable() for line in out.splitlines())
        assert "bot\\x1b[2J for tom\\u202e\\n" in out
    assert "no\\n2026-01-05 09:00:00Z  approved  0  maria  fine\\x1b[0m" in out
    code, out, _ = run(capsys, "show", case.id, "--store", db, "--json")
    assert all(line.isprintable() for line in out.splitlines())
    assert json.loads(out)["reason"] == forged


PASSWORD = "s3cret-pw-778"


@pytest.mark.parametrize(
    ("store", "code", "says"),
    [
        (f"host=127.0.0.1 port=1 user=app password={PASSWORD} dbname=app", 1, "password=***"),
        (f"postgresql:/app:{PASSWORD}@db/app", 2, "looks like a mistyped PostgreSQL URL"),
        (f"postgres:{PASSWORD}", 2, "looks like a mistyped PostgreSQL URL"),
        (f"foo://app:{PASSWORD}@db/app", 2, "unknown escalation store URL scheme 'foo'"),
        (f"sqlite:/app:{PASSWORD}@db.sqlite", 2, "'sqlite' is not a store"),
        (f"./app:{PASSWORD}@db.sqlite", 2, "no escalation store at ./app:***@db.sqlite"),
    ],
    ids=["key=value", "postgresql:/", "postgres:", "foo://", "sqlite:/", "user:password@ path"],
)
def test_store_locations_never_print_their_password(
    store: str,
    code: int,
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """key=value strings are PostgreSQL; mistyped URLs are refused; no password, no file."""
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    for command in (("list",), ("approve", "X", "--reason", "b")):
        got, out, err = run(capsys, *command, "--store", store)
        assert (got, out) == (code, "")
        assert says in err
        assert err.count("\n") == 1
        assert PASSWORD not in err
    monkeypatch.setenv(STORE_ENV, store)
    got, out, err = run(capsys, "list")
    assert got == code
    assert PASSWORD not in out + err
    assert sorted(tmp_path.iterdir()) == before, "no file named after the location"


def test_a_key_value_store_opens_postgres(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The libpq key=value form the PostgreSQL docs show opens the same store as its URL."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    store = PostgresStore(postgres_server.url, schema=schema)
    try:
        case = open_case(store)
    finally:
        store.close()
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {**conninfo_to_dict(postgres_server.url), "password": PASSWORD}
    code, out, err = run(capsys, "list", "--store", make_conninfo(**params), "--schema", schema)
    assert (code, err) == (0, "")
    assert case.id in out
    assert PASSWORD not in out


def test_as_follows_the_name_rule(
    db: Path, case: Escalation, capsys: pytest.CaptureFixture[str]
) -> None:
    """A look-alike `--as` name is a usage error, never a crash, and shown escaped."""
    code, _, err = run(
        capsys, "approve", case.id, "--as", "l\u0456", "--reason", "ok", "--store", db
    )
    assert code == 2
    assert "\\u0456 (CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I)" in err
    assert err.isascii()
    assert stored(db, case.id).state is EscalationState.OPEN
