"""Properties of policy evaluation: the contracts of the semantics, on generated policies.

The reference evaluator at the end of this file restates the semantics as
plainly as possible (walk every rule, match patterns segment by segment,
evaluate conditions by recursion in three-valued logic).  It shares no code
with ``_compile.py`` or ``Condition.compile``, so the compiled evaluator is
checked against an independent reading of the rules, not against itself.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from handrail import ActionRequest, Decision, Effect, Policy, Principal, Rule
from handrail.policy import AllOf, AnyOf, Compare, Condition, Exists, Not, PrincipalMatch
from handrail.policy._conditions import OPERATORS
from handrail.testing import (
    action_requests,
    attribute_values,
    conditions,
    principals,
    resources,
    rules,
    scalar_values,
    users,
)
from handrail.testing._vocabulary import ACTIONS

T = TypeVar("T")

FAST = settings(max_examples=40, deadline=None)
THOROUGH = settings(max_examples=100, deadline=None)
RESTRICTIONS = rules(effects=(Effect.ESCALATE, Effect.DENY))


class Case(NamedTuple):
    """A policy's rules and some requests; shown rule by rule when a property fails."""

    rules: tuple[Rule, ...]
    requests: tuple[ActionRequest, ...]

    @property
    def policy(self) -> Policy:
        return Policy(self.rules)


