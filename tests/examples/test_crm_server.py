"""The example CRM server (examples/crm/server.py) behaves as its README promises.

Connectors are tested against this server, so its own contract is tested here first,
with a bare httpx client: OAuth2, the three pagination styles, ETags, idempotency keys,
faults, and the messy data whose malformed records the helpers predict exactly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from handrail.testing import FakeClock

SERVER_PY = Path(__file__).resolve().parents[2] / "examples" / "crm" / "server.py"


def load_server() -> ModuleType:
    """Import examples/crm/server.py by path (``examples`` is not a package on sys.path)."""
    name = "handrail_example_crm_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SERVER_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


server = load_server()
CRMServer = server.CRMServer
RESOURCES: tuple[str, ...] = server.RESOURCES


# -- helpers -------------------------------------------------------------------


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request on a fresh client (``httpx.get`` would load the CA bundle: 30 ms each)."""
    with httpx.Client(verify=False) as client:
        return client.request(method, url, **kwargs)


def fetch_token(crm: Any, *, basic: bool = True) -> str:
    """A bearer token from the token endpoint, by HTTP Basic or by form fields."""
    if basic:
        response = request(
            "POST",
            crm.token_url,
            data={"grant_type": "client_credentials"},
            auth=(crm.client_id, crm.client_secret),
        )
    else:
        response = request(
            "POST",
            crm.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": crm.client_id,
                "client_secret": crm.client_secret,
            },
        )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def api(crm: Any) -> httpx.Client:
    """A keep-alive client for the API, already holding a token."""
    return httpx.Client(
        base_url=crm.base_url,
        headers={"Authorization": f"Bearer {fetch_token(crm)}"},
        verify=False,  # plain HTTP on 127.0.0.1: no CA bundle to load
    )


def page_all(client: httpx.Client, resource: str, size: int) -> list[dict[str, Any]]:
    """Every record of ``resource``, following the resource's own pagination style."""
    records: list[dict[str, Any]] = []
    style = server.PAGINATION[resource]
    if style == "cursor":
        params: dict[str, Any] = {"limit": size}
        while True:
            body = client.get(f"/{resource}", params=params).raise_for_status().json()
            records.extend(body["data"])
            if body["next_cursor"] is None:
                return records
            params = {"limit": size, "cursor": body["next_cursor"]}
    if style == "link":
        url: str | None = f"/{resource}?per_page={size}"
        while url is not None:
            response = client.get(url).raise_for_status()
            records.extend(response.json())
            url = response.links.get("next", {}).get("url")
        return records
    offset = 0
    while True:
        body = client.get(f"/{resource}", params={"offset": offset, "limit": size}).json()
        records.extend(body["data"])
        offset += size
        if offset >= body["total"]:
            return records


# -- the reference models: README.md states them, the tests hold the server to them ----

README = SERVER_PY.with_name("README.md")


def reference_models() -> dict[str, type[BaseModel]]:
    """Run the README's python block and return the models it defines, by resource."""
    (block,) = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)
    namespace: dict[str, Any] = {"__name__": "crm_readme_models"}
    exec(compile(block, str(README), "exec", dont_inherit=True), namespace)
    return {
        "contacts": namespace["Contact"],
        "companies": namespace["Company"],
        "opportunities": namespace["Opportunity"],
    }


MODELS = reference_models()


def invalid_positions(resource: str, records: list[dict[str, Any]]) -> list[int]:
    """The positions of the records the reference model rejects."""
    rejected = []
    for position, record in enumerate(records):
        try:
            MODELS[resource].model_validate(record)
        except ValidationError:
            rejected.append(position)
    return rejected


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture
def crm() -> Iterator[Any]:
    with CRMServer(seed=7, records=60) as running:
        yield running


@pytest.fixture
def client(crm: Any) -> Iterator[httpx.Client]:
    with api(crm) as c:
        yield c


@pytest.fixture(scope="module")
def shared_crm() -> Iterator[Any]:
    """A read-only server shared by the property tests (nothing may write to it)."""
    with CRMServer(seed=11, records={"contacts": 57, "companies": 43, "opportunities": 41}) as c:
        yield c


