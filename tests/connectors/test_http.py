"""HTTPConnector against a real HTTP server on 127.0.0.1: guard, retries, limits, pages, shadow."""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from handrail import Policy, Principal, acting_as
from handrail._errors import (
    CircuitOpen,
    ConfigurationError,
    ConnectorError,
    WriteNotRetried,
)
from handrail.audit import AuditLog
from handrail.connectors import CallableCredentials, MemoryQuarantine, operation, validate_records
from handrail.connectors._http import HTTPConnector
from handrail.connectors._ratelimit import RateLimits, TokenBucket
from handrail.guard import Guard
from handrail.policy import PermissionDenied
from handrail.resilience import CircuitBreakers, RetryPolicy
from handrail.shadow import ShadowIntercepted, ShadowResult, shadowing
from handrail.testing import FakeClock, capture_telemetry, no_waits

# -- a real, scripted HTTP server ----------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a body that is not JSON


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


Route = Callable[[Seen, "Server"], Reply]


class Server:
    """Answers from routes (method, first path segment); scripted faults go first."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.faults: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        host, port = self.httpd.server_address[:2]
        self.host = f"{host!s}:{port}"
        self.url = f"http://{self.host}"

    def route(self, method: str, segment: str, answer: Route) -> None:
        self.routes[(method, segment)] = answer

    def fail(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, whatever they ask."""
        self.faults.extend(replies)

    def requests(self, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if method is None or s.method == method]

    def _answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            if self.faults:
                return self.faults.popleft()
        segment = seen.path.strip("/").split("/")[0]
        route = self.routes.get((seen.method, segment))
        return route(seen, self) if route else Reply(404, {"error": "no route"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                body = json.loads(raw) if raw else None
                seen = Seen(self.command, parts.path, query, dict(self.headers), body)
                reply = server._answer(seen)
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                if reply.raw is not None:
                    payload = reply.raw
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if payload and reply.raw is None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


NOTES = {str(i): {"id": str(i), "title": f"note {i}"} for i in range(1, 6)}
PAGE = 2


def _get_note(seen: Seen, server: Server) -> Reply:
    note = NOTES.get(seen.path.rsplit("/", 1)[-1])
    return Reply(200, note, {"ETag": '"v1"'}) if note else Reply(404, {"error": "not found"})


def _list_notes(seen: Seen, server: Server) -> Reply:
    ids = sorted(NOTES)
    if seen.path.endswith("/by-offset"):
        offset, limit = int(seen.query["offset"]), int(seen.query["limit"])
        return Reply(200, {"items": [NOTES[i] for i in ids[offset : offset + limit]]})
    if seen.path.endswith("/by-link"):
        page = int(seen.query.get("page", "0"))
        chunk = ids[page * PAGE : (page + 1) * PAGE]
        headers = {}
        if (page + 1) * PAGE < len(ids):
            headers["Link"] = f'</notes/by-link?page={page + 1}>; rel="next"'
        return Reply(200, [NOTES[i] for i in chunk], headers)
    start = int(seen.query.get("cursor", "0"))
    chunk = ids[start : start + PAGE]
    following = str(start + PAGE) if start + PAGE < len(ids) else None
    return Reply(200, {"items": [NOTES[i] for i in chunk], "next_cursor": following})


def _update_note(seen: Seen, server: Server) -> Reply:
    note_id = seen.path.rsplit("/", 1)[-1]
    return Reply(200, {**NOTES[note_id], **(seen.body or {})})


@pytest.fixture
def server() -> Iterator[Server]:
    """A note-taking API on 127.0.0.1, stopped after the test."""
    running = Server()
    running.route("GET", "notes", _list_or_get)
    running.route("PATCH", "notes", _update_note)
    running.route("POST", "notes", _update_note)
    thread = threading.Thread(target=running.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()
    thread.join(timeout=5)


def _list_or_get(seen: Seen, server: Server) -> Reply:
    parts = seen.path.strip("/").split("/")
    if len(parts) == 2 and parts[1] not in ("by-offset", "by-link"):
        return _get_note(seen, server)
    return _list_notes(seen, server)


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    """Retries and rate limits report their waits here, never sleep them."""
    with no_waits():
        yield


# -- the example connector ------------------------------------------------------------------


class NoteRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str


class Note(BaseModel):
    id: str
    title: str


class NotePatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    title: str


class Notes(HTTPConnector):
    """A note-taking API: the few dozen lines a connector author writes."""

    name = "notes"

    @operation("notes.note.get")
    def get(self, params: NoteRef) -> Note:
        """Read one note."""
        return self.get_json(f"/notes/{params.id}")  # type: ignore[no-any-return]

    @operation("notes.note.list")
    def list(self) -> Iterator[Note]:
        """Every note, page by page."""
        return self.paginate_cursor("/notes")

    @operation("notes.note.update", kind="write")
    def update(self, params: NotePatch) -> Note:
        """Change a note's title (reading its ETag first)."""
        etag = self.send("GET", f"/notes/{params.id}").headers["ETag"]
        response = self.send(
            "PATCH", f"/notes/{params.id}", json={"title": params.title}, headers={"If-Match": etag}
        )
        return response.json()  # type: ignore[no-any-return]


class AsyncNotes(HTTPConnector):
    """The same API, from async code."""

    name = "notes"

    @operation("notes.note.get")
    async def get(self, params: NoteRef) -> Note:
        return await self.aget_json(f"/notes/{params.id}")  # type: ignore[no-any-return]

    @operation("notes.note.list")
    async def list(self) -> AsyncIterator[Note]:
        async for record in self.apaginate_cursor("/notes"):
            yield record

    @operation("notes.note.update", kind="write")
    async def update(self, params: NotePatch) -> Note:
        response = await self.asend("PATCH", f"/notes/{params.id}", json={"title": params.title})
        return response.json()  # type: ignore[no-any-return]


POLICY = Policy.from_yaml(
    """
rules:
  - {id: notes, effect: allow, actions: ["notes.*.*"]}
"""
)
READ_ONLY = Policy.from_yaml(
    """
rules:
  - {id: read, effect: allow, actions: ["notes.note.get", "notes.note.list"]}
"""
)
BOT = Principal(agent="notes-bot")
FOR_ALICE = Principal(agent="notes-bot", on_behalf_of="alice")


def notes(server: Server, **kwargs: Any) -> Notes:
    kwargs.setdefault("policy", POLICY)
    kwargs.setdefault("rate_limit", RateLimits(clock=FakeClock()))
    return Notes(server.url, **kwargs)


def records_of(log: AuditLog) -> builtins.list[Any]:
    return builtins.list(log.records())


# -- the guard -------------------------------------------------------------------------------


def test_the_policy_decides_and_every_call_is_audited(server: Server) -> None:
    """An allowed read is sent and audited; a denied write is refused before any request."""
    log = AuditLog.memory()
    connector = notes(server, policy=READ_ONLY, audit=log)
    with acting_as(BOT):
        assert connector.get(id="1") == Note(id="1", title="note 1")
        with pytest.raises(PermissionDenied):
            connector.update(id="1", title="changed")
    assert [s.method for s in server.seen] == ["GET"]
    assert [(r.action, r.outcome) for r in records_of(log)] == [
        ("notes.note.get", "executed"),
        ("notes.note.update", "denied"),
    ]


def test_requests_are_retried_by_the_guards_retry_policy(server: Server) -> None:
    """The guard's RetryPolicy retries each request; the connector has none of its own."""
    log = AuditLog.memory()
    guard = Guard(POLICY, audit=log, retry=RetryPolicy(attempts=2))
    connector = Notes(server.url, guard=guard, rate_limit=RateLimits(clock=FakeClock()))
    server.fail(Reply(503), Reply(503), Reply(503))
    with acting_as(BOT), pytest.raises(httpx.HTTPStatusError):
        connector.get(id="1")
    assert len(server.requests("GET")) == 2  # two tries of the one request, never 2 x 2
    [record] = records_of(log)
    assert (record.outcome, record.attempts) == ("failed", 2)
    assert Notes("http://127.0.0.1:9", policy=POLICY).guard.retry == RetryPolicy()
    assert Notes("http://127.0.0.1:9", policy=POLICY, retry=None).guard.retry is None


# -- retries, rate limits, breakers ----------------------------------------------------------


def test_a_503_is_retried_until_the_server_answers(server: Server) -> None:
    """Two 503s, then the note: the read succeeds after three requests."""
    server.fail(Reply(503), Reply(503))
    connector = notes(server)
    with acting_as(BOT):
        assert connector.get(id="2").title == "note 2"
    assert len(server.requests("GET")) == 3


def test_a_429_retry_after_penalizes_the_hosts_bucket_for_everyone(server: Server) -> None:
    """A 429 with Retry-After: 7 holds every connector sharing the host's bucket for 7 s."""
    clock = FakeClock()
    limits = RateLimits(clock=clock)
    server.fail(Reply(429, {"error": "slow down"}, {"Retry-After": "7"}))
    connector = notes(server, rate_limit=limits)
    other = notes(server, rate_limit=limits)
    with acting_as(BOT):
        assert connector.get(id="3").title == "note 3"
    bucket = limits.for_host(server.host)
    assert other.bucket_for(httpx.URL(server.url)) is bucket
    assert bucket.blocked_for == dt.timedelta(seconds=7)
    assert bucket.reserve() == dt.timedelta(seconds=7)
    assert len(server.requests()) == 2


def test_a_rate_limit_paces_requests(server: Server) -> None:
    """A connector's own bucket (2/s, burst 2) makes the third request wait half a second."""
    clock = FakeClock()
    bucket = TokenBucket(2.0, 2, clock=clock)
    connector = notes(server, rate_limit=bucket)
    with acting_as(BOT):
        for note_id in "123":
            connector.get(id=note_id)
    assert bucket.reserve() == dt.timedelta(seconds=1)  # the 4th: two intervals after the burst


def test_a_write_is_retried_with_the_same_idempotency_key(server: Server) -> None:
    """The PATCH fails with 503 once and is retried; both attempts carry the audited key."""
    log = AuditLog.memory()
    connector = notes(server, audit=log)
    server.route("PATCH", "notes", _fail_once_then(_update_note))
    with acting_as(BOT):
        updated = connector.update(id="4", title="renamed")
    assert updated == Note(id="4", title="renamed")
    patches = server.requests("PATCH")
    assert len(patches) == 2
    keys = {p.header("Idempotency-Key") for p in patches}
    record = records_of(log)[-1]
    assert record.outcome == "executed"
    assert keys == {record.idempotency_key}
    assert record.idempotency_key
    assert patches[0].header("If-Match") == '"v1"'
    assert server.requests("GET")[0].header("Idempotency-Key") is None  # reads carry none


def _fail_once_then(route: Route) -> Route:
    failed: builtins.list[bool] = []

    def answer(seen: Seen, server: Server) -> Reply:
        if not failed:
            failed.append(True)
            return Reply(503)
        return route(seen, server)

    return answer


def test_a_write_without_an_idempotency_key_is_sent_once(server: Server) -> None:
    """Outside a guarded write there is no key: a transient failure is not retried."""
    server.fail(Reply(503))
    connector = notes(server)
    with pytest.raises(WriteNotRetried):
        connector.send("POST", "/notes/1", json={"title": "x"})
    assert len(server.requests("POST")) == 1
    assert server.requests("POST")[0].header("Idempotency-Key") is None


def test_the_hosts_breaker_opens_after_repeated_failures(server: Server) -> None:
    """Three 503s in a row open the host's breaker: the fourth call never reaches the server."""
    breakers = CircuitBreakers(failure_threshold=3, clock=FakeClock())
    connector = notes(server, breakers=breakers, retry=None)
    server.fail(Reply(503), Reply(503), Reply(503))
    with acting_as(BOT):
        for _ in range(3):
            with pytest.raises(httpx.HTTPStatusError):
                connector.get(id="1")
        with pytest.raises(CircuitOpen):
            connector.get(id="1")
    assert len(server.requests()) == 3
    assert breakers.for_key(server.host).state == "open"


def test_a_permanent_error_is_raised_at_once(server: Server) -> None:
    """A 404 is not retried and reaches the caller as httpx.HTTPStatusError."""
    connector = notes(server)
    with acting_as(BOT), pytest.raises(httpx.HTTPStatusError) as raised:
        connector.get(id="nope")
    assert raised.value.response.status_code == 404
    assert len(server.requests()) == 1


# -- pagination ----------------------------------------------------------------------------


def test_a_list_read_fetches_each_page_only_when_it_is_reached(server: Server) -> None:
    """The guarded call returns at once; each page is requested as iteration reaches it."""
    connector = notes(server)
    with acting_as(BOT):
        listed = connector.list()
        assert server.requests() == []
        first = next(listed)
        assert first == Note(id="1", title="note 1")
        assert len(server.requests()) == 1
        next(listed)
        assert len(server.requests()) == 1
        next(listed)
        assert len(server.requests()) == 2
        rest = builtins.list(listed)
    assert [n.id for n in rest] == ["4", "5"]
    assert [s.query.get("cursor") for s in server.requests()] == [None, "2", "4"]


def test_offset_and_link_pagination_are_lazy_too(server: Server) -> None:
    """paginate_offset asks offset/limit pages; paginate_links follows Link rel=next."""
    connector = notes(server)
    by_offset = connector.paginate_offset("/notes/by-offset", limit=2)
    assert server.requests() == []
    assert next(by_offset)["id"] == "1"
    assert [r["id"] for r in by_offset] == ["2", "3", "4", "5"]
    assert [(s.query["offset"], s.query["limit"]) for s in server.requests()] == [
        ("0", "2"),
        ("2", "2"),
        ("4", "2"),
    ]
    seen_before = len(server.requests())
    by_link = connector.paginate_links("/notes/by-link")
    assert len(server.requests()) == seen_before
    assert [r["id"] for r in by_link] == ["1", "2", "3", "4", "5"]
    assert [s.query.get("page") for s in server.requests()[seen_before:]] == [None, "1", "2"]
    assert by_link.source_of(4) == f"{server.url}/notes/by-link?page=2"


def test_a_quarantined_record_names_the_page_it_came_from(server: Server) -> None:
    """Pages.source_of is what validate_records takes: the bad record's page URL is kept."""
    server.route(
        "GET",
        "messy",
        lambda seen, _: Reply(
            200,
            {"items": [{"id": "1", "title": "ok"}, {"id": "2"}], "next_cursor": None},
        ),
    )
    connector = notes(server)
    sink = MemoryQuarantine()
    pages = connector.paginate_cursor("/messy", params={"api_key": "s3cr3t-key"})
    valid = validate_records(
        pages,
        Note,
        validation="quarantine",
        sink=sink,
        connector="notes",
        operation="notes.note.list",
        source=pages.source_of,
    )
    assert [n.id for n in valid] == ["1"]
    [entry] = builtins.list(sink.records())
    assert pages.source_of(1) == f"{server.url}/messy?api_key=***"
    assert entry.source is not None
    assert entry.source.startswith(f"{server.url}/messy?")
    assert "s3cr3t-key" not in entry.model_dump_json()


def test_records_and_cursors_can_sit_anywhere_in_the_body(server: Server) -> None:
    """Dotted keys and functions say where a page's records and next cursor are."""
    bodies = {
        None: {"data": {"rows": [{"id": "a"}]}, "meta": {"next": "b"}},
        "b": {"data": {"rows": [{"id": "b"}]}, "meta": {}},
    }
    server.route("GET", "nested", lambda seen, _: Reply(200, bodies[seen.query.get("after")]))
    connector = notes(server)
    pages = connector.paginate_cursor(
        "/nested", records="data.rows", next_cursor="meta.next", cursor_param="after"
    )
    assert [r["id"] for r in pages] == ["a", "b"]
    by_function = connector.paginate_cursor(
        "/nested",
        records=lambda body: body["data"]["rows"],
        next_cursor=lambda body: body["meta"].get("next"),
        cursor_param="after",
    )
    assert [r["id"] for r in by_function] == ["a", "b"]


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply(200, raw=b"<html>oops</html>"), "not JSON"),
        (Reply(200, {"items": {"id": "1"}}), "expected a list of records at 'items', got dict"),
        (Reply(200, {"items": [], "next_cursor": ["x"]}), "is a list, not a string"),
    ],
)
def test_a_page_that_is_not_what_was_promised_is_a_connector_error(
    server: Server, reply: Reply, problem: str
) -> None:
    """Non-JSON bodies, records that are not a list and odd cursors fail with what and where."""
    server.route("GET", "odd", lambda seen, _: reply)
    connector = notes(server)
    with pytest.raises(ConnectorError, match=problem) as raised:
        builtins.list(connector.paginate_cursor("/odd", params={"token": "t0ps3cret"}))
    assert "t0ps3cret" not in str(raised.value)
    assert "/odd?token=***" in str(raised.value)


