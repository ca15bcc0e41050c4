"""Connector operations under the guard: keys that never merge two writes, real attempts, and
list reads audited once, when their iteration is over (a real billing API on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from handrail import ConfigurationError, PermissionDenied, Policy, Principal, acting_as
from handrail.audit import AuditLog, AuditRecord
from handrail.connectors import (
    BaseConnector,
    HTTPConnector,
    InvalidInput,
    MemoryQuarantine,
    RateLimits,
    operation,
)
from handrail.guard import Guard
from handrail.resilience import RetryPolicy
from handrail.testing import FakeClock, no_waits

# The audit record's `details` (pages, records, quarantined, abandoned) come with the core's
# AuditEntry; until then these tests must fail, and then they must pass.
needs_details = pytest.mark.xfail(
    "details" not in AuditRecord.model_fields,
    reason="needs details: the audit record's details field",
    strict=True,
)

# -- a billing API that honours Idempotency-Key, as Stripe's does -------------------------------


@dataclass
class Billing:
    """Refunds per invoice.  A repeated Idempotency-Key gets the first answer, applied once."""

    refunds: list[dict[str, Any]] = field(default_factory=list)
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: list[str | None] = field(default_factory=list)  # the key of each POST received
    gets: list[str] = field(default_factory=list)  # the cursor of each list page asked for
    lose_responses: int = 0  # apply the refund, then answer 503 (the answer is lost)
    failing_cursor: str | None = None  # this page answers 500
    listed: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, target: str, key: str | None, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        path = parts.path.strip("/").split("/")
        if method == "POST" and len(path) == 3 and path[0] == "invoices":
            return self._refund(path[1], key, json.loads(body))
        if method == "GET" and len(path) == 3 and path[0] == "invoices":
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            return self._page(query.get("cursor", "0"), int(query.get("limit", "2")))
        return 404, {"error": "no such route"}

    def _refund(self, invoice: str, key: str | None, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            self.posts.append(key)
            if key is not None and key in self.by_key:
                return 200, self.by_key[key]  # a retry: the first answer, nothing applied
            refund = {"id": f"re_{len(self.refunds) + 1}", "invoice": invoice, **body}
            self.refunds.append(refund)
            if key is not None:
                self.by_key[key] = refund
            if self.lose_responses:
                self.lose_responses -= 1
                return 503, {"error": "upstream timeout"}
            return 201, refund

    def _page(self, cursor: str, limit: int) -> tuple[int, Any]:
        with self.lock:
            self.gets.append(cursor)
        if cursor == self.failing_cursor:
            return 500, {"error": "boom"}
        start = int(cursor)
        following = str(start + limit) if start + limit < len(self.listed) else None
        return 200, {"items": self.listed[start : start + limit], "next_cursor": following}


@pytest.fixture
def billing() -> Iterator[tuple[Billing, str]]:
    """The billing API on 127.0.0.1 (its state, its URL), stopped after the test."""
    state = Billing(
        listed=[
            {"id": "re_a", "invoice": "inv-9", "amount": "5.00"},
            {"id": "re_b", "invoice": "inv-9", "amount": "lots"},  # invalid: quarantined
            {"id": "re_c", "invoice": "inv-9", "amount": "7.50"},
            {"id": "re_d", "invoice": "inv-9", "amount": "1.00"},
            {"id": "re_e", "invoice": "inv-9", "amount": "2.00"},
        ]
    )

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = state.answer(
                self.command, self.path, self.headers.get("Idempotency-Key"), body
            )
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield state, f"http://{host!s}:{port}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    with no_waits():
        yield


# -- the connector ------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Refund(BaseModel):
    model_config = _STRICT
    invoice: str
    amount: Decimal


class KeyedRefund(BaseModel):
    model_config = _STRICT
    invoice: str
    amount: Decimal
    request_id: str | None = None


class InvoiceRef(BaseModel):
    model_config = _STRICT
    invoice: str


class Receipt(BaseModel):
    id: str
    invoice: str
    amount: Decimal


def _invoice(invoice: str, **_: object) -> dict[str, str]:
    return {"type": "invoice", "id": invoice}


class BillingConnector(HTTPConnector):
    name = "billing"

    @operation("billing.refund.create", kind="write", resource=_invoice)
    def refund(self, params: Refund) -> Receipt:
        """Refund part of an invoice."""
        body = {"amount": str(params.amount)}
        return self.send("POST", f"/invoices/{params.invoice}/refunds", json=body).json()  # type: ignore[no-any-return]

    @operation(
        "billing.refund.create_keyed",
        kind="write",
        permission="billing.refund.create",
        resource=_invoice,
        idempotency_key="request_id",
    )
    def refund_keyed(self, params: KeyedRefund) -> Receipt:
        """Refund part of an invoice, under the caller's request id when it gives one."""
        body = {"amount": str(params.amount)}
        return self.send("POST", f"/invoices/{params.invoice}/refunds", json=body).json()  # type: ignore[no-any-return]

    @operation("billing.refund.list", permission="billing.refund.read")
    def refunds(self, params: InvoiceRef) -> Iterator[Receipt]:
        """Every refund of an invoice, two per page."""
        return self.paginate_cursor(f"/invoices/{params.invoice}/refunds", params={"limit": 2})