def cases(
    rule_strategy: st.SearchStrategy[Rule] | None = None,
    principal_strategy: st.SearchStrategy[Principal] | None = None,
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[Case]:
    """Rules, and requests half aimed at the actions those rules name (as users would)."""
    rule_lists = st.lists(
        rules() if rule_strategy is None else rule_strategy, max_size=8, unique_by=_id
    )
    principal_strategy = (
        principals(values=values) if principal_strategy is None else principal_strategy
    )
    resource_strategy = st.none() | resources(values=values)

    def requests_for(actions: Sequence[str] = ACTIONS) -> st.SearchStrategy[ActionRequest]:
        return action_requests(
            actions=actions,
            principals=principal_strategy,
            resources=resource_strategy,
            values=values,
        )

    anywhere = requests_for()

    @st.composite
    def draw_case(draw: st.DrawFn) -> Case:
        drawn = draw(rule_lists)
        own = sorted({pattern for rule in drawn for pattern in rule.actions})
        requests = anywhere | requests_for(own) if own else anywhere
        return Case(tuple(drawn), tuple(draw(st.lists(requests, min_size=1, max_size=4))))

    return draw_case()


def _id(rule: Rule) -> str:
    return rule.id


def outcome(decision: Decision) -> tuple[Effect, str | None, str | None]:
    """What a decision says: the effect, the deciding rule and the escalation route."""
    return (decision.effect, decision.rule_id, decision.escalate_to)


def renamed(rule: Rule, rule_id: str) -> Rule:
    """The same rule under an id no generated rule has (generated ids look like 'deny-17')."""
    return rule.model_copy(update={"id": rule_id})


# -- default deny ----------------------------------------------------------------


def _granted(policy: Policy, request: ActionRequest, subject: Subject) -> bool:
    """True when some grant covers the action, applies to the subject and surely holds."""
    return any(
        rule.effect.is_grant
        and any(covers(p, request.action) for p in rule.actions)
        and applies(rule.principals, subject)
        and (rule.when is None or truth(rule.when, request) is True)
        for rule in policy.rules
    )


@THOROUGH
@given(cases())
def test_no_matching_grant_means_deny(case: Case) -> None:
    """A subject no grant matches is denied; without grants for the action, so is everyone."""
    policy = case.policy
    for request in case.requests:
        decision = policy.evaluate(request)
        principal, user = request.principal, request.principal.on_behalf_of
        agent = Subject(False, principal.agent, principal.roles, frozenset())
        halves = [(decision.as_agent or decision, agent)]
        if user is not None:
            assert decision.as_user is not None
            halves.append((decision.as_user, Subject(True, user.id, user.roles, user.groups)))
        for half, subject in halves:
            if not _granted(policy, request, subject):
                event("a subject without a matching grant")
                assert half.effect is Effect.DENY
                assert decision.effect is Effect.DENY
        ungranted = Policy(
            rule
            for rule in case.rules
            if not (rule.effect.is_grant and any(covers(p, request.action) for p in rule.actions))
        )
        decision = ungranted.evaluate(request)
        assert decision.effect is Effect.DENY
        assert decision.escalate_to is None
        assert decision.rule is None or decision.rule.effect is Effect.DENY


@FAST
@given(cases(RESTRICTIONS))
def test_restrictions_alone_never_grant(case: Case) -> None:
    """A policy of only ESCALATE and DENY rules denies everything; it never asks a human."""
    policy = case.policy
    for request in case.requests:
        decision = policy.evaluate(request)
        assert decision.effect is Effect.DENY
        assert decision.escalate_to is None


@FAST
@given(action_requests())
def test_the_empty_policy_denies_everything(request: ActionRequest) -> None:
    """A policy without rules denies every request, naming no rule."""
    decision = Policy().evaluate(request)
    assert outcome(decision) == (Effect.DENY, None, None)


# -- delegation --------------------------------------------------------------------


def _reads_user(policy: Policy) -> bool:
    return any(
        path.startswith("principal.on_behalf_of")
        for rule in policy.rules
        if rule.when is not None
        for path in rule.when.paths()
    )


@THOROUGH
@given(cases(principal_strategy=principals(users=users())))
def test_delegation_never_widens(case: Case) -> None:
    """Acting for a user is never more permissive than the agent alone, nor than the user alone.

    The decision is exactly the stricter of its two halves; the user half is
    checked against the reference evaluator run for the user alone.  The agent
    alone is the same request without ``on_behalf_of``, which only means the
    same thing to a policy whose conditions do not read ``principal.on_behalf_of``.
    """
    policy = case.policy
    for request in case.requests:
        decision = policy.evaluate(request)
        assert decision.as_agent is not None
        assert decision.as_user is not None
        halves = (decision.as_agent.effect.strictness, decision.as_user.effect.strictness)
        assert decision.effect.strictness == max(halves)
        user = request.principal.on_behalf_of
        assert user is not None
        user_alone = decide_for(policy, request, Subject(True, user.id, user.roles, user.groups))
        assert outcome(decision.as_user) == user_alone
        assert decision.effect.strictness >= user_alone[0].strictness
        if not _reads_user(policy):
            alone = request.model_copy(
                update={"principal": request.principal.model_copy(update={"on_behalf_of": None})}
            )
            agent_alone = policy.evaluate(alone)
            assert outcome(decision.as_agent) == outcome(agent_alone)
            assert decision.effect.strictness >= agent_alone.effect.strictness


# -- determinism and order ------------------------------------------------------


@FAST
@given(cases())
def test_evaluation_is_deterministic(case: Case) -> None:
    """The same request gets the same decision: again, and from a freshly compiled policy."""
    policy, rebuilt = case.policy, case.policy
    first = [policy.evaluate(request).to_dict() for request in case.requests]
    # Again, now from the caches, and in the other order on a fresh policy.
    assert [policy.evaluate(request).to_dict() for request in case.requests] == first
    again = [rebuilt.evaluate(request).to_dict() for request in reversed(case.requests)]
    assert again[::-1] == first


@THOROUGH
@given(cases(), st.data())
def test_rule_order_never_matters(case: Case, data: st.DataObject) -> None:
    """Any permutation of the rules gives the same effect, deciding rule, route and matches."""
    policy = case.policy
    shuffled = Policy(data.draw(st.permutations(case.rules), label="order"))
    for request in case.requests:
        before, after = policy.evaluate(request), shuffled.evaluate(request)
        assert outcome(after) == outcome(before)
        assert {r.id for r in after.matched} == {r.id for r in before.matched}
        assert set(after.undetermined) == set(before.undetermined)
        for half_before, half_after in (
            (before.as_agent, after.as_agent),
            (before.as_user, after.as_user),
        ):
            if half_before is not None and half_after is not None:
                assert outcome(half_after) == outcome(half_before)


# -- monotonicity -----------------------------------------------------------------


@THOROUGH
@given(cases(), RESTRICTIONS)
def test_adding_a_restriction_never_loosens(case: Case, restriction: Rule) -> None:
    """Adding a DENY or ESCALATE rule (any condition) never makes a decision less strict."""
    policy = case.policy
    tighter = policy.with_rules(renamed(restriction, "added"))
    for request in case.requests:
        before, after = policy.evaluate(request), tighter.evaluate(request)
        event(f"{before.effect.value} -> {after.effect.value}")
        assert after.effect.strictness >= before.effect.strictness


@THOROUGH
@given(cases(), rules(effects=(Effect.ALLOW,)))
def test_adding_an_allow_never_tightens(case: Case, allow: Rule) -> None:
    """Adding an ALLOW rule (with or without a condition) never makes a decision stricter.

    It may turn a default DENY into ALLOW, AUDIT or the ESCALATE of a
    restriction that now has a grant to narrow: each is less strict than DENY.
    (An AUDIT rule is different: it can turn ALLOW into AUDIT.)
    """
    policy = case.policy
    looser = policy.with_rules(renamed(allow, "added"))
    for request in case.requests:
        before, after = policy.evaluate(request), looser.evaluate(request)
        event(f"{before.effect.value} -> {after.effect.value}")
        assert after.effect.strictness <= before.effect.strictness


# -- files ----------------------------------------------------------------------------

# Text beyond the vocabulary: quoting, escapes and unicode must survive writing.
_TEXT = st.text(max_size=12)
_FILE_VALUES = scalar_values() | _TEXT
_NOT_NULL = st.one_of(
    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.text()
)


def _values(compare: Compare) -> tuple[Any, ...]:
    return compare.value if isinstance(compare.value, tuple) else (compare.value,)


@pytest.mark.parametrize("text", ["a\x85b", "a\u2028b", "a\u2029b", "a\nb\r\n"])
def test_yaml_round_trip_keeps_line_break_characters(text: str) -> None:
    """Values holding YAML line-break characters survive writing to YAML and reading back."""
    policy = Policy(
        [Rule(id="a", effect=Effect.ALLOW, actions=("x",), when={"args.s": {"eq": text}})]
    )
    again = Policy.from_yaml(policy.to_yaml())
    assert again.rules == policy.rules


@THOROUGH
@given(cases(rules(conditions=st.none() | conditions(values=_FILE_VALUES))))
def test_yaml_round_trip_decides_identically(case: Case) -> None:
    """A policy written to YAML and read back decides every request as the original does."""
    policy = case.policy
    text = policy.to_yaml()
    again = Policy.from_yaml(text)
    assert again.rules == policy.rules
    for request in case.requests:
        assert again.evaluate(request).to_dict() == policy.evaluate(request).to_dict()
    assert again.to_yaml() == text  # writing what was read changes nothing


@THOROUGH
@given(cases(rules(conditions=st.none() | conditions() | conditions(values=_NOT_NULL))))
def test_toml_round_trip_decides_identically(case: Case) -> None:
    """A policy written to TOML and read back decides every request as the original does.

    TOML has no null: policies comparing with None are left out (assumed away).
    """
    policy = case.policy
    assume(not any(None in _values(c) for c in _nodes_of(policy, Compare)))
    text = policy.to_toml()
    again = Policy.from_toml(text)
    assert again.rules == policy.rules
    for request in case.requests:
        assert again.evaluate(request).to_dict() == policy.evaluate(request).to_dict()
    assert again.to_toml() == text


# -- robustness -------------------------------------------------------------------------


@FAST
@given(cases())
def test_generated_requests_evaluate_without_failing(case: Case) -> None:
    """No generated request makes evaluation or explanation raise, or fail closed on an error."""
    policy = case.policy
    for request in case.requests:
        decision = policy.evaluate(request)
        assert "evaluation failed" not in decision.reason
        explanation = policy.explain(request)
        assert explanation.decision.to_dict() == decision.to_dict()
        str(explanation)
        explanation.to_dict()


# Values no condition expects: nested mappings, tuples, bytes, NaN, Decimals, datetimes.
_WILD = st.recursive(
    attribute_values()
    | st.floats()
    | st.binary(max_size=4)
    | st.decimals()
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
    | st.frozensets(st.integers(), max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.sampled_from(("owner", "x")), inner, max_size=2)
    ),
    max_leaves=4,
)


