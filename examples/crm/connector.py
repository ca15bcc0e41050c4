"""A connector for the example CRM (``server.py``): the few dozen lines a team writes per system.

Everything around the HTTP calls — the policy, the audit trail, retries of
429s and 503s, the circuit breaker, OAuth2 tokens refreshed before expiry and
once on a 401, lazy pagination, quarantine of malformed records, shadow mode —
comes from ``HTTPConnector`` and the guard it runs every operation under.
What is left here is what only this CRM's authors know: its models, its URLs,
its three pagination styles, and its ``PATCH`` with ``If-Match`` ETags.

Usage (against ``python examples/crm/server.py``)::

    crm = CRMConnector(
        "http://127.0.0.1:8000/v1",
        client_id="example-client",
        client_secret=os.environ["CRM_CLIENT_SECRET"],
        policy=Policy.from_file("examples/policies/crm-agent.yaml"),
        audit=AuditLog.jsonl("audit.jsonl"),
        quarantine="quarantine.jsonl",
    )
    with acting_as(Principal(agent="sales-assistant", on_behalf_of=alice)):
        contact = crm.get_contact(id="c-000001")
        for contact in crm.list_contacts(page_size=500):
            ...

The module imports handrail, httpx and pydantic only, never the server: the
connector knows the CRM by its HTTP API, as it would a hosted one.  See
``docs/connectors.md`` for the walk-through.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from handrail.connectors import ConnectorError, HTTPConnector, OAuth2ClientCredentials, operation

__all__ = [
    "CRMConnector",
    "Company",
    "CompanyRef",
    "Contact",
    "ContactRef",
    "ContactUpdate",
    "ListQuery",
    "Opportunity",
    "RecordChanged",
]

# -- the records, as the CRM serves them ------------------------------------------------------

# Unknown fields are kept (the CRM adds some without notice); phones sometimes arrive as numbers.
_LENIENT = ConfigDict(extra="allow", coerce_numbers_to_str=True, frozen=True)


def _strip_thousands(value: Any) -> Any:
    """Amounts sometimes arrive as strings with separators: ``"1,200.00"``."""
    return value.replace(",", "") if isinstance(value, str) else value


def _normalize_email(value: Any) -> Any:
    """Emails sometimes arrive padded and upper-case: ``" ADA@EXAMPLE.COM "``."""
    return value.strip().lower() if isinstance(value, str) else value


class Contact(BaseModel):
    """A person at a customer."""

    model_config = _LENIENT

    id: str
    email: Annotated[str, BeforeValidator(_normalize_email)]
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None  # "+49 30 1234567", 4930123456 (a number) or null
    title: str | None = None
    company_id: str | None = None
    do_not_call: bool | None = None  # true/false, "yes"/"no", 0 or null
    created_at: datetime
    updated_at: datetime | None = None
    version: int
    # Not in the body: the ETag header of a single-record read, for ContactUpdate.if_match.
    etag: str | None = None


class Company(BaseModel):
    """A customer organisation."""

    model_config = _LENIENT

    id: str
    name: str
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None  # 1200, "1200" or null
    created_at: datetime
    updated_at: datetime | None = None
    version: int


class Opportunity(BaseModel):
    """A deal in the pipeline."""

    model_config = _LENIENT

    id: str
    name: str
    amount: Annotated[Decimal, BeforeValidator(_strip_thousands)]  # 1200, 1200.5, "1,200.00"
    currency: str | None = None
    stage: str
    company_id: str | None = None
    discount_pct: float | None = None  # 12.5, "10" or null
    close_date: date | None = None
    created_at: datetime
    updated_at: datetime | None = None
    version: int


# -- what the agent passes in ---------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True)


class ContactRef(BaseModel):
    """Which contact."""

    model_config = _STRICT

    id: str = Field(min_length=1, description="The contact's id, such as c-000001")


class CompanyRef(BaseModel):
    """Which company."""

    model_config = _STRICT

    id: str = Field(min_length=1, description="The company's id, such as co-000001")


class ListQuery(BaseModel):
    """How many records to fetch per request (the read itself always goes to the end)."""

    model_config = _STRICT

    page_size: int = Field(100, ge=1, le=1000, description="Records per request, 1..1000")


class ContactUpdate(BaseModel):
    """The fields of a contact to change; a field left out (or null) is not touched."""

    model_config = _STRICT

    id: str = Field(min_length=1, description="The contact's id, such as c-000001")
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    title: str | None = None
    company_id: str | None = None
    do_not_call: bool | None = None
    if_match: str | None = Field(
        None,
        description="The etag of the version the change was decided on (from "
        "crm.contact.get); by default the current one, whatever it is now",
    )
    request_id: str | None = Field(
        None,
        min_length=1,
        description="Your id for this change: a repeated call with the same id is applied "
        "once; without one, each call is a change of its own",
    )

    @model_validator(mode="after")
    def _changes_something(self) -> ContactUpdate:
        if not self.changes():
            raise ValueError("name at least one field to change")
        return self

    def changes(self) -> dict[str, Any]:
        """The JSON merge patch (RFC 7386) to send: the fields given, nothing else."""
        return self.model_dump(exclude={"id", "if_match", "request_id"}, exclude_none=True)


class RecordChanged(ConnectorError):
    """The record changed since its ETag was read (HTTP 412); nothing was written.

    Read it again and decide again: the change was meant for a version that
    is gone.  ``.id`` is the record, ``.etag`` the ETag that no longer matches.
    """

    def __init__(self, operation: str, record_id: str, etag: str) -> None:
        self.id = record_id
        self.etag = etag
        super().__init__(
            operation,
            f"{record_id} changed since it was read (ETag {etag} is no longer current); "
            "nothing was written: read it again and reapply the change",
        )


def _contact(id: str, **_: object) -> dict[str, str]:
    """The resource a contact operation acts on, for the policy and the audit trail."""
    return {"type": "contact", "id": id}


def _company(id: str, **_: object) -> dict[str, str]:
    return {"type": "company", "id": id}


# -- the connector ----------------------------------------------------------------------------


class CRMConnector(HTTPConnector):
    """The example CRM: contacts, companies and opportunities over its REST API.

    ``base_url`` is the API root (``http://127.0.0.1:8000/v1``); tokens come
    from ``token_url`` (default: ``/oauth/token`` on the same origin) with the
    client-credentials grant, fetched by ``token_client`` (an
    ``httpx.Client``; one is made if omitted).  The other keywords are
    ``HTTPConnector``'s: ``policy=``, ``audit=``, ``quarantine=``,
    ``shadow=``, ``transport=``...  Reads need ``crm.<resource>.read``,
    which is what ``examples/policies/crm-agent.yaml`` grants.  Thread-safe.
    """

    name = "crm"
    description = "The example CRM: contacts, companies and opportunities."

    def __init__(
        self,
        base_url: str,
        *,
        client_id: str,
        client_secret: SecretStr | str,
        token_url: str | None = None,
        token_client: httpx.Client | None = None,
        **options: Any,
    ) -> None:
        self.oauth = OAuth2ClientCredentials(
            token_url or str(httpx.URL(base_url).join("/oauth/token")),
            client_id,
            client_secret,
            name="crm",
            client=token_client,
        )
        super().__init__(base_url, credentials=self.oauth, **options)

    def close(self) -> None:
        """Close the HTTP clients, the token fetcher's included."""
        super().close()
        self.oauth.close()

    # -- contacts: one by id, all by cursor, updates with ETags ----------------------------

    @operation("crm.contact.get", permission="crm.contact.read", resource=_contact)
    def get_contact(self, params: ContactRef) -> Contact:
        """Read one contact by id, with the ETag of the version read."""
        response = self.send("GET", _path("contacts", params.id))
        return _with_etag(response)  # type: ignore[no-any-return]

    @operation("crm.contact.list", permission="crm.contact.read")
    def list_contacts(self, params: ListQuery) -> Iterator[Contact]:
        """Every contact, fetched a page at a time as the caller iterates (cursor pagination)."""
        return self.paginate_cursor("/contacts", params={"limit": params.page_size}, records="data")

    @operation("crm.contact.update", kind="write", resource=_contact, idempotency_key="request_id")
    def update_contact(self, params: ContactUpdate) -> Contact:
        """Change some fields of a contact, only if it has not changed since it was read."""
        path = _path("contacts", params.id)
        # The CRM refuses a PATCH without If-Match: fetch the current ETag if none was given.
        etag = params.if_match or self.send("GET", path).headers["ETag"]
        try:
            # The call's key (request_id, else a fresh one) goes out as Idempotency-Key:
            # the CRM applies a retried PATCH, or a repeated request_id, once.
            response = self.send(
                "PATCH",
                path,
                json=params.changes(),
                headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"},
            )
        except httpx.HTTPStatusError as error:
            if error.response.status_code == httpx.codes.PRECONDITION_FAILED:
                raise RecordChanged("crm.contact.update", params.id, etag) from error
            raise
        return _with_etag(response)  # type: ignore[no-any-return]

    # -- companies: Link headers; one by id from async code --------------------------------

    @operation("crm.company.list", permission="crm.company.read")
    def list_companies(self, params: ListQuery) -> Iterator[Company]:
        """Every company, following the ``Link: rel="next"`` header from page to page."""
        return self.paginate_links("/companies", params={"per_page": params.page_size})

    @operation("crm.company.get", permission="crm.company.read", resource=_company)
    async def get_company(self, params: CompanyRef) -> Company:
        """Read one company by id (async: ``await crm.get_company(id=...)``)."""
        return await self.aget_json(_path("companies", params.id))  # type: ignore[no-any-return]

    # -- opportunities: offset pagination ---------------------------------------------------

    @operation("crm.opportunity.list", permission="crm.opportunity.read")
    def list_opportunities(self, params: ListQuery) -> Iterator[Opportunity]:
        """Every opportunity, by offset and limit."""
        return self.paginate_offset("/opportunities", records="data", limit=params.page_size)


def _with_etag(response: httpx.Response) -> Any:
    """The record in ``response``, with its ``ETag`` header as the ``etag`` field."""
    record = response.json()
    if isinstance(record, dict):  # anything else fails validation, as it should
        record["etag"] = response.headers.get("ETag")
    return record


def _path(resource: str, record_id: str) -> str:
    # An id is the agent's input: quoted, "../companies" stays one path segment.
    return f"/{resource}/{quote(record_id, safe='')}"
