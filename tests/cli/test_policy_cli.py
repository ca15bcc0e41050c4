"""The `handrail policy` commands: output, exit codes and one-line usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from handrail.cli import main

ROOT = Path(__file__).resolve().parents[2]
POLICY = str(ROOT / "examples" / "policies" / "crm-agent.yaml")
CASES = str(ROOT / "examples" / "policies" / "crm-agent.tests.yaml")
EXPLAIN = ["policy", "explain", POLICY, "--agent", "sales-assistant"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run a command that must fail as a usage error, and return its one line."""
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.count("\n") == 1
    return err.strip()


@pytest.fixture
def broken_policy(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "rules:\n"
        "  - id: big-discount\n"
        "    effect: escalte\n"
        "    actions: [crm.opportunity.update]\n"
        "  - id: reads\n"
        "    effect: allow\n"
        "    actions: [crm..read]\n",
        encoding="utf-8",
    )
    return path


# -- in a real process ---------------------------------------------------------


def test_python_dash_m_checks_a_policy() -> None:
    """`python -m handrail policy check` runs in a fresh process and reports the rule count."""
    result = subprocess.run(
        [sys.executable, "-m", "handrail", "policy", "check", POLICY],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{POLICY}: ok, 12 rules\n"
    assert result.stderr == ""


def test_python_dash_m_bad_json_is_one_line_exit_2() -> None:
    """In a fresh process, invalid JSON exits 2 with one line naming the argument, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "handrail", *EXPLAIN, "--action", "crm.contact.read",
         "--args", "{discount: 30}"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("handrail policy explain: error: argument --args: invalid JSON")
    assert result.stderr.count("\n") == 1


def test_python_dash_m_failing_cases_exit_1(tmp_path: Path) -> None:
    """In a fresh process, `policy test` with a failing case prints the failure and exits 1."""
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n  - name: deletes are fine\n"
        "    request: {principal: {agent: sales-assistant}, action: crm.contact.delete}\n"
        "    expect: allow\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "handrail", "policy", "test", POLICY, str(cases)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "  FAIL  deletes are fine" in result.stdout
    assert "actual:   deny by rule 'no-deletes'" in result.stdout


# -- check ---------------------------------------------------------------------


def test_check_valid_policy(capsys: pytest.CaptureFixture[str]) -> None:
    """A valid policy: exit 0 and 'FILE: ok, N rules'."""
    assert run(["policy", "check", POLICY], capsys) == (0, f"{POLICY}: ok, 12 rules\n", "")


def test_check_valid_policy_json(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the path, ok and the rule count."""
    code, out, _ = run(["policy", "check", POLICY, "--json"], capsys)
    assert code == 0
    assert json.loads(out) == {"path": POLICY, "ok": True, "rules": 12}


def test_check_reports_every_problem(
    broken_policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed policy: exit 1, every problem on stderr as file:line: rule: field: message."""
    code, out, err = run(["policy", "check", str(broken_policy)], capsys)
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{broken_policy}:3: rule 'big-discount': effect: unknown effect")
    assert lines[1].startswith(f"{broken_policy}:7: rule 'reads': actions[0]: malformed action")


def test_check_problems_as_json(broken_policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json lists each problem's message, path, line, rule and field."""
    code, out, _ = run(["policy", "check", str(broken_policy), "--json"], capsys)
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    first = data["problems"][0]
    assert (first["path"], first["line"], first["rule_id"], first["field"]) == (
        str(broken_policy),
        3,
        "big-discount",
        "effect",
    )


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that does not exist is a policy error (exit 1) naming it, not a traceback."""
    missing = tmp_path / "missing.yaml"
    code, _, err = run(["policy", "check", str(missing)], capsys)
    assert code == 1
    assert err.startswith(f"{missing}: cannot read")
    assert "Traceback" not in err


# -- explain -------------------------------------------------------------------


def test_explain_on_behalf_of_a_user(capsys: pytest.CaptureFixture[str]) -> None:
    """explain prints the decision and every rule for the agent and the user it acts for."""
    code, out, err = run(
        [*EXPLAIN, "--as", "alice", "--as-role", "sales_rep", "--as-group", "sales",
         "--action", "crm.opportunity.update",
         "--resource", '{"type": "opportunity", "id": "opp-9"}',
         "--args", '{"discount_pct": 35}', "--context", '{"environment": "production"}'],
        capsys,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith(
        "crm.opportunity.update by agent:sales-assistant for user:alice: ESCALATE\n"
    )
    assert "  escalate to: sales-managers" in out
    assert "escalate big-discount [user:alice] matched" in out
    assert "allow    update-opportunities [agent:sales-assistant] matched" in out


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    """explain --json prints the explanation's to_dict()."""
    code, out, _ = run(
        [*EXPLAIN, "--role", "helper", "--action", "crm.contact.delete", "--json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    assert data["decision"]["effect"] == "deny"
    assert data["decision"]["rule_id"] == "no-deletes"
    assert {r["rule_id"] for r in data["rules"]} >= {"no-deletes", "read-crm"}


def test_explain_policy_error_exits_1(
    broken_policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A policy that fails to load: exit 1 with the PolicyError text."""
    code, out, err = run(
        ["policy", "explain", str(broken_policy), "--agent", "a", "--action", "crm.x"], capsys
    )
    assert code == 1
    assert out == ""
    assert f"{broken_policy}:3: rule 'big-discount'" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--action", "crm..read"],
            "argument --action: action 'crm..read' is not a dotted name",
        ),
        (["--action", "x", "--resource", "{bad"], "argument --resource: invalid JSON"),
        (["--action", "x", "--args", "[1, 2]"], "argument --args: expected a JSON object"),
        (["--action", "x", "--context", "null"], "argument --context: expected a JSON object"),
        (
            ["--action", "x", "--resource", '{"id": "c-1"}'],
            "argument --resource: type: missing, and required",
        ),
        (
            ["--action", "x", "--resource", '{"type": "contact", "colour": "red"}'],
            "argument --resource: colour: unknown field (expected type, id, attributes)",
        ),
        (
            ["--action", "x", "--as-role", "sales_rep"],
            "argument --as-role: needs --as USER",
        ),
        (["--action", "x", "--as-group", "sales"], "argument --as-group: needs --as USER"),
        (["--action", "x", "--as", ""], "argument --as: id: String should have at least 1"),
        ([], "the following arguments are required: --action"),
    ],
)
def test_explain_bad_arguments_exit_2(
    extra: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad argument exits 2 with one line naming it."""
    line = usage_error([*EXPLAIN, *extra], capsys)
    assert line.startswith("handrail policy explain: error: ")
    assert expected in line
    assert line.endswith("(see 'handrail policy explain --help')")


def test_explain_empty_agent_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An empty --agent is a usage error naming --agent."""
    line = usage_error(["policy", "explain", POLICY, "--agent", "", "--action", "x"], capsys)
    assert "argument --agent: String should have at least 1 character" in line


# -- test ----------------------------------------------------------------------


def test_test_passing_cases(capsys: pytest.CaptureFixture[str]) -> None:
    """Passing cases: exit 0, each case listed, and the rule coverage."""
    code, out, err = run(["policy", "test", POLICY, CASES], capsys)
    assert (code, err) == (0, "")
    assert "  ok    a 35 % discount goes to the sales managers" in out
    assert "cases: all passed" in out
    assert "rule coverage: 12/12 rules (100%)" in out


def test_test_failing_cases_show_uncovered_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Failing cases: exit 1, the failure, and the rules no case exercised."""
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n  - name: interns update contacts\n"
        "    request: {principal: {agent: sales-assistant, on_behalf_of: {id: ivan}},"
        " action: crm.contact.update}\n"
        "    expect: allow\n",
        encoding="utf-8",
    )
    code, out, _ = run(["policy", "test", POLICY, str(cases)], capsys)
    assert code == 1
    assert "  FAIL  interns update contacts" in out
    assert "1 case: 1 FAILED, 0 passed" in out
    assert "rule coverage: 1/12 rules (8%)" in out
    assert "uncovered rules: read-crm, audit-eu-contact-reads," in out


def test_test_json(capsys: pytest.CaptureFixture[str]) -> None:
    """test --json prints the report's to_dict()."""
    code, out, _ = run(["policy", "test", POLICY, CASES, "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["passed"] is True
    assert data["coverage"] == 1.0
    assert data["uncovered_rules"] == []


def test_test_malformed_cases_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed cases file: exit 1 with file:line of the problem."""
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - name: a\n    expect: maybe\n", encoding="utf-8")
    code, out, err = run(["policy", "test", POLICY, str(cases)], capsys)
    assert code == 1
    assert out == ""
    assert f"{cases}:2: cases[0].request: missing" in err
    assert f"{cases}:3: cases[0].expect: unknown effect 'maybe'" in err


# -- the command itself --------------------------------------------------------


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`handrail` and `handrail policy` without a command exit 2, saying a command is needed."""
    assert "required: COMMAND" in usage_error([], capsys)
    assert "required: COMMAND" in usage_error(["policy"], capsys)
    assert "invalid choice: 'frob'" in usage_error(["policy", "frob"], capsys)


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints usage and --version the version, both with exit 0."""
    code, out, _ = run(["policy", "explain", "--help"], capsys)
    assert code == 0
    assert "--as-role ROLE" in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out.startswith("handrail ")


# -- hostile and inconsistent files --------------------------------------------------

ROUTES = str(ROOT / "examples" / "routes" / "sales.yaml")


def test_check_with_routes_passes_when_every_route_exists(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`policy check --routes` exits 0 when every escalate_to names a route of the file."""
    code, out, err = run(["policy", "check", POLICY, "--routes", ROUTES], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"{POLICY}: ok, ")
    assert f"every escalate_to in {ROUTES}" in out


def test_check_with_routes_names_each_missing_route_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An escalate_to naming no route of the routes file is a problem at the rule's line."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "rules:\n"
        "  - {id: grant, effect: allow, actions: ['crm.*']}\n"
        "  - id: big-discount\n"
        "    effect: escalate\n"
        "    actions: [crm.deal.update]\n"
        "    escalate_to: sales-manager\n"
        "  - {id: refunds, effect: escalate, actions: [billing.refund], escalate_to: finance}\n"
        "  - {id: exports, effect: escalate, actions: [crm.export], escalate_to: legal}\n",
        encoding="utf-8",
    )
    code, out, err = run(["policy", "check", str(policy), "--routes", ROUTES], capsys)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"{policy}:6: rule 'big-discount': escalate_to: no route 'sales-manager' in {ROUTES}"
    )
    assert "(its routes: finance, sales-managers)" in lines[0]
    assert lines[1].startswith(f"{policy}:8: rule 'exports': escalate_to: no route 'legal'")
    code, out, _ = run(["policy", "check", str(policy), "--routes", ROUTES, "--json"], capsys)
    problems = json.loads(out)["problems"]
    assert [(p["line"], p["rule_id"], p["field"]) for p in problems] == [
        (6, "big-discount", "escalate_to"),
        (8, "exports", "escalate_to"),
    ]


def test_check_with_routes_reports_an_undefined_decider_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A routes file whose decider group no groups: entry defines fails the check at its line."""
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "routes:\n"
        "  - name: sales-managers\n"
        "    levels:\n"
        "      - deciders: [maria, group:sales-leads]\n"
        "        resolve_within: 4h\n"
        "groups:\n"
        "  sales-lead: [maria]\n",
        encoding="utf-8",
    )
    code, _, err = run(["policy", "check", POLICY, "--routes", str(routes)], capsys)
    assert code == 1
    assert err.startswith(
        f"{routes}:4: routes[0].levels[0].deciders[1]: group 'sales-leads' is not defined"
    )


def test_explain_with_a_number_too_long_to_read_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--args holding a 5,000-digit number is a one-line usage error that says so."""
    line = usage_error(
        [*EXPLAIN, "--action", "crm.contact.read", "--args", '{"n": ' + "9" * 5_000 + "}"], capsys
    )
    assert "argument --args: a number in the JSON is too long" in line
    assert "at most 4,300 digits" in line
    assert len(line) < 400  # the argument is quoted cut short, not whole


def test_explain_with_json_nested_too_deep_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--args nested 100,000 deep is a one-line usage error, not a RecursionError."""
    deep = "[" * 100_000 + "]" * 100_000
    line = usage_error(
        [*EXPLAIN, "--action", "crm.contact.read", "--args", f'{{"x": {deep}}}'], capsys
    )
    assert "argument --args: the JSON is nested too deeply to read" in line


def test_problems_and_reports_never_print_raw_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Escape sequences from a policy reach the terminal escaped, in problems and in reports."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        'rules:\n  - {id: a, effect: allow, actions: [a.b], description: "\\e[2J\\u202e"}\n',
        encoding="utf-8",
    )
    code, out, err = run(
        [
            "policy",
            "explain",
            str(policy),
            "--agent",
            "bot",
            "--action",
            "a.b",
            "--args",
            '{"k": "\\u001b[31m"}',
        ],
        capsys,
    )
    assert code == 0
    assert "\x1b" not in out + err
    assert "\u202e" not in out + err


def test_check_reports_a_too_deep_policy_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A condition nested 300 deep is one problem at its line and exit 1, not a traceback."""
    policy = tmp_path / "deep.yaml"
    condition = "{all: [" * 300 + "{args.x: 1}" + "]}" * 300
    policy.write_text(
        f"rules:\n  - id: deep\n    effect: allow\n    actions: [a.b]\n    when: {condition}\n",
        encoding="utf-8",
    )
    code, out, err = run(["policy", "check", str(policy)], capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"{policy}:5: nested deeper than 200 levels of mappings and lists")
    assert "Traceback" not in err