def test_async_offset_and_link_pagination(server: Server) -> None:
    """apaginate_offset and apaginate_links page lazily from async code."""
    connector = notes(server)

    async def main() -> tuple[builtins.list[str], builtins.list[str], int]:
        by_offset = connector.apaginate_offset("/notes/by-offset", limit=2)
        untouched = len(server.requests())
        offsets = [r["id"] async for r in by_offset]
        by_link = [r["id"] async for r in connector.apaginate_links("/notes/by-link")]
        await connector.aclose()
        return offsets, by_link, untouched

    offsets, by_link, untouched = asyncio.run(main())
    assert untouched == 0
    assert offsets == by_link == ["1", "2", "3", "4", "5"]
    assert len(server.requests()) == 3 + 3


# -- shadow mode ----------------------------------------------------------------------------


def test_shadow_mode_sends_reads_and_stops_writes_at_the_transport(server: Server) -> None:
    """The ETag GET is sent; the PATCH is not, and its request comes back with secrets masked."""
    log = AuditLog.memory()
    token = CallableCredentials(lambda user: "s3cr3t-token", name="notes token")
    connector = notes(server, audit=log, shadow=True, credentials=token)
    with acting_as(BOT):
        assert connector.get(id="1").title == "note 1"
        result = connector.update(id="1", title="would rename")
    assert isinstance(result, ShadowResult)
    assert not result.executed
    assert [s.method for s in server.seen] == ["GET", "GET"]  # no PATCH reached the server
    request = result.request
    assert request is not None
    assert request.method == "PATCH"
    assert request.url == f"{server.url}/notes/1"
    assert request.body == {"title": "would rename"}
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["authorization"] == "***"
    assert headers["if-match"] == '"v1"'
    assert headers["idempotency-key"] == result.idempotency_key
    assert [r.outcome for r in records_of(log)] == ["executed", "shadowed"]
    assert "s3cr3t-token" not in records_of(log)[-1].to_json()
    assert "s3cr3t-token" not in request.model_dump_json()


