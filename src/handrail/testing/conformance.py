"""The connector conformance kit: point it at your connector, pytest runs the checks.

Subclass ``ConnectorConformance`` in a test module, say how to build your
connector over a transport and how to call its operations, and pytest
collects these checks::

    class TestCRMConnector(ConnectorConformance):
        secrets = ["the-client-secret"]
        inputs = {"crm.contact.get": {"id": "c-1"}, "crm.contact.update": {...}}

        def make_connector(self, transport, **guard):
            return CRMConnector("https://crm.test", transport=transport, **guard)

        def transport(self):            # answers like the real system does
            return httpx.MockTransport(my_handler)  # or a transport to a local server

Checks: ``describe()`` is consistent with the declared operations; every
write declares a permission; the schemas are well-formed JSON Schema; no
secret leaks through a repr, a description, a log event, an audit record or
an error; HTTP failures are classified (transient vs permanent) as the retry
layer expects; in shadow mode no write reaches the transport; every write
request carries an ``Idempotency-Key``, a new one for each call; and a list
read is audited once, when it has been read to the end, never before.

The kit is for connectors that send HTTP through an httpx transport they
accept (``HTTPConnector`` does).  It needs ``pytest`` and ``structlog``'s
testing helpers, nothing else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import httpx
import structlog

from .._errors import ConfigurationError
from .._names import check_action
from ..audit import AuditLog
from ..connectors import BaseConnector, Operation
from ..guard import AsyncRecorded
from ..identity import Principal
from ..permissions import acting_as
from ..policy import Policy
from ..resilience import is_transient
from ..shadow import ShadowResult
from ._resilience import no_waits

__all__ = ["ConnectorConformance", "RecordingTransport", "check_json_schema"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RecordingTransport(httpx.BaseTransport):
    """Wraps a transport and records every request that reaches it (method, URL)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    @property
    def writes(self) -> list[httpx.Request]:
        """The requests that may change something on the server (token requests aside)."""
        return [
            r
            for r in self.requests
            if r.method.upper() not in _SAFE_METHODS and not _is_token_request(r)
        ]


class ConnectorConformance:
    """Checks any connector should pass.  Subclass it in your tests (see the module docstring).

    ``secrets`` are strings that must never appear in any output;
    ``inputs`` maps operation names to the input (fields) used to call them
    — operations without an entry are not called; ``principal`` acts in
    every call (``agent="conformance"`` by default).
    """

    secrets: ClassVar[Sequence[str]] = ()
    inputs: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    principal: ClassVar[Principal] = Principal(agent="conformance")

    # -- what the subclass provides ---------------------------------------------------

    def make_connector(self, transport: httpx.BaseTransport, **guard: Any) -> BaseConnector:
        """Your connector over ``transport``, with ``guard`` (policy=, audit=, shadow=...)."""
        raise NotImplementedError("ConnectorConformance: implement make_connector()")

    def transport(self) -> httpx.BaseTransport:
        """A transport that answers your connector's requests like the real system."""
        raise NotImplementedError("ConnectorConformance: implement transport()")

    # -- the checks (collected by pytest) ----------------------------------------------

    def test_describe_matches_the_declared_operations(self) -> None:
        connector = self._connector(self.transport())
        described = connector.describe()
        declared = type(connector).operations()
        assert [op["name"] for op in described.operations] == [op.name for op in declared]
        assert len({op.name for op in declared}) == len(declared), "operation names repeat"
        for op, entry in zip(declared, described.operations, strict=True):
            assert entry["kind"] == op.kind in ("read", "write")
            assert entry["permission"] == op.permission
            assert entry["input_schema"] == op.input_schema()
            assert entry["output_schema"] == op.output_schema()
        json.dumps(described.model_dump())  # a description is plain JSON

    def test_every_write_declares_a_permission(self) -> None:
        for op in self._operations():
            if op.kind == "write":
                try:
                    check_action(op.permission, f"{op.name}: a write's permission")
                except ConfigurationError as exc:
                    raise AssertionError(str(exc)) from None

    def test_schemas_are_json_schema(self) -> None:
        for op in self._operations():
            check_json_schema(op.input_schema(), f"{op.name} input")
            check_json_schema(op.output_schema(), f"{op.name} output")

    def test_no_secret_leaks(self) -> None:
        answers = _Failing(self.transport(), status=500)
        audit = AuditLog.memory()
        connector = self._connector(answers, audit=audit)
        seen: list[str] = [repr(connector), connector.describe().model_dump_json()]
        configured = structlog.is_configured()
        try:
            with structlog.testing.capture_logs() as logs, no_waits():
                for op, fields in self._callable():
                    try:
                        self._call(connector, op, fields)
                    except Exception as exc:  # failures are expected: their text is checked
                        seen.extend(_texts(exc))
        finally:
            if not configured:  # capture_logs leaves structlog marked as configured
                structlog.reset_defaults()
        seen.extend(json.dumps(event, default=repr) for event in logs)
        seen.extend(record.to_json() for record in audit.records())
        for secret in self.secrets:
            leaks = [text for text in seen if secret in text]
            assert not leaks, f"a secret appears in output: {leaks[0][:200]!r}"

    def test_http_failures_are_classified(self) -> None:
        reads = [(op, fields) for op, fields in self._callable() if op.kind == "read"]
        for status, transient in ((503, True), (429, True), (400, False), (404, False)):
            connector = self._connector(_Failing(self.transport(), status=status))
            for op, fields in reads:
                with no_waits():
                    error = _raised(lambda: self._call(connector, op, fields))  # noqa: B023
                if error is None:
                    raise AssertionError(f"{op.name}: HTTP {status} did not fail the call")
                if is_transient(error) is not transient:
                    read_as = "permanent" if transient else "transient"
                    raise AssertionError(
                        f"{op.name}: HTTP {status} raised {type(error).__name__}, which the "
                        f"retry layer reads as {read_as}"
                    )

    def test_shadow_mode_sends_no_write(self) -> None:
        recording = RecordingTransport(self.transport())
        connector = self._connector(recording, shadow=True)
        writes = [(op, fields) for op, fields in self._callable() if op.kind == "write"]
        for op, fields in writes:
            result = self._call(connector, op, fields)
            assert isinstance(result, ShadowResult), f"{op.name}: returned {type(result).__name__}"
        assert recording.writes == [], (
            f"shadow mode sent {recording.writes[0].method} {recording.writes[0].url}"
        )

    def test_each_write_call_sends_a_key_of_its_own(self) -> None:
        recording = RecordingTransport(self.transport())
        connector = self._connector(recording)
        for op, fields in self._callable():
            if op.kind != "write" or (op.idempotency_key and fields.get(op.idempotency_key)):
                continue  # a key the inputs give is meant to repeat
            before = len(recording.writes)
            for _ in range(2):
                _raised(lambda: self._call(connector, op, fields))  # noqa: B023
            keys = [r.headers.get("Idempotency-Key") for r in recording.writes[before:]]
            assert keys, f"{op.name}: no write request reached the transport"
            assert all(keys), f"{op.name}: a write request was sent without an Idempotency-Key"
            assert len(set(keys)) >= 2, (
                f"{op.name}: two calls were sent under one Idempotency-Key; the service "
                "would apply the second intended write as a retry of the first"
            )

    def test_a_list_read_is_audited_once_when_read_to_the_end(self) -> None:
        for op, fields in self._callable():
            if not op.many or op.is_async:
                continue  # the kit calls operations synchronously
            audit = AuditLog.memory()
            connector = self._connector(self.transport(), audit=audit)
            with acting_as(self.principal):
                records = getattr(connector, op.method)(**fields)
                assert list(audit.records()) == [], f"{op.name}: audited before it was read"
                _drain(records)
            outcomes = [(r.action, r.outcome) for r in audit.records()]
            assert outcomes == [(op.permission, "executed")], (
                f"{op.name}: read to the end, audited as {outcomes}"
            )

    # -- helpers ----------------------------------------------------------------------------

    def _operations(self) -> list[Operation]:
        return type(self._connector(self.transport())).operations()

    def _callable(self) -> Iterator[tuple[Operation, Mapping[str, Any]]]:
        for op in self._operations():
            if op.name in self.inputs:
                yield op, self.inputs[op.name]

    def _connector(self, transport: httpx.BaseTransport, **guard: Any) -> BaseConnector:
        everything = Policy.from_dict(
            {"rules": [{"id": "conformance", "effect": "allow", "actions": ["*"]}]}
        )
        guard.setdefault("policy", everything)
        return self.make_connector(transport, **guard)

    def _call(self, connector: BaseConnector, op: Operation, fields: Mapping[str, Any]) -> Any:
        """Call one operation as ``principal`` (async ones in an event loop of their own) and
        read a list read to its end."""
        with acting_as(self.principal):
            if not op.is_async:
                return _drain(getattr(connector, op.method)(**fields))

            async def call() -> Any:
                result = await getattr(connector, op.method)(**fields)
                if isinstance(result, AsyncRecorded):
                    return await result.collect()
                return result

            return asyncio.run(call())