class AsyncBillingConnector(HTTPConnector):
    name = "billing"

    @operation("billing.refund.create", kind="write", resource=_invoice)
    async def refund(self, params: Refund) -> Receipt:
        body = {"amount": str(params.amount)}
        response = await self.asend("POST", f"/invoices/{params.invoice}/refunds", json=body)
        return response.json()  # type: ignore[no-any-return]

    @operation("billing.refund.list", permission="billing.refund.read")
    async def refunds(self, params: InvoiceRef) -> AsyncIterator[Receipt]:
        pages = self.apaginate_cursor(f"/invoices/{params.invoice}/refunds", params={"limit": 2})
        async for record in pages:
            yield record


POLICY = Policy.from_yaml(
    """
rules:
  - {id: billing, effect: allow, actions: ["billing.refund.*"]}
"""
)
CLERK = Principal(agent="billing-clerk")


def connect(url: str, log: AuditLog, **kwargs: Any) -> BillingConnector:
    kwargs.setdefault("quarantine", MemoryQuarantine())
    return BillingConnector(
        url, policy=POLICY, audit=log, rate_limit=RateLimits(clock=FakeClock()), **kwargs
    )


def aconnect(url: str, log: AuditLog, **kwargs: Any) -> AsyncBillingConnector:
    kwargs.setdefault("quarantine", MemoryQuarantine())
    return AsyncBillingConnector(
        url, policy=POLICY, audit=log, rate_limit=RateLimits(clock=FakeClock()), **kwargs
    )


def records(log: AuditLog) -> list[AuditRecord]:
    return list(log.records())


# -- idempotency keys ---------------------------------------------------------------------------


def test_two_intended_refunds_of_the_same_amount_are_two_refunds(
    billing: tuple[Billing, str],
) -> None:
    """The same arguments twice are two writes: two keys, two refunds, two ids."""
    state, url = billing
    log = AuditLog.memory()
    connector = connect(url, log)
    with acting_as(CLERK):
        first = connector.refund(invoice="inv-1", amount="25.00")
        second = connector.refund(invoice="inv-1", amount="25.00")
    assert first.id != second.id
    assert len(state.refunds) == 2
    assert len(state.posts) == 2
    assert len(set(state.posts)) == 2
    keys = [r.idempotency_key for r in records(log)]
    assert keys == state.posts  # each record names the key its write was sent with


def test_a_refund_whose_answer_was_lost_is_retried_under_its_key_and_applied_once(
    billing: tuple[Billing, str],
) -> None:
    """A 503 after the write: the retry carries the same key, the API applies it once, and
    the record counts the two POSTs that reached the server."""
    state, url = billing
    state.lose_responses = 1
    log = AuditLog.memory()
    connector = connect(url, log)
    with acting_as(CLERK):
        receipt = connector.refund(invoice="inv-2", amount="40.00")
    assert len(state.posts) == 2
    assert state.posts[0] is not None
    assert state.posts[0] == state.posts[1]
    assert len(state.refunds) == 1
    assert receipt.id == state.refunds[0]["id"]
    [record] = records(log)
    assert (record.outcome, record.attempts) == ("executed", 2)
    assert record.idempotency_key == state.posts[0]