def test_a_shadowed_body_that_is_not_json_is_kept_as_text(server: Server) -> None:
    """A write's non-JSON body is recorded as text; a direct send() in shadowing() stops too."""
    connector = notes(server)
    with shadowing(), pytest.raises(ShadowIntercepted) as stopped:
        connector.send("PUT", "/notes/1", content="title=x", headers={"X-Trace": "1"})
    assert stopped.value.request.body == "title=x"
    assert stopped.value.request.headers["x-trace"] == "***"  # not known to be harmless
    with shadowing():
        assert connector.get_json("/notes/1")["id"] == "1"  # reads go through
    assert [s.method for s in server.seen] == ["GET"]


def test_shadow_mode_masks_a_credential_header_of_any_name(server: Server) -> None:
    """Headers the auth flow adds are masked even when their name does not look secret."""
    key = CallableCredentials(
        lambda user: "k-123456", name="notes key", kind="header", header="X-Notes"
    )
    connector = notes(server, shadow=True, credentials=key)
    with acting_as(BOT):
        result = connector.update(id="2", title="t")
    assert isinstance(result, ShadowResult)
    assert result.request is not None
    assert {k.lower(): v for k, v in result.request.headers.items()}["x-notes"] == "***"
    assert server.requests("GET")[0].header("X-Notes") == "k-123456"  # the read was sent with it


