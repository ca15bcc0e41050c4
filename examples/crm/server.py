"""A small REST CRM that behaves like the real ones: OAuth2, ETags, three pagination styles,
messy data, 429s and 503s, and tokens that expire.

Connectors are tested against it on 127.0.0.1 (``with CRMServer(seed=1) as crm: ...``) and
benchmarks page through it; ``python examples/crm/server.py --port 8000`` serves it from a
shell.  Standard library only, so it starts in milliseconds and needs no extra dependency.

Everything it serves is a pure function of the seed and the record's index (records are
generated on demand, never stored), so ``records=100_000`` costs no memory and tests can
compute exactly which records are malformed.  See README.md next to this file for the API.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import random
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self
from urllib.parse import parse_qs, unquote_plus, urlsplit

__all__ = [
    "MALFORMED_EVERY",
    "MAX_LIMIT",
    "PAGINATION",
    "RESOURCES",
    "CRMServer",
    "Clock",
    "MalformedRecord",
    "RecordedRequest",
    "Resource",
    "ScriptedResponse",
    "is_valid",
    "main",
    "malformation",
    "merge_patch",
]

Resource = Literal["contacts", "companies", "opportunities"]
RESOURCES: Final[tuple[Resource, ...]] = ("contacts", "companies", "opportunities")
#: Which pagination style each list endpoint uses (one of each, on purpose).
PAGINATION: Final[Mapping[Resource, str]] = {
    "contacts": "cursor",
    "companies": "link",
    "opportunities": "offset",
}
#: Exactly one record in each block of this many (at a seeded position) is malformed.
MALFORMED_EVERY: Final = 20
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000

_PREFIX: Final[Mapping[Resource, str]] = {
    "contacts": "c",
    "companies": "co",
    "opportunities": "opp",
}
_BY_NAME: Final[Mapping[str, Resource]] = {r: r for r in RESOURCES}
_SECOND_REASON: Final[Mapping[Resource, str]] = {
    "contacts": "email_not_string",
    "companies": "name_not_string",
    "opportunities": "amount_not_number",
}
_STATUSES: Final = frozenset(s.value for s in HTTPStatus)
_READ_ONLY: Final = frozenset({"id", "version"})
_JSON: Final = "application/json"

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Radia", "Hedy")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Lamarr")
_DOMAINS = ("example.com", "example.org", "acme.test", "globex.test", "initech.test")
_TITLES = ("CEO", "CTO", "Head of Sales", "Buyer", "Engineer", "Procurement", "Office Manager")
_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Wonka")
_SUFFIXES = ("Ltd", "GmbH", "Inc.", "SA", "BV", "& Co", "Group")
_INDUSTRIES = ("software", "retail", "manufacturing", "finance", "logistics", "healthcare")
_STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost")
_CURRENCIES = ("EUR", "USD", "GBP", "CHF")
_DEALS = ("renewal", "expansion", "pilot", "new logo")
_FLAGS: tuple[bool | str | int | None, ...] = (True, False, False, "yes", "no", 0, None)
_DISCOUNTS: tuple[float | str | None, ...] = (None, 0.0, 5.0, 12.5, "10", "7.5")
_OFFSETS = ("Z", "+00:00", "+02:00", ".250Z")


@functools.cache
def _days() -> tuple[str, ...]:
    """Five years of ISO dates from 2020-01-01, formatted once (not at import)."""
    first = dt.date(2020, 1, 1)
    return tuple((first + dt.timedelta(days=n)).isoformat() for n in range(5 * 365))


#: ``_PERCENT[byte]`` maps a random byte onto 0..99, so ``_PERCENT[b] < 10`` is a 10 % chance.
_PERCENT: Final = tuple(b * 100 // 256 for b in range(256))


def _number(data: bytes, start: int, below: int) -> int:
    """A number in ``range(below)`` from four bytes of ``data``."""
    return int.from_bytes(data[start : start + 4], "big") % below


def _timestamps(data: bytes, start: int) -> tuple[str, str | None]:
    """``created_at`` and ``updated_at`` (a quarter null) from eight bytes of ``data``.

    Four spellings of ISO 8601, as records written by different clients have.
    """
    days = _days()
    day = int.from_bytes(data[start : start + 2], "big") % (4 * 365)
    hour, minute, second = data[start + 2] % 24, data[start + 3] % 60, data[start + 4] % 60
    created = f"{days[day]}T{hour:02d}:{minute:02d}:{second:02d}{_OFFSETS[data[start + 5] % 4]}"
    if _PERCENT[data[start + 6]] < 25:
        return created, None
    return created, f"{days[day + data[start + 7]]}T{hour:02d}:{minute:02d}:{second:02d}Z"


class Clock(Protocol):
    """What the server reads the time from; ``handrail.testing.FakeClock`` fits."""

    def now(self) -> dt.datetime:
        """Wall-clock time, for ``updated_at``."""
        ...

    def monotonic(self) -> float:
        """Elapsed seconds, for token expiry."""
        ...


class _SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server saw it, for tests to assert on.

    ``headers`` has lower-case names and never the ``authorization`` header;
    ``body`` of a token request has ``client_secret`` replaced by ``[redacted]``.
    ``path`` is the request target, query string included.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int


@dataclass(frozen=True, slots=True)
class ScriptedResponse:
    """A response the server gives to the next matching request instead of handling it.

    ``path`` is a prefix of the request path; ``None`` matches every API request
    (``/v1/...``) but never the token endpoint, so a scripted fault is not eaten by
    the client's token fetch.  ``body`` defaults to ``{"error": ..., "message": ...}``.
    """

    status: int
    method: str | None = None
    path: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this entry answers ``method path``."""
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is None:
            return path.startswith("/v1/")
        return path.startswith(self.path)


