"""check_policy_cases: policy test cases as a one-line pytest assertion."""

from __future__ import annotations

from pathlib import Path

import pytest

from handrail import Policy, PolicyError, Rule
from handrail.policy import PolicyCases
from handrail.testing import check_policy_cases

POLICY = Policy(
    [
        Rule(id="read", effect="allow", actions=("crm.contact.read",)),
        Rule(id="no-deletes", effect="deny", actions=("crm.*.delete",)),
    ]
)
READ_CASE = {
    "name": "anyone reads",
    "request": {"principal": {"agent": "bot"}, "action": "crm.contact.read"},
    "expect": "allow",
    "rule": "read",
}


def test_passing_cases_return_the_report() -> None:
    """When every case passes, the report comes back for further checks."""
    report = check_policy_cases(POLICY, PolicyCases.from_dict({"cases": [READ_CASE]}))
    assert report.passed
    assert report.uncovered_rules == ("no-deletes",)


def test_a_failing_case_raises_assertion_error_with_the_report() -> None:
    """A failing case raises AssertionError whose message is the readable report."""
    cases = PolicyCases.from_dict({"cases": [{**READ_CASE, "expect": "deny"}]})
    with pytest.raises(AssertionError) as info:
        check_policy_cases(POLICY, cases)
    assert str(info.value) == str(cases.run(POLICY))
    assert "  FAIL  anyone reads" in str(info.value)


def test_min_coverage_fails_when_rules_are_unexercised() -> None:
    """min_coverage=1.0 fails, naming the uncovered rules, when a rule was never exercised."""
    cases = PolicyCases.from_dict({"cases": [READ_CASE]})
    with pytest.raises(AssertionError, match=r"rule coverage 50% is below the required 100%"):
        check_policy_cases(POLICY, cases, min_coverage=1.0)
    with pytest.raises(ValueError, match=r"min_coverage must be between 0\.0 and 1\.0"):
        check_policy_cases(POLICY, cases, min_coverage=100)


def test_paths_are_loaded(tmp_path: Path) -> None:
    """Both arguments may be paths; a malformed file raises PolicyError, not AssertionError."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.to_yaml(), encoding="utf-8")
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n  - name: deleting\n"
        "    request: {principal: {agent: bot}, action: crm.contact.delete}\n"
        "    expect: deny\n    rule: no-deletes\n",
        encoding="utf-8",
    )
    assert check_policy_cases(str(policy), cases).passed
    cases.write_text("cases: []\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="'cases' must be a non-empty list"):
        check_policy_cases(policy, cases)