def test_shadow_mode_masks_every_header_not_known_to_be_harmless(server: Server) -> None:
    """Secret headers with innocent names are masked, in the headers, the URL and the body."""
    log = AuditLog.memory()
    connector = notes(server, audit=log)
    key, subscription = "auth-key-0123", "apim-sub-4567"
    with shadowing(), pytest.raises(ShadowIntercepted) as stopped:
        connector.send(
            "POST",
            f"/notes?auth={key}&page=2&sub={subscription}",
            json={"note": f"signed with {key}", "n": 1},
            headers={
                "X-Auth-Key": key,
                "Ocp-Apim-Subscription-Key": subscription,
                "Content-Type": "application/json",
                "If-Match": '"v1"',
            },
        )
    request = stopped.value.request
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["x-auth-key"] == headers["ocp-apim-subscription-key"] == "***"
    assert headers["content-type"] == "application/json"
    assert headers["if-match"] == '"v1"'
    assert request.url == f"{server.url}/notes?auth=***&page=2&sub=***"
    assert request.body == {"note": "signed with ***", "n": 1}
    dumped = request.model_dump_json()
    assert key not in dumped
    assert subscription not in dumped


def test_a_shadowed_guarded_write_keeps_header_secrets_out_of_the_audit_record(
    server: Server,
) -> None:
    """A connector's own X-Auth-Key header stays out of the ShadowResult and the record."""
    log = AuditLog.memory()
    connector = notes(server, audit=log, shadow=True, headers={"X-Auth-Key": "k-abcdef12"})
    with acting_as(BOT):
        result = connector.update(id="2", title="t")
    assert isinstance(result, ShadowResult)
    assert result.request is not None
    assert {k.lower(): v for k, v in result.request.headers.items()}["x-auth-key"] == "***"
    assert "k-abcdef12" not in result.model_dump_json()
    assert "k-abcdef12" not in records_of(log)[-1].to_json()
    assert server.requests("GET")[0].header("X-Auth-Key") == "k-abcdef12"  # the read had it


