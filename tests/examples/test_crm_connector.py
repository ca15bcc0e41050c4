"""The example CRM connector (examples/crm/connector.py) against the real CRM server on 127.0.0.1.

Reads, a denied write, an escalated write, messy data into the quarantine,
429s and 503s, tokens that expire mid-read, ETag updates applied once, two
intended updates applied twice, a stale ETag, shadow mode, the audit trail and
secrets — then the conformance kit.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import httpx
import pytest
import structlog
import yaml

from handrail import EscalationRequired, PermissionDenied, Policy, Principal, acting_as
from handrail.audit import AuditLog
from handrail.connectors import MemoryQuarantine, RateLimits
from handrail.shadow import ShadowResult
from handrail.testing import no_waits
from handrail.testing.conformance import ConnectorConformance

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str, path: Path) -> ModuleType:
    """Import a file of examples/ by path, once, under a fixed module name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pydantic look their module up by name
    spec.loader.exec_module(module)
    return module


# The same module name as tests/examples/test_crm_server.py: one server module per process.
server = load("handrail_example_crm_server", EXAMPLES / "crm" / "server.py")
connector = load("handrail_example_crm_connector", EXAMPLES / "crm" / "connector.py")
CRMServer = server.CRMServer
CRMConnector = connector.CRMConnector

POLICY = Policy.from_file(EXAMPLES / "policies" / "crm-agent.yaml")
ALICE = {"id": "alice", "roles": ["sales_rep"], "groups": ["sales"]}
ASSISTANT = Principal(agent="sales-assistant", on_behalf_of=ALICE)
# An intern is in sales but has no role that may write.
FOR_INTERN = Principal(agent="sales-assistant", on_behalf_of={"id": "ivan", "groups": ["sales"]})
SEED = 7


def with_key_accounts() -> Policy:
    """The team's policy plus one rule: changes to a key account's contact need a manager."""
    document = yaml.safe_load((EXAMPLES / "policies" / "crm-agent.yaml").read_text())
    document["rules"].append(
        {
            "id": "key-account-contacts",
            "effect": "escalate",
            "actions": ["crm.contact.update"],
            "when": {"resource.id": {"in": ["c-000001"]}},
            "escalate_to": "sales-managers",
            "description": "Key accounts' contacts are changed with a manager's approval",
            "owner": "sales-ops@acme.com",
        }
    )
    return Policy.from_dict(document)


class TokenSpy(httpx.BaseTransport):
    """The token endpoint's transport: remembers every access token issued, to look for leaks."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport(verify=False)
        self.tokens: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        if response.status_code == 200:
            self.tokens.append(response.json()["access_token"])
        return response

    def close(self) -> None:
        self.inner.close()


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    """Retries report their waits, never sleep them."""
    with no_waits():
        yield


@pytest.fixture
def crm() -> Iterator[Any]:
    with CRMServer(seed=SEED, records=100) as running:
        yield running


@pytest.fixture
def tokens() -> TokenSpy:
    return TokenSpy()


@pytest.fixture
def connect(crm: Any, tokens: TokenSpy) -> Iterator[Any]:
    """Build CRMConnectors on the server (policy: examples/policies/crm-agent.yaml)."""
    made: list[Any] = []
    token_client = httpx.Client(transport=tokens)

    def make(**options: Any) -> Any:
        options.setdefault("policy", POLICY)
        options.setdefault("rate_limit", RateLimits())  # not the process-wide one
        crm_connector = CRMConnector(
            crm.base_url,
            client_id=crm.client_id,
            client_secret=crm.client_secret,
            token_client=token_client,
            # Plain HTTP on 127.0.0.1: no CA bundle to load (60 ms a client).
            transport=httpx.HTTPTransport(verify=False),
            async_transport=httpx.AsyncHTTPTransport(verify=False),
            **options,
        )
        made.append(crm_connector)
        return crm_connector

    yield make
    for each in made:
        each.close()
    token_client.close()  # given to the connectors, so not theirs to close


def requests_of(crm: Any, method: str) -> list[Any]:
    return [r for r in crm.requests if r.method == method]


def first_valid(crm: Any, resource: str) -> str:
    """The id of a well-formed record (ids of malformed ones would fail a strict read)."""
    malformed = crm.malformed_ids(resource)
    ids = (crm.id_of(resource, i) for i in range(crm.count(resource)))
    valid: str = next(i for i in ids if i not in malformed)
    return valid


# -- reads ---------------------------------------------------------------------------------


def test_reads_go_through_when_the_policy_allows(crm: Any, connect: Any) -> None:
    """The assistant reads a contact as the team's policy grants; the record comes back typed."""
    log = AuditLog.memory()
    crm_connector = connect(audit=log)
    contact_id = first_valid(crm, "contacts")
    with acting_as(ASSISTANT):
        contact = crm_connector.get_contact(id=contact_id)
    served = crm.record("contacts", contact_id)
    assert contact.id == contact_id
    assert contact.email == served["email"].strip().lower()
    assert contact.version == 1
    [record] = log.records()
    # The contact's region is unknown to the policy, so the GDPR read-audit rule applies.
    assert (record.action, record.outcome, record.effect, record.rule_id) == (
        "crm.contact.read",
        "executed",
        "audit",
        "audit-eu-contact-reads",
    )
    assert record.resource == {"type": "contact", "id": contact_id, "attributes": {}}
    assert record.context["operation"] == "crm.contact.get"


