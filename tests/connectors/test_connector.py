"""BaseConnector and @operation: typed operations, guarded on every call, described for tools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from handrail import (
    ConfigurationError,
    EscalationRequired,
    PermissionDenied,
    Policy,
    Principal,
    acting_as,
)
from handrail._errors import InvalidInput
from handrail.audit import AuditLog
from handrail.connectors import (
    BaseConnector,
    Connector,
    InvalidRecord,
    MemoryQuarantine,
    fake_connector,
    operation,
)
from handrail.shadow import ShadowResult


class ContactRef(BaseModel):
    id: str


class Contact(BaseModel):
    id: str
    email: str


class ContactQuery(BaseModel):
    limit: int = 10


class ContactPatch(BaseModel):
    id: str
    email: str
    api_key: SecretStr | None = None


class CRM(BaseConnector):
    """A connector over a dict, the way a team would wrap an internal client."""

    name = "crm"
    description = "Acme's CRM"

    def __init__(self, rows: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows = rows if rows is not None else {"c1": {"id": "c1", "email": "a@acme.com"}}
        self.writes: list[str] = []

    @operation("crm.contact.get", resource=lambda id: {"type": "contact", "id": id})
    def get_contact(self, params: ContactRef) -> Contact:
        """Read one contact by id."""
        return self.rows[params.id]

    @operation("crm.contact.list")
    def list_contacts(self, params: ContactQuery) -> Iterator[Contact]:
        """List contacts, oldest first."""
        yield from list(self.rows.values())[: params.limit]

    @operation("crm.contact.update", kind="write", permission="crm.contact.write")
    def update_contact(self, params: ContactPatch) -> Contact:
        """Change a contact's email."""
        self.writes.append(params.id)
        self.rows[params.id] = {"id": params.id, "email": params.email}
        return self.rows[params.id]

    @operation("crm.contact.aget")
    async def aget_contact(self, params: ContactRef) -> Contact:
        """Read one contact, async."""
        return self.rows[params.id]

    @operation("crm.contact.alist")
    async def alist_contacts(self) -> AsyncIterator[Contact]:
        """Every contact, async."""
        for row in self.rows.values():
            yield row


POLICY = Policy.from_yaml(
    """
rules:
  - {id: crm, effect: allow, actions: ["crm.contact.*"]}
  - id: vip
    effect: escalate
    actions: [crm.contact.write]
    when: {args.id: {startswith: vip}}
    escalate_to: managers
  - {id: no-c9, effect: deny, actions: [crm.contact.get], when: {resource.id: {eq: c9}}}
"""
)
BOT = Principal(agent="sales-bot")


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog.memory()


def crm(audit: AuditLog, **kwargs: Any) -> CRM:
    return CRM(policy=POLICY, audit=audit, **kwargs)


def test_describe_lists_every_operation_with_kind_permission_and_schemas(audit: AuditLog) -> None:
    connector = crm(audit)
    assert isinstance(connector, Connector)
    description = connector.describe()
    assert description.name == "crm"
    assert description.matrix() == [
        ("crm.contact.get", "read", "crm.contact.get"),
        ("crm.contact.list", "read", "crm.contact.list"),
        ("crm.contact.update", "write", "crm.contact.write"),
        ("crm.contact.aget", "read", "crm.contact.aget"),
        ("crm.contact.alist", "read", "crm.contact.alist"),
    ]
    ops = {op["name"]: op for op in description.operations}
    assert ops["crm.contact.get"]["input_schema"]["required"] == ["id"]
    assert ops["crm.contact.list"]["many"] is True
    assert ops["crm.contact.list"]["validation"] == "quarantine"
    assert ops["crm.contact.get"]["validation"] == "strict"
    assert ops["crm.contact.alist"]["input_schema"]["properties"] == {}
    tools = description.tools()
    assert tools[0] == {
        "name": "crm.contact.get",
        "description": "Read one contact by id.",
        "parameters": ops["crm.contact.get"]["input_schema"],
    }


def test_a_call_is_validated_decided_and_audited(audit: AuditLog) -> None:
    connector = crm(audit)
    with acting_as(BOT):
        contact = connector.get_contact(id="c1")
        assert contact == connector.get_contact(ContactRef(id="c1"))
        assert contact == connector.get_contact({"id": "c1"})
    assert isinstance(contact, Contact)
    assert contact.email == "a@acme.com"
    record = next(iter(audit.records()))
    assert (record.action, record.outcome, record.args) == (
        "crm.contact.get",
        "executed",
        {"id": "c1"},
    )
    assert record.resource == {"type": "contact", "id": "c1", "attributes": {}}
    assert record.context == {"connector": "crm", "operation": "crm.contact.get"}


def test_bad_input_is_refused_before_anything_runs(audit: AuditLog) -> None:
    connector = crm(audit)
    with acting_as(BOT), pytest.raises(InvalidInput, match=r"crm.contact.get: invalid input: id"):
        connector.get_contact(identifier="c1")
    with acting_as(BOT), pytest.raises(InvalidInput):
        connector.get_contact(ContactQuery())
    assert list(audit.records()) == []


def test_the_policy_decides_on_the_permission_and_the_input(audit: AuditLog) -> None:
    connector = crm(audit)
    with acting_as(BOT):
        with pytest.raises(PermissionDenied, match="no-c9"):
            connector.get_contact(id="c9")
        with pytest.raises(EscalationRequired):
            connector.update_contact(id="vip-1", email="x@acme.com")
    assert connector.writes == []
    assert [r.outcome for r in audit.records()] == ["denied", "escalated"]


