"""How a policy decides: examples that double as documentation of the semantics."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from handrail import ActionRequest, Effect, Policy, PolicyError, Principal, Rule
from handrail.policy import AllOf, AnyOf, Compare, Exists, Not, Predicate

BOT = Principal(agent="sales-bot", roles=frozenset({"crm-agent"}))


def request(action: str, principal: Principal = BOT, **parts: Any) -> ActionRequest:
    return ActionRequest(principal=principal, action=action, **parts)


def rule(id: str, effect: str, actions: str | list[str] = "crm.contact.update", **kw: Any) -> Rule:
    return Rule.model_validate({"id": id, "effect": effect, "actions": actions, **kw})


ALLOW_UPDATE = rule("update", "allow")


def test_default_deny() -> None:
    """A request no rule grants is denied, and the reason says so."""
    decision = Policy([ALLOW_UPDATE]).evaluate(request("crm.contact.delete"))
    assert decision.effect is Effect.DENY
    assert decision.rule is None
    assert "default deny" in decision.reason


def test_allow() -> None:
    """A matching ALLOW rule lets the action run and is the deciding rule."""
    decision = Policy([ALLOW_UPDATE]).evaluate(request("crm.contact.update"))
    assert decision.effect is Effect.ALLOW
    assert decision.is_allowed
    assert decision.rule_id == "update"


def test_escalate_alone_never_grants() -> None:
    """An ESCALATE rule without a grant is still a default deny, not 'ask a human'."""
    policy = Policy([rule("ask", "escalate", escalate_to="managers")])
    decision = policy.evaluate(request("crm.contact.update"))
    assert decision.effect is Effect.DENY
    assert decision.escalate_to is None


def test_strictest_matching_effect_wins() -> None:
    """With a grant, DENY beats ESCALATE beats AUDIT beats ALLOW."""
    rules = [
        ALLOW_UPDATE,
        rule("flag", "audit"),
        rule("ask", "escalate", escalate_to="managers"),
        rule("stop", "deny"),
    ]
    for n, expected in enumerate(["allow", "audit", "escalate", "deny"], start=1):
        decision = Policy(rules[:n]).evaluate(request("crm.contact.update"))
        assert decision.effect.value == expected
        assert decision.rule_id == rules[n - 1].id
    assert [r.id for r in Policy(rules).evaluate(request("crm.contact.update")).matched] == [
        "stop",
        "ask",
        "flag",
        "update",
    ]


def test_escalate_names_the_route() -> None:
    """An escalation decision carries the route of the deciding rule."""
    policy = Policy([ALLOW_UPDATE, rule("ask", "escalate", escalate_to="sales-managers")])
    decision = policy.evaluate(request("crm.contact.update"))
    assert decision.effect is Effect.ESCALATE
    assert decision.escalate_to == "sales-managers"
    assert "sales-managers" in decision.reason


def test_rule_order_never_matters() -> None:
    """Reversing the rules gives the same decision."""
    rules = [
        ALLOW_UPDATE,
        rule("a", "escalate", escalate_to="x"),
        rule("b", "escalate", escalate_to="y"),
    ]
    forward = Policy(rules).evaluate(request("crm.contact.update"))
    backward = Policy(reversed(rules)).evaluate(request("crm.contact.update"))
    assert (forward.effect, forward.rule_id, forward.escalate_to) == (
        backward.effect,
        backward.rule_id,
        backward.escalate_to,
    )
    assert forward.rule_id == "a"


@pytest.mark.parametrize(
    ("pattern", "action", "covered"),
    [
        ("*", "crm.contact.read", True),
        ("crm.*", "crm.contact.read", True),
        ("crm.*", "crm", False),
        ("crm.*.read", "crm.contact.read", True),
        ("crm.*.read", "crm.contact.note.read", False),
        ("crm.contact.*", "crm.contact.note.create", True),
        ("crm.contact.read", "crm.contact.read", True),
        ("crm.contact.read", "crm.contact.reader", False),
        ("erp.*", "crm.contact.read", False),
    ],
)
def test_action_patterns(pattern: str, action: str, covered: bool) -> None:
    """`*` is one segment, a trailing `*` one or more, `*` alone anything."""
    decision = Policy([rule("r", "allow", pattern)]).evaluate(request(action))
    assert decision.is_allowed is covered


def test_principal_matchers() -> None:
    """Rules apply to the agents, users, groups or roles they list; empty means everyone."""
    policy = Policy(
        [
            rule("by-agent", "allow", "a.one", principals={"agents": ["sales-bot"]}),
            rule("by-role", "allow", "a.two", principals={"roles": ["crm-agent"]}),
            rule("other-agent", "allow", "a.three", principals={"agents": ["other"]}),
            rule("anyone", "allow", "a.four"),
        ]
    )
    effects = [policy.evaluate(request(f"a.{n}")).effect for n in ("one", "two", "three", "four")]
    assert effects == [Effect.ALLOW, Effect.ALLOW, Effect.DENY, Effect.ALLOW]


class TestConditions:
    """Conditions over principal, resource, args and context."""

    def decide(self, when: Any, **parts: Any) -> Effect:
        policy = Policy([rule("r", "allow", when=when)])
        return policy.evaluate(request("crm.contact.update", **parts)).effect

    @pytest.mark.parametrize(
        ("when", "args", "expected"),
        [
            ({"args.n": {"eq": 3}}, {"n": 3}, True),
            ({"args.n": 3}, {"n": 3}, True),
            ({"args.n": {"ne": 3}}, {"n": 4}, True),
            ({"args.n": {"lt": 3}}, {"n": 2}, True),
            ({"args.n": {"le": 3}}, {"n": 3}, True),
            ({"args.n": {"gt": 3}}, {"n": 3}, False),
            ({"args.n": {"ge": 3}}, {"n": 3.0}, True),
            ({"args.s": {"in": ["a", "b"]}}, {"s": "b"}, True),
            ({"args.s": {"not_in": ["a", "b"]}}, {"s": "c"}, True),
            ({"args.tags": {"contains": "vip"}}, {"tags": ["vip", "emea"]}, True),
            ({"args.tags": {"contains": "vip"}}, {"tags": ["emea"]}, False),
            ({"args.s": {"contains": "@acme"}}, {"s": "bob@acme.com"}, True),
            ({"args.s": {"startswith": "crm-"}}, {"s": "crm-1"}, True),
            ({"args.s": {"matches": r"@acme\.com$"}}, {"s": "a@acme.com"}, True),
            ({"args.s": {"matches": r"@acme\.com$"}}, {"s": "a@acme.com.evil"}, False),
            ({"args.s": {"exists": True}}, {"s": "x"}, True),
            ({"args.s": {"exists": True}}, {"s": None}, False),
            ({"args.s": {"exists": False}}, {}, True),
            ({"all": [{"args.n": {"gt": 1}}, {"args.n": {"lt": 5}}]}, {"n": 3}, True),
            ({"any": [{"args.n": {"gt": 10}}, {"args.n": {"lt": 5}}]}, {"n": 3}, True),
            ({"not": {"args.n": {"gt": 10}}}, {"n": 3}, True),
            ({"args.n": {"gt": 1, "lt": 5}}, {"n": 7}, False),
        ],
    )
    def test_operators(self, when: Any, args: dict[str, Any], expected: bool) -> None:
        """Each operator compares as documented."""
        assert (self.decide(when, args=args) is Effect.ALLOW) is expected

    def test_paths_reach_every_part_of_the_request(self) -> None:
        """Paths address the principal, the user, the resource and the context."""
        principal = Principal(
            agent="sales-bot",
            attributes={"tier": "gold"},
            on_behalf_of={"id": "alice", "groups": ["emea"]},
        )
        when = {
            "principal.agent": "sales-bot",
            "principal.attributes.tier": "gold",
            "principal.on_behalf_of.id": "alice",
            "principal.on_behalf_of.groups": {"contains": "emea"},
            "resource.type": "contact",
            "resource.attributes.owner": "alice",
            "context.environment": "production",
        }
        effect = self.decide(
            when,
            principal=principal,
            resource={"type": "contact", "id": "c-1", "attributes": {"owner": "alice"}},
            context={"environment": "production"},
        )
        assert effect is Effect.ALLOW

    def test_dates_compare(self) -> None:
        """Dates and datetimes compare with values of their own kind."""
        when = {"context.now": {"lt": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)}}
        now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
        assert self.decide(when, context={"now": now}) is Effect.ALLOW
        naive = dt.datetime(2026, 11, 25)
        assert self.decide(when, context={"now": naive}) is Effect.DENY

    def test_python_predicate(self) -> None:
        """Code-defined policies may use a Python callable."""
        when = Predicate(fn=lambda r: r.args.get("n") == 1, name="n_is_one")
        assert self.decide(when, args={"n": 1}) is Effect.ALLOW
        assert self.decide(when, args={"n": 2}) is Effect.DENY

    def test_conditions_render_for_humans(self) -> None:
        """Every condition has a one-line human reading."""
        condition = AllOf(
            conditions=(
                Compare(path="args.discount_pct", op="gt", value=20),
                AnyOf(
                    conditions=(
                        Not(condition=Exists(path="args.cc")),
                        Compare(path="args.to", op="in", value=["a", "b"]),
                    )
                ),
            )
        )
        assert condition.render() == (
            "args.discount_pct > 20 and (not args.cc exists or args.to in ['a', 'b'])"
        )
        assert condition.paths() == {"args.discount_pct", "args.cc", "args.to"}


class TestUndetermined:
    """A condition that cannot be evaluated never grants and always restricts."""

    POLICY = Policy(
        [
            rule("small", "allow", when={"args.amount": {"lt": 10_000}}),
            rule("update", "allow", "crm.deal.update"),
            rule(
                "big",
                "escalate",
                "crm.deal.update",
                when={"args.amount": {"ge": 10_000}},
                escalate_to="finance",
            ),
            rule("blocked", "deny", "crm.deal.update", when={"args.region": {"eq": "embargoed"}}),
        ]
    )

    def test_missing_attribute_never_grants(self) -> None:
        """An ALLOW whose attribute is missing does not match; the reason names it."""
        decision = self.POLICY.evaluate(request("crm.contact.update"))
        assert decision.effect is Effect.DENY
        assert decision.undetermined == ("args.amount",)
        assert "args.amount" in decision.reason

    def test_wrong_type_never_grants(self) -> None:
        """The string '12000' is not a number: an ALLOW comparing it does not match."""
        decision = self.POLICY.evaluate(request("crm.contact.update", args={"amount": "5"}))
        assert decision.effect is Effect.DENY
        assert decision.undetermined == ("args.amount",)

    def test_missing_attribute_always_restricts(self) -> None:
        """Unlike Cedar's skip-on-error, a restriction whose attribute is missing applies."""
        decision = self.POLICY.evaluate(request("crm.deal.update", args={"region": "eu"}))
        assert decision.effect is Effect.ESCALATE
        assert decision.rule_id == "big"
        assert decision.undetermined == ("args.amount",)

    def test_wrong_type_always_restricts(self) -> None:
        """A DENY comparing an attribute of the wrong type applies."""
        decision = self.POLICY.evaluate(request("crm.deal.update", args={"amount": 5, "region": 7}))
        assert decision.effect is Effect.DENY
        assert decision.rule_id == "blocked"

    def test_determined_requests_decide_normally(self) -> None:
        """With every attribute present and typed, nothing is undetermined."""
        decision = self.POLICY.evaluate(
            request("crm.deal.update", args={"amount": 5, "region": "eu"})
        )
        assert decision.effect is Effect.ALLOW
        assert decision.undetermined == ()