# -- credentials, telemetry --------------------------------------------------------------


def test_a_delegated_credential_is_fetched_for_the_user_acted_for(server: Server) -> None:
    """The provider is asked for the principal's on_behalf_of user, on every request."""
    asked: builtins.list[str | None] = []

    def per_user(user: str | None) -> str:
        asked.append(user)
        return f"token-of-{user}"

    connector = notes(server, credentials=CallableCredentials(per_user, name="delegated"))
    with acting_as(FOR_ALICE):
        connector.get(id="1")
    with acting_as(BOT):
        connector.get(id="2")
    assert [s.header("Authorization") for s in server.seen] == [
        "Bearer token-of-alice",
        "Bearer token-of-None",
    ]
    assert asked == ["alice", None]


def test_any_httpx_auth_can_be_the_credentials(server: Server) -> None:
    """An httpx.Auth (here httpx's BasicAuth) is used as it is."""
    connector = notes(server, credentials=httpx.BasicAuth("me", "pw"))
    with acting_as(BOT):
        connector.get(id="1")
    assert server.seen[0].header("Authorization") == "Basic bWU6cHc="


def test_requests_and_responses_are_span_events_without_bodies_or_secrets(server: Server) -> None:
    """The action span gets request and response events: method, scrubbed URL, status, duration."""
    server.fail(Reply(503))
    with capture_telemetry() as captured:
        connector = notes(server, telemetry=captured.telemetry)
        with acting_as(BOT):
            connector.get(id="5")
    [span] = captured.spans
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    http = [(name, attrs) for name, attrs in events if name.startswith("handrail.http")]
    assert [name for name, _ in http] == [
        "handrail.http.request",
        "handrail.http.response",
        "handrail.http.request",
        "handrail.http.response",
    ]
    assert [attrs.get("http.response.status_code") for _, attrs in http[1::2]] == [503, 200]
    for _, attrs in http:
        assert attrs["http.request.method"] == "GET"
        assert attrs["url.full"] == f"{server.url}/notes/5"
    assert all(attrs["handrail.http.duration_ms"] >= 0 for _, attrs in http[1::2])
    assert "handrail.retry" in [name for name, _ in events]
    assert not any("note 5" in str(attrs) for _, attrs in events)  # never the body