@dataclass(frozen=True, slots=True)
class MalformedRecord:
    """A record that no sound model of its resource accepts, and why.

    ``id`` is the id the record is addressed by (``GET /v1/contacts/{id}``) even
    when ``reason`` is ``"missing_id"`` and the served body has no ``id``.
    """

    resource: Resource
    index: int
    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class _Stored:
    fingerprint: str
    response: _Response


class _Refusal(Exception):
    """Raised inside request handling to answer with an error response."""

    def __init__(self, response: _Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> _Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _Response(status, (("Content-Type", _JSON), *headers), body)


def _error(
    status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()
) -> _Refusal:
    return _Refusal(_json_response(status, {"error": code, "message": message}, headers))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def malformation(resource: Resource, record: Mapping[str, Any]) -> str | None:
    """Why no sound model of ``resource`` accepts ``record``, or ``None`` if one does.

    The reasons: ``missing_id`` (``id`` absent or not a string), ``email_not_string``
    (contacts), ``name_not_string`` (companies, opportunities), ``amount_not_number``
    (opportunities: neither a number nor a numeric string like ``"1,200.00"``).
    """
    if not isinstance(record.get("id"), str):
        return "missing_id"
    if resource == "contacts":
        return None if isinstance(record.get("email"), str) else "email_not_string"
    if not isinstance(record.get("name"), str):
        return "name_not_string"
    if resource == "opportunities" and not _is_amount(record.get("amount")):
        return "amount_not_number"
    return None


def is_valid(resource: Resource, record: Mapping[str, Any]) -> bool:
    """Whether a sound model of ``resource`` accepts ``record`` (see ``malformation``)."""
    return malformation(resource, record) is None


def _is_amount(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value.replace(",", "")).is_finite()
    except InvalidOperation:
        return False


class CRMServer:
    """The example CRM on 127.0.0.1, started by ``with`` (or ``start()``), stopped on exit.

    ``records`` is the number of records of each resource (or a mapping per
    resource).  ``fault_rate`` (0..1) of API requests fail with 429 or 503, drawn
    from a RNG seeded by ``seed``, so a sequential client meets the same faults
    every run.  Tokens expire ``token_ttl`` after issue on ``clock`` (pass a
    ``FakeClock`` to expire them without waiting).  Thread-safe; all state is in
    memory and lost on exit.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        records: int | Mapping[str, int] = 100,
        fault_rate: float = 0.0,
        token_ttl: float | dt.timedelta = 300.0,
        retry_after: int = 0,
        client_id: str = "example-client",
        client_secret: str | None = None,
        clock: Clock | None = None,
        record_requests: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {fault_rate!r}")
        ttl = token_ttl.total_seconds() if isinstance(token_ttl, dt.timedelta) else token_ttl
        if ttl <= 0:
            raise ValueError(f"token_ttl must be positive, got {token_ttl!r}")
        counts = records if isinstance(records, Mapping) else dict.fromkeys(RESOURCES, records)
        unknown = set(counts) - set(RESOURCES)
        if unknown:
            raise ValueError(f"unknown resources {sorted(unknown)} (expected {RESOURCES})")
        self._counts: dict[Resource, int] = {r: int(counts.get(r, 0)) for r in RESOURCES}
        if any(n < 0 for n in self._counts.values()):
            raise ValueError(f"record counts must not be negative, got {self._counts}")
        self.seed = seed
        self.fault_rate = fault_rate
        self.token_ttl = ttl
        self.retry_after = retry_after
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self._clock: Clock = clock or _SystemClock()
        self._record_requests = record_requests
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._fault_rng = random.Random(f"faults:{seed}")
        self._record_keys = {
            r: hashlib.blake2b(f"records:{seed}:{r}".encode(), digest_size=32).digest()
            for r in RESOURCES
        }
        self._tokens: dict[str, float] = {}
        self._script: list[ScriptedResponse] = []
        self._log: list[RecordedRequest] = []
        self._overrides: dict[tuple[Resource, int], dict[str, Any]] = {}
        self._versions: dict[tuple[Resource, int], int] = {}
        self._idempotency: dict[str, _Stored] = {}
        self._applied_by_key: dict[str, int] = {}
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.writes_applied = 0
        self.tokens_issued = 0

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("this CRMServer is already running")
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.crm = self
        self._httpd = httpd
        # A restart after close() binds the same port, so URLs handed out stay valid.
        self._port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop every open connection (idle keep-alives included)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never the secret: this object ends up in test failure output.
        where = self.base_url if self._httpd else "stopped"
        return f"<CRMServer {where} seed={self.seed} records={self._counts}>"

    # -- addresses -----------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``, the server's root (known once it has started)."""
        if self._port == 0:
            raise RuntimeError("the CRMServer has no port yet; use `with CRMServer() as crm:`")
        return f"http://{self._host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The API root, ``{origin}/v1``: resources are ``{base_url}/contacts`` and so on."""
        return f"{self.origin}/v1"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint, ``{origin}/oauth/token``."""
        return f"{self.origin}/oauth/token"

    # -- test controls -------------------------------------------------------

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far: the next API call with one gets 401."""
        with self._lock:
            self._tokens.clear()

    def script(self, *responses: ScriptedResponse) -> None:
        """Queue responses that the next matching requests get instead of being handled."""
        with self._lock:
            self._script.extend(responses)

    def fail_next(
        self,
        status: int = 503,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """The next ``times`` matching API requests fail with ``status``, before doing anything.

        A 429 carries ``Retry-After`` (``retry_after``, else the server's
        ``retry_after``); other statuses carry it only when ``retry_after`` is given.
        """
        if retry_after is None and status == HTTPStatus.TOO_MANY_REQUESTS:
            retry_after = self.retry_after
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.script(*(ScriptedResponse(status, method, path, headers) for _ in range(times)))

    def clear_script(self) -> None:
        """Drop every scripted response not yet served."""
        with self._lock:
            self._script.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request served so far, in completion order (a copy)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._log.clear()

    @property
    def applied_by_key(self) -> dict[str, int]:
        """How many times the PATCH under each ``Idempotency-Key`` was applied (a copy)."""
        with self._lock:
            return dict(self._applied_by_key)

    # -- the data, as tests compute it -----------------------------------------

    def count(self, resource: Resource) -> int:
        """How many records of ``resource`` the server holds."""
        return self._counts[resource]

    def id_of(self, resource: Resource, index: int) -> str:
        """The id of the record at ``index`` (0-based): ``c-000001`` is contact 0."""
        return f"{_PREFIX[resource]}-{index + 1:06d}"

    def record(self, resource: Resource, id_or_index: str | int) -> dict[str, Any]:
        """The record as ``GET`` serves it now (a copy); ``KeyError`` if there is none."""
        index = id_or_index if isinstance(id_or_index, int) else self._index(resource, id_or_index)
        if index is None or not 0 <= index < self._counts[resource]:
            raise KeyError(f"{resource} has no record {id_or_index!r}")
        return copy.deepcopy(self._current(resource, index))

    def etag(self, resource: Resource, id_or_index: str | int) -> str:
        """The record's current ``ETag`` (quoted, as in the header)."""
        index = id_or_index if isinstance(id_or_index, int) else self._index(resource, id_or_index)
        if index is None or not 0 <= index < self._counts[resource]:
            raise KeyError(f"{resource} has no record {id_or_index!r}")
        return self._etag(resource, index)

    def malformed(self, resource: Resource) -> list[MalformedRecord]:
        """Every record of ``resource`` that is malformed now, in index order."""
        with self._lock:
            overrides = dict(self._overrides)
        found = []
        for index in self._seeded_malformed_indices(resource):
            if (resource, index) not in overrides:
                reason = self._malformation(resource, index)[1]
                found.append(MalformedRecord(resource, index, self.id_of(resource, index), reason))
        for (res, index), record in overrides.items():
            why = malformation(resource, record) if res == resource else None
            if why is not None:
                found.append(MalformedRecord(resource, index, self.id_of(resource, index), why))
        return sorted(found, key=lambda m: m.index)

    def malformed_indices(self, resource: Resource) -> list[int]:
        """The indices of the malformed records of ``resource``, ascending."""
        return [m.index for m in self.malformed(resource)]

    def malformed_ids(self, resource: Resource) -> set[str]:
        """The ids (as addressed, see ``MalformedRecord.id``) of the malformed records."""
        return {m.id for m in self.malformed(resource)}

    def expected_valid_count(self, resource: Resource) -> int:
        """How many records of ``resource`` a correct client accepts: all but the malformed."""
        return self._counts[resource] - len(self.malformed(resource))

    # -- generation ------------------------------------------------------------

    def _seeded_malformed_indices(self, resource: Resource) -> list[int]:
        total = self._counts[resource]
        blocks = (total + MALFORMED_EVERY - 1) // MALFORMED_EVERY
        indices = []
        for block in range(blocks):
            index = block * MALFORMED_EVERY + self._block_pick(resource, block)[0]
            if index < total:
                indices.append(index)
        return indices

    def _block_pick(self, resource: Resource, block: int) -> tuple[int, str]:
        digest = hashlib.blake2b(f"{self.seed}:{resource}:{block}".encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "big")
        reason = "missing_id" if (value >> 32) & 1 else _SECOND_REASON[resource]
        return value % MALFORMED_EVERY, reason

    def _malformation(self, resource: Resource, index: int) -> tuple[bool, str]:
        offset, reason = self._block_pick(resource, index // MALFORMED_EVERY)
        return offset == index % MALFORMED_EVERY, reason

    def _current(self, resource: Resource, index: int) -> dict[str, Any]:
        override = self._overrides.get((resource, index))
        return override if override is not None else self._generate(resource, index)

    def _generate(self, resource: Resource, index: int) -> dict[str, Any]:
        # Every random choice of a record comes from one keyed hash of its index, read
        # byte by byte at fixed offsets: a random.Random per record costs more to seed
        # than the whole record costs to build, and records=100_000 must page quickly.
        data = hashlib.blake2b(
            index.to_bytes(8, "big"), key=self._record_keys[resource], digest_size=64
        ).digest()
        if resource == "contacts":
            record = self._contact(data, index)
        elif resource == "companies":
            record = self._company(data, index)
        else:
            record = self._opportunity(data, index)
        # Unknown fields a client must keep, not choke on (bytes 48..51).
        if _PERCENT[data[48]] < 25:
            record["x_legacy_id"] = f"LEG-{_number(data, 52, 10**6):06d}"
        if _PERCENT[data[49]] < 15:
            record["custom_fields"] = {"tier": ("gold", "silver", None)[data[50] % 3], "score": 7}
        malformed, reason = self._malformation(resource, index)
        if malformed:
            if reason == "missing_id":
                del record["id"]
            elif reason == "email_not_string":
                record["email"] = [record["email"], "second@example.com"]
            elif reason == "name_not_string":
                record["name"] = {"legal": record["name"], "display": None}
            else:
                record["amount"] = "TBD"
        return record

    def _company_ref(self, data: bytes, start: int) -> str | None:
        """A company id, a fifth of them null (five bytes from ``start``)."""
        companies = self._counts["companies"]
        if companies == 0 or _PERCENT[data[start]] < 20:
            return None
        return self.id_of("companies", _number(data, start + 1, companies))

    def _contact(self, data: bytes, index: int) -> dict[str, Any]:
        first, last = _FIRST[data[0] % len(_FIRST)], _LAST[data[1] % len(_LAST)]
        email = f"{first}.{last}{index}@{_DOMAINS[data[2] % len(_DOMAINS)]}".lower()
        if _PERCENT[data[3]] < 10:
            email = f" {email.upper()} "  # still a string: messy, not malformed
        phone: str | int | None
        roll = _PERCENT[data[4]]
        if roll < 15:
            phone = 4_930_000_000 + _number(data, 5, 10**7)  # a number, not a string
        elif roll < 35:
            phone = None
        else:
            phone = f"+49 30 {_number(data, 5, 10**7):07d}"
        created, updated = _timestamps(data, 20)
        return {
            "id": self.id_of("contacts", index),
            "first_name": None if _PERCENT[data[9]] < 5 else first,
            "last_name": None if _PERCENT[data[10]] < 10 else last,
            "email": email,
            "phone": phone,
            "title": None if _PERCENT[data[11]] < 30 else _TITLES[data[12] % len(_TITLES)],
            "company_id": self._company_ref(data, 13),
            "do_not_call": _FLAGS[data[18] % len(_FLAGS)],
            "created_at": created,
            "updated_at": updated,
            "version": 1,
        }

    def _company(self, data: bytes, index: int) -> dict[str, Any]:
        word = _WORDS[data[0] % len(_WORDS)]
        name = f"{word} {_WORDS[data[1] % len(_WORDS)]} {_SUFFIXES[data[2] % len(_SUFFIXES)]}"
        employees: int | str | None = 1 + _number(data, 3, 50_000)
        roll = _PERCENT[data[7]]
        if roll < 15:
            employees = str(employees)  # digits in a string
        elif roll < 30:
            employees = None
        created, updated = _timestamps(data, 20)
        return {
            "id": self.id_of("companies", index),
            "name": name,
            "domain": None if _PERCENT[data[8]] < 20 else f"{word.lower()}{index}.test",
            "industry": None
            if _PERCENT[data[9]] < 25
            else _INDUSTRIES[data[10] % len(_INDUSTRIES)],
            "employees": employees,
            "created_at": created,
            "updated_at": updated,
            "version": 1,
        }

    def _opportunity(self, data: bytes, index: int) -> dict[str, Any]:
        cents = 10_000 + _number(data, 0, 50_000_000)
        amount: int | float | str
        roll = _PERCENT[data[4]]
        if roll < 20:
            amount = f"{cents / 100:,.2f}"  # "1,200.00": a string with separators
        elif roll < 50:
            amount = cents // 100
        else:
            amount = cents / 100
        created, updated = _timestamps(data, 20)
        return {
            "id": self.id_of("opportunities", index),
            "name": f"{_WORDS[data[5] % len(_WORDS)]} {_DEALS[data[6] % len(_DEALS)]}",
            "amount": amount,
            "currency": None if _PERCENT[data[7]] < 10 else _CURRENCIES[data[8] % 4],
            "stage": _STAGES[data[9] % len(_STAGES)],
            "company_id": self._company_ref(data, 10),
            "discount_pct": _DISCOUNTS[data[15] % len(_DISCOUNTS)],
            "close_date": None if _PERCENT[data[16]] < 20 else _days()[_number(data, 28, 5 * 365)],
            "created_at": created,
            "updated_at": updated,
            "version": 1,
        }

    def _index(self, resource: Resource, record_id: str) -> int | None:
        prefix = f"{_PREFIX[resource]}-"
        digits = record_id[len(prefix) :]
        if not record_id.startswith(prefix) or not digits.isdigit() or not digits.isascii():
            return None
        index = int(digits) - 1
        # One spelling per record (c-1 is not c-000001): ETags and idempotency keys are per URL.
        if not 0 <= index < self._counts[resource] or self.id_of(resource, index) != record_id:
            return None
        return index

    def _etag(self, resource: Resource, index: int) -> str:
        version = self._versions.get((resource, index), 1)
        tag = hashlib.blake2b(
            f"{self.seed}:{resource}:{index}:{version}".encode(), digest_size=8
        ).hexdigest()
        return f'"{tag}"'

    # -- request handling (no I/O: _Handler feeds it) ----------------------------

    def _handle(self, method: str, target: str, headers: Message, body: bytes) -> _Response:
        path = urlsplit(target).path
        try:
            response = self._route(method, target, path, headers, body)
        except _Refusal as refusal:
            response = refusal.response
        if self._record_requests:
            self._remember(method, target, path, headers, body, response.status)
        return response

    def _remember(
        self, method: str, target: str, path: str, headers: Message, body: bytes, status: int
    ) -> None:
        kept = {k.lower(): v for k, v in headers.items() if k.lower() != "authorization"}
        if path == "/oauth/token" and b"client_secret" in body:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            form["client_secret"] = ["[redacted]"]
            body = "&".join(f"{k}={v}" for k, vs in form.items() for v in vs).encode()
        entry = RecordedRequest(method, target, kept, body, status)
        with self._lock:
            self._log.append(entry)

    def _route(
        self, method: str, target: str, path: str, headers: Message, body: bytes
    ) -> _Response:
        scripted = self._take_scripted(method, path)
        if scripted is not None:
            return scripted
        if path == "/oauth/token":
            if method != "POST":
                raise _error(405, "method_not_allowed", "use POST", [("Allow", "POST")])
            return self._issue_token(headers, body)
        if not path.startswith("/v1/"):
            raise _error(404, "not_found", f"no such endpoint: {path}")
        self._authenticate(headers)
        self._maybe_fault()
        parts = path[len("/v1/") :].strip("/").split("/")
        resource = _BY_NAME.get(parts[0])
        if resource is None or len(parts) > 2:
            raise _error(404, "not_found", f"no such endpoint: {path}")
        if len(parts) == 1:
            if method != "GET":
                raise _error(405, "method_not_allowed", "use GET", [("Allow", "GET")])
            return self._list(resource, target, headers)
        index = self._index(resource, unquote_plus(parts[1]))
        if index is None:
            raise _error(404, "not_found", f"no {resource} record {parts[1]!r}")
        if method == "GET":
            return self._get(resource, index, headers)
        if method == "PATCH":
            return self._patch(resource, index, target, headers, body)
        raise _error(405, "method_not_allowed", "use GET or PATCH", [("Allow", "GET, PATCH")])

    def _take_scripted(self, method: str, path: str) -> _Response | None:
        if not self._script:
            return None
        with self._lock:
            for position, entry in enumerate(self._script):
                if entry.matches(method, path):
                    del self._script[position]
                    break
            else:
                return None
        body = entry.body
        if body is None:
            phrase = HTTPStatus(entry.status).phrase if entry.status in _STATUSES else "error"
            code = phrase.lower().replace(" ", "_").replace("-", "_")
            if entry.status == HTTPStatus.UNAUTHORIZED:
                code = "invalid_token"  # what a real expiry says, so clients refresh
            body = {"error": code, "message": f"scripted {entry.status} {phrase}"}
        headers = list(entry.headers.items())
        if entry.status == HTTPStatus.UNAUTHORIZED and not entry.headers:
            headers.append(("WWW-Authenticate", 'Bearer realm="crm", error="invalid_token"'))
        return _json_response(entry.status, body, headers)

    def _issue_token(self, headers: Message, body: bytes) -> _Response:
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise _error(400, "invalid_request", "send a form: application/x-www-form-urlencoded")
        form = {
            k: v[0]
            for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        grant = form.get("grant_type")
        if grant is None:
            raise _error(400, "invalid_request", "grant_type is required")
        if grant != "client_credentials":
            raise _error(400, "unsupported_grant_type", "only client_credentials is supported")
        authorization = headers.get("Authorization") or ""
        challenge: list[tuple[str, str]] = []
        if authorization[:6].lower() == "basic ":
            if "client_secret" in form:
                raise _error(400, "invalid_request", "use one client authentication method")
            challenge = [("WWW-Authenticate", 'Basic realm="crm"')]
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _error(
                    401, "invalid_client", "malformed Basic credentials", challenge
                ) from None
            user, _, password = decoded.partition(":")
            client_id, client_secret = unquote_plus(user), unquote_plus(password)
        else:
            client_id = form.get("client_id", "")
            client_secret = form.get("client_secret", "")
        id_ok = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        if not (id_ok and secret_ok):
            raise _error(401, "invalid_client", "unknown client or wrong secret", challenge)
        token = secrets.token_urlsafe(24)
        now = self._clock.monotonic()
        with self._lock:
            # Expired tokens are dropped here, so a long benchmark does not grow the table.
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + self.token_ttl
            self.tokens_issued += 1
        ttl = self.token_ttl
        payload = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
        }
        return _json_response(200, payload, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def _authenticate(self, headers: Message) -> None:
        authorization = headers.get("Authorization") or ""
        if authorization[:7].lower() != "bearer ":
            raise _error(
                401,
                "unauthorized",
                "a bearer token is required",
                [("WWW-Authenticate", 'Bearer realm="crm"')],
            )
        expiry = self._tokens.get(authorization[7:].strip())
        if expiry is None or self._clock.monotonic() >= expiry:
            raise _error(
                401,
                "invalid_token",
                "the access token is invalid or has expired",
                [("WWW-Authenticate", 'Bearer realm="crm", error="invalid_token"')],
            )

    def _maybe_fault(self) -> None:
        if not self.fault_rate:
            return
        with self._lock:
            roll, kind = self._fault_rng.random(), self._fault_rng.random()
        if roll >= self.fault_rate:
            return
        if kind < 0.5:
            raise _error(429, "rate_limited", "slow down", [("Retry-After", str(self.retry_after))])
        raise _error(503, "unavailable", "the CRM is briefly unavailable")

    def _limit(self, query: Mapping[str, list[str]], name: str, default: int) -> int:
        raw = query.get(name, [str(default)])[0]
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise _error(400, "invalid_request", f"{name} must be an integer in 1..{MAX_LIMIT}")
        return int(raw)

    def _offset(self, query: Mapping[str, list[str]], name: str, default: int) -> int:
        raw = query.get(name, [str(default)])[0]
        if not raw.isdigit():
            raise _error(400, "invalid_request", f"{name} must be a non-negative integer")
        return int(raw)

    def _page(self, resource: Resource, start: int, stop: int) -> list[dict[str, Any]]:
        stop = min(stop, self._counts[resource])
        return [self._current(resource, i) for i in range(start, stop)]

    def _list(self, resource: Resource, target: str, headers: Message) -> _Response:
        query = parse_qs(urlsplit(target).query)
        total = self._counts[resource]
        style = PAGINATION[resource]
        if style == "cursor":
            limit = self._limit(query, "limit", DEFAULT_LIMIT)
            start = self._decode_cursor(resource, query.get("cursor", [""])[0])
            stop = min(start + limit, total)
            next_cursor = self._encode_cursor(resource, stop) if stop < total else None
            data = self._page(resource, start, stop)
            return _json_response(200, {"data": data, "next_cursor": next_cursor})
        if style == "link":
            per_page = self._limit(query, "per_page", DEFAULT_LIMIT)
            page = self._offset(query, "page", 1) or 1
            start = (page - 1) * per_page
            last = max(1, (total + per_page - 1) // per_page)
            host = headers.get("Host") or self.origin.removeprefix("http://")
            url = f"http://{host}/v1/{resource}?per_page={per_page}&page="
            links = [f'<{url}1>; rel="first"', f'<{url}{last}>; rel="last"']
            if page < last:
                links.insert(0, f'<{url}{page + 1}>; rel="next"')
            data = self._page(resource, start, start + per_page)
            return _json_response(200, data, [("Link", ", ".join(links))])
        offset = self._offset(query, "offset", 0)
        limit = self._limit(query, "limit", DEFAULT_LIMIT)
        data = self._page(resource, offset, offset + limit)
        payload = {"data": data, "total": total, "offset": offset, "limit": limit}
        return _json_response(200, payload)

    def _encode_cursor(self, resource: Resource, index: int) -> str:
        raw = f"{resource}:{index}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_cursor(self, resource: Resource, cursor: str) -> int:
        if not cursor:
            return 0
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            name, _, index = raw.partition(":")
            if name == resource and index.isdigit():
                return int(index)
        except (binascii.Error, UnicodeDecodeError):
            pass
        raise _error(400, "invalid_cursor", "the cursor is not one this server issued")

    def _get(self, resource: Resource, index: int, headers: Message) -> _Response:
        etag = self._etag(resource, index)
        if etag in _tags(headers.get("If-None-Match")):
            return _Response(304, (("ETag", etag),))
        return _json_response(200, self._current(resource, index), [("ETag", etag)])

    def _patch(
        self, resource: Resource, index: int, target: str, headers: Message, body: bytes
    ) -> _Response:
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in {_JSON, "application/merge-patch+json"}:
            raise _error(
                415,
                "unsupported_media_type",
                "send application/merge-patch+json or application/json",
            )
        try:
            patch = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _error(400, "invalid_json", "the body is not JSON") from None
        if not isinstance(patch, dict):
            raise _error(400, "invalid_request", "a merge patch must be a JSON object")
        read_only = sorted(_READ_ONLY & patch.keys())
        if read_only:
            raise _error(400, "read_only_field", f"cannot change {', '.join(read_only)}")
        key = headers.get("Idempotency-Key")
        fingerprint = hashlib.sha256(f"PATCH {target}\n".encode() + body).hexdigest()
        with self._lock:
            if key is not None:
                stored = self._idempotency.get(key)
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        raise _error(
                            422,
                            "idempotency_key_reused",
                            "this Idempotency-Key was used for a different request",
                        )
                    replay = stored.response
                    return _Response(
                        replay.status,
                        (*replay.headers, ("Idempotent-Replayed", "true")),
                        replay.body,
                    )
            etag = self._etag(resource, index)
            if_match = headers.get("If-Match")
            if if_match is None:
                raise _error(428, "precondition_required", "send If-Match with the record's ETag")
            if if_match.strip() != "*" and etag not in _tags(if_match):
                raise _error(412, "precondition_failed", "the record changed; GET it again")
            version = self._versions.get((resource, index), 1) + 1
            updated = merge_patch(self._current(resource, index), patch)
            updated["version"] = version
            updated["updated_at"] = self._clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            self._overrides[(resource, index)] = updated
            self._versions[(resource, index)] = version
            self.writes_applied += 1
            response = _json_response(200, updated, [("ETag", self._etag(resource, index))])
            if key is not None:
                self._idempotency[key] = _Stored(fingerprint, response)
                self._applied_by_key[key] = self._applied_by_key.get(key, 0) + 1
        return response


def _tags(header: str | None) -> set[str]:
    """The strong entity tags in an ``If-Match``/``If-None-Match`` value (weak ones never match)."""
    if not header:
        return set()
    return {t.strip() for t in header.split(",") if not t.strip().startswith("W/")}


class _HTTPServer(ThreadingHTTPServer):
    crm: CRMServer
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), a DNS lookup per start.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a pager reuses one connection
    server_version = "ExampleCRM/1.0"
    disable_nagle_algorithm = True  # small responses must not wait for a delayed ACK
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        crm = self.server.crm
        with crm._lock:
            crm._connections.add(self.connection)

    def finish(self) -> None:
        crm = self.server.crm
        with crm._lock:
            crm._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines and errors are no business of the test output."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = self.headers.get("Content-Length") or "0"
        if self.headers.get("Transfer-Encoding") or not length.isdigit():
            self.close_connection = True
            refusal = _error(411, "length_required", "send a Content-Length")
            self._write(refusal.response)
            return
        body = self.rfile.read(int(length)) if int(length) else b""
        self._write(self.server.crm._handle(method, self.path, self.headers, body))

    def _write(self, response: _Response) -> None:
        # One write per response: headers and body leave in the same segment.
        phrase = self.responses.get(response.status, ("",))[0]
        lines = [f"HTTP/1.1 {response.status} {phrase}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        lines.append(f"Content-Length: {len(response.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + response.body)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the example CRM until interrupted."""
    parser = argparse.ArgumentParser(description="Serve the example CRM (see README.md).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records", type=int, default=1000, help="per resource")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--token-ttl", type=float, default=300.0, help="seconds")
    args = parser.parse_args(argv)
    # The secret comes from the environment and is never printed.
    client_id = os.environ.get("CRM_CLIENT_ID", "example-client")
    client_secret = os.environ.get("CRM_CLIENT_SECRET", "example-secret")
    crm = CRMServer(
        seed=args.seed,
        records=args.records,
        fault_rate=args.fault_rate,
        token_ttl=args.token_ttl,
        client_id=client_id,
        client_secret=client_secret,
        record_requests=False,
        host=args.host,
        port=args.port,
    )
    with crm:
        source = "CRM_CLIENT_SECRET" if "CRM_CLIENT_SECRET" in os.environ else "the default"
        print(f"example CRM: {crm.base_url} (tokens: {crm.token_url})", flush=True)
        print(f"client id {client_id!r}; client secret from {source}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