def test_an_async_write_retried_after_a_503_is_audited_with_both_attempts(
    billing: tuple[Billing, str],
) -> None:
    """The async path counts the real attempts too."""
    state, url = billing
    state.lose_responses = 1
    log = AuditLog.memory()

    async def main() -> Receipt:
        async with aconnect(url, log) as connector:
            with acting_as(CLERK):
                return await connector.refund(invoice="inv-3", amount="12.00")  # type: ignore[return-value]

    receipt = asyncio.run(main())
    assert len(state.posts) == 2
    assert len(set(state.posts)) == 1
    assert [r["id"] for r in state.refunds] == [receipt.id]
    [record] = records(log)
    assert (record.outcome, record.attempts) == ("executed", 2)


def test_the_callers_key_from_the_input_makes_a_repeated_call_one_write(
    billing: tuple[Billing, str],
) -> None:
    """idempotency_key='request_id': the same request id twice is one refund; None is fresh."""
    state, url = billing
    log = AuditLog.memory()
    connector = connect(url, log)
    with acting_as(CLERK):
        once = connector.refund_keyed(invoice="inv-4", amount="9.00", request_id="req-77")
        again = connector.refund_keyed(invoice="inv-4", amount="9.00", request_id="req-77")
        fresh = connector.refund_keyed(invoice="inv-4", amount="9.00")
    assert once.id == again.id != fresh.id
    assert state.posts[:2] == ["req-77", "req-77"]
    assert state.posts[2] not in (None, "req-77")
    assert len(state.refunds) == 2
    assert [r.idempotency_key for r in records(log)] == state.posts


def test_an_idempotency_key_field_must_be_an_input_field_of_a_write() -> None:
    """Named wrong, or on a read: a ConfigurationError before any call."""
    with pytest.raises(ConfigurationError, match="is for writes"):
        operation("billing.refund.list", idempotency_key="request_id")
    with pytest.raises(ConfigurationError, match="must name a field"):
        operation("billing.refund.create", kind="write", idempotency_key="not a field")

    class Misnamed(BaseConnector):
        name = "misnamed"

        @operation("billing.refund.create", kind="write", idempotency_key="request")
        def refund(self, params: KeyedRefund) -> Receipt:
            raise AssertionError("never called")

    with pytest.raises(ConfigurationError, match=r"'request' is not a field .*request_id"):
        Misnamed.operations()


def test_an_empty_idempotency_key_is_invalid_input(billing: tuple[Billing, str]) -> None:
    """An empty request id would merge every call that sends one: refused before anything runs."""
    state, url = billing
    log = AuditLog.memory()
    with acting_as(CLERK), pytest.raises(InvalidInput, match="request_id"):
        connect(url, log).refund_keyed(invoice="inv-5", amount="1.00", request_id="")
    assert state.posts == []
    assert records(log) == []


def test_a_call_without_a_principal_is_refused_and_audited(billing: tuple[Billing, str]) -> None:
    """No acting_as: denied like every front end, recorded, nothing sent."""
    state, url = billing
    log = AuditLog.memory()
    with pytest.raises(PermissionDenied, match="no principal"):
        connect(url, log).refund(invoice="inv-6", amount="3.00")
    assert state.posts == []
    [record] = records(log)
    assert (record.outcome, record.action) == ("denied", "billing.refund.create")