@FAST
@given(cases(values=_WILD))
def test_evaluation_never_raises(case: Case) -> None:
    """Whatever the attributes hold, evaluate and explain return; an internal error is a DENY."""
    policy = case.policy
    for request in case.requests:
        decision = policy.evaluate(request)
        if "evaluation failed" in decision.reason:
            assert decision.effect is Effect.DENY
        explanation = policy.explain(request)
        str(explanation)
        explanation.to_dict()


@THOROUGH
@given(cases())
def test_explain_agrees_with_evaluate(case: Case) -> None:
    """The rules explain counts (slow path, ``Condition.trace``) are the ones evaluate matched."""
    policy = case.policy
    for request in case.requests:
        explanation = policy.explain(request)
        counted = {t.rule.id for t in explanation.traces if t.counted}
        assert counted == {r.id for r in explanation.decision.matched}


# -- missing and mistyped attributes -----------------------------------------------------

# One value of each kind a request attribute can hold (a mapping is compared by nothing).
_ONE_OF_EACH_KIND: dict[str, Any] = {
    "number": 7,
    "string": "x",
    "bool": True,
    "null": None,
    "list": ["x"],
    "mapping": {"k": "v"},
}
_SINGLE_KINDS = frozenset({"number", "string", "bool", "null"})


def _attribute_paths(request: ActionRequest) -> list[str]:
    paths = [f"args.{key}" for key in request.args]
    paths += [f"context.{key}" for key in request.context]
    paths += [f"principal.attributes.{key}" for key in request.principal.attributes]
    if request.resource is not None:
        paths.append("resource")
        paths += [f"resource.attributes.{key}" for key in request.resource.attributes]
    return paths


