"""One rule for names: look-alike ids, roles and groups are the same name or refused.

NFKC, then case folding, then only ``a-z 0-9 . _ - @ + : /``, 1 to 256
characters: in policy files, in code, on requests and for escalation deciders.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from handrail import (
    ActionRequest,
    ConfigurationError,
    Effect,
    PermissionDenied,
    Policy,
    PolicyError,
    Principal,
    Rule,
    User,
    requires_permission,
)
from handrail._names import NAME_MAX_LENGTH, canonical_name
from handrail.escalation import Level
from handrail.testing import look_alike_names

CYRILLIC_BOT = "b\u043et"  # bot, with a Cyrillic o


def rule(id: str, effect: str, **kw: Any) -> Rule:
    return Rule.model_validate(
        {"id": id, "effect": effect, "actions": ["crm.contact.update"], **kw}
    )


POLICY = Policy(
    [
        rule("everyone", "allow"),
        rule("no-bot", "deny", principals={"agents": ["bot"]}),
        rule("no-interns", "deny", principals={"roles": ["intern"]}),
        rule("no-mallory", "deny", principals={"users": ["mallory"]}),
        rule("no-contractors", "deny", principals={"groups": ["contractors"]}),
    ]
)


def decide(principal: Principal) -> Effect:
    return POLICY.evaluate(ActionRequest(principal=principal, action="crm.contact.update")).effect


def test_canonical_form() -> None:
    """Case and width fold to the ASCII lower-case name."""
    assert canonical_name("Intern") == "intern"
    assert canonical_name("\uff42\uff4f\uff54") == "bot"  # full-width
    assert canonical_name("Alice@Example.COM") == "alice@example.com"
    assert canonical_name("team:ops/eu+1") == "team:ops/eu+1"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        (CYRILLIC_BOT, "\\u043e (CYRILLIC SMALL LETTER O)"),
        ("b\u200bot", "\\u200b (ZERO WIDTH SPACE)"),
        ("\u202ebot", "\\u202e (RIGHT-TO-LEFT OVERRIDE)"),
        ("bo t", "\\u0020 (SPACE)"),
        ("b\x07ot", "\\u0007"),
        ("\u03b2ot", "\\u03b2 (GREEK SMALL LETTER BETA)"),
    ],
)
def test_look_alikes_are_refused_naming_the_character(name: str, shown: str) -> None:
    """Other scripts, invisible and control characters are refused; the message escapes them."""
    with pytest.raises(ConfigurationError) as caught:
        canonical_name(name, "agent id")
    message = str(caught.value)
    assert "agent id" in message
    assert shown in message
    assert message.isascii()


def test_length_is_bounded() -> None:
    """Names are 1 to NAME_MAX_LENGTH characters."""
    assert canonical_name("a" * NAME_MAX_LENGTH) == "a" * NAME_MAX_LENGTH
    for bad in ("", "a" * (NAME_MAX_LENGTH + 1)):
        with pytest.raises(ConfigurationError):
            canonical_name(bad)


def test_principals_are_canonical_on_requests() -> None:
    """Ids, roles and groups on a Principal and User are canonical from construction."""
    principal = Principal(
        agent="Support-Bot",
        roles=frozenset({"Intern"}),
        on_behalf_of={"id": "Alice", "roles": ["Sales_Rep"], "groups": ["EMEA"]},
    )
    assert principal.agent == "support-bot"
    assert principal.roles == {"intern"}
    assert principal.on_behalf_of is not None
    assert principal.on_behalf_of.id == "alice"
    assert principal.on_behalf_of.roles == {"sales_rep"}
    assert principal.on_behalf_of.groups == {"emea"}


def test_a_look_alike_agent_is_refused_not_allowed() -> None:
    """With allow-everyone and a deny on agent bot, bot with a Cyrillic o cannot be built."""
    with pytest.raises(ValidationError, match="u043e"):
        Principal(agent=CYRILLIC_BOT)
    assert decide(Principal(agent="\uff42\uff4f\uff54")) is Effect.DENY  # full-width bot


def test_case_does_not_escape_a_restriction() -> None:
    """'Intern' is the role intern; 'Mallory' the user mallory; 'Contractors' the group."""
    assert decide(Principal(agent="helper", roles=frozenset({"Intern"}))) is Effect.DENY
    assert decide(Principal(agent="helper", on_behalf_of="Mallory")) is Effect.DENY
    assert (
        decide(Principal(agent="helper", on_behalf_of={"id": "x", "groups": ["Contractors"]}))
        is Effect.DENY
    )
    assert decide(Principal(agent="helper")) is Effect.ALLOW


def test_a_principal_built_without_validation_is_checked_by_the_policy() -> None:
    """model_construct skips the name rule: the policy canonicalises, or denies saying why."""
    shouting = Principal.model_construct(agent="BOT", roles=frozenset())
    assert decide(shouting) is Effect.DENY
    sneaky = Principal.model_construct(agent=CYRILLIC_BOT, roles=frozenset())
    decision = POLICY.evaluate(ActionRequest.model_construct(principal=sneaky, action="x.y"))
    assert decision.effect is Effect.DENY
    assert "fail closed" in decision.reason
    assert "u043e" in decision.reason
    assert str(POLICY.explain(ActionRequest(principal=Principal(agent="Bot"), action="a.b")))


def test_the_guard_denies_a_principal_that_cannot_be_canonical() -> None:
    """Through @requires_permission a look-alike principal is a PermissionDenied, not a crash."""

    @requires_permission("crm.contact.update", policy=POLICY)
    def update(principal: Principal) -> str:
        return "updated"

    with pytest.raises(PermissionDenied):
        update(principal=Principal.model_construct(agent=CYRILLIC_BOT, roles=frozenset()))
    with pytest.raises(PermissionDenied):
        update(principal=Principal(agent="BOT"))
    assert update(principal=Principal(agent="Helper")) == "updated"


def test_rules_name_principals_canonically() -> None:
    """Rules in code and files fold names too, and refuse look-alikes with the field named."""
    assert rule("r", "deny", principals={"agents": ["BOT"]}).principals.agents == {"bot"}
    with pytest.raises(ValidationError, match=r"principals\.agents entry 'b\\u043et'"):
        rule("r", "deny", principals={"agents": [CYRILLIC_BOT]})
    with pytest.raises(PolicyError) as caught:
        Policy.from_yaml(
            "version: 1\nrules:\n  - id: r\n    effect: deny\n    actions: [a.b]\n"
            f"    principals: {{roles: [ok, '{CYRILLIC_BOT}']}}\n"
        )
    assert caught.value.line == 6
    assert "u043e" in str(caught.value)


def test_conditions_on_names_compare_canonical_names() -> None:
    """principal.agent == 'Bot' in a policy is the agent bot; a look-alike value is refused."""
    policy = Policy(
        [rule("all", "allow"), rule("d", "deny", when={"principal.agent": {"in": ["Bot"]}})]
    )
    assert (
        policy.evaluate(
            ActionRequest(principal=Principal(agent="bot"), action="crm.contact.update")
        ).effect
        is Effect.DENY
    )
    matches = Policy(
        [rule("all", "allow"), rule("d", "deny", when={"principal.agent": {"matches": "^Bot$"}})]
    )
    assert (
        matches.evaluate(
            ActionRequest(principal=Principal(agent="bot"), action="crm.contact.update")
        ).effect
        is Effect.DENY
    )
    with pytest.raises(ValidationError, match="u043e"):
        rule("d", "deny", when={"principal.agent": {"eq": CYRILLIC_BOT}})


def test_escalation_deciders_are_canonical() -> None:
    """A route's deciders are names like a User's: 'Alice' is alice; look-alikes are refused."""
    level = Level(deciders=["Alice", "group:Finance"], resolve_within=timedelta(hours=1))
    assert level.deciders == ("alice", "group:finance")
    with pytest.raises(ValidationError):
        Level(deciders=["\u0430lice"], resolve_within=timedelta(hours=1))
    assert User(id="ALICE").id in level.deciders


# -- the property ------------------------------------------------------------------

RESTRICTED = {"agents": "bot", "roles": "intern", "users": "mallory", "groups": "contractors"}


def principal_with(field: str, name: str) -> Principal:
    if field == "agents":
        return Principal(agent=name)
    if field == "roles":
        return Principal(agent="helper", roles=frozenset({name}))
    if field == "users":
        return Principal(agent="helper", on_behalf_of={"id": name})
    return Principal(agent="helper", on_behalf_of={"id": "someone", "groups": [name]})


@st.composite
def variants(draw: st.DrawFn) -> tuple[str, str]:
    field = draw(st.sampled_from(sorted(RESTRICTED)))
    return field, draw(look_alike_names(RESTRICTED[field]))


@settings(max_examples=300, deadline=None)
@given(variants())
def test_a_look_alike_of_a_restricted_name_is_restricted_or_refused(case: tuple[str, str]) -> None:
    """Any case, width or confusable variant of a denied name is denied, or cannot be built."""
    field, name = case
    try:
        principal = principal_with(field, name)
    except ValidationError as exc:
        refused = str(exc)
    else:
        assert decide(principal) is Effect.DENY, name.encode("unicode_escape")
        return
    assert "\\u" in refused or "empty" in refused


@settings(max_examples=200, deadline=None)
@given(variants())
def test_a_look_alike_in_a_rule_names_the_same_principal_or_is_refused(
    case: tuple[str, str],
) -> None:
    """A rule written with a variant of a name applies to that name, or the rule is refused."""
    field, name = case
    try:
        deny = rule("deny", "deny", principals={field: [name]})
    except ValidationError:
        return
    policy = Policy([rule("everyone", "allow"), deny])
    principal = principal_with(field, RESTRICTED[field])
    request = ActionRequest(principal=principal, action="crm.contact.update")
    assert policy.evaluate(request).effect is Effect.DENY


# -- principals built without validation: conditions see canonical names too ------

CONDITIONS = Policy(
    [
        rule("everyone", "allow"),
        rule("no-bot", "deny", when={"principal.agent": {"eq": "bot"}}),
        rule("no-interns", "deny", when={"principal.roles": {"contains": "intern"}}),
        rule("no-mallory", "deny", when={"principal.on_behalf_of.id": {"in": ["mallory"]}}),
        rule(
            "no-contractors",
            "deny",
            when={"principal.on_behalf_of.groups": {"contains": "contractors"}},
        ),
    ]
)


def unvalidated_with(field: str, name: str) -> Principal:
    """A principal put together with model_construct, as a caller skipping validation would."""
    nobody: frozenset[str] = frozenset()
    user = User.model_construct(
        id=name if field == "users" else "someone",
        roles=nobody,
        groups=frozenset({name}) if field == "groups" else nobody,
        attributes={},
    )
    return Principal.model_construct(
        agent=name if field == "agents" else "helper",
        roles=frozenset({name}) if field == "roles" else nobody,
        on_behalf_of=user,
        attributes={},
    )


def decide_unvalidated(policy: Policy, principal: Principal) -> Effect:
    request = ActionRequest.model_construct(
        principal=principal, action="crm.contact.update", args={}, context={}
    )
    return policy.evaluate(request).effect


@pytest.mark.parametrize(
    ("field", "name"),
    [("agents", "BOT"), ("agents", "\uff42\uff4f\uff54"), ("roles", "Intern"),
     ("users", "Mallory"), ("groups", "CONTRACTORS")],
)  # fmt: skip
def test_conditions_see_the_canonical_names_of_an_unvalidated_principal(
    field: str, name: str
) -> None:
    """A condition on principal.agent == bot denies model_construct(agent='BOT') too."""
    assert decide_unvalidated(CONDITIONS, unvalidated_with(field, name)) is Effect.DENY
    assert decide_unvalidated(POLICY, unvalidated_with(field, name)) is Effect.DENY
    assert decide_unvalidated(CONDITIONS, unvalidated_with(field, "helper2")) is Effect.ALLOW


def test_a_decision_on_an_unvalidated_principal_shows_its_canonical_names() -> None:
    """The decision's request carries the canonical principal, so audit records show 'bot'."""
    request = ActionRequest.model_construct(
        principal=unvalidated_with("agents", "Some-Bot"),
        action="crm.contact.update",
        args={},
        context={},
    )
    decision = CONDITIONS.evaluate(request)
    assert decision.effect is Effect.ALLOW
    assert decision.request.principal.agent == "some-bot"
    assert CONDITIONS.explain(request).decision.request.principal.agent == "some-bot"


@settings(max_examples=300, deadline=None)
@given(variants())
def test_a_look_alike_on_an_unvalidated_principal_is_restricted_by_conditions(
    case: tuple[str, str],
) -> None:
    """Any variant of a name a condition restricts is restricted without validation too."""
    field, name = case
    assert decide_unvalidated(CONDITIONS, unvalidated_with(field, name)) is Effect.DENY, (
        name.encode("unicode_escape")
    )


class Forged(str):
    """An id whose == and hash claim to be 'bot': only a caller skipping validation has one."""

    def __hash__(self) -> int:
        return hash("bot")

    def __eq__(self, other: object) -> bool:
        return True


def test_a_forged_id_never_stands_for_the_name_it_claims() -> None:
    """A str subclass claiming to equal 'bot' is read as its text, and cannot poison bot."""
    policy = Policy([rule("bot-only", "allow", principals={"agents": ["bot"]})])
    forged = Principal.model_construct(agent=Forged("intern"), roles=frozenset())
    assert decide_unvalidated(policy, forged) is Effect.DENY
    assert decide_unvalidated(policy, Principal(agent="bot")) is Effect.ALLOW
