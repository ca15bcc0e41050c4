"""Hypothesis strategies for handrail's types, to property-test your own policies.

Every strategy draws from small shared vocabularies (a few agents, roles,
groups, actions such as ``crm.contact.read``, attribute paths such as
``args.amount``), so generated rules and requests actually meet: a random
rule about ``crm.*.read`` is useless against a random action nobody wrote.
Pass your own vocabularies (the actions and paths your policy uses) to aim
the search at your policy::

    from hypothesis import given
    from . import action_requests

    @given(action_requests(actions=["crm.contact.read", "crm.*.update"]))
    def test_reads_never_escalate(request): ...

Action names may contain ``*``: a pattern stands for names it matches.
Requires Hypothesis (``pip install handrail[testing]``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from hypothesis import strategies as st

from .._names import canonical_name
from ..identity import Principal, User
from ..policy import (
    ActionRequest,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Effect,
    Exists,
    Not,
    Policy,
    PrincipalMatch,
    Resource,
    Rule,
)
from ..policy._conditions import (
    _NAME_PATHS,
    _ORDERING,
    OPERATORS,
    _kind,
    _looks_numeric,
    _path_steps,
)
from ..policy._model import ACTION_PATTERN_RE

__all__ = [
    "LyingNumber",
    "NotANumber",
    "RaisingNumber",
    "action_requests",
    "attribute_values",
    "conditions",
    "look_alike_names",
    "numeric_like_values",
    "policies",
    "principals",
    "resources",
    "rules",
    "scalar_values",
    "users",
]

# -- the shared vocabulary ---------------------------------------------------

AGENTS = ("sales-bot", "support-bot", "ops-bot")
USERS = ("alice", "bob", "carol")
ROLES = ("reader", "writer", "admin")
GROUPS = ("sales", "support", "finance")
ACTIONS = (
    "crm.contact.read",
    "crm.contact.update",
    "crm.contact.delete",
    "crm.deal.read",
    "crm.deal.discount",
    "email.send",
    "billing.refund.create",
)
ACTION_PATTERNS = (*ACTIONS, "crm.*.read", "crm.contact.*", "crm.*", "*.*.read", "email.*", "*")
RESOURCE_TYPES = ("contact", "deal", "email", "refund")
RESOURCE_IDS = ("c-1", "c-2", "d-1")
ROUTES = ("sales-managers", "security", "finance-approvers")
REGEXES = (r"^crm", r"@acme\.com$", r"[0-9]+", r"^(eu|us)$", r"prod", r"^$")
_DOMAINS = ("acme.com", "example.org", "gmail.com")
_ENVIRONMENTS = ("production", "staging")
_REGIONS = ("eu", "us")
_TIERS = ("gold", "silver")
_TAGS = ("vip", "new", "churn-risk")
# The words above, and strings a policy file must quote or escape.
STRINGS = (
    *_DOMAINS,
    *_ENVIRONMENTS,
    *_REGIONS,
    *_TIERS,
    *_TAGS,
    *USERS,
    *AGENTS,
    *RESOURCE_TYPES,
    "alice@acme.com",
    "",
    "12000",
    "yes",
    "null",
    "O'Brien",
    "a: b #c",
    "ünïcode",
)
NUMBERS = (0, 1, 10, 20, 100, 1000, 12000, -1, 0.5, 19.99, 20.0)


# -- values ------------------------------------------------------------------


_SCALARS = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(STRINGS),
    st.booleans(),
    st.none(),
)
_STRING_LISTS = st.lists(st.sampled_from(STRINGS), max_size=3)


# Composites rather than plain functions: Hypothesis then shows them by name
# in messages, not as a page of nested strategies.
@st.composite
def scalar_values(draw: st.DrawFn) -> Any:
    """Single values of every kind conditions compare: numbers, strings, bools and None.

    Numbers are ints and finite floats (NaN compares false with everything,
    which no policy author means).
    """
    return draw(_SCALARS)


@st.composite
def attribute_values(draw: st.DrawFn) -> Any:
    """Values a request's attributes hold: any single value, or a short list of strings."""
    return draw(_SCALARS | _STRING_LISTS)


@st.composite
def _mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    # Three draws in four from ``usual``.
    return draw(other) if draw(_one_in(4)) else draw(usual)