def _compared_kinds(policy: Policy, path: str) -> set[str]:
    """Every kind of value some comparison on ``path`` can decide (True or False) about."""
    found: set[str] = set()
    for compare in _nodes_of(policy, Compare):
        if compare.path != path:
            continue
        if compare.op in ("startswith", "matches"):
            found.add("string")
        elif compare.op == "contains":
            found |= {"string", "list"}
        elif compare.op in ("in", "not_in"):
            found |= {kind_of(compare.value[0])} if compare.value else set(_SINGLE_KINDS)
        else:
            found.add(kind_of(compare.value))
    return found


def _reads(paths: set[str], attribute: str) -> bool:
    """True when one of ``paths`` is the attribute or lies inside it."""
    return any(p == attribute or p.startswith(f"{attribute}.") for p in paths)


def _without(request: ActionRequest, path: str, value: Any) -> ActionRequest:
    """The request with the attribute at ``path`` removed (``value`` is ABSENT) or replaced."""

    def edit(mapping: Mapping[str, Any], key: str) -> dict[str, Any]:
        changed = {k: v for k, v in mapping.items() if k != key}
        if value is not ABSENT:
            changed[key] = value
        return changed

    root, _, key = path.rpartition(".")
    if path == "resource":
        return request.model_copy(update={"resource": None})
    if root in ("args", "context"):
        return request.model_copy(update={root: edit(getattr(request, root), key)})
    if root == "principal.attributes":
        principal = request.principal
        changed = principal.model_copy(update={"attributes": edit(principal.attributes, key)})
        return request.model_copy(update={"principal": changed})
    assert root == "resource.attributes"
    assert request.resource is not None
    resource = request.resource
    changed_resource = resource.model_copy(update={"attributes": edit(resource.attributes, key)})
    return request.model_copy(update={"resource": changed_resource})


# Grants whose conditions compare attributes (and no exists), so that removing
# one can matter: random policies mostly grant unconditionally or not at all.
_COMPARING_GRANTS = rules(
    effects=(Effect.ALLOW, Effect.AUDIT),
    conditions=conditions(operators=[op for op in OPERATORS if op != "exists"], max_depth=1),
)


