"""`handrail escalations ack|approve|reject` decide as the verified OS user, never a typed name."""

from __future__ import annotations

import datetime as dt
import os
import pwd
from pathlib import Path

import pytest

from handrail import ActionRequest, Policy, Principal
from handrail.audit import AuditLog
from handrail.cli import main
from handrail.escalation import Escalation, EscalationRouter, EscalationState, Level, Route
from handrail.escalation._sqlite import SQLiteStore
from handrail.testing import FakeClock

ME = pwd.getpwuid(os.geteuid()).pw_name  # the machine's tests run as root: "root"
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "payments", "effect": "allow", "actions": "pay.invoice"},
            {
                "id": "big-payment",
                "effect": "escalate",
                "actions": "pay.invoice",
                "escalate_to": "finance",
                "description": "Payments need finance",
            },
        ]
    }
)


def request(**fields: object) -> ActionRequest:
    values: dict[str, object] = {
        "action": "pay.invoice",
        "principal": Principal(agent="pay-bot", on_behalf_of="tom"),
        "resource": {"type": "invoice", "id": "inv-7"},
        "args": {"amount": 250_000, "currency": "EUR"},
    }
    values.update(fields)
    return ActionRequest.model_validate(values)


def open_case(db: Path, deciders: list[str], req: ActionRequest | None = None) -> Escalation:
    route = Route(
        name="finance", levels=[Level(deciders=deciders, resolve_within=dt.timedelta(hours=4))]
    )
    store = SQLiteStore(db)
    try:
        router = EscalationRouter([route], store, clock=FakeClock(T0))
        return router.open(POLICY.evaluate(req or request()))
    finally:
        store.close()