def test_a_full_contact_listing_quarantines_exactly_the_malformed_records(
    crm: Any, connect: Any
) -> None:
    """Cursor pages: valid contacts flow, the malformed ones (and only they) are set aside."""
    sink = MemoryQuarantine()
    crm_connector = connect(quarantine=sink)
    with acting_as(ASSISTANT):
        contacts = crm_connector.list_contacts(page_size=30)
        assert crm.requests == []  # lazy: nothing fetched before iterating
        read = list(contacts)
    assert len(read) == contacts.valid == crm.expected_valid_count("contacts")
    assert contacts.quarantined == len(crm.malformed_ids("contacts"))
    quarantined = list(sink.records())
    # Records arrive in index order, so a record's place in the read is its index.
    assert {crm.id_of("contacts", r.index) for r in quarantined} == crm.malformed_ids("contacts")
    assert all(r.operation == "crm.contact.list" for r in quarantined)
    assert all(r.source and r.source.startswith(f"{crm.base_url}/contacts?") for r in quarantined)
    assert {c.id for c in read}.isdisjoint(crm.malformed_ids("contacts"))
    assert len(requests_of(crm, "GET")) == 4  # 100 records in pages of 30


def test_messy_values_are_coerced_and_extra_fields_kept(crm: Any, connect: Any) -> None:
    """Numbers as phones, "1,200.00" amounts, "yes" flags; x_legacy_id and custom_fields kept."""
    crm_connector = connect(quarantine=MemoryQuarantine())
    with acting_as(ASSISTANT):
        contacts = {c.id: c for c in crm_connector.list_contacts()}
        opportunities = {o.id: o for o in crm_connector.list_opportunities(page_size=40)}
        companies = list(crm_connector.list_companies(page_size=40))
    assert len(opportunities) == crm.expected_valid_count("opportunities")
    assert len(companies) == crm.expected_valid_count("companies")
    served = {i: crm.record("contacts", i) for i in contacts}
    numeric = [i for i, r in served.items() if isinstance(r["phone"], int)]
    assert numeric, "seed 7 serves some phones as numbers"
    assert all(contacts[i].phone == str(served[i]["phone"]) for i in numeric)
    extra = [i for i, r in served.items() if "x_legacy_id" in r]
    assert extra
    assert all(contacts[i].model_extra["x_legacy_id"] == served[i]["x_legacy_id"] for i in extra)
    assert contacts[extra[0]].model_dump()["x_legacy_id"] == served[extra[0]]["x_legacy_id"]
    amounts = {i: crm.record("opportunities", i)["amount"] for i in opportunities}
    separated = [i for i, a in amounts.items() if isinstance(a, str) and "," in a]
    assert separated, "seed 7 serves some amounts as '1,200.00'"
    for i in separated:
        assert opportunities[i].amount == Decimal(amounts[i].replace(",", ""))
    assert any(isinstance(c.employees, int) for c in companies)
    flagged = [i for i, r in served.items() if r["do_not_call"] in ("yes", "no", 0)]
    assert flagged
    assert all(contacts[i].do_not_call is (served[i]["do_not_call"] == "yes") for i in flagged)


def test_an_async_read_goes_through_the_same_guard(crm: Any, connect: Any) -> None:
    """``await get_company(...)``: decided, sent with a token, validated, audited."""
    log = AuditLog.memory()
    crm_connector = connect(audit=log)
    company_id = first_valid(crm, "companies")

    async def read() -> Any:
        try:
            with acting_as(ASSISTANT):
                return await crm_connector.get_company(id=company_id)
        finally:
            await crm_connector.aclose()  # the async client belongs to this event loop

    company = asyncio.run(read())
    assert company.id == company_id
    assert company.name == crm.record("companies", company_id)["name"]
    assert [(r.action, r.outcome) for r in log.records()] == [("crm.company.read", "executed")]


