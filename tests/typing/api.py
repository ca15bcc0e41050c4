"""Every public call shape, checked by mypy --strict (never executed)."""

from typing import assert_type

from handrail import (
    ActionRequest,
    Decision,
    Effect,
    Explanation,
    Policy,
    Principal,
    acting_as,
    requires_permission,
)

policy = Policy.from_file("policy.yaml")
request = ActionRequest(principal=Principal(agent="bot"), action="crm.contact.read")
assert_type(policy.evaluate(request), Decision)
assert_type(policy.evaluate(request).effect, Effect)
assert_type(policy.explain(request), Explanation)
assert_type(policy.evaluate(request).rule_id, str | None)


@requires_permission("crm.contact.update", policy=policy)
def update(contact_id: str, discount: int = 0) -> str:
    return contact_id


@requires_permission("crm.contact.update", policy=policy)
async def aupdate(contact_id: str) -> int:
    return 1


async def use() -> None:
    with acting_as(Principal(agent="bot")) as me:
        assert_type(me, Principal)
        assert_type(update("c-1", discount=3), str)
        assert_type(await aupdate("c-1"), int)