class TestFailClosed:
    """Any error inside evaluation is a DENY that says why."""

    def test_raising_predicate_denies(self) -> None:
        """A predicate that raises turns the decision into DENY."""

        def boom(_: ActionRequest) -> bool:
            raise RuntimeError("lookup service down")

        policy = Policy([rule("r", "allow", when=Predicate(fn=boom, name="boom"))])
        decision = policy.evaluate(request("crm.contact.update"))
        assert decision.effect is Effect.DENY
        assert "lookup service down" in decision.reason
        assert "fail closed" in decision.reason

    def test_non_bool_predicate_denies(self) -> None:
        """A predicate must return a bool; anything else denies."""
        policy = Policy([rule("r", "allow", when=Predicate(fn=lambda r: "yes", name="p"))])  # type: ignore[arg-type,return-value]
        decision = policy.evaluate(request("crm.contact.update"))
        assert decision.effect is Effect.DENY
        assert "returned str" in decision.reason

    def test_hostile_equality_is_never_consulted(self) -> None:
        """A str subclass's own __eq__ (raising or lying) is never asked: its text decides."""

        class Weird(str):
            def __eq__(self, other: object) -> bool:
                raise ValueError("no comparing me")

            __hash__ = str.__hash__

        class Liar(str):
            def __eq__(self, other: object) -> bool:
                return True

            __hash__ = str.__hash__

        policy = Policy([rule("r", "allow", when={"args.s": "x"})])
        assert policy.evaluate(request("crm.contact.update", args={"s": Weird("x")})).is_allowed
        for built in (request, trusted):
            decision = policy.evaluate(built("crm.contact.update", args={"s": Liar("y")}))
            assert decision.effect is Effect.DENY


