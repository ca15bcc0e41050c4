"""Many wildcard rules and many action names: the trie finds the same rules, caches keep working."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from handrail import ActionRequest, Policy, Principal, Rule
from handrail.policy._compile import _CACHE_LIMIT
from handrail.policy._patterns import action_matches

BOT = Principal(agent="bot", roles=frozenset({"reader"}))
SEGMENTS = st.sampled_from(["crm", "contact", "read", "x", "*"])


def rule(id: str, actions: list[str], **kw: Any) -> Rule:
    return Rule.model_validate({"id": id, "effect": "allow", "actions": actions, **kw})


@settings(max_examples=200, deadline=None)
@given(
    patterns=st.lists(st.lists(SEGMENTS, min_size=1, max_size=4).map(".".join), max_size=12),
    name=st.lists(SEGMENTS.filter(lambda s: s != "*"), min_size=1, max_size=5).map(".".join),
)
def test_the_trie_finds_exactly_the_rules_a_scan_would(patterns: list[str], name: str) -> None:
    """For any patterns and name, the indexed candidates equal a brute-force match."""
    rules = [rule(f"r{i}", [p]) for i, p in enumerate(patterns)]
    compiled = Policy(rules)._compiled
    found = {c.rule.id for c in compiled.candidates(name)}
    expected = {r.id for r in rules if any(action_matches(p, name) for p in r.actions)}
    assert found == expected


def test_new_names_are_cached_past_the_limit_and_memory_stays_bounded() -> None:
    """Past _CACHE_LIMIT names the newest is still cached (LRU); the cache never grows past it."""
    policy = Policy([rule("read", ["crm.*.read"], principals={"roles": ["reader"]})])
    compiled = policy._compiled
    for n in range(_CACHE_LIMIT + 100):
        name = f"crm.thing{n}.read"
        assert policy.evaluate(ActionRequest(principal=BOT, action=name)).is_allowed
        assert name in compiled._cache  # on main, names past the limit were never cached
        assert (name, "bot", BOT.roles) in compiled._agent_plans
    assert len(compiled._cache) == _CACHE_LIMIT
    assert len(compiled._agent_plans) == _CACHE_LIMIT
    assert "crm.thing0.read" not in compiled._cache  # the least recently used went first


def test_a_recently_used_name_survives_eviction() -> None:
    """A name looked up again moves to the back of the LRU and outlives names seen once."""
    compiled = Policy([rule("read", ["crm.*"])])._compiled
    compiled.candidates("crm.hot")
    for n in range(_CACHE_LIMIT * 2):
        compiled.candidates(f"crm.cold{n}")
        if n % 100 == 0:
            compiled.candidates("crm.hot")
    assert "crm.hot" in compiled._cache
    assert len(compiled._cache) == _CACHE_LIMIT
