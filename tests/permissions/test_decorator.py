"""@requires_permission: how a call becomes a request, and how the decision is enforced."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from typing import Any

import pytest

from handrail import (
    ConfigurationError,
    Decision,
    Effect,
    EscalationRequired,
    PermissionDenied,
    Policy,
    Principal,
    Resource,
    Rule,
    acting_as,
    current_principal,
    requires_permission,
    set_default_policy,
    using_policy,
)
from handrail.permissions import current_context, current_policy

BOT = Principal(agent="sales-bot")
OTHER = Principal(agent="other-bot")

POLICY = Policy(
    [
        Rule(
            id="update",
            effect="allow",
            actions=("crm.contact.update",),
            principals={"agents": ["sales-bot"]},
        ),
        Rule(
            id="big",
            effect="escalate",
            actions=("crm.contact.update",),
            # Optional arguments are guarded with exists: a missing one would escalate.
            when={"args.discount": {"exists": True, "gt": 20}},
            escalate_to="sales-managers",
        ),
        Rule(
            id="external",
            effect="audit",
            actions=("crm.contact.update",),
            when={"resource.attributes.domain": {"ne": "acme.com"}},
        ),
        Rule(
            id="locked",
            effect="deny",
            actions=("crm.contact.update",),
            when={"args.contact_id": {"exists": True, "startswith": "locked-"}},
        ),
    ]
)


def contact(contact_id: str, **_: Any) -> dict[str, Any]:
    return {"type": "contact", "id": contact_id, "attributes": {"domain": "acme.com"}}


@requires_permission("crm.contact.update", resource=contact, policy=POLICY)
def update_contact(contact_id: str, discount: int = 0) -> str:
    return f"updated {contact_id}"


def test_allowed_call_runs() -> None:
    """An allowed call runs and returns its value."""
    with acting_as(BOT):
        assert update_contact("c-1") == "updated c-1"


def test_denied_call_raises_with_decision() -> None:
    """A denied call raises PermissionDenied carrying the decision, and does not run."""
    with acting_as(OTHER), pytest.raises(PermissionDenied) as info:
        update_contact("c-1")
    assert info.value.decision.effect is Effect.DENY
    assert "default deny" in str(info.value)


def test_escalated_call_raises_with_route() -> None:
    """A call that needs a human raises EscalationRequired naming the route."""
    with acting_as(BOT), pytest.raises(EscalationRequired) as info:
        update_contact("c-1", discount=30)
    decision = info.value.decision
    assert decision.escalate_to == "sales-managers"
    assert decision.request.args == {"contact_id": "c-1", "discount": 30}
    assert info.value.escalation_id is None


def test_request_is_built_from_the_call() -> None:
    """Arguments (defaults included), resource and context reach the request."""
    seen: list[Decision] = []
    policy = POLICY.with_rules(Rule(id="flag-all", effect="audit", actions=("crm.contact.update",)))

    @requires_permission(
        "crm.contact.update",
        resource=contact,
        context={"channel": "slack"},
        policy=policy,
        on_audit=seen.append,
    )
    def update(contact_id: str, discount: int = 5) -> None:
        pass

    with acting_as(BOT, context={"environment": "production"}):
        update("c-9")
    request = seen[0].request
    assert request.principal == BOT
    assert request.action == "crm.contact.update"
    assert request.args == {"contact_id": "c-9", "discount": 5}
    assert request.resource == Resource(type="contact", id="c-9", attributes={"domain": "acme.com"})
    assert request.context == {"environment": "production", "channel": "slack"}


def test_audit_runs_the_call_and_calls_the_hook() -> None:
    """AUDIT runs the call and hands the decision to on_audit first."""
    events: list[str] = []

    @requires_permission(
        "crm.contact.update",
        resource=lambda contact_id: {"type": "contact", "attributes": {"domain": "evil.com"}},
        policy=POLICY,
        on_audit=lambda d: events.append(f"audit {d.rule_id}"),
    )
    def update(contact_id: str) -> None:
        events.append("ran")

    with acting_as(BOT):
        update("c-1")
    assert events == ["audit external", "ran"]


def test_restrictions_apply() -> None:
    """A DENY rule matching the call's arguments refuses it."""
    with acting_as(BOT), pytest.raises(PermissionDenied, match="'locked' denies"):
        update_contact("locked-1")