def trusted(action: str, principal: Principal = BOT, **parts: Any) -> ActionRequest:
    """A request built without validation, as a hostile caller could."""
    return ActionRequest.model_construct(principal=principal, action=action, **parts)


@pytest.mark.parametrize(
    "action",
    ["crm.contact.delete.", "crm.contact.delete\n", "crm..contact.delete", "crm.contact.delete ",
     "crm.contact.delete\x1b[2J", 42],
)  # fmt: skip
def test_a_malformed_action_built_without_validation_is_denied(action: Any) -> None:
    """'crm.contact.delete.' is no name a wildcard may cover: denied, not allowed by crm.*."""
    policy = Policy(
        [
            rule("all", "allow", actions=["crm.*"]),
            rule("nope", "deny", actions=["crm.contact.delete"]),
        ]
    )
    decision = policy.evaluate(trusted(action, args={}, context={}))
    assert decision.effect is Effect.DENY
    assert policy.explain(trusted(action, args={}, context={})).decision.effect is Effect.DENY
    assert "fail closed" in decision.reason
    assert "\x1b" not in decision.reason
    assert policy.evaluate(trusted("crm.contact.read", args={}, context={})).is_allowed


class TestDelegation:
    """Acting for a user never amplifies: both halves are evaluated, the stricter stands."""

    POLICY = Policy(
        [
            rule("bot-updates", "allow", principals={"agents": ["sales-bot"]}),
            rule("reps-update", "allow", principals={"roles": ["sales_rep"]}),
            rule("emea-read", "allow", "crm.contact.read", principals={"groups": ["emea"]}),
            rule("bot-reads", "allow", "crm.contact.read", principals={"agents": ["sales-bot"]}),
            rule("interns-ask", "escalate", principals={"users": ["ian"]}, escalate_to="leads"),
        ]
    )

    def user(self, id: str, **kw: Any) -> Principal:
        return Principal(agent="sales-bot", on_behalf_of={"id": id, **kw})

    def test_both_halves_granted(self) -> None:
        """Agent and user both hold a grant: allowed, and both halves are shown."""
        decision = self.POLICY.evaluate(
            request("crm.contact.update", self.user("alice", roles=["sales_rep"]))
        )
        assert decision.effect is Effect.ALLOW
        assert decision.as_agent is not None
        assert decision.as_agent.rule_id == "bot-updates"
        assert decision.as_user is not None
        assert decision.as_user.rule_id == "reps-update"
        assert decision.subject == "agent:sales-bot for user:alice"

    def test_user_without_grant_is_denied(self) -> None:
        """The agent may, the user may not: denied."""
        decision = self.POLICY.evaluate(request("crm.contact.update", self.user("bob")))
        assert decision.effect is Effect.DENY
        assert decision.as_agent is not None
        assert decision.as_agent.effect is Effect.ALLOW
        assert decision.reason.startswith("user:bob:")

    def test_agent_needs_its_own_grant(self) -> None:
        """The user may, but another agent has no grant of its own: denied."""
        principal = Principal(agent="other-bot", on_behalf_of={"id": "al", "groups": ["emea"]})
        decision = self.POLICY.evaluate(request("crm.contact.read", principal))
        assert decision.effect is Effect.DENY
        assert decision.as_user is not None
        assert decision.as_user.effect is Effect.ALLOW

    def test_user_restriction_applies(self) -> None:
        """A restriction on the user narrows what the agent may do for them."""
        decision = self.POLICY.evaluate(
            request("crm.contact.update", self.user("ian", roles=["sales_rep"]))
        )
        assert decision.effect is Effect.ESCALATE
        assert decision.escalate_to == "leads"

    def test_user_given_as_string(self) -> None:
        """`on_behalf_of="alice"` is shorthand for a user with that id."""
        assert Principal(agent="a", on_behalf_of="alice").on_behalf_of is not None