def _typical(*words: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(words)


_AMOUNT = _typical(0, 100, 999, 1000, 1000.5, 12000) | st.integers(0, 50_000)
_PERCENT = _typical(0, 5, 10, 20, 20.0, 25, 50) | st.floats(0, 100)
_HOUR = st.integers(0, 23)

# Request attributes: each key with the values it usually holds, and
# sometimes anything else (missing keys and wrong kinds are the point).
ARGS: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {
        "amount": _mostly(_AMOUNT, attribute_values()),
        "discount_pct": _mostly(_PERCENT, attribute_values()),
        "to_domain": _mostly(_typical(*_DOMAINS), attribute_values()),
        "tags": _mostly(st.lists(_typical(*_TAGS), max_size=3), attribute_values()),
    }
)
CONTEXT: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {
        "environment": _mostly(_typical(*_ENVIRONMENTS), attribute_values()),
        "hour": _mostly(_HOUR, attribute_values()),
    }
)
RESOURCE_ATTRIBUTES: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {
        "owner": _mostly(_typical(*USERS), attribute_values()),
        "region": _mostly(_typical(*_REGIONS), attribute_values()),
    }
)
PRINCIPAL_ATTRIBUTES: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {"tier": _mostly(_typical(*_TIERS), attribute_values())}
)
# Condition paths: each with the single values conditions usually compare it with.
PATHS: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {
        "args.amount": _mostly(_AMOUNT, scalar_values()),
        "args.discount_pct": _mostly(_PERCENT, scalar_values()),
        "args.to_domain": _mostly(_typical(*_DOMAINS), scalar_values()),
        "args.tags": _mostly(_typical(*_TAGS), scalar_values()),
        "context.environment": _mostly(_typical(*_ENVIRONMENTS), scalar_values()),
        "context.hour": _mostly(_HOUR, scalar_values()),
        "resource.attributes.owner": _mostly(_typical(*USERS), scalar_values()),
        "resource.attributes.region": _mostly(_typical(*_REGIONS), scalar_values()),
        "principal.attributes.tier": _mostly(_typical(*_TIERS), scalar_values()),
        "resource.type": _mostly(_typical(*RESOURCE_TYPES), scalar_values()),
        "principal.agent": _mostly(_typical(*AGENTS), scalar_values()),
        "principal.on_behalf_of.id": _mostly(_typical(*USERS), scalar_values()),
    }
)

Vocabulary: TypeAlias = Sequence[str] | Mapping[str, st.SearchStrategy[Any]]
"""Keys (or paths) alone, or each with the values it holds."""


def _is_single(value: object) -> bool:
    return _kind(value) not in ("list", "mapping")


# -- identities and requests --------------------------------------------------


