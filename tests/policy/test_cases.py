"""Policy test cases: the file format, the checks, the report and rule coverage."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handrail import Effect, Policy, PolicyError
from handrail.policy import CaseResult, PolicyCases, PolicyTestReport

POLICY = Policy.from_yaml(
    textwrap.dedent(
        """
        rules:
          - id: read
            effect: allow
            actions: [crm.contact.read]
            principals: {agents: [bot], roles: [rep]}
          - id: eu-reads
            effect: audit
            actions: [crm.contact.read]
            when: {resource.attributes.region: {exists: true, eq: eu}}
          - id: update
            effect: allow
            actions: [crm.deal.update]
            principals: {agents: [bot], roles: [rep]}
          - id: big-discount
            effect: escalate
            actions: [crm.deal.update]
            when: {args.discount: {gt: 20}}
            escalate_to: managers
          - id: no-contractors
            effect: deny
            actions: [crm.deal.update]
            principals: {groups: [contractors]}
          - id: no-deletes
            effect: deny
            actions: ["crm.*.delete"]
        """
    )
)

REP = "{agent: bot, on_behalf_of: {id: alice, roles: [rep]}}"


def cases(body: str) -> PolicyCases:
    return PolicyCases.from_yaml(textwrap.dedent(body), source="cases.yaml")


def one_case(
    expectations: str,
    request: str = (
        "{principal: {agent: bot}, action: crm.contact.read,"
        " resource: {type: contact, attributes: {region: us}}}"
    ),
) -> PolicyCases:
    return cases(
        f"""
        cases:
          - name: the case
            request: {request}
            {expectations}
        """
    )


def problems(body: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        cases(body)
    return [str(p) for p in info.value.problems]


# -- running -------------------------------------------------------------------


def test_matching_cases_pass() -> None:
    """Cases whose expectations meet the policy's decisions all pass."""
    report = cases(
        f"""
        cases:
          - name: a rep reads
            request:
              principal: {REP}
              action: crm.contact.read
              resource: {{type: contact, attributes: {{region: us}}}}
            expect: allow
            rule: read
          - name: a big discount escalates
            request: {{principal: {REP}, action: crm.deal.update, args: {{discount: 30}}}}
            expect: escalate
            rule: big-discount
            escalate_to: managers
        """
    ).run(POLICY)
    assert report.passed
    assert report.failures == ()
    assert [r.passed for r in report.results] == [True, True]
    assert isinstance(report.results[0], CaseResult)
    assert report.results[1].actual.escalate_to == "managers"


def test_wrong_effect_fails_with_expected_and_actual() -> None:
    """A case expecting another effect fails, and the result holds both and the decision."""
    report = one_case("expect: deny").run(POLICY)
    assert not report.passed
    (failure,) = report.failures
    assert failure.name == "the case"
    assert failure.expected is Effect.DENY
    assert failure.actual.effect is Effect.ALLOW
    assert failure.mismatches == ("effect: expected deny, got allow",)


def test_rule_is_checked_only_when_given() -> None:
    """Without `rule` any deciding rule will do; with it, the deciding rule must be that one."""
    assert one_case("expect: allow").run(POLICY).passed
    assert one_case("expect: allow\n            rule: read").run(POLICY).passed
    report = one_case("expect: allow\n            rule: eu-reads").run(POLICY)
    assert report.failures[0].mismatches == ("rule: expected rule 'eu-reads', got rule 'read'",)


def test_rule_null_expects_the_default_deny() -> None:
    """`rule: null` passes only when no rule decided (the default deny)."""
    stranger = "{principal: {agent: stranger}, action: crm.contact.read}"
    assert one_case("expect: deny\n            rule: null", stranger).run(POLICY).passed
    deleting = "{principal: {agent: bot}, action: crm.contact.delete}"
    report = one_case("expect: deny\n            rule: null", deleting).run(POLICY)
    assert report.failures[0].mismatches == (
        "rule: expected the default deny, got rule 'no-deletes'",
    )