def test_the_guards_retry_policy_retries_each_request_and_never_the_operation(
    billing: tuple[Billing, str],
) -> None:
    """guard=Guard(retry=RetryPolicy(attempts=2)): a failing page is asked twice, not four times."""
    state, url = billing
    state.failing_cursor = "0"
    log = AuditLog.memory()
    guard = Guard(POLICY, audit=log, retry=RetryPolicy(attempts=2))
    connector = BillingConnector(url, guard=guard, rate_limit=RateLimits(clock=FakeClock()))
    assert connector.guard is guard
    with acting_as(CLERK), pytest.raises(httpx.HTTPStatusError):
        list(connector.refunds(invoice="inv-9"))
    assert state.gets == ["0", "0"]
    [record] = records(log)
    assert (record.outcome, record.attempts, record.error_type) == (
        "failed",
        2,
        "httpx.HTTPStatusError",
    )
    with pytest.raises(ConfigurationError, match="not both"):
        BillingConnector(url, guard=guard, retry=RetryPolicy())


# -- list reads: one record, when the iteration is over ----------------------------------------


def test_a_list_read_writes_no_record_before_it_is_iterated(billing: tuple[Billing, str]) -> None:
    """Calling a list read fetches nothing and records nothing."""
    state, url = billing
    log = AuditLog.memory()
    with acting_as(CLERK):
        listed = connect(url, log).refunds(invoice="inv-9")
    assert state.gets == []
    assert records(log) == []
    listed.close()


def _consumed(billing: tuple[Billing, str]) -> tuple[list[Receipt], AuditLog, Any]:
    _, url = billing
    log = AuditLog.memory()
    with acting_as(CLERK):
        listed = connect(url, log).refunds(invoice="inv-9")
        got = list(listed)
    return got, log, listed


def test_a_consumed_list_read_is_recorded_once_executed(billing: tuple[Billing, str]) -> None:
    """All three pages read: one executed record, its attempts the three requests."""
    got, log, listed = _consumed(billing)
    assert [r.id for r in got] == ["re_a", "re_c", "re_d", "re_e"]
    assert (listed.valid, listed.quarantined) == (4, 1)
    [record] = records(log)
    assert (record.action, record.outcome, record.attempts) == (
        "billing.refund.read",
        "executed",
        3,
    )


@needs_details
def test_a_consumed_list_read_records_pages_records_and_quarantined(
    billing: tuple[Billing, str],
) -> None:
    """The record's details: three pages, four records yielded, one quarantined."""
    _, log, _ = _consumed(billing)
    [record] = records(log)
    details = record.details  # type: ignore[attr-defined]  # needs details
    assert details["pages"] == 3
    assert details["records"] == 4
    assert details["quarantined"] == 1
    assert "abandoned" not in details


def _failing(billing: tuple[Billing, str]) -> tuple[list[str], AuditLog]:
    state, url = billing
    state.failing_cursor = "2"
    log = AuditLog.memory()
    got: list[str] = []
    with acting_as(CLERK):
        listed = connect(url, log).refunds(invoice="inv-9")
        got.append(next(listed).id)
        with pytest.raises(httpx.HTTPStatusError):
            next(listed)  # the invalid record is set aside, then page two fails
    return got, log


def test_a_list_read_failing_mid_way_is_recorded_once_failed(billing: tuple[Billing, str]) -> None:
    """Page two answers 500 after the first page was read: one failed record with the error."""
    got, log = _failing(billing)
    assert got == ["re_a"]
    [record] = records(log)
    assert (record.outcome, record.error_type) == ("failed", "httpx.HTTPStatusError")
    assert record.attempts == 1 + 3  # the first page, then three tries of the second


@needs_details
def test_a_list_read_failing_mid_way_records_the_pages_so_far(
    billing: tuple[Billing, str],
) -> None:
    """The failed record counts the one page fetched and the records it yielded."""
    _, log = _failing(billing)
    [record] = records(log)
    details = record.details  # type: ignore[attr-defined]  # needs details
    assert (details["pages"], details["records"], details["quarantined"]) == (1, 1, 1)


