"""A rule's ``on_timeout``: only on escalate rules, kept by every file format."""

from __future__ import annotations

import pytest

from handrail import Policy, PolicyError

ESCALATING = """
rules:
  - {id: ok, effect: allow, actions: [erp.refund.create]}
  - {id: refunds, effect: escalate, actions: [erp.refund.create], escalate_to: finance,
     on_timeout: allow}
"""


def test_an_escalate_rule_may_opt_in_to_allow_on_timeout() -> None:
    policy = Policy.from_yaml(ESCALATING)
    assert policy.rules[1].on_timeout == "allow"
    assert Policy.from_yaml(policy.to_yaml()).rules[1].on_timeout == "allow"


def test_on_timeout_on_another_effect_is_an_error_at_its_line() -> None:
    with pytest.raises(PolicyError, match="only meaningful on an escalate rule") as raised:
        Policy.from_yaml("rules:\n  - {id: ok, effect: allow, actions: [a.b], on_timeout: allow}\n")
    assert raised.value.problems[0].line == 2


def test_on_timeout_takes_allow_or_deny_only() -> None:
    with pytest.raises(PolicyError, match="on_timeout"):
        Policy.from_yaml(ESCALATING.replace("on_timeout: allow", "on_timeout: keep_open"))
