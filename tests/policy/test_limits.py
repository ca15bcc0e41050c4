"""Policies that would fail open or break at run time are refused when built or loaded.

Empty principal lists (which read as "everyone"), conditions nested past
MAX_CONDITION_DEPTH, and ordering comparisons against numbers in quotes.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from handrail import ActionRequest, Effect, Policy, PolicyError, Principal, Rule
from handrail.policy import AllOf, AnyOf, Compare, Condition, Exists, Not, PrincipalMatch
from handrail.policy._condition_syntax import parse_condition
from handrail.policy._conditions import (
    MAX_CONDITION_DEPTH,
    ConditionSyntaxError,
    condition_depth,
)

STRANGER = Principal(agent="stranger")


def rule(id: str, effect: str, **kw: Any) -> Rule:
    return Rule.model_validate({"id": id, "effect": effect, "actions": ["billing.refund"], **kw})


# -- empty principal lists ---------------------------------------------------------


@pytest.mark.parametrize("field", ["agents", "users", "groups", "roles"])
def test_an_empty_principal_list_is_refused_in_code(field: str) -> None:
    """principals: {roles: []} would grant to everyone: refused, naming the field."""
    with pytest.raises(ValidationError, match=rf"principals\.{field} is an empty list"):
        rule("r", "allow", principals={field: []})
    with pytest.raises(ValidationError, match="empty list"):
        PrincipalMatch(**{field: frozenset()})


def test_an_empty_principal_list_is_refused_in_a_file_with_its_line() -> None:
    """The loader reports the empty list at its line."""
    text = (
        "version: 1\n"
        "rules:\n"
        "  - id: refunds\n"
        "    effect: allow\n"
        "    actions: [billing.refund]\n"
        "    principals:\n"
        "      roles: []\n"
    )
    with pytest.raises(PolicyError) as caught:
        Policy.from_yaml(text, source="p.yaml")
    assert caught.value.line == 7
    assert "empty list" in str(caught.value)


def test_leaving_principals_out_still_means_everyone() -> None:
    """No principals (or PrincipalMatch()) applies to everyone, and survives model_dump."""
    grant = rule("r", "allow")
    assert grant.principals.is_anyone
    assert Rule.model_validate(grant.model_dump()) == grant
    named = rule("n", "allow", principals={"roles": ["a"]})
    assert Rule.model_validate(named.model_dump()) == named
    assert Policy([grant]).evaluate(ActionRequest(principal=STRANGER, action="billing.refund"))


# -- depth ------------------------------------------------------------------------


def nested(levels: int) -> Condition:
    """A comparison inside ``levels`` nested `not`s."""
    condition: Condition = Compare(path="args.amount", op="gt", value=1)
    for _ in range(levels):
        condition = Not(condition=condition)
    return condition


def test_conditions_at_the_limit_work_everywhere() -> None:
    """A condition MAX_CONDITION_DEPTH levels deep evaluates, explains, renders and dumps."""
    condition = nested(MAX_CONDITION_DEPTH)
    assert condition_depth(condition) == MAX_CONDITION_DEPTH
    policy = Policy([rule("r", "allow", when=condition)])
    request = ActionRequest(principal=STRANGER, action="billing.refund", args={"amount": 5})
    assert policy.evaluate(request).effect in (Effect.ALLOW, Effect.DENY)
    assert str(policy.explain(request))
    assert condition.render()
    assert condition.trace(request).value is not None
    assert parse_condition(condition.to_data()) == condition
    assert Policy.from_yaml(policy.to_yaml()).rules[0].when == condition


def test_building_deeper_in_code_is_refused() -> None:
    """One level past the limit, in code, is a validation error naming the limit."""
    condition = nested(MAX_CONDITION_DEPTH)
    for build in (
        lambda: Not(condition=condition),
        lambda: AllOf(conditions=(condition,)),
        lambda: AnyOf(conditions=(Exists(path="args.x"), condition)),
    ):
        with pytest.raises(ValidationError, match="MAX_CONDITION_DEPTH"):
            build()


def test_a_thousand_levels_built_without_validation_are_refused_by_the_policy() -> None:
    """1,200 levels put together with model_construct: a PolicyError, not a RecursionError."""
    condition: Any = Compare(path="args.amount", op="gt", value=1)
    for _ in range(1200):
        condition = Not.model_construct(condition=condition)
    deep = Rule.model_construct(
        id="deep",
        effect=Effect.ALLOW,
        actions=("billing.refund",),
        principals=PrincipalMatch(),
        when=condition,
        escalate_to=None,
        on_timeout=None,
        description="",
        owner="",
    )
    with pytest.raises(PolicyError) as caught:
        Policy([deep])
    assert caught.value.rule_id == "deep"
    assert "MAX_CONDITION_DEPTH" in str(caught.value)


def test_deep_data_is_refused_with_its_location() -> None:
    """Parsing data nested far past the limit stops at the limit and says where."""
    data: Any = {"args.amount": {"gt": 1}}
    for _ in range(1200):
        data = {"not": data}
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition(data)
    assert len(caught.value.loc) == MAX_CONDITION_DEPTH + 1
    assert "MAX_CONDITION_DEPTH" in str(caught.value)
    with pytest.raises(PolicyError, match="MAX_CONDITION_DEPTH"):
        Policy.from_dict(
            {
                "version": 1,
                "rules": [{"id": "r", "effect": "allow", "actions": ["a.b"], "when": data}],
            }
        )


def test_implicit_all_counts_as_a_level() -> None:
    """Two tests on one path make an all(): the depth counts it, in data and in code alike."""
    data: Any = {"args.amount": {"gt": 1, "lt": 5}}
    for _ in range(MAX_CONDITION_DEPTH - 1):
        data = {"not": data}
    assert condition_depth(parse_condition(data)) == MAX_CONDITION_DEPTH
    with pytest.raises(ConditionSyntaxError, match="MAX_CONDITION_DEPTH"):
        parse_condition({"not": data})


# -- numbers in quotes -----------------------------------------------------------------


@pytest.mark.parametrize("limit", ["100", " 1e5", "10_000", "0x10", "-3.5", "inf"])
@pytest.mark.parametrize("op", ["gt", "ge", "lt", "le"])
def test_ordering_against_a_number_in_quotes_is_refused(op: str, limit: str) -> None:
    """gt: "100" would make every refund undetermined: refused, saying to drop the quotes."""
    with pytest.raises(ValidationError, match="without quotes"):
        rule("r", "escalate", when={"args.amount": {op: limit}}, escalate_to="finance")


def test_a_number_in_quotes_is_refused_in_a_file_with_its_line() -> None:
    """The loader reports it at the line of the comparison."""
    text = (
        "version: 1\n"
        "rules:\n"
        "  - id: big-refunds\n"
        "    effect: escalate\n"
        "    actions: [billing.refund]\n"
        "    escalate_to: finance\n"
        "    when:\n"
        '      args.amount: {gt: "100"}\n'
    )
    with pytest.raises(PolicyError) as caught:
        Policy.from_yaml(text, source="p.yaml")
    assert caught.value.line == 8
    assert "gt: 100" in str(caught.value)


def test_ordering_against_words_and_dates_in_strings_stays_allowed() -> None:
    """Strings that are not numbers still order lexically: ISO dates, version tags, codes."""
    policy = Policy([rule("r", "allow", when={"context.day": {"ge": "2024-01-01"}})])
    assert policy.evaluate(
        ActionRequest(principal=STRANGER, action="billing.refund", context={"day": "2024-06-30"})
    ).is_allowed
    rule("v", "allow", when={"args.tier": {"lt": "m"}})