# -- writes the policy refuses -----------------------------------------------------------------


def test_a_write_the_policy_denies_never_reaches_the_crm(crm: Any, connect: Any) -> None:
    """An intern may read but not write: refused before any request, and audited as denied."""
    log = AuditLog.memory()
    crm_connector = connect(audit=log)
    contact_id = first_valid(crm, "contacts")
    with acting_as(FOR_INTERN):
        crm_connector.get_contact(id=contact_id)
        with pytest.raises(PermissionDenied):
            crm_connector.update_contact(id=contact_id, title="Intern's pick")
    assert [r.method for r in crm.requests if r.path.startswith("/v1/")] == ["GET"]
    assert crm.writes_applied == 0
    assert [(r.action, r.outcome) for r in log.records()] == [
        ("crm.contact.read", "executed"),
        ("crm.contact.update", "denied"),
    ]


def test_a_rule_escalates_a_write_before_anything_is_sent(crm: Any, connect: Any) -> None:
    """A key account's contact needs a manager: EscalationRequired, no request, audited."""
    log = AuditLog.memory()
    crm_connector = connect(policy=with_key_accounts(), audit=log)
    with acting_as(ASSISTANT), pytest.raises(EscalationRequired) as raised:
        crm_connector.update_contact(id="c-000001", title="CEO")
    assert raised.value.decision.escalate_to == "sales-managers"
    assert crm.requests == []
    [record] = log.records()
    assert (record.outcome, record.rule_id) == ("escalated", "key-account-contacts")


# -- faults ------------------------------------------------------------------------------------


def test_429_and_503_are_retried(crm: Any, connect: Any) -> None:
    """A 429 then a 503 on one page, a 503 on the next: the listing still completes."""
    crm_connector = connect(quarantine=MemoryQuarantine())
    with acting_as(ASSISTANT):
        contacts = crm_connector.list_contacts(page_size=50)
        crm.fail_next(429)
        crm.fail_next(503)
        first = next(contacts)
        crm.fail_next(503)
        rest = list(contacts)
    assert 1 + len(rest) == crm.expected_valid_count("contacts")
    assert first.id == first_valid(crm, "contacts")
    statuses = [r.status for r in requests_of(crm, "GET")]
    assert statuses == [429, 503, 200, 503, 200]


def test_a_token_that_expires_mid_listing_is_refreshed_once(
    crm: Any, connect: Any, tokens: TokenSpy
) -> None:
    """After expire_tokens() the next page gets a 401, a new token, and the listing goes on."""
    crm_connector = connect(quarantine=MemoryQuarantine())
    with acting_as(ASSISTANT):
        contacts = crm_connector.list_contacts(page_size=25)
        before = [next(contacts) for _ in range(20)]
        crm.expire_tokens()
        after = list(contacts)
    assert len(before) + len(after) == crm.expected_valid_count("contacts")
    assert crm.tokens_issued == 2
    assert len(tokens.tokens) == 2
    assert [r.status for r in requests_of(crm, "GET")].count(401) == 1


# -- writes -------------------------------------------------------------------------------------


def test_an_etag_update_is_applied_exactly_once(crm: Any, connect: Any) -> None:
    """A PATCH that meets a 503 is retried under the same key and applied once; its record
    counts the three requests that reached the CRM."""
    log = AuditLog.memory()
    crm_connector = connect(audit=log)
    contact_id = first_valid(crm, "contacts")
    etag = crm.etag("contacts", contact_id)
    crm.fail_next(503, method="PATCH")
    with acting_as(ASSISTANT):
        updated = crm_connector.update_contact(id=contact_id, title="CTO")
    assert updated.title == "CTO"
    assert updated.version == 2
    assert updated.etag == crm.etag("contacts", contact_id) != etag
    [record] = log.records()
    assert record.outcome == "executed"
    assert record.attempts == 3  # the ETag GET, the PATCH that met the 503, its retry
    key = record.idempotency_key
    assert key
    assert crm.applied_by_key == {key: 1}
    assert crm.writes_applied == 1
    patches = requests_of(crm, "PATCH")
    assert [p.status for p in patches] == [503, 200]
    assert {p.headers["idempotency-key"] for p in patches} == {key}
    assert patches[0].headers["if-match"] == etag
    assert patches[0].headers["content-type"] == "application/merge-patch+json"
    assert json.loads(patches[0].body) == {"title": "CTO"}