def test_context_feeds_conditions() -> None:
    """Context from acting_as feeds conditions; a missing one counts against the request."""
    policy = POLICY.with_rules(
        Rule(
            id="staging",
            effect="deny",
            actions=("crm.contact.update",),
            when={"context.environment": "staging"},
        )
    )
    update = requires_permission("crm.contact.update", resource=contact, policy=policy)(
        lambda contact_id: contact_id
    )
    with acting_as(BOT, context={"environment": "production"}):
        assert update("c-1") == "c-1"
    with acting_as(BOT, context={"environment": "staging"}), pytest.raises(PermissionDenied):
        update("c-1")
    with acting_as(BOT), pytest.raises(PermissionDenied, match=r"context\.environment"):
        update("c-1")


class TestFailClosed:
    """Whatever goes wrong in the guard, the call does not run."""

    def test_no_principal_denies(self) -> None:
        """Without acting_as or a principal argument, the call is denied and says how to fix."""
        with pytest.raises(PermissionDenied, match="no principal in scope") as info:
            update_contact("c-1")
        assert info.value.decision.subject == "nobody"

    def test_no_policy_denies(self) -> None:
        """Without a policy from the decorator, using_policy or the default, the call is denied."""

        @requires_permission("crm.contact.update")
        def update() -> None:
            raise AssertionError("must not run")

        with acting_as(BOT), pytest.raises(PermissionDenied, match="no policy in scope"):
            update()

    def test_resource_callable_error_denies(self) -> None:
        """A resource callable that raises denies, naming the error."""

        @requires_permission("crm.contact.update", resource=lambda **_: 1 / 0, policy=POLICY)
        def update(contact_id: str) -> None:
            raise AssertionError("must not run")

        with acting_as(BOT), pytest.raises(PermissionDenied, match="ZeroDivisionError"):
            update("c-1")

    def test_invalid_resource_denies(self) -> None:
        """A resource that is not a valid Resource denies."""

        @requires_permission("crm.contact.update", resource={"id": "no type"}, policy=POLICY)
        def update() -> None:
            raise AssertionError("must not run")

        with acting_as(BOT), pytest.raises(PermissionDenied, match="could not build the request"):
            update()

    def test_principal_argument_of_wrong_type_denies(self) -> None:
        """A principal argument that is not a Principal denies."""

        @requires_permission("crm.contact.update", policy=POLICY)
        def update(principal: Any) -> None:
            raise AssertionError("must not run")

        with pytest.raises(PermissionDenied, match="must be a Principal"):
            update("sales-bot")

    def test_user_exceptions_pass_through(self) -> None:
        """An allowed call's own exception reaches the caller unchanged."""

        @requires_permission("crm.contact.update", policy=POLICY)
        def update() -> None:
            raise KeyError("mine")

        with acting_as(BOT), pytest.raises(KeyError, match="mine"):
            update()


def test_bad_action_name_is_a_configuration_error() -> None:
    """A malformed action name is refused at decoration time."""
    with pytest.raises(ConfigurationError, match="not a dotted name"):
        requires_permission("crm contact update")
    with pytest.raises(ConfigurationError, match="must be a Policy"):
        requires_permission("crm.contact.update", policy="policy.yaml")(lambda: None)  # type: ignore[arg-type]


def test_explicit_principal_argument_wins() -> None:
    """A `principal` parameter supplies the identity and is left out of args."""
    seen: list[Decision] = []
    policy = Policy([Rule(id="all", effect="audit", actions=("*",))])

    @requires_permission("crm.contact.update", policy=policy, on_audit=seen.append)
    def update(contact_id: str, principal: Principal) -> None:
        pass

    with acting_as(OTHER):
        update("c-1", principal=BOT)
    assert seen[0].request.principal == BOT
    assert seen[0].request.args == {"contact_id": "c-1"}


def test_methods_leave_self_out() -> None:
    """On a method, `self` is not part of the request's args."""
    seen: list[Decision] = []
    policy = Policy([Rule(id="all", effect="audit", actions=("*",))])

    class Crm:
        @requires_permission("crm.contact.update", policy=policy, on_audit=seen.append)
        def update(self, contact_id: str) -> str:
            return contact_id

    with acting_as(BOT):
        assert Crm().update("c-1") == "c-1"
    assert seen[0].request.args == {"contact_id": "c-1"}


def test_var_args_and_keyword_only() -> None:
    """*args, **kwargs and keyword-only parameters are bound like Python binds them."""
    seen: list[Decision] = []
    policy = Policy([Rule(id="all", effect="audit", actions=("*",))])

    @requires_permission("crm.contact.tag", policy=policy, on_audit=seen.append)
    def tag(contact_id: str, /, *tags: str, source: str = "agent", **extra: Any) -> None:
        pass

    with acting_as(BOT):
        tag("c-1", "vip", "emea", note="hi")
    assert seen[0].request.args == {
        "contact_id": "c-1",
        "tags": ("vip", "emea"),
        "source": "agent",
        "extra": {"note": "hi"},
    }


