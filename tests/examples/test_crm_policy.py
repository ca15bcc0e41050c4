"""The example CRM policy: well documented, and its own test cases pass with full coverage."""

from __future__ import annotations

from pathlib import Path

from handrail import Policy
from handrail.testing import check_policy_cases

POLICIES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def test_cases_pass_with_full_rule_coverage() -> None:
    """Every case in crm-agent.tests.yaml passes and together they exercise every rule."""
    report = check_policy_cases(
        POLICIES / "crm-agent.yaml", POLICIES / "crm-agent.tests.yaml", min_coverage=1.0
    )
    assert report.uncovered_rules == ()
    assert len(report.results) >= len(report.rule_ids)


def test_every_rule_has_a_description_and_an_owner() -> None:
    """Each rule says why it exists and who to ask about it."""
    policy = Policy.from_file(POLICIES / "crm-agent.yaml")
    for rule in policy.rules:
        assert rule.description, rule.id
        assert rule.owner, rule.id