class _Failing(httpx.BaseTransport):
    """Answers every request with ``status`` (a ``Retry-After: 0`` on 429 and 503)."""

    def __init__(self, inner: httpx.BaseTransport, *, status: int) -> None:
        self.inner = inner
        self.status = status

    def close(self) -> None:
        self.inner.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if _is_token_request(request):  # let OAuth2 token requests through
            return self.inner.handle_request(request)
        headers = {"Retry-After": "0"} if self.status in (429, 503) else {}
        return httpx.Response(self.status, headers=headers, json={"error": "conformance"})


def _is_token_request(request: httpx.Request) -> bool:
    """An OAuth2 token request: the connector's credentials, not one of its writes."""
    return request.url.path.rstrip("/").endswith(("/token", "/oauth/token"))


def _drain(result: Any) -> Any:
    """A list read's records, read to the end (its requests happen while iterating)."""
    if isinstance(result, Iterator):
        return list(result)
    return result


def _raised(call: Callable[[], object]) -> Exception | None:
    try:
        call()
    except Exception as exc:
        return exc
    return None


def _texts(exc: BaseException) -> list[str]:
    texts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.extend([str(current), repr(current)])
        current = current.__cause__ or current.__context__
    return texts


def check_json_schema(schema: Mapping[str, Any], where: str = "schema") -> None:
    """Assert ``schema`` is a well-formed object schema: JSON, typed, refs that resolve.

    A structural check (no validator library needed): the top level is an
    ``object`` with ``properties``, ``required`` names only declared
    properties, and every ``$ref`` points into ``$defs``.
    """
    json.dumps(schema)
    assert schema.get("type") == "object", f"{where}: the top level must be type object"
    properties = schema.get("properties", {})
    assert isinstance(properties, dict), f"{where}: properties must be a mapping"
    missing = set(schema.get("required", ())) - set(properties)
    assert not missing, f"{where}: required names undeclared properties {sorted(missing)}"
    definitions = schema.get("$defs", {})

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.removeprefix("#/$defs/") not in definitions:
                raise AssertionError(f"{where}: $ref {ref!r} does not resolve")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