def test_two_intended_updates_are_two_writes_and_a_repeated_request_id_is_one(
    crm: Any, connect: Any
) -> None:
    """The same change twice is two writes under two keys; a repeated request_id is replayed."""
    log = AuditLog.memory()
    crm_connector = connect(audit=log)
    contact_id = first_valid(crm, "contacts")
    with acting_as(ASSISTANT):
        first = crm_connector.update_contact(id=contact_id, title="CTO")
        second = crm_connector.update_contact(id=contact_id, title="CTO")
        once = crm_connector.update_contact(id=contact_id, title="CEO", request_id="change-42")
        again = crm_connector.update_contact(id=contact_id, title="CEO", request_id="change-42")
    assert (first.version, second.version, once.version) == (2, 3, 4)
    assert again == once  # the stored response, replayed
    keys = [r.idempotency_key for r in log.records()]
    assert keys[2:] == ["change-42", "change-42"]
    assert len(set(keys[:2]) | {"change-42"}) == 3
    assert crm.applied_by_key == {keys[0]: 1, keys[1]: 1, "change-42": 1}
    assert crm.writes_applied == 3


def test_a_stale_etag_is_a_clear_error_and_writes_nothing(crm: Any, connect: Any) -> None:
    """An update decided on an old version fails with RecordChanged (HTTP 412), audited."""
    log = AuditLog.memory()
    crm_connector = connect(audit=log)
    contact_id = first_valid(crm, "contacts")
    with acting_as(ASSISTANT):
        contact = crm_connector.get_contact(id=contact_id)
        seen = contact.etag
        assert seen == crm.etag("contacts", contact_id)
        crm_connector.update_contact(id=contact_id, title="CFO")  # someone else's change
        with pytest.raises(connector.RecordChanged) as raised:
            crm_connector.update_contact(id=contact_id, phone="+49 30 0000000", if_match=seen)
    error = raised.value
    assert (error.id, error.etag) == (contact_id, seen)
    assert str(error) == (
        f"crm.contact.update: {contact_id} changed since it was read (ETag {seen} is no "
        "longer current); nothing was written: read it again and reapply the change"
    )
    assert crm.writes_applied == 1
    assert crm.record("contacts", contact_id)["phone"] != "+49 30 0000000"
    last = list(log.records())[-1]
    assert last.outcome == "failed"
    assert last.error_type is not None
    assert last.error_type.endswith(".RecordChanged")


def test_an_update_must_change_something(connect: Any) -> None:
    """Only an id is not an update: refused as invalid input, before the policy is asked."""
    crm_connector = connect()
    with acting_as(ASSISTANT), pytest.raises(ValueError, match="at least one field"):
        crm_connector.update_contact(id="c-000002")


# -- shadow mode ---------------------------------------------------------------------------------


def test_in_shadow_mode_the_patch_never_reaches_the_crm(
    crm: Any, connect: Any, tokens: TokenSpy
) -> None:
    """The ETag GET is sent; the PATCH is returned as a ShadowResult with no token in it."""
    log = AuditLog.memory()
    crm_connector = connect(audit=log, shadow=True)
    contact_id = first_valid(crm, "contacts")
    with acting_as(ASSISTANT):
        result = crm_connector.update_contact(id=contact_id, title="Head of Sales")
    assert isinstance(result, ShadowResult)
    assert not result.executed
    assert requests_of(crm, "PATCH") == []
    assert crm.writes_applied == 0
    request = result.request
    assert request is not None
    assert (request.method, request.url) == ("PATCH", f"{crm.base_url}/contacts/{contact_id}")
    assert request.body == {"title": "Head of Sales"}
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["authorization"] == "***"
    assert headers["if-match"] == crm.etag("contacts", contact_id)
    assert headers["idempotency-key"] == result.idempotency_key
    [token] = tokens.tokens
    assert token not in result.model_dump_json()
    assert [r.outcome for r in log.records()] == ["shadowed"]


# -- the audit trail and secrets ------------------------------------------------------------