def test_a_secret_in_the_query_never_reaches_a_span(server: Server) -> None:
    """A query parameter named like a secret is masked in span events."""
    connector = notes(server)
    with capture_telemetry() as captured:
        caller = captured.tracer_provider.get_tracer("test").start_as_current_span("caller")
        with caller:
            connector.get_json("/notes/1", params={"access_token": "t0ps3cret", "v": "2"})
    [span] = captured.spans
    urls = {str(e.attributes["url.full"]) for e in span.events if e.attributes}
    assert urls == {f"{server.url}/notes/1?access_token=***&v=2"}


def test_a_key_or_signature_in_the_query_never_reaches_a_span(server: Server) -> None:
    """``?key=`` and ``X-Amz-Signature=`` carry credentials under plain names: masked too."""
    connector = notes(server)
    with capture_telemetry() as captured:
        caller = captured.tracer_provider.get_tracer("test").start_as_current_span("caller")
        with caller:
            connector.get_json("/notes/1", params={"key": "AIza-s3cret", "X-Amz-Signature": "f00d"})
    [span] = captured.spans
    urls = {str(e.attributes["url.full"]) for e in span.events if e.attributes}
    assert urls == {f"{server.url}/notes/1?key=***&X-Amz-Signature=***"}


# -- async -----------------------------------------------------------------------------------


