"""One rule for action names, with one message, at every front end that takes one."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import BaseModel, ValidationError

from handrail import (
    ActionRequest,
    ConfigurationError,
    Guard,
    Policy,
    Principal,
    Rule,
    requires_permission,
)
from handrail._names import check_action, check_action_pattern
from handrail.audit import AuditLog, MemorySink
from handrail.connectors import operation

BAD_NAMES = ["crm..read", "crm.contact.", ".crm", "crm contact", "crm.*.read", "", "crm.cöntact"]


def expected(name: str) -> str:
    """The one message, as check_action words it."""
    with pytest.raises(ConfigurationError) as caught:
        check_action(name)
    return str(caught.value)


def _request(name: str) -> None:
    ActionRequest(principal=Principal(agent="bot"), action=name)


def _operation_name(name: str) -> None:
    operation(name)


class Contact(BaseModel):
    id: str


def _operation_permission(name: str) -> None:
    def get(self: object, id: str) -> Contact:
        return Contact(id=id)

    operation("crm.contact.get", permission=name)(get)


def _guard(name: str) -> None:
    Guard(policy=Policy()).protect(name)


def _audited(name: str) -> None:
    from handrail import audited

    audited(AuditLog(MemorySink()), action=name)


FRONT_ENDS: dict[str, Callable[[str], object]] = {
    "requires_permission": requires_permission,
    "Guard.protect": _guard,
    "audited": _audited,
    "@operation name": _operation_name,
    "@operation permission": _operation_permission,
    "ActionRequest": _request,
}


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS))
def test_every_front_end_reports_the_same_message(front_end: str, name: str) -> None:
    """A bad action name is refused everywhere with the message check_action gives."""
    with pytest.raises((ConfigurationError, ValidationError)) as caught:
        FRONT_ENDS[front_end](name)
    assert expected(name) in str(caught.value)
    if isinstance(caught.value, ConfigurationError):
        assert str(caught.value) == f"{front_end}: {expected(name)}"


def test_the_message_says_what_a_name_is() -> None:
    """The message quotes the name (escaped) and says what a name is made of."""
    assert expected("crm..read") == (
        "action 'crm..read' is not a dotted name such as 'crm.contact.update' "
        "(letters, digits, '_' and '-' between single dots)"
    )
    assert "'crm.c\\xf6ntact'" in expected("crm.cöntact")


def test_a_name_that_is_not_text_is_refused_by_type() -> None:
    """A non-string never passes, and the message names its type, not its repr."""
    with pytest.raises(ConfigurationError, match="action of type int is not a dotted name"):
        check_action(42, "")
    with pytest.raises(ConfigurationError, match=r"^requires_permission: action of type int"):
        requires_permission(42)  # type: ignore[arg-type]


def test_good_names_pass_unchanged() -> None:
    """Dotted segments of letters, digits, '_' and '-' are names; case is kept."""
    for name in ("crm.contact.update", "email.send", "CRM.Contact_v2.get-one", "x"):
        assert check_action(name) == name


def test_a_policy_decides_an_unvalidated_bad_action_as_deny_saying_why() -> None:
    """A request built without validation is denied, with the same message as its reason."""
    policy = Policy([Rule(id="all", effect="allow", actions="*")])
    request = ActionRequest.model_construct(principal=Principal(agent="bot"), action="crm..read")
    decision = policy.evaluate(request)
    assert decision.effect.value == "deny"
    assert expected("crm..read") in decision.reason


@pytest.mark.parametrize("pattern", ["crm..read", "crm.con*", "crm.*x", ""])
def test_patterns_have_one_rule_and_one_message_too(pattern: str) -> None:
    """Rules and the test strategies refuse a bad pattern with check_action_pattern's message."""
    from handrail.testing import rules

    with pytest.raises(ConfigurationError) as caught:
        check_action_pattern(pattern)
    message = str(caught.value)
    assert message.startswith(f"malformed action pattern {pattern!r}")
    with pytest.raises(ValidationError, match="malformed action pattern"):
        Rule(id="r", effect="allow", actions=pattern)
    with pytest.raises(ConfigurationError) as drawn:
        rules(actions=[pattern])
    assert str(drawn.value) == f"actions: {message}"
    assert check_action_pattern("crm.*.read") == "crm.*.read"