def test_unknown_expected_rule_is_named() -> None:
    """Expecting a rule the policy lacks fails, saying the policy has no such rule."""
    report = one_case("expect: allow\n            rule: raed").run(POLICY)
    assert "(the policy has no rule 'raed')" in report.failures[0].mismatches[0]
    assert "(the policy has no rule 'raed')" in str(report)


def test_escalate_to_is_checked() -> None:
    """An escalation to another route than the expected one fails."""
    request = f"{{principal: {REP}, action: crm.deal.update, args: {{discount: 30}}}}"
    report = one_case("expect: escalate\n            escalate_to: legal", request).run(POLICY)
    assert report.failures[0].mismatches == ("escalate_to: expected 'legal', got 'managers'",)


def test_undetermined_attributes_are_checked() -> None:
    """`undetermined` lists the attributes the decision counted against the request."""
    missing = f"{{principal: {REP}, action: crm.deal.update, args: {{discount: lots}}}}"
    expectations = "expect: escalate\n            undetermined: [args.discount]"
    assert one_case(expectations, missing).run(POLICY).passed
    report = one_case("expect: escalate\n            undetermined: []", missing).run(POLICY)
    assert report.failures[0].mismatches == ("undetermined: expected [], got [args.discount]",)


def test_on_behalf_of_the_stricter_half_decides() -> None:
    """A case acting for a user sees the combined decision: the stricter half stands."""
    carl = "{agent: bot, on_behalf_of: {id: carl, roles: [rep], groups: [contractors]}}"
    report = one_case(
        "expect: deny\n            rule: no-contractors",
        f"{{principal: {carl}, action: crm.deal.update, args: {{discount: 5}}}}",
    ).run(POLICY)
    assert report.passed
    decision = report.results[0].actual
    assert decision.as_agent is not None
    assert decision.as_agent.effect is Effect.ALLOW


def test_report_text_names_each_failure() -> None:
    """str(report) shows each failure's name, expected and actual effect and rule, and reason."""
    report = cases(
        f"""
        cases:
          - name: passes
            request: {{principal: {REP}, action: crm.contact.read}}
            expect: allow
          - name: an intern updates a deal
            request: {{principal: {{agent: bot, on_behalf_of: ivan}}, action: crm.deal.update}}
            expect: allow
            rule: update
        """
    ).run(POLICY)
    text = str(report)
    assert "  ok    passes" in text
    assert "  FAIL  an intern updates a deal" in text
    assert "expected: allow by rule 'update'" in text
    assert "actual:   deny by the default deny" in text
    assert "reason:   user:ivan: no rule grants crm.deal.update to user:ivan" in text
    assert "2 cases: 1 FAILED, 1 passed" in text


# -- coverage ------------------------------------------------------------------


def test_coverage_counts_every_matched_rule() -> None:
    """A rule is covered when it matched in some case, even if a stricter rule decided."""
    report = cases(
        f"""
        cases:
          - name: an EU read
            request:
              principal: {REP}
              action: crm.contact.read
              resource: {{type: contact, attributes: {{region: eu}}}}
            expect: audit
        """
    ).run(POLICY)
    assert report.covered_rules == ("read", "eu-reads")
    assert report.uncovered_rules == ("update", "big-discount", "no-contractors", "no-deletes")
    assert report.coverage == pytest.approx(2 / 6)
    assert "rule coverage: 2/6 rules (33%)" in str(report)
    assert "uncovered rules: update, big-discount, no-contractors, no-deletes" in str(report)


def test_coverage_includes_rules_matched_for_the_user_only() -> None:
    """A rule that matched only the user's half of an on-behalf-of decision is covered."""
    carl = "{agent: bot, on_behalf_of: {id: carl, roles: [rep], groups: [contractors]}}"
    report = one_case(
        "expect: deny", f"{{principal: {carl}, action: crm.deal.update, args: {{discount: 5}}}}"
    ).run(POLICY)
    decision = report.results[0].actual
    assert decision.as_agent is not None
    assert "no-contractors" not in {r.id for r in decision.as_agent.matched}
    assert "no-contractors" in report.covered_rules
    assert "update" in report.covered_rules