def test_a_closed_list_read_is_recorded_once_as_abandoned(billing: tuple[Billing, str]) -> None:
    """close() after the first record: no further page, one record."""
    state, url = billing
    log = AuditLog.memory()
    with acting_as(CLERK):
        listed = connect(url, log).refunds(invoice="inv-9")
        assert next(listed).id == "re_a"
        listed.close()
        listed.close()
    assert state.gets == ["0"]
    [record] = records(log)
    assert (record.outcome, record.attempts) == ("executed", 1)


def test_a_dropped_list_read_is_recorded_once_when_collected(billing: tuple[Billing, str]) -> None:
    """An unfinished read that is garbage-collected still gets its one record."""
    state, url = billing
    log = AuditLog.memory()
    with acting_as(CLERK):
        listed = connect(url, log).refunds(invoice="inv-9")
        next(listed)
        assert records(log) == []
        del listed
        gc.collect()
    assert state.gets == ["0"]
    assert [r.outcome for r in records(log)] == ["executed"]


@needs_details
def test_an_abandoned_list_read_is_marked_abandoned(billing: tuple[Billing, str]) -> None:
    """Closed or collected, the record says abandoned, with what was read so far."""
    _, url = billing
    log = AuditLog.memory()
    with acting_as(CLERK):
        closed = connect(url, log).refunds(invoice="inv-9")
        next(closed)
        closed.close()
        dropped = connect(url, log).refunds(invoice="inv-9")
        next(dropped)
        del dropped
        gc.collect()
    for record in records(log):
        details = record.details  # type: ignore[attr-defined]  # needs details
        assert details["abandoned"] is True
        assert (details["pages"], details["records"]) == (1, 1)


# -- async list reads ---------------------------------------------------------------------------


def _async_reads(billing: tuple[Billing, str]) -> tuple[dict[str, Any], AuditLog]:
    """Four async reads: untouched then consumed, failing mid-way, closed, dropped."""
    state, url = billing
    log = AuditLog.memory()
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with aconnect(url, log) as connector:
            with acting_as(CLERK):
                listed = await connector.refunds(invoice="inv-9")
                seen["before"] = (list(state.gets), len(records(log)))
                seen["consumed"] = [r.id for r in await listed.collect()]  # type: ignore[attr-defined]
                seen["counts"] = (listed.valid, listed.quarantined)  # type: ignore[attr-defined]

                state.failing_cursor = "2"
                failing = await connector.refunds(invoice="inv-9")
                with pytest.raises(httpx.HTTPStatusError):
                    async for _ in failing:  # type: ignore[attr-defined]
                        pass
                state.failing_cursor = None

                closed = await connector.refunds(invoice="inv-9")
                await anext(closed)  # type: ignore[call-overload]
                await closed.aclose()  # type: ignore[attr-defined]

                dropped = await connector.refunds(invoice="inv-9")
                await anext(dropped)  # type: ignore[call-overload]
                del dropped
                gc.collect()

    asyncio.run(main())
    return seen, log


def test_async_list_reads_are_recorded_once_when_their_iteration_is_over(
    billing: tuple[Billing, str],
) -> None:
    """Nothing before iteration; then executed, failed, abandoned and collected: one record each."""
    seen, log = _async_reads(billing)
    assert seen["before"] == ([], 0)
    assert seen["consumed"] == ["re_a", "re_c", "re_d", "re_e"]
    assert seen["counts"] == (4, 1)
    got = [(r.outcome, r.attempts, r.error_type) for r in records(log)]
    assert got == [
        ("executed", 3, None),
        ("failed", 4, "httpx.HTTPStatusError"),
        ("executed", 1, None),
        ("executed", 1, None),
    ]


@needs_details
def test_async_list_reads_record_their_counts(billing: tuple[Billing, str]) -> None:
    """The async records carry the same details as the sync ones."""
    _, log = _async_reads(billing)
    details = [r.details for r in records(log)]  # type: ignore[attr-defined]  # needs details
    assert [(d["pages"], d["records"], d.get("quarantined", 0)) for d in details] == [
        (3, 4, 1),
        (1, 1, 1),
        (1, 1, 0),
        (1, 1, 0),
    ]
    assert [d.get("abandoned", False) for d in details] == [False, False, True, True]
