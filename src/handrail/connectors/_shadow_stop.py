"""The shadow-mode stop: a write stops in httpx's request hook, before the transport.

It raises ``ShadowIntercepted`` with ``shadow_request(request)``: the request
it would have sent, its secrets masked.  Which headers are secrets is known
because ``MarkedAuth`` notes the headers a request had before its auth flow
ran.  The same event hooks note each request and its response on the current
span.
"""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
from opentelemetry import trace

from ..redaction import MASK, Redactor
from ..shadow import ShadowIntercepted, ShadowRequest, in_shadow
from ._pagination import shown_url

__all__ = [
    "PLAIN_HEADERS",
    "SAFE_METHODS",
    "SHADOW_HEADERS_SHOWN",
    "MarkedAuth",
    "aon_request",
    "aon_response",
    "on_request",
    "on_response",
    "shadow_request",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that read: sent in shadow mode, retried without an idempotency key."""

_REDACTOR = Redactor()
# Request extensions: httpx hands them to the transport, which ignores names it does not know.
PLAIN_HEADERS = "handrail.plain_headers"  # header names set before the auth flow ran
_STARTED = "handrail.started"


class MarkedAuth(httpx.Auth):
    """Runs another auth flow, first noting which headers the request had before it.

    Whatever the flow adds (``Authorization``, an API-key header of any
    name) is then known to be a credential, and masked in shadow requests.
    """

    def __init__(self, auth: httpx.Auth) -> None:
        self.auth = auth

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        _mark(request)
        yield from self.auth.sync_auth_flow(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        _mark(request)
        flow = self.auth.async_auth_flow(request)
        try:
            following = await anext(flow)
            while True:
                response = yield following
                try:
                    following = await flow.asend(response)
                except StopAsyncIteration:
                    break
        finally:
            await flow.aclose()

    def __repr__(self) -> str:
        return repr(self.auth)


def _mark(request: httpx.Request) -> None:
    if PLAIN_HEADERS not in request.extensions:
        request.extensions[PLAIN_HEADERS] = frozenset(request.headers.keys())


# -- the event hooks: span events, and the shadow-mode stop -----------------------------------


def on_request(request: httpx.Request) -> None:
    """Stop a write in shadow mode; otherwise note the request on the current span."""
    span = trace.get_current_span()
    if in_shadow() and request.method not in SAFE_METHODS:
        intercepted = shadow_request(request)
        if span.is_recording():
            span.add_event(
                "handrail.http.shadowed",
                {"http.request.method": request.method, "url.full": intercepted.url},
            )
        raise ShadowIntercepted(intercepted)
    request.extensions[_STARTED] = time.perf_counter()
    if span.is_recording():
        span.add_event(
            "handrail.http.request",
            {"http.request.method": request.method, "url.full": shown_url(request.url)},
        )


def on_response(response: httpx.Response) -> None:
    """Note the response's status and the time it took on the current span (never the body)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    request = response.request
    started = request.extensions.get(_STARTED)
    attributes: dict[str, str | int | float] = {
        "http.request.method": request.method,
        "url.full": shown_url(request.url),
        "http.response.status_code": response.status_code,
    }
    if isinstance(started, float):
        attributes["handrail.http.duration_ms"] = (time.perf_counter() - started) * 1000
    span.add_event("handrail.http.response", attributes)


async def aon_request(request: httpx.Request) -> None:
    on_request(request)


async def aon_response(response: httpx.Response) -> None:
    on_response(response)


SHADOW_HEADERS_SHOWN = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "content-encoding",
        "content-language",
        "content-length",
        "content-type",
        "expect",
        "host",
        "idempotency-key",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-unmodified-since",
        "pragma",
        "prefer",
        "traceparent",
        "tracestate",
        "transfer-encoding",
        "user-agent",
    }
)
"""Headers whose values a ``ShadowRequest`` shows: known to carry no secret.  Every other
header's value is masked, whatever its name (``X-Auth-Key``, ``Ocp-Apim-Subscription-Key``)."""


def shadow_request(request: httpx.Request) -> ShadowRequest:
    """The request a shadowed write would have sent: secrets in its URL, headers and body masked.

    Fails closed: every header's value is masked except those in
    ``SHADOW_HEADERS_SHOWN`` (``Content-Type``, ``Accept``, ``If-Match``,
    ``Idempotency-Key``, ...), and even those when the auth flow added them.
    The masked values are also masked wherever else they appear: in the URL
    (whose credentials and secret-looking query values are masked anyway)
    and in the body.
    """
    plain = request.extensions.get(PLAIN_HEADERS)
    headers: dict[str, str] = {}
    secrets: set[str] = set()
    for name, value in request.headers.items():
        added_by_auth = plain is not None and name not in plain
        if added_by_auth or name.lower() not in SHADOW_HEADERS_SHOWN:
            headers[name] = MASK
            # "Bearer <token>", "Basic <base64>": the credential alone may appear elsewhere,
            # and in a URL percent-encoded.
            for raw in (value, value.rpartition(" ")[2]):
                secrets.update((raw, quote_plus(raw, safe=""), quote(raw, safe="")))
        else:
            headers[name] = value
    # Longest first, so no secret is half-masked by a shorter one inside it.
    ordered = sorted((s for s in secrets if len(s) >= _MIN_SHADOW_SECRET), key=len, reverse=True)
    return ShadowRequest(
        method=request.method,
        url=_without(shown_url(request.url), ordered),
        headers=headers,
        body=_scrubbed(_REDACTOR.redact(_body(request)), ordered),
    )


# As Redactor.secrets_in: shorter values are too likely to occur by chance.
_MIN_SHADOW_SECRET = 4


def _without(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _scrubbed(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` (plain JSON data) with every secret masked inside its strings."""
    if not secrets:
        return value
    if isinstance(value, str):
        return _without(value, secrets)
    if isinstance(value, list):
        return [_scrubbed(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    return value


def _body(request: httpx.Request) -> Any:
    content = request.read()
    if not content:
        return None
    text = content.decode("utf-8", errors="replace")
    if "json" in request.headers.get("content-type", ""):
        try:
            return jsonlib.loads(text)
        except ValueError:
            return text
    return text