def users(
    *,
    ids: Sequence[str] = USERS,
    roles: Sequence[str] = ROLES,
    groups: Sequence[str] = GROUPS,
    attributes: Vocabulary = (),
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[User]:
    """Users with an id from ``ids``, and some of ``roles`` and ``groups``.

    ``attributes`` names the keys that may appear in ``User.attributes``
    (none by default); see ``action_requests`` for keys and ``values``.
    """
    return st.builds(
        User,
        id=st.sampled_from(_vocabulary("ids", ids)),
        roles=_subsets(roles),
        groups=_subsets(groups),
        attributes=_mappings(attributes, values),
    )


def principals(
    *,
    agents: Sequence[str] = AGENTS,
    roles: Sequence[str] = ROLES,
    users: Sequence[str] | st.SearchStrategy[User | None] = USERS,
    groups: Sequence[str] = GROUPS,
    attributes: Vocabulary = PRINCIPAL_ATTRIBUTES,
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[Principal]:
    """Principals: an agent from ``agents`` with some ``roles``, acting alone or for a user.

    ``users`` is either user ids (the user then gets some of ``roles`` and
    ``groups``; about half the principals act alone) or a strategy for
    ``on_behalf_of`` itself, such as ``users(ids=[...]) | st.none()``.
    ``attributes`` are the keys of ``Principal.attributes``; see
    ``action_requests`` for keys and ``values``.
    """
    if isinstance(users, st.SearchStrategy):
        on_behalf_of: st.SearchStrategy[User | None] = users
    elif users:
        on_behalf_of = st.none() | _users(ids=users, roles=roles, groups=groups)
    else:
        on_behalf_of = st.none()
    return st.builds(
        Principal,
        agent=st.sampled_from(_vocabulary("agents", agents)),
        on_behalf_of=on_behalf_of,
        roles=_subsets(roles),
        attributes=_mappings(attributes, values),
    )


def resources(
    *,
    types: Sequence[str] = RESOURCE_TYPES,
    ids: Sequence[str] = RESOURCE_IDS,
    attributes: Vocabulary = RESOURCE_ATTRIBUTES,
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[Resource]:
    """Resources of a type from ``types``, with or without an id from ``ids``, and attributes.

    See ``action_requests`` for ``attributes`` and ``values``.
    """
    return st.builds(
        Resource,
        type=st.sampled_from(_vocabulary("types", types)),
        id=(st.none() | st.sampled_from(ids)) if ids else st.none(),
        attributes=_mappings(attributes, values),
    )


def action_requests(
    *,
    actions: Sequence[str] = ACTIONS,
    principals: st.SearchStrategy[Principal] | None = None,
    resources: st.SearchStrategy[Resource | None] | None = None,
    args: Vocabulary = ARGS,
    context: Vocabulary = CONTEXT,
    values: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[ActionRequest]:
    """Requests for one of ``actions``, by a principal, on a resource or none.

    ``actions`` may hold patterns such as ``crm.*.read`` (a name it matches is
    drawn, reusing the segments of the other names), so the action patterns of
    a policy's rules can be passed as they are.

    ``args`` and ``context`` give the keys that may appear in those mappings
    (each key is present three times in four): either a mapping from each
    key to the values it holds, or keys alone, holding ``attribute_values()``.
    ``values``, if given, is used for every key instead, here and in the
    default principals and resources.  The defaults hold mostly the values a
    key usually has, and sometimes any other kind, so conditions also meet
    values of the wrong kind.
    """
    return st.builds(
        ActionRequest,
        principal=_principals(values=values) if principals is None else principals,
        action=_action_names(actions),
        resource=_mostly(_resources(values=values), st.none()) if resources is None else resources,
        args=_mappings(args, values),
        context=_mappings(context, values),
    )


# -- conditions, rules and policies -------------------------------------------


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
    compared = _per_key("paths", paths, values, scalar_values())
    for path in _vocabulary("paths", compared):
        _path_steps(path)  # raises naming a malformed path
    for regex in _vocabulary("regexes", regexes):
        Compare(path="args.x", op="matches", value=regex)  # raises on a bad pattern
    unknown = set(_vocabulary("operators", operators)) - {*OPERATORS, "exists"}
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
    kind = _kind(value)
    # Only operators that can decide something about a value of this kind:
    # the attribute may still hold another kind, which is then undetermined.
    op = draw(operators[_operator_kind(value)])
    if op in _ORDERING and isinstance(value, str) and _looks_numeric(value):
        # An ordering against "12000" is refused: order against a word instead.
        value = draw(st.sampled_from(tuple(w for w in STRINGS if not _looks_numeric(w))))
    if path in _NAME_PATHS and isinstance(value, str) and not _is_name(value):
        # A name path compares canonical names: a value that is not one is refused.
        value = draw(st.sampled_from((*AGENTS, *USERS)))
    if op in ("in", "not_in"):
        others = draw(st.lists(values[path], max_size=3))
        listed = [value, *(v for v in others if _kind(v) == kind)]
        if path in _NAME_PATHS:
            listed = [v for v in listed if not isinstance(v, str) or _is_name(v)]
        # Now and then the empty list, which nothing is in.
        return Compare(path=path, op=op, value=[] if draw(_one_in(10)) else listed)
    if op == "matches":
        return Compare(path=path, op=op, value=draw(regexes))
    return Compare(path=path, op=op, value=value)


def _is_name(value: str) -> bool:
    try:
        canonical_name(value)
    except ValueError:
        return False
    return True


def _operator_kind(value: object) -> str:
    kind = _kind(value)
    return kind if kind in ("number", "string") else "other"


_EQUALITY = ("eq", "ne", "in", "not_in")
_OPERATORS_BY_KIND = {
    "number": (*_EQUALITY, "lt", "le", "gt", "ge"),
    "string": (*_EQUALITY, "lt", "le", "gt", "ge", "contains", "startswith", "matches"),
    "other": _EQUALITY,  # bools and None
}


@functools.cache
def _one_in(n: int) -> st.SearchStrategy[bool]:
    # Shrinks towards False.
    return st.integers(min_value=1, max_value=n).map(lambda drawn: drawn == n)


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
    for pattern in _vocabulary("actions", actions):
        _check_action(pattern)
    return _rule(
        effects=st.sampled_from(tuple(_vocabulary("effects", effects))),
        actions=st.lists(st.sampled_from(actions), min_size=1, max_size=2, unique=True),
        principal_matches=st.just(PrincipalMatch())
        | _principal_matches(
            agents=_subsets(agents, max_size=2),
            users=_subsets(users, max_size=2),
            groups=_subsets(groups, max_size=2),
            roles=_subsets(roles, max_size=2),
        ),
        routes=st.sampled_from(tuple(_vocabulary("routes", routes))),
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


# The public names are also parameter names (``principals=...``); these keep
# the functions reachable inside the strategies that take such a parameter.
_users, _principals, _resources, _conditions, _rules = (
    users,
    principals,
    resources,
    conditions,
    rules,
)


# -- helpers -------------------------------------------------------------------


def _vocabulary(name: str, words: Iterable[Any]) -> Sequence[Any]:
    words = tuple(words)
    if not words:
        raise ValueError(f"{name} must not be empty: strategies draw from it")
    return words


def _subsets(
    words: Sequence[str], max_size: int | None = None
) -> st.SearchStrategy[frozenset[str]]:
    if not words:
        return st.just(frozenset())
    return st.frozensets(st.sampled_from(words), max_size=max_size)


def _per_key(
    name: str,
    keys: Vocabulary,
    values: st.SearchStrategy[Any] | None,
    default: st.SearchStrategy[Any],
) -> dict[str, st.SearchStrategy[Any]]:
    if values is not None:
        return dict.fromkeys(keys, values)
    if isinstance(keys, Mapping):
        return dict(keys)
    if isinstance(keys, str):
        raise TypeError(f"{name} takes a list of names or a mapping, not the string {keys!r}")
    return dict.fromkeys(keys, default)


def _mappings(
    keys: Vocabulary, values: st.SearchStrategy[Any] | None
) -> st.SearchStrategy[dict[str, Any]]:
    return _mapping(_per_key("keys", keys, values, attribute_values()))


@st.composite
def _mapping(draw: st.DrawFn, values: Mapping[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    # Each key three times in four: present often enough for conditions to
    # decide, missing often enough to test what undetermined means.
    return {key: draw(value) for key, value in values.items() if not draw(_one_in(4))}


def _check_action(name: str) -> None:
    if not ACTION_PATTERN_RE.fullmatch(name):
        raise ValueError(
            f"{name!r} is neither an action name such as 'crm.contact.read' "
            "nor a pattern such as 'crm.*.read'"
        )


def _action_names(names: Sequence[str]) -> st.SearchStrategy[str]:
    for name in _vocabulary("actions", names):
        _check_action(name)
    segments = sorted({s for name in names for s in name.split(".") if s != "*"}) or ["x"]
    segment = st.sampled_from(segments)
    return _action_name(
        names=st.sampled_from(tuple(names)),
        segment=segment,
        tails=st.lists(segment, min_size=1, max_size=3),
    )


@st.composite
def _action_name(
    draw: st.DrawFn,
    *,
    names: st.SearchStrategy[str],
    segment: st.SearchStrategy[str],
    tails: st.SearchStrategy[list[str]],
) -> str:
    name = draw(names)
    if "*" not in name:
        return name
    parts = name.split(".")
    filled = [draw(segment) if part == "*" else part for part in parts[:-1]]
    if parts[-1] == "*":  # a trailing '*' stands for one or more segments
        filled += draw(tails)
    else:
        filled.append(parts[-1])
    return ".".join(filled)


# -- hostile values and look-alike names ----------------------------------------


class RaisingNumber(int):
    """An int whose comparisons and truth test raise: a value that must never decide."""

    def _raise(self, *_: object) -> bool:
        raise RuntimeError("this number refuses to be compared")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _raise
    __bool__ = _raise
    __hash__ = int.__hash__


class LyingNumber(float):
    """A float whose comparisons answer junk (a string, never a bool)."""

    def _junk(self, *_: object) -> Any:
        return "yes"

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _junk
    __hash__ = float.__hash__


class NotANumber:
    """An object that claims every comparison (``__gt__`` returns truthy junk) and is no number."""

    def _claim(self, *_: object) -> Any:
        return 1

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _claim
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise RuntimeError("no truth here")


_NUMERIC_STRINGS = ("12000", "50000.0", " 1e5 ", "0x10", "1_000", "inf", "nan", "-0")


def _numpy_values() -> st.SearchStrategy[Any]:
    try:
        import numpy as np
    except ImportError:  # numpy is optional: without it, no numpy values
        return st.nothing()
    big = st.integers(min_value=-(2**62), max_value=2**62)
    floats = st.floats(allow_nan=True, allow_infinity=True)
    return st.one_of(
        floats.map(np.float64),
        st.floats(width=32, allow_nan=True).map(np.float32),
        st.floats(width=16).map(np.float16),
        big.map(np.int64),
        st.integers(0, 255).map(np.uint8),
        st.booleans().map(np.bool_),
        floats.map(np.array),  # a 0-d array
        st.integers(-(10**6), 10**6).map(lambda v: np.longdouble(v) / 3),
        st.lists(floats, min_size=2, max_size=3).map(np.array),
    )


@st.composite
def numeric_like_values(draw: st.DrawFn) -> Any:
    """Values that are, or pass for, numbers: what agents put in ``args.amount``.

    Ints (huge ones too), floats with NaN and infinities, ``Decimal`` (NaN and
    sNaN included), ``Fraction``, bools, strings that look like numbers,
    numpy scalars and 0-d arrays when numpy is installed, and hostile objects
    (``RaisingNumber``, ``LyingNumber``, ``NotANumber``).  A policy must treat
    each as the number it is, or as undetermined; never let it decide a
    comparison by itself.
    """
    strategies = st.one_of(
        st.integers(min_value=-(10**6), max_value=10**6),
        st.integers().map(lambda n: n * 10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.sampled_from((Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"))),
        st.fractions(),
        st.booleans(),
        st.sampled_from(_NUMERIC_STRINGS),
        _numpy_values(),
        st.integers(-(10**6), 10**6).map(RaisingNumber),
        st.floats(allow_nan=False).map(LyingNumber),
        st.builds(NotANumber),
    )
    return draw(strategies)


# Letters that look like ASCII ones: Cyrillic and Greek.
_CONFUSABLES = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456",
    "o": "\u043e",
    "p": "\u0440",
    "x": "\u0445",
    "y": "\u0443",
    "s": "\u0455",
    "b": "\u0432",  # lower-case ve: not alike, but a common substitution in attacks
    "n": "\u03b7",
    "t": "\u03c4",
    "k": "\u03ba",
    "v": "\u03bd",
}
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u00ad", " ", "\t")


def _full_width(char: str) -> str:
    return chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char


@st.composite
def look_alike_names(draw: st.DrawFn, name: str) -> str:
    """Spellings of ``name`` that a person would read as the same name.

    Changes of case, full-width letters, Cyrillic or Greek look-alikes, and
    invisible or layout characters (zero-width, bidi, soft hyphen, spaces)
    inserted.  Under handrail's name rule each is either the same name as
    ``name`` or refused; never a different name that escapes a rule.
    """
    chars = list(name)
    for index, char in enumerate(chars):
        change = draw(st.sampled_from(("keep", "keep", "upper", "wide", "confusable")))
        if change == "upper":
            chars[index] = char.upper()
        elif change == "wide":
            chars[index] = _full_width(char)
        elif change == "confusable" and char.lower() in _CONFUSABLES:
            chars[index] = _CONFUSABLES[char.lower()]
    if draw(st.booleans()):
        where = draw(st.integers(min_value=0, max_value=len(chars)))
        chars.insert(where, draw(st.sampled_from(_INVISIBLE)))
    return "".join(chars)
