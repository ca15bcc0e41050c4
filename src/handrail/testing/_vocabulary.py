"""The shared vocabulary strategies draw from, and the values they draw.

Every strategy draws from small shared vocabularies (a few agents, roles,
groups, actions such as ``crm.contact.read``, attribute paths such as
``args.amount``), so generated rules and requests actually meet: a random
rule about ``crm.*.read`` is useless against a random action nobody wrote.
The keys of requests' mappings and the paths of conditions each come with
the values they usually hold, and sometimes any other kind: missing keys and
wrong kinds are the point.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeAlias

from hypothesis import strategies as st

__all__ = [
    "ACTIONS",
    "ACTION_PATTERNS",
    "AGENTS",
    "ARGS",
    "CONTEXT",
    "GROUPS",
    "NUMBERS",
    "PATHS",
    "PRINCIPAL_ATTRIBUTES",
    "REGEXES",
    "RESOURCE_ATTRIBUTES",
    "RESOURCE_IDS",
    "RESOURCE_TYPES",
    "ROLES",
    "ROUTES",
    "STRINGS",
    "USERS",
    "Vocabulary",
    "attribute_values",
    "mappings",
    "mostly",
    "nonempty",
    "one_in",
    "per_key",
    "scalar_values",
    "subsets",
]

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
def mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    # Three draws in four from ``usual``.
    return draw(other) if draw(one_in(4)) else draw(usual)


def typical(*words: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(words)


_AMOUNT = typical(0, 100, 999, 1000, 1000.5, 12000) | st.integers(0, 50_000)
_PERCENT = typical(0, 5, 10, 20, 20.0, 25, 50) | st.floats(0, 100)
_HOUR = st.integers(0, 23)

# Request attributes: each key with the values it usually holds, and
# sometimes anything else (missing keys and wrong kinds are the point).
ARGS: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {
        "amount": mostly(_AMOUNT, attribute_values()),
        "discount_pct": mostly(_PERCENT, attribute_values()),
        "to_domain": mostly(typical(*_DOMAINS), attribute_values()),
        "tags": mostly(st.lists(typical(*_TAGS), max_size=3), attribute_values()),
    }
)
CONTEXT: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {
        "environment": mostly(typical(*_ENVIRONMENTS), attribute_values()),
        "hour": mostly(_HOUR, attribute_values()),
    }
)
RESOURCE_ATTRIBUTES: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {
        "owner": mostly(typical(*USERS), attribute_values()),
        "region": mostly(typical(*_REGIONS), attribute_values()),
    }
)
PRINCIPAL_ATTRIBUTES: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {"tier": mostly(typical(*_TIERS), attribute_values())}
)
# Condition paths: each with the single values conditions usually compare it with.
PATHS: Mapping[str, st.SearchStrategy[Any]] = MappingProxyType(
    {
        "args.amount": mostly(_AMOUNT, scalar_values()),
        "args.discount_pct": mostly(_PERCENT, scalar_values()),
        "args.to_domain": mostly(typical(*_DOMAINS), scalar_values()),
        "args.tags": mostly(typical(*_TAGS), scalar_values()),
        "context.environment": mostly(typical(*_ENVIRONMENTS), scalar_values()),
        "context.hour": mostly(_HOUR, scalar_values()),
        "resource.attributes.owner": mostly(typical(*USERS), scalar_values()),
        "resource.attributes.region": mostly(typical(*_REGIONS), scalar_values()),
        "principal.attributes.tier": mostly(typical(*_TIERS), scalar_values()),
        "resource.type": mostly(typical(*RESOURCE_TYPES), scalar_values()),
        "principal.agent": mostly(typical(*AGENTS), scalar_values()),
        "principal.on_behalf_of.id": mostly(typical(*USERS), scalar_values()),
    }
)

Vocabulary: TypeAlias = Sequence[str] | Mapping[str, st.SearchStrategy[Any]]
"""Keys (or paths) alone, or each with the values it holds."""


# -- helpers -------------------------------------------------------------------


def nonempty(name: str, words: Iterable[Any]) -> Sequence[Any]:
    words = tuple(words)
    if not words:
        raise ValueError(f"{name} must not be empty: strategies draw from it")
    return words


def subsets(words: Sequence[str], max_size: int | None = None) -> st.SearchStrategy[frozenset[str]]:
    if not words:
        return st.just(frozenset())
    return st.frozensets(st.sampled_from(words), max_size=max_size)


def per_key(
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


def mappings(
    keys: Vocabulary, values: st.SearchStrategy[Any] | None
) -> st.SearchStrategy[dict[str, Any]]:
    return _mapping(per_key("keys", keys, values, attribute_values()))


@st.composite
def _mapping(draw: st.DrawFn, values: Mapping[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    # Each key three times in four: present often enough for conditions to
    # decide, missing often enough to test what undetermined means.
    return {key: draw(value) for key, value in values.items() if not draw(one_in(4))}


@functools.cache
def one_in(n: int) -> st.SearchStrategy[bool]:
    # Shrinks towards False.
    return st.integers(min_value=1, max_value=n).map(lambda drawn: drawn == n)