@pytest.fixture(scope="module")
def shared_client(shared_crm: Any) -> Iterator[httpx.Client]:
    with api(shared_crm) as c:
        yield c


# -- OAuth2 client credentials --------------------------------------------------------


@pytest.mark.parametrize("basic", [True, False], ids=["basic-auth", "body-auth"])
def test_a_token_from_either_client_authentication_opens_the_api(crm: Any, basic: bool) -> None:
    """HTTP Basic and form-field client authentication both yield a working bearer token."""
    response = request(
        "POST",
        crm.token_url,
        data={"grant_type": "client_credentials"}
        | ({} if basic else {"client_id": crm.client_id, "client_secret": crm.client_secret}),
        auth=(crm.client_id, crm.client_secret) if basic else None,
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert request("GET", f"{crm.base_url}/contacts/c-000001", headers=headers).status_code == 200
    assert crm.tokens_issued == 1


@pytest.mark.parametrize("basic", [True, False], ids=["basic-auth", "body-auth"])
def test_a_wrong_secret_gets_401_without_echoing_it(crm: Any, basic: bool) -> None:
    """A wrong client secret is refused with 401 invalid_client; the reply never repeats it."""
    wrong = "not-the-secret-1234"
    fields = {} if basic else {"client_id": crm.client_id, "client_secret": wrong}
    response = request(
        "POST",
        crm.token_url,
        data={"grant_type": "client_credentials"} | fields,
        auth=(crm.client_id, wrong) if basic else None,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert wrong not in response.text
    assert crm.client_secret not in response.text
    assert crm.tokens_issued == 0


def test_token_requests_are_checked_like_a_real_authorization_server(crm: Any) -> None:
    """Wrong grant type, missing grant type, two auth methods and a JSON body are 400s."""
    auth = (crm.client_id, crm.client_secret)
    cases = [
        ({"grant_type": "password"}, auth, "unsupported_grant_type"),
        ({}, auth, "invalid_request"),
        ({"grant_type": "client_credentials", "client_secret": crm.client_secret}, auth, None),
    ]
    for data, basic, error in cases:
        response = request("POST", crm.token_url, data=data, auth=basic)
        assert response.status_code == 400
        assert response.json()["error"] == (error or "invalid_request")
    as_json = request("POST", crm.token_url, json={"grant_type": "client_credentials"}, auth=auth)
    assert as_json.status_code == 400
    assert request("GET", crm.token_url).status_code == 405


def test_a_token_expires_after_its_ttl_on_the_injected_clock() -> None:
    """With a FakeClock, a token works until ``token_ttl`` has passed, then gets 401."""
    clock = FakeClock()
    with CRMServer(records=5, token_ttl=timedelta(seconds=60), clock=clock) as crm:
        token = fetch_token(crm)
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{crm.base_url}/contacts"
        clock.advance(timedelta(seconds=59))
        assert request("GET", url, headers=headers).status_code == 200
        clock.advance(timedelta(seconds=1))
        expired = request("GET", url, headers=headers)
        assert expired.status_code == 401
        assert expired.json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in expired.headers["www-authenticate"]
        fresh = {"Authorization": f"Bearer {fetch_token(crm)}"}
        assert request("GET", url, headers=fresh).status_code == 200


def test_a_fractional_ttl_is_reported_as_is() -> None:
    """``expires_in`` is the exact ``token_ttl``, so a client can refresh before expiry."""
    with CRMServer(records=1, token_ttl=0.5) as crm:
        response = request(
            "POST",
            crm.token_url,
            data={"grant_type": "client_credentials"},
            auth=(crm.client_id, crm.client_secret),
        )
        assert response.json()["expires_in"] == 0.5


def test_expire_tokens_makes_the_next_call_401(crm: Any, client: httpx.Client) -> None:
    """``expire_tokens()`` invalidates every issued token at once."""
    assert client.get("/contacts").status_code == 200
    crm.expire_tokens()
    assert client.get("/contacts").status_code == 401
    client.headers["Authorization"] = f"Bearer {fetch_token(crm)}"
    assert client.get("/contacts").status_code == 200


def test_a_scripted_401_looks_like_an_expired_token(crm: Any, client: httpx.Client) -> None:
    """``fail_next(401)`` answers like a real expiry, then the same token works again."""
    crm.fail_next(401)
    refused = client.get("/contacts")
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert client.get("/contacts").status_code == 200


def test_the_api_needs_a_bearer_token(crm: Any) -> None:
    """No token or an unknown one: 401 with a Bearer challenge."""
    missing = request("GET", f"{crm.base_url}/contacts")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    unknown = request("GET", f"{crm.base_url}/contacts", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401


# -- pagination ------------------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
def test_paging_returns_every_record_once_in_order(crm: Any, resource: str) -> None:
    """Each resource's pagination style yields exactly the records the server holds."""
    with api(crm) as client:
        records = page_all(client, resource, size=7)
    assert records == [crm.record(resource, i) for i in range(crm.count(resource))]


@settings(max_examples=30)
@given(resource=st.sampled_from(RESOURCES), size=st.integers(1, 60))
def test_any_page_size_covers_every_record_exactly_once(
    shared_crm: Any, shared_client: httpx.Client, resource: str, size: int
) -> None:
    """Whatever the page size, paging concatenates to the full list, nothing twice."""
    records = page_all(shared_client, resource, size)
    assert records == [shared_crm.record(resource, i) for i in range(shared_crm.count(resource))]


def test_companies_page_by_link_header(crm: Any, client: httpx.Client) -> None:
    """Companies: a bare JSON array, ``rel="next"`` until the last page, which has none."""
    first = client.get("/companies", params={"per_page": 25})
    assert isinstance(first.json(), list)
    assert first.links["next"]["url"] == f"{crm.base_url}/companies?per_page=25&page=2"
    assert first.links["last"]["url"].endswith("page=3")
    last = client.get(first.links["last"]["url"])
    assert len(last.json()) == 10
    assert "next" not in last.links


def test_opportunities_page_by_offset_and_report_the_total(client: httpx.Client) -> None:
    """Opportunities: ``{"data", "total", "offset", "limit"}``; past the end is empty."""
    body = client.get("/opportunities", params={"offset": 50, "limit": 20}).json()
    assert (body["total"], body["offset"], body["limit"], len(body["data"])) == (60, 50, 20, 10)
    past = client.get("/opportunities", params={"offset": 60}).json()
    assert past["data"] == []


@pytest.mark.parametrize(
    "target",
    [
        "/contacts?limit=0",
        "/contacts?limit=1001",
        "/contacts?cursor=bm9wZQ",
        "/companies?per_page=ten",
        "/opportunities?offset=-1",
    ],
)
def test_bad_paging_parameters_are_400(client: httpx.Client, target: str) -> None:
    """Limits outside 1..1000, a negative offset and a forged cursor are refused."""
    response = client.get(target)
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_request", "invalid_cursor"}


def test_unknown_routes_and_methods(client: httpx.Client, crm: Any) -> None:
    """Unknown paths and ids are 404; a write on a collection is 405."""
    assert client.get("/invoices").status_code == 404
    assert client.get("/contacts/c-999999").status_code == 404
    assert client.get("/contacts/co-000001").status_code == 404
    assert client.get("/contacts/c-1").status_code == 404  # one spelling per record
    assert request("GET", f"{crm.origin}/").status_code == 404
    refused = client.post("/contacts", json={})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET"
    assert client.delete("/contacts/c-000001").status_code == 405


# -- ETags and If-Match -----------------------------------------------------------------


def test_patch_requires_the_current_etag(crm: Any, client: httpx.Client) -> None:
    """No If-Match is 428, a stale one 412 (nothing applied); the current one applies."""
    got = client.get("/contacts/c-000002")
    etag = got.headers["etag"]
    assert etag == crm.etag("contacts", "c-000002")
    patch = {"title": "VP Sales"}
    assert client.patch("/contacts/c-000002", json=patch).status_code == 428
    stale = client.patch("/contacts/c-000002", json=patch, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    assert crm.writes_applied == 0

    done = client.patch("/contacts/c-000002", json=patch, headers={"If-Match": etag})
    assert done.status_code == 200
    assert done.json()["title"] == "VP Sales"
    assert done.json()["version"] == got.json()["version"] + 1
    assert done.headers["etag"] != etag
    assert client.get("/contacts/c-000002").json() == done.json()
    again = client.patch("/contacts/c-000002", json=patch, headers={"If-Match": etag})
    assert again.status_code == 412
    assert crm.writes_applied == 1


def test_concurrent_patches_with_one_etag_apply_once(crm: Any) -> None:
    """Eight clients racing with the same ETag: one PATCH applies, seven get 412."""
    etag = crm.etag("contacts", 9)

    def attempt(n: int) -> int:
        with api(crm) as client:
            body = {"title": f"racer {n}"}
            return client.patch(
                "/contacts/c-000010", json=body, headers={"If-Match": etag}
            ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [200] + [412] * 7
    assert crm.writes_applied == 1
    assert crm.record("contacts", 9)["version"] == 2


def test_patch_is_a_json_merge_patch(crm: Any, client: httpx.Client) -> None:
    """``null`` removes a field, objects merge, unknown fields survive; ``*`` matches any."""
    before = crm.record("companies", 0)
    response = client.patch(
        "/companies/co-000001",
        json={"domain": None, "custom_fields": {"tier": "platinum"}},
        headers={"If-Match": "*", "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200
    after = response.json()
    assert "domain" not in after
    assert after["custom_fields"]["tier"] == "platinum"
    assert after["name"] == before["name"]


def test_patch_refuses_bad_bodies(client: httpx.Client) -> None:
    """Read-only fields, non-objects, non-JSON and other media types are refused."""
    etag = {"If-Match": "*"}
    assert client.patch("/contacts/c-000001", json={"id": "x"}, headers=etag).status_code == 400
    assert client.patch("/contacts/c-000001", json=[1], headers=etag).status_code == 400
    bad = {**etag, "Content-Type": "application/json"}
    assert client.patch("/contacts/c-000001", content=b"{", headers=bad).status_code == 400
    xml = {**etag, "Content-Type": "application/xml"}
    assert client.patch("/contacts/c-000001", content=b"<a/>", headers=xml).status_code == 415


def test_if_none_match_gives_304(client: httpx.Client) -> None:
    """A GET with the current ETag in If-None-Match is answered 304 with no body."""
    etag = client.get("/opportunities/opp-000003").headers["etag"]
    response = client.get("/opportunities/opp-000003", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""


# -- idempotency keys ---------------------------------------------------------------------


def test_a_repeated_idempotency_key_replays_without_applying_twice(
    crm: Any, client: httpx.Client
) -> None:
    """The same key and body return the stored response; the change is applied once."""
    etag = client.get("/opportunities/opp-000001").headers["etag"]
    headers = {"If-Match": etag, "Idempotency-Key": "key-1"}
    first = client.patch("/opportunities/opp-000001", json={"stage": "closed_won"}, headers=headers)
    second = client.patch(
        "/opportunities/opp-000001", json={"stage": "closed_won"}, headers=headers
    )
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["idempotent-replayed"] == "true"
    assert crm.applied_by_key == {"key-1": 1}
    assert crm.writes_applied == 1
    assert crm.record("opportunities", 0)["version"] == 2


def test_an_idempotency_key_reused_for_another_body_is_422(crm: Any, client: httpx.Client) -> None:
    """A key is bound to its first request: a different body under it is refused."""
    headers = {"If-Match": "*", "Idempotency-Key": "key-2"}
    assert client.patch("/contacts/c-000003", json={"title": "A"}, headers=headers).is_success
    reused = client.patch("/contacts/c-000003", json={"title": "B"}, headers=headers)
    assert reused.status_code == 422
    assert crm.record("contacts", 2)["title"] == "A"
    assert crm.applied_by_key == {"key-2": 1}


def test_a_failed_patch_does_not_consume_its_idempotency_key(
    crm: Any, client: httpx.Client
) -> None:
    """A 412 is not stored: retrying the key with the right ETag applies the change."""
    headers = {"If-Match": '"stale"', "Idempotency-Key": "key-3"}
    assert (
        client.patch("/contacts/c-000004", json={"title": "X"}, headers=headers).status_code == 412
    )
    headers["If-Match"] = crm.etag("contacts", 3)
    assert client.patch("/contacts/c-000004", json={"title": "X"}, headers=headers).is_success
    assert crm.applied_by_key == {"key-3": 1}


# -- faults ---------------------------------------------------------------------------------


def test_scripted_503s_then_success(crm: Any, client: httpx.Client) -> None:
    """``fail_next(503, times=2)``: exactly the next two API requests fail, then all is well."""
    crm.clear_requests()
    crm.fail_next(503, times=2)
    statuses = [client.get("/contacts/c-000001").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [r.status for r in crm.requests] == [503, 503, 200]


def test_a_scripted_429_carries_retry_after(crm: Any, client: httpx.Client) -> None:
    """A 429 always says when to retry; the server default is 0 seconds."""
    crm.fail_next(429)
    crm.fail_next(429, retry_after=2)
    first, second = client.get("/contacts"), client.get("/contacts")
    assert (first.status_code, first.headers["retry-after"]) == (429, "0")
    assert (second.status_code, second.headers["retry-after"]) == (429, "2")
    assert first.json()["error"] == "too_many_requests"


def test_scripted_faults_skip_the_token_endpoint_unless_aimed_at_it(crm: Any) -> None:
    """A default scripted fault waits for an API call; ``path=`` can aim at the token URL."""
    crm.fail_next(503)
    token = fetch_token(crm)  # not eaten by the token request
    bearer = {"Authorization": f"Bearer {token}"}
    assert request("GET", crm.base_url + "/contacts", headers=bearer).status_code == 503
    crm.clear_script()
    crm.fail_next(503, path="/oauth/token")
    refused = request("POST", crm.token_url, data={"grant_type": "client_credentials"})
    assert refused.status_code == 503
    assert fetch_token(crm)


def test_scripted_faults_can_target_a_method(crm: Any, client: httpx.Client) -> None:
    """``method="PATCH"`` lets reads through and fails the write, which is not applied."""
    crm.fail_next(503, method="PATCH")
    etag = client.get("/contacts/c-000005").headers["etag"]
    failed = client.patch("/contacts/c-000005", json={"title": "X"}, headers={"If-Match": etag})
    assert failed.status_code == 503
    assert crm.writes_applied == 0
    assert crm.etag("contacts", 4) == etag
    retried = client.patch("/contacts/c-000005", json={"title": "X"}, headers={"If-Match": etag})
    assert retried.status_code == 200
    assert crm.writes_applied == 1


def test_a_fully_custom_scripted_response(crm: Any, client: httpx.Client) -> None:
    """``script(ScriptedResponse(...))`` serves any status, headers and body."""
    crm.script(server.ScriptedResponse(502, headers={"X-Upstream": "down"}, body={"oops": 1}))
    response = client.get("/companies")
    assert (response.status_code, response.headers["x-upstream"]) == (502, "down")
    assert response.json() == {"oops": 1}


def statuses_under_faults(seed: int) -> list[int]:
    """The statuses 60 sequential reads get from a server with ``fault_rate=0.3``."""
    with CRMServer(seed=seed, records=5, fault_rate=0.3) as crm, api(crm) as client:
        return [client.get("/contacts/c-000001").status_code for _ in range(60)]


def test_random_faults_are_seeded_and_never_apply_a_write() -> None:
    """``fault_rate`` faults repeat with the seed, mix 429 and 503, and fail writes cleanly."""
    statuses = statuses_under_faults(3)
    assert statuses == statuses_under_faults(3)
    assert statuses != statuses_under_faults(4)
    assert {429, 503, 200} == set(statuses)
    assert 5 <= statuses.count(200) <= 55
    with CRMServer(seed=3, records=5, fault_rate=0.5) as crm, api(crm) as client:
        outcomes = [
            client.patch("/contacts/c-000001", json={"title": "T"}, headers={"If-Match": "*"})
            for _ in range(20)
        ]
        applied = [r for r in outcomes if r.status_code == 200]
        assert 0 < len(applied) < 20
        assert crm.writes_applied == len(applied)
        assert crm.record("contacts", 0)["version"] == 1 + len(applied)
        for refused in outcomes:
            if refused.status_code == 429:
                assert refused.headers["retry-after"] == "0"


# -- messy data ------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
def test_the_malformed_records_are_exactly_those_the_helpers_name(crm: Any, resource: str) -> None:
    """A sound model rejects exactly ``malformed_indices()``; the rest count as valid."""
    with api(crm) as client:
        records = page_all(client, resource, size=25)
    assert invalid_positions(resource, records) == crm.malformed_indices(resource)
    assert len(records) - len(crm.malformed_indices(resource)) == crm.expected_valid_count(resource)
    assert crm.expected_valid_count(resource) == 57  # 60 records, one bad in each 20
    assert {m.id for m in crm.malformed(resource)} == crm.malformed_ids(resource)


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32), records=st.integers(0, 250))
def test_exactly_one_record_in_twenty_is_malformed(seed: int, records: int) -> None:
    """Each full block of 20 holds one malformed record, at a position the seed picks."""
    crm = CRMServer(seed=seed, records=records)  # never started: the data needs no socket
    for resource in RESOURCES:
        indices = crm.malformed_indices(resource)
        blocks = [i // 20 for i in indices]
        assert blocks == sorted(set(blocks))
        assert set(range(records // 20)) <= set(blocks)
        assert crm.expected_valid_count(resource) == records - len(indices)
        for malformed in crm.malformed(resource):
            record = crm.record(resource, malformed.index)
            assert server.malformation(resource, record) == malformed.reason
            assert malformed.reason in {"missing_id", server._SECOND_REASON[resource]}
            assert ("id" not in record) == (malformed.reason == "missing_id")


def test_the_data_is_messy_in_every_promised_way() -> None:
    """Nulls, unknown fields, numbers as strings and strings as numbers all occur."""
    crm = CRMServer(seed=5, records=400)
    contacts = [crm.record("contacts", i) for i in range(400)]
    companies = [crm.record("companies", i) for i in range(400)]
    opportunities = [crm.record("opportunities", i) for i in range(400)]
    assert any(isinstance(c["phone"], int) for c in contacts)
    assert any(c["phone"] is None for c in contacts)
    assert any(isinstance(c.get("email"), str) and c["email"].startswith(" ") for c in contacts)
    assert any("x_legacy_id" in c for c in contacts)
    assert any("custom_fields" in c for c in companies)
    assert any(isinstance(c["employees"], str) for c in companies)
    assert any("," in o["amount"] for o in opportunities if isinstance(o["amount"], str))
    assert any(o["updated_at"] is None for o in opportunities)
    assert any(isinstance(o["discount_pct"], str) for o in opportunities)
    reasons = {m.reason for r in RESOURCES for m in crm.malformed(r)}
    assert reasons == {"missing_id", "email_not_string", "name_not_string", "amount_not_number"}


def test_the_same_seed_serves_the_same_data() -> None:
    """Records are a pure function of seed and index; another seed gives other data."""
    a, b, c = (CRMServer(seed=s, records=50) for s in (1, 1, 2))
    for resource in RESOURCES:
        assert [a.record(resource, i) for i in range(50)] == [
            b.record(resource, i) for i in range(50)
        ]
        assert a.malformed(resource) == b.malformed(resource)
    assert [a.record("contacts", i) for i in range(50)] != [
        c.record("contacts", i) for i in range(50)
    ]


def test_patching_a_malformed_record_valid_updates_the_helpers(
    crm: Any, client: httpx.Client
) -> None:
    """The helpers follow writes: fixing a record's bad field makes it count as valid."""
    broken = next(m for m in crm.malformed("contacts") if m.reason == "email_not_string")
    before = crm.expected_valid_count("contacts")
    response = client.patch(
        f"/contacts/{broken.id}", json={"email": "fixed@example.com"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 200
    assert crm.expected_valid_count("contacts") == before + 1
    assert broken.index not in crm.malformed_indices("contacts")
    client.patch(f"/contacts/{broken.id}", json={"email": 5}, headers={"If-Match": "*"})
    again = next(m for m in crm.malformed("contacts") if m.index == broken.index)
    assert again.reason == "email_not_string"
    assert crm.expected_valid_count("contacts") == before


def test_a_malformed_record_without_id_is_still_addressable(crm: Any, client: httpx.Client) -> None:
    """A record served without ``id`` is fetched by the id the helpers report."""
    missing = next(m for m in crm.malformed("companies") if m.reason == "missing_id")
    response = client.get(f"/companies/{missing.id}")
    assert response.status_code == 200
    assert "id" not in response.json()


# -- observability and secrets ---------------------------------------------------------------


def test_the_request_log_keeps_no_secret(crm: Any) -> None:
    """Requests are logged without Authorization and with the form's secret redacted."""
    fetch_token(crm, basic=False)
    with api(crm) as client:
        client.patch(
            "/contacts/c-000001",
            json={"title": "CFO"},
            headers={"If-Match": "*", "Idempotency-Key": "k"},
        )
    log = crm.requests
    assert [(r.method, r.path.split("?")[0], r.status) for r in log] == [
        ("POST", "/oauth/token", 200),
        ("POST", "/oauth/token", 200),
        ("PATCH", "/v1/contacts/c-000001", 200),
    ]
    assert b"client_secret=[redacted]" in log[0].body
    assert log[2].headers["idempotency-key"] == "k"
    assert json.loads(log[2].body) == {"title": "CFO"}  # httpx's spacing varies by version
    for entry in log:
        assert "authorization" not in entry.headers
        assert crm.client_secret not in repr(entry)
    assert crm.client_secret not in repr(crm)


def test_record_requests_false_keeps_no_log() -> None:
    """Benchmarks turn the log off so a long run does not grow it."""
    with CRMServer(records=3, record_requests=False) as crm, api(crm) as client:
        client.get("/contacts")
        assert crm.requests == []


def test_closing_drops_keep_alive_connections(crm: Any) -> None:
    """After the ``with`` block, even an idle keep-alive connection is gone."""
    with api(crm) as client:
        assert client.get("/contacts").status_code == 200
        crm.close()
        with pytest.raises(httpx.TransportError):
            client.get("/contacts")
        crm.close()  # closing twice is harmless


def test_a_server_is_started_once_at_a_time() -> None:
    """Starting a running server is refused; a restart comes back on the same port."""
    crm = CRMServer(records=1)
    with pytest.raises(RuntimeError, match="no port yet"):
        crm.base_url  # noqa: B018
    with crm, pytest.raises(RuntimeError, match="already running"):
        crm.start()
    url = crm.base_url
    with pytest.raises(httpx.ConnectError):
        request("GET", f"{url}/contacts")
    with crm, api(crm) as client:
        assert crm.base_url == url
        assert client.get("/contacts").status_code == 200


@pytest.mark.parametrize(
    "kwargs",
    [{"fault_rate": 1.5}, {"token_ttl": 0}, {"records": {"invoices": 3}}, {"records": -1}],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    """Out-of-range arguments raise ValueError before anything starts."""
    with pytest.raises(ValueError, match=r"must|unknown"):
        CRMServer(**kwargs)


# -- scale and the command line ------------------------------------------------------------


def test_a_hundred_thousand_records_page_quickly() -> None:
    """100,000 contacts in pages of 500 take well under 10 s (records are built per page)."""
    with CRMServer(seed=2, records=100_000, record_requests=False) as crm, api(crm) as client:
        started = time.perf_counter()
        records = page_all(client, "contacts", size=500)
        elapsed = time.perf_counter() - started
    assert len(records) == 100_000
    assert sum("id" not in r for r in records) == sum(
        m.reason == "missing_id" for m in crm.malformed("contacts")
    )
    assert elapsed < 10, f"{elapsed:.1f} s"


def test_the_command_line_serves_until_interrupted() -> None:
    """``python examples/crm/server.py --port 0`` prints its URL, serves, stops on Ctrl-C."""
    secret = "cli-secret-5678"
    env = {**os.environ, "CRM_CLIENT_SECRET": secret, "CRM_CLIENT_ID": "cli"}
    process = subprocess.Popen(
        [sys.executable, str(SERVER_PY), "--port", "0", "--records", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline() + process.stdout.readline()
        base_url = banner.split()[2]
        token = request(
            "POST",
            base_url.removesuffix("/v1") + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("cli", secret),
        ).json()["access_token"]
        response = request(
            "GET", f"{base_url}/contacts", headers={"Authorization": f"Bearer {token}"}
        )
        assert len(response.json()["data"]) == 5
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert secret not in banner + out + err
    assert "client secret from CRM_CLIENT_SECRET" in banner