def test_without_a_principal_the_call_is_denied(audit: AuditLog) -> None:
    with pytest.raises(PermissionDenied, match="no principal"):
        crm(audit).get_contact(id="c1")


def test_invalid_output_fails_a_strict_read_and_names_the_field(audit: AuditLog) -> None:
    connector = crm(audit, rows={"c1": {"id": "c1", "email": 42}})
    with acting_as(BOT), pytest.raises(InvalidRecord, match="email"):
        connector.get_contact(id="c1")


def test_list_reads_quarantine_invalid_records_and_keep_extra_fields(audit: AuditLog) -> None:
    rows = {
        "c1": {"id": "c1", "email": "a@acme.com", "tier": "gold"},
        "c2": {"id": "c2", "email": None},
        "c3": {"id": "c3", "email": "c@acme.com"},
    }
    sink = MemoryQuarantine()
    connector = crm(audit, rows=rows, quarantine=sink)
    with acting_as(BOT):
        records = connector.list_contacts(limit=10)
        got = list(records)
    assert [c.id for c in got] == ["c1", "c3"]
    assert got[0].model_extra == {"tier": "gold"}
    assert (records.valid, records.quarantined) == (2, 1)
    (bad,) = sink.records()
    assert (bad.connector, bad.operation, bad.raw) == ("crm", "crm.contact.list", rows["c2"])


def test_a_quarantining_read_without_a_sink_fails_closed(audit: AuditLog) -> None:
    connector = crm(audit, rows={"c2": {"id": "c2", "email": None}})
    with acting_as(BOT), pytest.raises(InvalidRecord):
        list(connector.list_contacts())


def test_shadow_mode_records_writes_and_runs_reads(audit: AuditLog) -> None:
    connector = crm(audit, shadow=True)
    with acting_as(BOT):
        assert connector.get_contact(id="c1").id == "c1"
        result = connector.update_contact(id="c1", email="new@acme.com", api_key=SecretStr("k-1"))
    assert isinstance(result, ShadowResult)
    assert result.args == {"id": "c1", "email": "new@acme.com", "api_key": "***"}
    assert connector.writes == []
    assert connector.rows["c1"]["email"] == "a@acme.com"
    assert [r.outcome for r in audit.records()] == ["executed", "shadowed"]


def test_async_operations_are_first_class(audit: AuditLog) -> None:
    connector = crm(audit)

    async def main() -> tuple[Contact, list[Contact]]:
        with acting_as(BOT):
            one = await connector.aget_contact(id="c1")
            many = await (await connector.alist_contacts()).collect()
            return one, many

    one, many = asyncio.run(main())
    assert one.id == "c1"
    assert [c.id for c in many] == ["c1"]
    assert [r.action for r in audit.records()] == ["crm.contact.aget", "crm.contact.alist"]


def test_declaration_mistakes_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="not a dotted name"):
        operation("Not A Name")
    with pytest.raises(ConfigurationError, match="kind must be"):
        operation("a.b", kind="delete")  # type: ignore[call-overload]

    class NoModels(BaseConnector):
        name = "x"

        @operation("x.thing.get")
        def get(self, ident: str) -> Contact:
            raise AssertionError

        @operation("x.thing.list")
        def many(self) -> list[Contact]:
            raise AssertionError

    with pytest.raises(ConfigurationError, match="pydantic model of the input"):
        NoModels.operations()

    class Nameless(BaseConnector):
        pass

    with pytest.raises(ConfigurationError, match="name"):
        Nameless()
    with pytest.raises(ConfigurationError, match="two methods"):

        class Twice(BaseConnector):
            name = "t"

            @operation("t.a.b")
            def one(self) -> Contact:
                raise AssertionError

            @operation("t.a.b")
            def two(self) -> Contact:
                raise AssertionError


def test_a_fake_connector_answers_from_seeded_data_through_the_same_guard(
    audit: AuditLog,
) -> None:
    fake = fake_connector(
        CRM,
        {
            "crm.contact.get": lambda params: {"id": params.id, "email": f"{params.id}@acme.com"},
            "crm.contact.list": [{"id": "c1", "email": "a@acme.com"}],
            "crm.contact.update": {"id": "c1", "email": "b@acme.com"},
        },
        policy=POLICY,
        audit=audit,
    )
    with acting_as(BOT):
        assert fake.get_contact(id="c7").email == "c7@acme.com"
        assert [c.id for c in fake.list_contacts()] == ["c1"]
        assert fake.update_contact(id="c1", email="b@acme.com").email == "b@acme.com"
        with pytest.raises(PermissionDenied):
            fake.get_contact(id="c9")
        with pytest.raises(NotImplementedError, match=r"crm\.contact\.aget"):
            asyncio.run(fake.aget_contact(id="c1"))
    assert fake.describe() == CRM(policy=POLICY).describe()
    assert [name for name, _ in fake.calls] == [  # type: ignore[attr-defined]
        "crm.contact.get",
        "crm.contact.list",
        "crm.contact.update",
        "crm.contact.aget",
    ]
    with pytest.raises(ConfigurationError, match="no operation"):
        fake_connector(CRM, {"crm.nope.get": {}})