def test_policy_without_rules_is_fully_covered() -> None:
    """With no rules there is nothing to cover: coverage is 1.0."""
    report = one_case("expect: deny").run(Policy([]))
    assert report.passed
    assert report.coverage == 1.0
    assert report.uncovered_rules == ()


def test_report_to_dict_is_json() -> None:
    """to_dict() is JSON-serialisable and carries verdict, coverage and each case."""
    report = one_case("expect: deny\n            rule: read").run(POLICY)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is False
    assert data["total"] == 1
    assert data["failed"] == 1
    assert data["covered_rules"] == ["read"]
    assert "no-deletes" in data["uncovered_rules"]
    (case,) = data["cases"]
    assert case["name"] == "the case"
    assert case["expected"] == {"effect": "deny", "rule_id": "read"}
    assert case["actual"]["effect"] == "allow"
    assert case["mismatches"] == ["effect: expected deny, got allow"]


ACTIONS = ["crm.contact.read", "crm.deal.update", "crm.deal.delete", "crm.other.thing"]
USERS = [None, {"id": "u"}, {"id": "u", "roles": ["rep"]}, {"id": "c", "groups": ["contractors"]}]


@given(
    agent=st.sampled_from(["bot", "stranger"]),
    user=st.sampled_from(USERS),
    action=st.sampled_from(ACTIONS),
    discount=st.one_of(st.none(), st.integers(-10, 50), st.text(max_size=3)),
    wrong=st.sampled_from(list(Effect)),
)
def test_a_case_passes_exactly_when_it_expects_the_decision(
    agent: str, user: dict[str, object] | None, action: str, discount: object, wrong: Effect
) -> None:
    """A case built from the policy's own decision passes; one expecting another effect fails."""
    args = {} if discount is None else {"discount": discount}
    request = {"principal": {"agent": agent, "on_behalf_of": user}, "action": action, "args": args}
    decision = POLICY.evaluate(PolicyCases.from_dict({"cases": [
        {"name": "probe", "request": request, "expect": "deny"}
    ]}).cases[0].request)  # fmt: skip
    exact = {
        "name": "exact",
        "request": request,
        "expect": decision.effect.value,
        "rule": decision.rule_id,
        "undetermined": list(decision.undetermined),
    }
    if decision.escalate_to is not None:
        exact["escalate_to"] = decision.escalate_to
    other = {"name": "other", "request": request, "expect": wrong.value}
    report = PolicyCases.from_dict({"cases": [exact, other]}).run(POLICY)
    assert report.results[0].passed
    assert report.results[1].passed is (wrong is decision.effect)


# -- the file ------------------------------------------------------------------