class TestExplain:
    """explain accounts for every rule."""

    def test_explain_lists_matched_and_unmatched_rules(self) -> None:
        """Each rule appears with what happened to it and why."""
        policy = Policy(
            [
                ALLOW_UPDATE,
                rule("big", "escalate", when={"args.n": {"gt": 5}}, escalate_to="m"),
                rule("reader", "allow", "crm.contact.read"),
                rule("others", "allow", principals={"agents": ["other"]}),
            ]
        )
        explanation = policy.explain(request("crm.contact.update", args={"n": 3}))
        outcomes = {(t.rule.id, t.outcome) for t in explanation.traces}
        assert outcomes == {
            ("update", "matched"),
            ("big", "condition false"),
            ("reader", "action not covered"),
            ("others", "principal not covered"),
        }
        text = str(explanation)
        assert text.startswith("crm.contact.update by agent:sales-bot: ALLOW")
        assert "args.n > 5: args.n is 3" in text
        data = explanation.to_dict()
        assert data["decision"]["effect"] == "allow"
        assert len(data["rules"]) == 4

    def test_explain_names_undetermined_attributes(self) -> None:
        """A missing attribute shows up in the explanation."""
        policy = Policy([rule("small", "allow", when={"args.amount": {"lt": 5}})])
        text = str(policy.explain(request("crm.contact.update")))
        assert "args.amount is missing" in text
        assert "undetermined: args.amount" in text