@THOROUGH
@given(cases(_COMPARING_GRANTS | rules()))
def test_missing_or_mistyped_attributes_never_widen(case: Case) -> None:
    """Removing an attribute, or giving it a kind no condition compares it with, never loosens.

    Except attributes that an ``exists`` test reads: ``exists`` is the one
    operator that observes absence, by design (``deny when args.cc exists``
    lets a request without ``cc`` through), so it is left out.  "Another kind"
    means one the policy does not compare that attribute with: turning 5 into
    "a" can of course satisfy ``args.x == "a"``; what must never help is a
    value the policy cannot evaluate, which counts against the request.
    Every attribute of every request is tried, removed and in each such kind.
    """
    policy = case.policy
    observed = {e.path for e in _nodes_of(policy, Exists)}
    for request in case.requests:
        before = policy.evaluate(request)
        if before.effect is Effect.DENY:
            continue  # nothing is stricter
        for path in _attribute_paths(request):
            if _reads(observed, path):
                continue
            unused = set(_ONE_OF_EACH_KIND) - _compared_kinds(policy, path)
            unused.discard(kind_of(lookup(request, path)))
            if path == "resource":
                unused = set()  # the resource itself can only go
            for value in [ABSENT, *(_ONE_OF_EACH_KIND[kind] for kind in sorted(unused))]:
                after = policy.evaluate(_without(request, path, value))
                if after.effect is not before.effect:
                    event(f"{before.effect.value} -> {after.effect.value}")
                assert after.effect.strictness >= before.effect.strictness, (
                    path,
                    value,
                    before.reason,
                    after.reason,
                )


# -- the compiled evaluator against the reference --------------------------------------


@settings(max_examples=300, deadline=None)
@given(cases())
def test_compiled_evaluator_agrees_with_reference(case: Case) -> None:
    """The compiled evaluator decides every request as the plain reference evaluator does."""
    policy = case.policy
    for request in case.requests:
        decision = policy.evaluate(request)
        event(f"effect: {decision.effect.value}")
        assert outcome(decision) == decide(policy, request)
        principal, user = request.principal, request.principal.on_behalf_of
        agent = Subject(False, principal.agent, principal.roles, frozenset())
        if user is None:
            assert decision.as_agent is None
        else:
            assert decision.as_agent is not None
            assert decision.as_user is not None
            assert outcome(decision.as_agent) == decide_for(policy, request, agent)
            assert outcome(decision.as_user) == decide_for(
                policy, request, Subject(True, user.id, user.roles, user.groups)
            )


# == the reference evaluator ============================================================
#
# Written from the documented semantics, deliberately naive: no index, no
# cache, no compiled closures.  Ties between equally strict rules go to the
# lowest rule id; a default deny names the lowest-id DENY rule that matched,
# if any; between equally strict halves of a delegated request, the agent's.


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class Subject(NamedTuple):
    """Whom a rule is checked against: the agent, or the user it acts for."""

    is_user: bool
    id: str
    roles: frozenset[str]
    groups: frozenset[str]


def covers(pattern: str, action: str) -> bool:
    """``*`` is one segment, a trailing ``*`` one or more, ``*`` alone anything."""
    if pattern == "*":
        return True
    wanted, actual = pattern.split("."), action.split(".")
    if wanted[-1] == "*":
        wanted = wanted[:-1]
        if len(actual) <= len(wanted):
            return False
        actual = actual[: len(wanted)]
    elif len(actual) != len(wanted):
        return False
    return all(w in ("*", a) for w, a in zip(wanted, actual, strict=True))


def applies(match: PrincipalMatch, subject: Subject) -> bool:
    """Empty names anyone; agents match the agent, users and groups the user, roles either."""
    if not (match.agents or match.users or match.groups or match.roles):
        return True
    if subject.is_user:
        named = subject.id in match.users or bool(match.groups & subject.groups)
    else:
        named = subject.id in match.agents
    return named or bool(match.roles & subject.roles)


def lookup(request: ActionRequest, path: str) -> Any:
    """The value at a dotted path, or ABSENT: model fields by name, then mapping keys."""
    root, *rest = path.split(".")
    current: Any = getattr(request, root)
    for name in rest:
        if isinstance(current, BaseModel):
            current = getattr(current, name)
        elif isinstance(current, Mapping) and name in current:
            current = current[name]
        else:
            return ABSENT
    return current


