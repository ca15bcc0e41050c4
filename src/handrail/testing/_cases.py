"""``check_policy_cases``: run a policy's test cases inside pytest (or any test runner)."""

from __future__ import annotations

import os

from ..policy import Policy, PolicyCases, PolicyTestReport

__all__ = ["check_policy_cases"]


def check_policy_cases(
    policy: Policy | str | os.PathLike[str],
    cases: PolicyCases | str | os.PathLike[str],
    *,
    min_coverage: float = 0.0,
) -> PolicyTestReport:
    """Run ``cases`` against ``policy``; raise ``AssertionError`` with the report if any fails.

    Either argument may be a path to load (raising ``PolicyError`` if it is
    malformed).  ``min_coverage`` (0.0 to 1.0) also fails the check when fewer
    rules than that fraction were exercised; ``1.0`` demands that every rule is.
    Returns the report when everything passed.
    """
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be between 0.0 and 1.0, got {min_coverage!r}")
    if not isinstance(policy, Policy):
        policy = Policy.from_file(policy)
    if not isinstance(cases, PolicyCases):
        cases = PolicyCases.from_file(cases)
    report = cases.run(policy)
    if not report.passed:
        raise AssertionError(str(report))
    if report.coverage < min_coverage:
        raise AssertionError(
            f"rule coverage {report.coverage:.0%} is below the required {min_coverage:.0%}:\n"
            f"{report}"
        )
    return report