class TestValidation:
    """Malformed rules are refused with messages that say how to fix them."""

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"effect": "escalte"}, "unknown effect 'escalte' (expected allow, audit"),
            ({"effect": "escalate"}, "needs 'escalate_to'"),
            ({"escalate_to": "x"}, "only meaningful on an escalate rule"),
            ({"actions": "crm..read"}, "malformed action pattern"),
            ({"actions": "crm.con*"}, "malformed action pattern"),
            ({"actions": []}, "at least 1"),
            ({"id": "has space"}, "rule id"),
            ({"when": {"args.n": {"gte": 1}}}, "unknown operator 'gte'"),
            ({"when": {"argz.n": 1}}, "must start with one of principal, resource, args"),
            ({"when": {"principal.name": 1}}, "principal has no field 'name'"),
            ({"when": {"args.s": {"matches": "("}}}, "invalid regular expression"),
            ({"when": {"args.s": {"in": [1, "a"]}}}, "values of one kind"),
            ({"when": {"args.s": {"gt": True}}}, "compares numbers, strings or dates"),
            ({"when": {"args.s": [1, 2]}}, "a list needs an operator"),
            ({"when": {"args.s": {"exists": "yes"}}}, "exists takes true or false"),
        ],
    )
    def test_bad_rules(self, fields: dict[str, Any], message: str) -> None:
        """Each malformed rule is refused naming the problem."""
        data = {"id": "r", "effect": "allow", "actions": "crm.contact.update", **fields}
        with pytest.raises(ValueError, match=re.escape(message)):
            Rule.model_validate(data)

    def test_duplicate_rule_ids(self) -> None:
        """Two rules with one id are a PolicyError naming the id."""
        with pytest.raises(PolicyError) as info:
            Policy([ALLOW_UPDATE, ALLOW_UPDATE])
        assert info.value.rule_id == "update"
        assert "duplicate rule id" in str(info.value)

    def test_policy_takes_rules_only(self) -> None:
        """Passing something else than Rule objects is a TypeError."""
        with pytest.raises(TypeError, match="Policy takes Rule objects"):
            Policy([{"id": "x"}])  # type: ignore[list-item]

    def test_actions_must_be_dotted_names(self) -> None:
        """A request's action must be a dotted name."""
        with pytest.raises(ValueError, match="not a dotted name"):
            request("crm contact")