def test_signature_and_metadata_are_kept() -> None:
    """The decorated function keeps its name, docstring and signature."""

    def original(contact_id: str, discount: int = 0) -> str:
        """Update a contact."""
        return contact_id

    guarded = requires_permission("crm.contact.update", policy=POLICY)(original)
    assert guarded.__name__ == "original"
    assert guarded.__doc__ == "Update a contact."
    assert inspect.signature(guarded) == inspect.signature(original)


class TestAsync:
    """Async functions are guarded the same way, and stay coroutine functions."""

    def test_async_allowed_and_denied(self) -> None:
        """An async guarded call awaits when allowed and raises when denied."""

        @requires_permission("crm.contact.update", resource=contact, policy=POLICY)
        async def update(contact_id: str, discount: int = 0) -> str:
            await asyncio.sleep(0)
            return contact_id

        assert inspect.iscoroutinefunction(update)

        async def main() -> None:
            with acting_as(BOT):
                assert await update("c-1") == "c-1"
                with pytest.raises(EscalationRequired):
                    await update("c-1", discount=50)
            with acting_as(OTHER), pytest.raises(PermissionDenied):
                await update("c-1")

        asyncio.run(main())

    def test_tasks_keep_their_own_principal(self) -> None:
        """Concurrent tasks acting as different principals never see each other's."""

        @requires_permission("crm.contact.update", resource=contact, policy=POLICY)
        async def update(contact_id: str) -> str:
            await asyncio.sleep(0)
            return contact_id

        async def act(principal: Principal) -> str:
            with acting_as(principal):
                await asyncio.sleep(0)
                try:
                    await update("c-1")
                except PermissionDenied:
                    return f"{principal.agent}: denied"
                return f"{principal.agent}: allowed"

        async def main() -> list[str]:
            return list(await asyncio.gather(*(act(p) for p in [BOT, OTHER] * 20)))

        assert asyncio.run(main()) == ["sales-bot: allowed", "other-bot: denied"] * 20


def test_threads_start_without_a_principal() -> None:
    """A new thread does not inherit acting_as; copy_context carries it over."""
    results: dict[str, Principal | None] = {}

    with acting_as(BOT):
        bare = threading.Thread(target=lambda: results.update(bare=current_principal()))
        context = contextvars.copy_context()
        copied = threading.Thread(
            target=lambda: context.run(lambda: results.update(copied=current_principal()))
        )
        bare.start(), copied.start()
        bare.join(), copied.join()
    assert results == {"bare": None, "copied": BOT}


def test_policy_lookup_order() -> None:
    """The decorator's policy beats using_policy, which beats the default."""
    allow_all = Policy([Rule(id="all", effect="allow", actions=("*",))])
    deny_all = Policy()

    @requires_permission("crm.contact.update")
    def from_scope() -> str:
        return "ran"

    with acting_as(BOT):
        assert set_default_policy(allow_all) is None
        assert from_scope() == "ran"
        with using_policy(deny_all), pytest.raises(PermissionDenied):
            from_scope()
        assert current_policy() is allow_all
        assert requires_permission("crm.contact.update", policy=deny_all)(lambda: 1) is not None
        assert set_default_policy(None) is allow_all
        with pytest.raises(PermissionDenied):
            from_scope()


def test_acting_as_nests_and_restores() -> None:
    """Nested acting_as replaces the principal, extends the context, and restores both."""
    assert current_principal() is None
    with acting_as(BOT, context={"a": 1}):
        with acting_as(OTHER, context={"b": 2}):
            assert current_principal() == OTHER
            assert current_context() == {"a": 1, "b": 2}
        assert current_principal() == BOT
        assert current_context() == {"a": 1}
    assert current_principal() is None
    assert current_context() == {}


def test_context_helpers_check_their_arguments() -> None:
    """acting_as, using_policy and set_default_policy refuse the wrong types."""
    with pytest.raises(TypeError, match="acting_as takes a Principal"), acting_as("bot"):  # type: ignore[arg-type]
        pass
    with pytest.raises(TypeError, match="using_policy takes a Policy"), using_policy(None):  # type: ignore[arg-type]
        pass
    with pytest.raises(TypeError, match="set_default_policy takes a Policy"):
        set_default_policy("p")  # type: ignore[arg-type]