def test_async_operations_go_through_the_same_pipeline(server: Server) -> None:
    """Async reads retry, list reads page lazily, shadowed writes are not sent."""
    log = AuditLog.memory()
    server.fail(Reply(503))
    token = CallableCredentials(lambda user: f"tok-{user}", name="notes token")

    async def main() -> tuple[Note, builtins.list[str], int, Any, Any]:
        async with AsyncNotes(
            server.url,
            policy=POLICY,
            audit=log,
            credentials=token,
            rate_limit=RateLimits(clock=FakeClock()),
        ) as connector:
            with acting_as(FOR_ALICE):
                note = await connector.get(id="1")
                listed = await connector.list()
                ids = []
                requests_after_first = 0
                async for record in listed:
                    ids.append(record.id)
                    if len(ids) == 1:
                        requests_after_first = len(server.requests())
                updated = await connector.update(id="2", title="async")
        async with AsyncNotes(
            server.url, policy=POLICY, shadow=True, rate_limit=RateLimits(clock=FakeClock())
        ) as shadowed:
            with acting_as(BOT):
                intercepted = await shadowed.update(id="2", title="not sent")
        return note, ids, requests_after_first, updated, intercepted

    note, ids, requests_after_first, updated, intercepted = asyncio.run(main())
    assert note == Note(id="1", title="note 1")
    assert len(server.requests("GET")) == 2 + 3  # the 503 and its retry, then three pages
    assert requests_after_first == 3
    assert ids == ["1", "2", "3", "4", "5"]
    assert updated == Note(id="2", title="async")
    [patch] = server.requests("PATCH")
    assert patch.header("Authorization") == "Bearer tok-alice"
    assert patch.header("Idempotency-Key")
    assert isinstance(intercepted, ShadowResult)
    assert intercepted.request is not None
    assert intercepted.request.body == {"title": "not sent"}
    assert [r.outcome for r in records_of(log)] == ["executed", "executed", "executed"]