def test_from_file_reads_cases(tmp_path: Path) -> None:
    """from_file reads a YAML file of cases, keeping their order and the file as source."""
    path = tmp_path / "policy.tests.yaml"
    path.write_text(
        "description: reads\ncases:\n"
        "  - name: a\n    request: {principal: {agent: bot}, action: crm.contact.read}\n"
        "    expect: allow\n"
        "  - name: b\n    request: {principal: {agent: x}, action: crm.contact.read}\n"
        "    expect: DENY\n",
        encoding="utf-8",
    )
    loaded = PolicyCases.from_file(path)
    assert [c.name for c in loaded] == ["a", "b"]
    assert len(loaded) == 2
    assert loaded.cases[1].expect is Effect.DENY
    assert loaded.source == path
    assert loaded.description == "reads"
    assert loaded.run(POLICY).passed


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    """A file that cannot be read raises PolicyError naming it."""
    with pytest.raises(PolicyError, match=r"nope\.yaml: cannot read the test file"):
        PolicyCases.from_file(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_the_line() -> None:
    """Broken YAML raises PolicyError with the file and line."""
    (problem,) = problems("cases:\n  - name: a\n    expect: [allow\n")
    assert problem.startswith("cases.yaml:4: YAML syntax error")


def test_every_problem_is_reported_with_line_field_and_case() -> None:
    """Each malformed field is reported at once, with its line, field path and case name."""
    found = problems(
        """\
        cases:
          - name: first
            request:
              principal: {agent: bot}
              action: crm..read
            expect: alow
          - name: second
            request:
              principal: {agent: bot}
              action: crm.contact.read
              resorce: {type: contact}
            expect: allow
          - request: {principal: {agent: bot}, action: crm.contact.read}
            expect: allow
        """
    )
    assert found[0].startswith(
        "cases.yaml:5: cases[0].request.action: action 'crm..read' is not a dotted name"
    )
    assert found[0].endswith("(case 'first')")
    assert found[1] == (
        "cases.yaml:6: cases[0].expect: unknown effect 'alow' "
        "(expected allow, audit, escalate, deny) (case 'first')"
    )
    assert found[2].startswith(
        "cases.yaml:11: cases[1].request.resorce: unknown field 'resorce': did you mean 'resource'?"
    )
    assert found[3] == "cases.yaml:13: cases[2].name: missing: this field is required"


def test_duplicate_case_names_are_rejected() -> None:
    """Two cases with one name are an error at the second, naming the first."""
    (problem,) = problems(
        """\
        cases:
          - {name: a, request: {principal: {agent: bot}, action: x}, expect: allow}
          - {name: a, request: {principal: {agent: bot}, action: x}, expect: deny}
        """
    )
    assert problem.startswith("cases.yaml:3: cases[1].name: duplicate case name 'a'")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "cases.yaml:1: 'cases' must be a non-empty list"),
        ("- a\n", "cases.yaml:1: a policy test file is a mapping"),
        ("cases: []\n", "cases.yaml:1: 'cases' must be a non-empty list"),
        ("tests: []\n", "cases.yaml:1: unknown key 'tests' (expected cases, description)"),
        (
            "cases:\n  - {name: a, request: {principal: {agent: b}, action: x}, "
            "expect: allow, escalate_to: m}\n",
            "'escalate_to' can only be expected with expect: escalate, not allow",
        ),
    ],
)
def test_malformed_files_say_what_is_wrong(body: str, expected: str) -> None:
    """Structural mistakes in the file are PolicyErrors that say what to fix."""
    assert any(expected in p for p in problems(body))


def test_from_dict_reports_fields_without_lines() -> None:
    """Data given as a mapping has no lines, but problems still name the case and field."""
    with pytest.raises(PolicyError) as info:
        PolicyCases.from_dict({"cases": [{"name": "a", "request": {}, "expect": "allow"}]})
    assert info.value.field == "cases[0].request.principal"
    assert info.value.line is None
    assert "(case 'a')" in str(info.value)


def test_constructor_rejects_duplicates_and_non_cases() -> None:
    """PolicyCases built in code also refuses duplicate names and foreign objects."""
    case = PolicyCases.from_dict(
        {"cases": [{"name": "a", "request": {"principal": {"agent": "b"}, "action": "x"},
                    "expect": "allow"}]}
    ).cases[0]  # fmt: skip
    with pytest.raises(PolicyError, match="duplicate case name 'a'"):
        PolicyCases([case, case])
    with pytest.raises(TypeError, match="PolicyCases takes PolicyCase objects, got str"):
        PolicyCases(["a"])  # type: ignore[list-item]


def test_report_is_exported() -> None:
    """The report types are public names of handrail.policy."""
    report = one_case("expect: allow").run(POLICY)
    assert isinstance(report, PolicyTestReport)
    assert repr(one_case("expect: allow")) == "<PolicyCases: 1 cases from cases.yaml>"


def test_duplicate_keys_are_refused() -> None:
    """A key given twice in one mapping is an error at its second line, not silently dropped."""
    found = problems(
        "cases:\n  - name: a\n    expect: allow\n    expect: deny\n"
        "    request: {principal: {agent: bot}, action: crm.contact.read}\n"
    )
    assert any(p.startswith("cases.yaml:4:") and "expect" in p for p in found), found