def test_every_call_is_audited_and_no_secret_reaches_any_output(
    crm: Any, connect: Any, tokens: TokenSpy
) -> None:
    """One record per call; the client secret and the tokens appear in no record, log or error."""
    log = AuditLog.memory()
    crm_connector = connect(audit=log, quarantine=MemoryQuarantine())
    contact_id = first_valid(crm, "contacts")
    seen: list[str] = [repr(crm_connector), repr(crm_connector.oauth)]
    with structlog.testing.capture_logs() as events, acting_as(ASSISTANT):
        crm_connector.get_contact(id=contact_id)
        crm.expire_tokens()  # a 401 and a refresh: the credential code logs it
        list(crm_connector.list_contacts(page_size=50))
        crm_connector.update_contact(id=contact_id, title="CTO")
        crm.fail_next(503, times=5)  # more than the retries: the read fails
        try:
            crm_connector.get_contact(id=contact_id)
        except httpx.HTTPStatusError as error:
            seen.extend([str(error), repr(error)])
        else:
            raise AssertionError("five 503s in a row should fail the read")
        with acting_as(FOR_INTERN), pytest.raises(PermissionDenied) as denied:
            crm_connector.update_contact(id=contact_id, title="Intern's pick")
        seen.append(str(denied.value))
    assert [(r.action, r.outcome) for r in log.records()] == [
        ("crm.contact.read", "executed"),
        ("crm.contact.read", "executed"),
        ("crm.contact.update", "executed"),
        ("crm.contact.read", "failed"),
        ("crm.contact.update", "denied"),
    ]
    assert log.verify().ok
    seen.extend(r.to_json() for r in log.records())
    seen.extend(json.dumps(event, default=repr) for event in events)
    logged = {event["event"] for event in events}
    assert {"handrail.credential.rejected", "handrail.retry", "handrail.action"} <= logged
    assert len(tokens.tokens) == 2
    for secret in (crm.client_secret, *tokens.tokens):
        assert not [text for text in seen if secret in text]


# -- describe() ----------------------------------------------------------------------------------


def test_describe_gives_tools_and_the_permission_matrix(connect: Any) -> None:
    """Six operations, one write; the matrix says which permission each needs."""
    description = connect().describe()
    assert description.matrix() == [
        ("crm.contact.get", "read", "crm.contact.read"),
        ("crm.contact.list", "read", "crm.contact.read"),
        ("crm.contact.update", "write", "crm.contact.update"),
        ("crm.company.list", "read", "crm.company.read"),
        ("crm.company.get", "read", "crm.company.read"),
        ("crm.opportunity.list", "read", "crm.opportunity.read"),
    ]
    tools = {tool["name"]: tool for tool in description.tools()}
    assert tools["crm.contact.update"]["description"].startswith("Change some fields")
    assert "if_match" in tools["crm.contact.update"]["parameters"]["properties"]
    assert [op.is_async for op in CRMConnector.operations()].count(True) == 1


# -- the conformance kit ---------------------------------------------------------------------

_KIT_SERVER = CRMServer(seed=SEED, records=40)  # started in setup_class


class TestCRMConnectorConformance(ConnectorConformance):
    """The kit's checks pass on the example connector, against the live server."""

    crm: ClassVar[Any] = _KIT_SERVER
    secrets: ClassVar[list[str]] = [_KIT_SERVER.client_secret]
    inputs: ClassVar[dict[str, dict[str, Any]]] = {
        "crm.contact.get": {"id": first_valid(_KIT_SERVER, "contacts")},
        "crm.contact.list": {"page_size": 15},
        "crm.contact.update": {"id": first_valid(_KIT_SERVER, "contacts"), "title": "CTO"},
        "crm.company.list": {"page_size": 15},
        "crm.opportunity.list": {"page_size": 15},
        # crm.company.get is async: the kit calls operations synchronously, so it is left out.
    }

    @classmethod
    def setup_class(cls) -> None:
        cls.crm.start()

    @classmethod
    def teardown_class(cls) -> None:
        cls.crm.close()

    def setup_method(self) -> None:
        self.made: list[Any] = []
        self.transports: list[httpx.BaseTransport] = []
        # Tokens are fetched beside the transport under test: the kit's RecordingTransport
        # would count the token POST as a write in shadow mode.
        self.token_client = httpx.Client(transport=httpx.HTTPTransport(verify=False))

    def teardown_method(self) -> None:
        for each in self.made:
            each.close()
        self.token_client.close()
        # The kit's wrapping transports do not close the ones they wrap.
        for transport in self.transports:
            transport.close()

    def make_connector(self, transport: httpx.BaseTransport, **guard: Any) -> Any:
        crm_connector = CRMConnector(
            self.crm.base_url,
            client_id=self.crm.client_id,
            client_secret=self.crm.client_secret,
            transport=transport,
            token_client=self.token_client,
            rate_limit=RateLimits(),
            quarantine=MemoryQuarantine(),
            **guard,
        )
        self.made.append(crm_connector)
        return crm_connector

    def transport(self) -> httpx.BaseTransport:
        made = httpx.HTTPTransport(verify=False)
        self.transports.append(made)
        return made
