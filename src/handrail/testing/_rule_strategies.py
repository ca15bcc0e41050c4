"""Hypothesis strategies for conditions, rules and policies, to property-test your own.

Drawn from the shared vocabulary (``_vocabulary``), or from yours.  Only
public names of ``handrail.policy`` are used: a drawn comparison is built
with ``Compare`` itself, so what ``Compare`` refuses (an ordering against a
number in quotes, a name path given a string that is no name) is never
drawn, and the strategies follow ``Compare``'s checks as they change.
Requires Hypothesis (``pip install handrail[testing]``).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from hypothesis import strategies as st

from .._names import check_action_pattern
from ..policy import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Effect,
    Exists,
    Not,
    Policy,
    PrincipalMatch,
    Rule,
)
from ._vocabulary import (
    ACTION_PATTERNS,
    AGENTS,
    GROUPS,
    PATHS,
    REGEXES,
    ROLES,
    ROUTES,
    USERS,
    Vocabulary,
    nonempty,
    one_in,
    per_key,
    scalar_values,
    subsets,
)

__all__ = ["conditions", "policies", "rules"]

OPERATORS: tuple[str, ...] = typing.get_args(Compare.model_fields["op"].annotation)
"""The operators of ``Compare``, as its model declares them."""


def conditions(
    *,
    paths: Vocabulary = PATHS,
    values: st.SearchStrategy[Any] | None = None,
    operators: Sequence[str] = (*OPERATORS, "exists"),
    regexes: Sequence[str] = REGEXES,
    max_depth: int = 2,
) -> st.SearchStrategy[Condition]:
    """Valid conditions over ``paths``: comparisons, ``exists``, and ``all``/``any``/``not``.

    ``paths`` is either a mapping from each path to the single values it is
    compared with, or paths alone, compared with ``scalar_values()``;
    ``values``, if given, is used for every path instead (lists and mappings
    in it are skipped).  ``operators`` limits the tests drawn (``exists``
    included).  Every comparison passes ``Compare``'s checks and uses an
    operator that can decide something about its value: ``in``/``not_in``
    lists hold one kind, ordering operators get numbers or strings,
    ``contains``/``startswith`` strings, ``matches`` one of ``regexes``.
    Combinators nest at most ``max_depth`` deep.
    """
    if max_depth < 0:
        raise ValueError(f"max_depth must be 0 or more, got {max_depth}")
    compared = per_key("paths", paths, values, scalar_values())
    for path in nonempty("paths", compared):
        Exists(path=path)  # raises naming a malformed path
    for regex in nonempty("regexes", regexes):
        Compare(path="args.x", op="matches", value=regex)  # raises on a bad pattern
    unknown = set(nonempty("operators", operators)) - {*OPERATORS, "exists"}
    if unknown:
        raise ValueError(
            f"unknown operators {', '.join(sorted(unknown))} "
            f"(expected {', '.join(OPERATORS)} or exists)"
        )
    ops_by_kind = {
        kind: tuple(op for op in ops if op in operators) for kind, ops in _OPERATORS_BY_KIND.items()
    }
    usable = frozenset(kind for kind, ops in ops_by_kind.items() if ops)

    def decidable(value: object) -> bool:
        return _is_single(value) and _operator_kind(value) in usable

    singles = {path: strategy.filter(decidable) for path, strategy in compared.items()}
    path_strategy = st.sampled_from(tuple(singles))
    leaves: list[st.SearchStrategy[Condition]] = []
    if usable:
        leaves.append(
            _compares(
                paths=path_strategy,
                values=singles,
                operators={kind: st.sampled_from(ops) for kind, ops in ops_by_kind.items() if ops},
                regexes=st.sampled_from(tuple(regexes)),
            )
        )
    if "exists" in operators:
        leaves.append(st.builds(Exists, path=path_strategy))
    strategy: st.SearchStrategy[Condition] = st.one_of(leaves)
    for _ in range(max_depth):
        strategy = _combined(leaves=st.one_of(leaves), inner=strategy)
    return strategy


_SHAPES = st.sampled_from(("leaf", "leaf", "all", "any", "not"))


@st.composite
def _combined(
    draw: st.DrawFn, *, leaves: st.SearchStrategy[Condition], inner: st.SearchStrategy[Condition]
) -> Condition:
    shape = draw(_SHAPES)
    if shape == "leaf":
        return draw(leaves)
    if shape == "not":
        return Not(condition=draw(inner))
    parts = tuple(draw(st.lists(inner, max_size=3)))
    return AllOf(conditions=parts) if shape == "all" else AnyOf(conditions=parts)


@st.composite
def _compares(
    draw: st.DrawFn,
    *,
    paths: st.SearchStrategy[str],
    values: Mapping[str, st.SearchStrategy[Any]],
    operators: Mapping[str, st.SearchStrategy[str]],
    regexes: st.SearchStrategy[str],
) -> Condition:
    path = draw(paths)
    value = draw(values[path])
    # Only operators that can decide something about a value of this kind:
    # the attribute may still hold another kind, which is then undetermined.
    op = draw(operators[_operator_kind(value)])
    if op == "matches":
        return Compare(path=path, op=op, value=draw(regexes))
    listing = op in ("in", "not_in")
    if isinstance(value, str) and not _accepts(path, op, [value] if listing else value):
        # Refused as it is: an ordering against "12000", or a name path given a
        # string that is not a name.  A word that is a name fits both.
        value = draw(_NAMES)
    if listing:
        others = draw(st.lists(values[path], max_size=3))
        # Of one kind, and names on a name path: what Compare takes.
        listed = [value, *(v for v in others if _accepts(path, op, [value, v]))]
        # Now and then the empty list, which nothing is in.
        return Compare(path=path, op=op, value=[] if draw(one_in(10)) else listed)
    return Compare(path=path, op=op, value=value)


_NAMES = st.sampled_from((*AGENTS, *USERS))


def _accepts(path: str, op: str, value: object) -> bool:
    """True when ``Compare`` takes this comparison as it is."""
    try:
        Compare(path=path, op=op, value=value)
    except ValueError:
        return False
    return True


def _is_single(value: object) -> bool:
    return not isinstance(value, list | tuple | set | frozenset | Mapping)


def _operator_kind(value: object) -> str:
    """Which operators a drawn value suits: ``number``, ``string`` or ``other`` (equality only)."""
    if isinstance(value, bool) or value is None:
        return "other"
    if isinstance(value, int | float | Decimal | Fraction):
        return "number"
    return "string" if isinstance(value, str) else "other"


_EQUALITY = ("eq", "ne", "in", "not_in")
_OPERATORS_BY_KIND = {
    "number": (*_EQUALITY, "lt", "le", "gt", "ge"),
    "string": (*_EQUALITY, "lt", "le", "gt", "ge", "contains", "startswith", "matches"),
    "other": _EQUALITY,  # bools and None
}


def rules(
    *,
    effects: Sequence[Effect] = tuple(Effect),
    actions: Sequence[str] = ACTION_PATTERNS,
    agents: Sequence[str] = AGENTS,
    users: Sequence[str] = USERS,
    groups: Sequence[str] = GROUPS,
    roles: Sequence[str] = ROLES,
    routes: Sequence[str] = ROUTES,
    conditions: st.SearchStrategy[Condition | None] | None = None,
) -> st.SearchStrategy[Rule]:
    """Valid rules: an effect from ``effects`` over one or two of ``actions`` (patterns allowed).

    A rule applies to anyone or to some of ``agents``, ``users``, ``groups``
    and ``roles``; it has a condition from ``conditions`` (``conditions()``
    or none by default); an escalate rule routes to one of ``routes``.  Ids
    look like ``deny-17``: unique within a policy from ``policies()``, not
    across separately drawn rules.
    """
    for pattern in nonempty("actions", actions):
        check_action_pattern(pattern, "actions")
    return _rule(
        effects=st.sampled_from(tuple(nonempty("effects", effects))),
        actions=st.lists(st.sampled_from(actions), min_size=1, max_size=2, unique=True),
        principal_matches=st.just(PrincipalMatch())
        | _principal_matches(
            agents=subsets(agents, max_size=2),
            users=subsets(users, max_size=2),
            groups=subsets(groups, max_size=2),
            roles=subsets(roles, max_size=2),
        ),
        routes=st.sampled_from(tuple(nonempty("routes", routes))),
        when=(st.none() | _conditions()) if conditions is None else conditions,
    )


_RULE_NUMBERS = st.integers(min_value=1, max_value=999)


@st.composite
def _principal_matches(
    draw: st.DrawFn, /, **fields: st.SearchStrategy[frozenset[str]]
) -> PrincipalMatch:
    # An empty list is refused (it would read as "everyone"): leave the field out.
    drawn = {name: draw(strategy) for name, strategy in fields.items()}
    return PrincipalMatch(**{name: names for name, names in drawn.items() if names})


@st.composite
def _rule(
    draw: st.DrawFn,
    *,
    effects: st.SearchStrategy[Effect],
    actions: st.SearchStrategy[list[str]],
    principal_matches: st.SearchStrategy[PrincipalMatch],
    routes: st.SearchStrategy[str],
    when: st.SearchStrategy[Condition | None],
) -> Rule:
    effect = draw(effects)
    return Rule(
        id=f"{effect.value}-{draw(_RULE_NUMBERS)}",
        effect=effect,
        actions=tuple(draw(actions)),
        principals=draw(principal_matches),
        when=draw(when),
        escalate_to=draw(routes) if effect is Effect.ESCALATE else None,
        on_timeout=draw(_ON_TIMEOUTS) if effect is Effect.ESCALATE else None,
    )


_ON_TIMEOUTS: st.SearchStrategy[Literal["deny", "allow"] | None] = st.sampled_from(
    [None, "deny", "allow"]
)


def policies(
    *,
    max_rules: int = 8,
    rules: st.SearchStrategy[Rule] | None = None,
) -> st.SearchStrategy[Policy]:
    """Policies of up to ``max_rules`` rules from ``rules`` (``rules()`` by default), ids unique."""
    if max_rules < 0:
        raise ValueError(f"max_rules must be 0 or more, got {max_rules}")
    rule_strategy = _rules() if rules is None else rules
    return st.lists(rule_strategy, max_size=max_rules, unique_by=lambda rule: rule.id).map(Policy)


# The public names are also parameter names (``conditions=...``); these keep
# the functions reachable inside the strategies that take such a parameter.
_conditions, _rules = conditions, rules