def stored(db: Path, escalation_id: str) -> Escalation:
    store = SQLiteStore(db)
    try:
        found = store.get(escalation_id)
    finally:
        store.close()
    assert found is not None
    return found


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["escalations", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "escalations.db"
    SQLiteStore(path).close()
    return path


@pytest.fixture
def audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "decisions.jsonl"
    monkeypatch.setenv("HANDRAIL_AUDIT", str(path))
    return path


def records(audit: Path) -> list[tuple[str, str]]:
    with AuditLog.open(audit, read_only=True) as log:
        return [(r.outcome.value, r.context["by"]) for r in log.records()]


def test_approve_decides_as_the_os_user(
    db: Path, audit: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`approve` without any name decides as the OS user running it, in the case and the trail."""
    case = open_case(db, ["maria", ME])
    code, out, err = run(capsys, "approve", case.id, "--reason", "checked", "--store", db)
    assert (code, err) == (0, "")
    assert f"approved by {ME}" in out
    now = stored(db, case.id)
    assert (now.state, now.decided_by) == (EscalationState.APPROVED, ME)
    assert records(audit) == [("approved", ME)]


def test_an_os_user_who_is_no_decider_is_refused_whatever_the_routes_file_says(
    db: Path, audit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a decider: exit 1 and an audited refusal, even with a `--routes` file naming the
    OS user a member of the deciding group (the caller's own file never widens the deciders)."""
    case = open_case(db, ["maria", "group:finance"])
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "version: 1\nroutes:\n  - name: finance\n    levels:\n      - deciders: [group:finance]\n"
        "        resolve_within: 4h\n"
        f"groups:\n  finance: [{ME}]\n",
        encoding="utf-8",
    )
    for extra in ((), ("--routes", routes)):
        code, out, err = run(capsys, "approve", case.id, "--reason", "me", "--store", db, *extra)
        assert (code, out) == (1, "")
        assert f"{ME!r} may not decide at level 0" in err
    assert stored(db, case.id).state is EscalationState.OPEN
    assert records(audit) == [("refused", ME), ("refused", ME)]


@pytest.mark.parametrize("command", ["ack", "approve", "reject"])
def test_as_is_refused_on_sqlite_which_has_no_roles(
    db: Path, audit: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--as USER` needs a store that says its user is an administrator: SQLite never does."""
    case = open_case(db, ["maria", ME])
    reason = () if command == "ack" else ("--reason", "ok")
    code, out, err = run(capsys, command, case.id, "--as", "maria", *reason, "--store", db)
    assert (code, out) == (1, "")
    assert "--as maria refused" in err
    assert "an SQLite file or memory has no roles" in err
    assert err.count("\n") == 1
    assert stored(db, case.id).state is EscalationState.OPEN
    # A refused decision, so audited like the router's own refusals: who was named, and how.
    with AuditLog.open(audit, read_only=True) as log:
        [record] = log.records()
    attempted = "acknowledge" if command == "ack" else command
    assert (record.outcome.value, record.escalation_id, record.context["by"]) == (
        "refused", case.id, "maria",
    )  # fmt: skip
    assert (record.context["attempted"], record.context["authenticated"]) == (attempted, False)
    assert record.context["via"] == f"--as by os-user uid {os.geteuid()}"
    assert record.reason is not None
    assert "--as maria refused" in record.reason


@pytest.mark.parametrize("command", ["ack", "approve", "reject"])
def test_an_os_user_without_a_name_is_refused_and_audited(
    db: Path, audit: Path, command: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A uid the password database does not name verifies nobody: exit 1, and the refused
    decision is in the audit trail under the uid."""
    case = open_case(db, ["maria", ME])

    def nameless(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", nameless)
    reason = () if command == "ack" else ("--reason", "ok")
    code, out, err = run(capsys, command, case.id, *reason, "--store", db)
    assert (code, out) == (1, "")
    assert "has no name in the password database" in err
    assert stored(db, case.id).state is EscalationState.OPEN
    assert records(audit) == [("refused", f"uid {os.geteuid()}")]


@pytest.mark.parametrize("command", ["ack", "approve", "reject", "cancel"])
def test_by_is_a_usage_error_that_names_what_replaced_it(
    db: Path, audit: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--by NAME` (anyone can type a name) is gone: exit 2, saying you act as the OS user."""
    case = open_case(db, ["maria", ME])
    reason = ("--reason", "ok") if command in ("approve", "reject") else ()
    code, out, err = run(capsys, command, case.id, "--by", "maria", *reason, "--store", db)
    assert (code, out) == (2, "")
    assert "argument --by: removed: you act as the OS user running the command" in err
    assert "--as USER" in err
    assert stored(db, case.id).state is EscalationState.OPEN


@pytest.mark.parametrize("command", ["ack", "approve", "reject"])
def test_a_decision_cannot_be_unaudited(
    db: Path, command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--no-audit` is refused for decisions, with or without an audit log configured."""
    case = open_case(db, ["maria", ME])
    reason = () if command == "ack" else ("--reason", "ok")
    for audited in (True, False):
        if not audited:
            monkeypatch.delenv("HANDRAIL_AUDIT", raising=False)
        else:
            monkeypatch.setenv("HANDRAIL_AUDIT", str(db.parent / "a.jsonl"))
        code, out, err = run(capsys, command, case.id, *reason, "--store", db, "--no-audit")
        assert (code, out) == (2, "")
        assert "argument --no-audit: decisions are always audited" in err
    assert stored(db, case.id).state is EscalationState.OPEN


def test_show_prints_forged_lines_inert_and_the_real_amount(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resource id and an argument that carry a clear-screen and a forged "Reason:" line
    print as one escaped line each; the real arguments (the amount) are shown."""
    forged = "inv-7\x1b[2J\nReason: Pre-approved by the CFO, amount EUR 12"
    case = open_case(
        db,
        ["maria"],
        request(
            resource={"type": "invoice", "id": forged, "attributes": {"owner": "tom\u202e"}},
            args={"amount": 250_000, "memo": forged},
            context={"env": "production"},
        ),
    )
    code, out, err = run(capsys, "show", case.id, "--store", db)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert all(line.isprintable() for line in lines)
    assert "\x1b" not in out
    assert not [line for line in lines if line.lstrip().startswith("Reason:")]
    assert "inv-7\\x1b[2J\\nReason: Pre-approved" in out
    assert "  amount: 250000" in lines
    assert '  memo: "inv-7\\u001b[2J\\nReason: Pre-approved by the CFO, amount EUR 12"' in lines
    assert '  owner: "tom\\u202e"' in lines
    assert '  env: "production"' in lines
    assert "  rule: " not in out
    assert "escalate by rule 'big-payment'" in out