def test_policy_basics() -> None:
    """A policy exposes its rules, finds one by id, and extends into a new policy."""
    policy = Policy([ALLOW_UPDATE], name="p")
    assert policy.rules == (ALLOW_UPDATE,)
    assert policy.rule("update") is ALLOW_UPDATE
    with pytest.raises(KeyError, match="no rule 'nope'"):
        policy.rule("nope")
    bigger = policy.with_rules(rule("stop", "deny"))
    assert len(bigger.rules) == 2
    assert len(policy.rules) == 1
    assert repr(policy) == "<Policy 'p' with 1 rules>"


def test_decision_to_dict_omits_arguments() -> None:
    """A decision's JSON form names rules and reason but not the request's arguments."""
    decision = Policy([ALLOW_UPDATE]).evaluate(
        request("crm.contact.update", args={"password": "hunter2"})
    )
    data = decision.to_dict()
    assert data["rule_id"] == "update"
    assert "hunter2" not in str(data)


class TestAwkwardValues:
    """Values that compare strangely are undetermined, never a silent False."""

    DENY_BIG = Policy(
        [
            rule("update", "allow"),
            rule("big", "deny", when={"args.amount": {"gt": 1000}}),
        ]
    )

    def test_nan_is_undetermined(self) -> None:
        """A NaN amount cannot slip past `amount > 1000`: it counts against the request."""
        for nan in (float("nan"), __import__("decimal").Decimal("NaN")):
            decision = self.DENY_BIG.evaluate(request("crm.contact.update", args={"amount": nan}))
            assert decision.effect is Effect.DENY
            assert decision.rule_id == "big"
            assert decision.undetermined == ("args.amount",)

    def test_nan_is_refused_in_a_rule(self) -> None:
        """A rule comparing with NaN is malformed."""
        with pytest.raises(ValueError, match="NaN compares with nothing"):
            rule("r", "deny", when={"args.amount": {"gt": float("nan")}})

    def test_naive_and_aware_datetimes_do_not_compare(self) -> None:
        """A naive datetime against an aware one is undetermined, for eq and ne too."""
        cutoff = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        policy = Policy([rule("r", "allow", when={"context.now": {"ne": cutoff}})])
        naive = request("crm.contact.update", context={"now": dt.datetime(2026, 5, 1)})
        aware = request(
            "crm.contact.update", context={"now": dt.datetime(2026, 5, 1, tzinfo=dt.UTC)}
        )
        assert policy.evaluate(naive).effect is Effect.DENY
        assert policy.evaluate(aware).effect is Effect.ALLOW


def test_undetermined_audit_flags_but_never_grants() -> None:
    """An AUDIT rule that cannot be evaluated flags what another rule grants, and grants nothing."""
    flag = rule("eu", "audit", when={"resource.attributes.region": "eu"})
    granted = Policy([ALLOW_UPDATE, flag]).evaluate(request("crm.contact.update"))
    assert granted.effect is Effect.AUDIT
    assert granted.undetermined == ("resource.attributes.region",)
    alone = Policy([flag]).evaluate(request("crm.contact.update"))
    assert alone.effect is Effect.DENY


def test_rules_survive_model_dump() -> None:
    """A rule dumped with pydantic validates back to an equal rule."""
    original = rule(
        "r",
        "escalate",
        when={"args.n": {"gt": 1}, "not": {"args.m": {"exists": True}}},
        escalate_to="x",
    )
    assert Rule.model_validate(original.model_dump()) == original


def test_caches_stay_bounded_and_correct() -> None:
    """Past the cache limits (many actions and users), decisions stay right and memory bounded."""
    from handrail.policy._compile import _CACHE_LIMIT

    policy = Policy(
        [
            rule("reps", "allow", "crm.*", principals={"roles": ["rep"]}),
            rule("agent", "allow", "crm.*", principals={"agents": ["sales-bot"]}),
        ]
    )
    compiled = policy._compiled
    for n in range(_CACHE_LIMIT + 50):
        roles = ["rep"] if n % 2 else []
        principal = Principal(agent="sales-bot", on_behalf_of={"id": f"u{n}", "roles": roles})
        decision = policy.evaluate(request(f"crm.thing{n}.read", principal))
        assert decision.is_allowed is bool(n % 2), n
    assert len(compiled._cache) <= _CACHE_LIMIT
    assert len(compiled._user_plans) <= _CACHE_LIMIT
    assert len(compiled._agent_plans) <= _CACHE_LIMIT
