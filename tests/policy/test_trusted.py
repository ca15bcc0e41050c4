"""The fast, unvalidated constructors equal the validated models they stand for."""

from handrail import ActionRequest, Principal, Resource
from handrail.policy._model import resource_from, trusted_request


def test_trusted_request_equals_validated_request() -> None:
    """trusted_request builds the same object pydantic validation would."""
    principal = Principal(agent="a")
    fast = trusted_request(principal, "crm.contact.read", None, {"x": 1}, {"env": "prod"})
    slow = ActionRequest(
        principal=principal, action="crm.contact.read", args={"x": 1}, context={"env": "prod"}
    )
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_fields_set == slow.model_fields_set | {"resource"}


def test_resource_from_equals_validated_resource() -> None:
    """resource_from's hand-checked path gives the validated Resource."""
    data = {"type": "contact", "id": "c-1", "attributes": {"owner": "al"}}
    assert resource_from(data) == Resource.model_validate(data)
    assert resource_from({"type": "t"}) == Resource(type="t")
    assert resource_from(Resource(type="t")) == Resource(type="t")