def kind_of(value: object) -> str:
    """The kind a comparison cares about; True is a bool, never the number 1."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list | tuple | set | frozenset):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return "other"


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def compare(op: str, actual: Any, expected: Any) -> bool | None:
    """One comparison in three-valued logic: None when it cannot be evaluated."""
    if actual is ABSENT:
        return None
    if op == "matches":
        return re.search(expected, actual) is not None if isinstance(actual, str) else None
    if op == "startswith":
        return actual.startswith(expected) if isinstance(actual, str) else None
    if op == "contains":
        if isinstance(actual, str):
            return expected in actual if isinstance(expected, str) else None
        if kind_of(actual) != "list":
            return None
        alike = [item for item in actual if kind_of(item) == kind_of(expected)]
        if any(item == expected for item in alike):
            return True
        return False if len(alike) == len(actual) else None
    if op in ("in", "not_in"):
        if kind_of(actual) not in ("number", "string", "bool", "null"):
            return None
        if expected and kind_of(actual) != kind_of(expected[0]):
            return None
        found = any(actual == option for option in expected)
        return found if op == "in" else not found
    if kind_of(actual) != kind_of(expected):
        return None
    return _ORDER[op](actual, expected)


def truth(condition: Condition, request: ActionRequest) -> bool | None:
    """A condition in Kleene's three-valued logic: True, False or None (undetermined)."""
    if isinstance(condition, Exists):
        value = lookup(request, condition.path)
        return value is not ABSENT and value is not None
    if isinstance(condition, Not):
        inner = truth(condition.condition, request)
        return None if inner is None else not inner
    if isinstance(condition, AllOf | AnyOf):
        values = [truth(c, request) for c in condition.conditions]
        decisive = isinstance(condition, AnyOf)  # True decides any; False decides all
        if any(v is decisive for v in values):
            return decisive
        return None if any(v is None for v in values) else not decisive
    assert isinstance(condition, Compare)
    return compare(condition.op, lookup(request, condition.path), condition.value)


def decide_for(
    policy: Policy, request: ActionRequest, subject: Subject
) -> tuple[Effect, str | None, str | None]:
    """One subject's decision: grants need a True condition, restrictions only a not-False one."""
    grants: list[Rule] = []
    restrictions: list[Rule] = []
    flags: list[Rule] = []  # undetermined audit rules: they narrow, never grant
    for rule in policy.rules:
        if not any(covers(p, request.action) for p in rule.actions):
            continue
        if not applies(rule.principals, subject):
            continue
        holds = True if rule.when is None else truth(rule.when, request)
        if rule.effect.is_grant and holds is True:
            grants.append(rule)
        elif rule.effect is Effect.AUDIT and holds is None:
            flags.append(rule)
        elif not rule.effect.is_grant and holds is not False:
            restrictions.append(rule)
    if not grants:
        denies = sorted(r.id for r in restrictions if r.effect is Effect.DENY)
        return (Effect.DENY, denies[0] if denies else None, None)
    top = min(grants + restrictions + flags, key=lambda r: (-r.effect.strictness, r.id))
    return (top.effect, top.id, top.escalate_to)


def decide(policy: Policy, request: ActionRequest) -> tuple[Effect, str | None, str | None]:
    """The whole decision: the agent's, or the stricter of the agent's and the user's."""
    principal = request.principal
    as_agent = decide_for(
        policy, request, Subject(False, principal.agent, principal.roles, frozenset())
    )
    user = principal.on_behalf_of
    if user is None:
        return as_agent
    as_user = decide_for(policy, request, Subject(True, user.id, user.roles, user.groups))
    return as_user if as_user[0].strictness > as_agent[0].strictness else as_agent


def _nodes_of(policy: Policy, node_type: type[T]) -> Iterator[T]:
    """Every condition node of ``node_type`` in the policy's rules."""

    def walk(condition: Condition) -> Iterator[Condition]:
        yield condition
        if isinstance(condition, AllOf | AnyOf):
            for part in condition.conditions:
                yield from walk(part)
        elif isinstance(condition, Not):
            yield from walk(condition.condition)

    for rule in policy.rules:
        if rule.when is not None:
            for node in walk(rule.when):
                if isinstance(node, node_type):
                    yield node