def test_async_write_retried_with_one_key_and_breaker_per_host(server: Server) -> None:
    """Async writes keep their key across retries; the async path opens the host's breaker too."""
    breakers = CircuitBreakers(failure_threshold=2, clock=FakeClock())
    server.route("PATCH", "notes", _fail_once_then(_update_note))

    async def main() -> None:
        connector = AsyncNotes(
            server.url, policy=POLICY, breakers=breakers, rate_limit=RateLimits(clock=FakeClock())
        )
        with acting_as(BOT):
            await connector.update(id="3", title="again")
            server.fail(Reply(502), Reply(502), Reply(502))
            with pytest.raises(CircuitOpen):
                await connector.get(id="3")
        await connector.aclose()

    asyncio.run(main())
    patches = server.requests("PATCH")
    assert len(patches) == 2
    assert len({p.header("Idempotency-Key") for p in patches}) == 1
    assert len(server.requests("GET")) == 2  # the third attempt met the open breaker


# -- configuration ---------------------------------------------------------------------------


def test_a_number_as_rate_limit_gives_the_connector_its_own_bucket() -> None:
    """rate_limit=5.0 is a bucket of 5/s, burst 5, for this connector alone."""
    connector = Notes("http://127.0.0.1:9", policy=POLICY, rate_limit=5.0)
    bucket = connector.bucket_for(httpx.URL("http://127.0.0.1:9/x"))
    assert (bucket.rate, bucket.burst) == (5.0, 5)
    assert connector.bucket_for(httpx.URL("http://elsewhere/")) is bucket
    timed = Notes("http://127.0.0.1:9", policy=POLICY, timeout=dt.timedelta(seconds=2))
    assert timed.timeout == httpx.Timeout(2.0)


def test_configuration_mistakes_fail_at_construction() -> None:
    """Bad credentials, timeouts, rate limits and retries are ConfigurationErrors."""
    for bad in (
        {"credentials": "token"},
        {"timeout": 0},
        {"rate_limit": "fast"},
        {"retry": 3},
    ):
        with pytest.raises(ConfigurationError):
            Notes("http://127.0.0.1:9", policy=POLICY, **bad)


def test_the_repr_masks_credentials_in_the_base_url() -> None:
    """A base URL with user:password@ is shown masked."""
    connector = Notes("https://me:pw@api.example.com/v1", policy=POLICY)
    assert "pw" not in repr(connector)
    assert "***@api.example.com" in repr(connector)


def test_a_mock_transport_replaces_the_network() -> None:
    """transport= swaps httpx's transport (what users' unit tests do); the pipeline is the same."""
    seen: builtins.list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "9", "title": "mocked"})

    connector = Notes(
        "https://api.example.com",
        policy=POLICY,
        transport=httpx.MockTransport(answer),
        rate_limit=RateLimits(clock=FakeClock()),
    )
    with connector, acting_as(BOT):
        assert connector.get(id="9").title == "mocked"
    assert str(seen[0].url) == "https://api.example.com/notes/9"
