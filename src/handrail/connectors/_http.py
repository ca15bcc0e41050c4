"""``HTTPConnector``: a connector for an HTTP API in a few dozen lines, on httpx.

The author writes operations that call ``self.get_json``, ``self.send`` or
``self.paginate_*`` (``aget_json``, ``asend``, ``apaginate_*`` in async
operations).  The operation runs under the guard (``BaseConnector``); what
is left here are transport concerns, each in httpx's own mechanism::

    send_request ── retried by the guard's RetryPolicy, per request (a write only
    │               with the call's idempotency key, sent as ``Idempotency-Key``)
    └▶ httpx: auth ─▶ request hook (span event; shadow mode stops a write here)
          ─▶ HostTransport: the host's token bucket ─▶ the host's breaker
             ─▶ current_call().attempted() ─▶ the transport (the network, or a test's)
          ─▶ response hook (span event); a 429/503 Retry-After penalizes the host's bucket

Retries are per request, not per operation, so a lazy list read retries the
page that failed, not the pages before it; the guard then does not retry the
operation as a whole (``retries_each_request``), and the audit record counts
every request that reached the transport.

The hooks and the shadow-mode stop are in ``_shadow_stop``, the transports in
``_transport``, the reading of response bodies in ``_responses``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from .._errors import ConfigurationError, ConnectorError
from ..audit import AuditLog
from ..escalation import EscalationRouter
from ..guard import Guard
from ..permissions import current_principal
from ..policy import Policy
from ..resilience import CircuitBreaker, CircuitBreakers, RetryPolicy, current_idempotency_key
from ..shadow import in_shadow
from ..telemetry import Telemetry
from ._connector import BaseConnector
from ._credentials import CredentialProvider, credential_auth
from ._pagination import (
    AsyncPages,
    Page,
    Pages,
    acursor_pages,
    alink_pages,
    aoffset_pages,
    cursor_pages,
    link_pages,
    offset_pages,
    shown_url,
)
from ._quarantine import QuarantineSink
from ._ratelimit import RateLimits, TokenBucket, default_rate_limits
from ._responses import checked, describe, json_body, pluck
from ._shadow_stop import (
    PLAIN_HEADERS,
    SAFE_METHODS,
    MarkedAuth,
    aon_request,
    aon_response,
    on_request,
    on_response,
)
from ._transport import AsyncHostTransport, HostTransport, host_key

__all__ = ["SAFE_METHODS", "HTTPConnector", "Records"]

IDEMPOTENCY_HEADER = "Idempotency-Key"

Records = str | Callable[[Any], Any] | None
"""Where a page's records are in its JSON body: a dotted key (``"data.items"``), a
function of the body, or ``None`` for the body itself."""

_DEFAULT_RETRY = RetryPolicy()


class HTTPConnector(BaseConnector):
    """The base of connectors to HTTP APIs: base URL, auth, rate limit, retries, breaker, spans.

    ``credentials`` is a ``CredentialProvider`` (its credential is fetched
    for each request, for the acting principal's ``on_behalf_of`` user) or
    any ``httpx.Auth`` (e.g. ``OAuth2ClientCredentials``).  ``timeout`` is
    seconds, a ``timedelta`` or an ``httpx.Timeout``.  ``rate_limit`` is a
    ``RateLimits`` (one bucket per host, shared with every connector given
    it), a ``TokenBucket`` (for every host this connector calls), a number of
    requests per second (a bucket of this connector's own), or ``None`` for
    ``default_rate_limits()``.  Each request is retried by the guard's
    ``retry`` (for the guard this connector builds: ``retry=``, a default
    ``RetryPolicy()``; ``None`` for no retries).  The circuit breaker of each
    host comes from the guard's ``breakers``.  ``transport`` /
    ``async_transport`` replace httpx's (tests pass ``httpx.MockTransport`` or
    a recording one; pass ``httpx.HTTPTransport(proxy=...)`` to go through a
    proxy: the connector does not read ``HTTPS_PROXY``).  The other keywords
    are ``BaseConnector``'s.

    In shadow mode a write request (any method but GET, HEAD and OPTIONS)
    is not sent: it stops after the auth flow, and the operation returns a
    ``ShadowResult`` holding the request, its secret headers masked.

    The clients are made on first use; ``close()`` / ``aclose()`` (or
    ``with`` / ``async with``) release their connections.  An async client
    belongs to the event loop that first used it.  Thread-safe.
    """

    def __init__(
        self,
        base_url: str | httpx.URL,
        *,
        credentials: CredentialProvider | httpx.Auth | None = None,
        timeout: float | dt.timedelta | httpx.Timeout = 10.0,
        headers: Mapping[str, str] | None = None,
        rate_limit: RateLimits | TokenBucket | float | None = None,
        retry: RetryPolicy | None = _DEFAULT_RETRY,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        name: str | None = None,
        guard: Guard | None = None,
        policy: Policy | None = None,
        audit: AuditLog | None = None,
        breakers: CircuitBreakers | None = None,
        telemetry: Telemetry | None = None,
        escalations: EscalationRouter | None = None,
        shadow: bool | None = None,
        quarantine: QuarantineSink | str | os.PathLike[str] | None = None,
    ) -> None:
        if guard is not None and retry is not _DEFAULT_RETRY and retry is not None:
            raise ConfigurationError(
                f"{type(self).__name__}: pass either guard= (with its retry=) or retry=, not both"
            )
        super().__init__(
            name=name,
            guard=guard,
            policy=policy,
            audit=audit,
            retry=None if guard is not None else retry,
            breakers=breakers,
            telemetry=telemetry,
            escalations=escalations,
            shadow=shadow,
            quarantine=quarantine,
        )
        self.base_url = httpx.URL(str(base_url))
        self.timeout = _timeout(timeout)
        self.headers = dict(headers or {})
        self._auth = _auth(credentials, type(self).__name__)
        self._rate_limit = _rate_limit(rate_limit, type(self).__name__)
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None
        self._lock = threading.Lock()

    # -- the connector's hooks ---------------------------------------------------------

    def breaker_key(self) -> str | None:
        """None: each request goes through the breaker of its host instead (see ``breaker_for``)."""
        return None

    def shadow_aware(self) -> bool:
        """True: in shadow mode writes stop in httpx, just before the transport."""
        return True

    def retries_each_request(self) -> bool:
        """True: each request is retried on its own (``send_request``), not the operation."""
        return True

    def sends_idempotency_key(self) -> bool:
        """True: a write request carries the call's key as ``Idempotency-Key``."""
        return True

    # -- the clients -------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """The ``httpx.Client`` (made on first use) with the base URL, auth, timeout and hooks."""
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    client = self._client = httpx.Client(
                        base_url=self.base_url,
                        auth=self._auth,
                        timeout=self.timeout,
                        headers=self.headers,
                        transport=HostTransport(self._transport or httpx.HTTPTransport(), self),
                        event_hooks={"request": [on_request], "response": [on_response]},
                    )
        return client

    @property
    def async_client(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` (made on first use), as ``client`` for async code."""
        client = self._async_client
        if client is None:
            with self._lock:
                client = self._async_client
                if client is None:
                    client = self._async_client = httpx.AsyncClient(
                        base_url=self.base_url,
                        auth=self._auth,
                        timeout=self.timeout,
                        headers=self.headers,
                        transport=AsyncHostTransport(
                            self._async_transport or httpx.AsyncHTTPTransport(), self
                        ),
                        event_hooks={"request": [aon_request], "response": [aon_response]},
                    )
        return client

    def close(self) -> None:
        """Close the sync client (a later request opens a new one) and what the base opened."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        super().close()

    async def aclose(self) -> None:
        """Close both clients."""
        with self._lock:
            client, self._async_client = self._async_client, None
        if client is not None:
            await client.aclose()
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- what a request goes through -------------------------------------------------

    def bucket_for(self, url: httpx.URL) -> TokenBucket:
        """The rate limiter's bucket for the host of ``url``."""
        limit = self._rate_limit
        if isinstance(limit, TokenBucket):
            return limit
        return (limit if limit is not None else default_rate_limits()).for_host(host_key(url))

    def breaker_for(self, url: httpx.URL) -> CircuitBreaker | None:
        """The guard's circuit breaker for the host of ``url``, or None without ``breakers``."""
        breakers = self.guard.breakers
        return breakers.for_key(host_key(url)) if breakers is not None else None

    def _prepare(self, request: httpx.Request) -> str | None:
        """Add the idempotency key to a write; return it (None for a read or without a key)."""
        if request.method in SAFE_METHODS:
            key = None
        else:
            key = request.headers.get(IDEMPOTENCY_HEADER) or current_idempotency_key()
            if key is not None:
                request.headers[IDEMPOTENCY_HEADER] = key
        request.extensions[PLAIN_HEADERS] = frozenset(request.headers.keys())
        return key

    def _retry_action(self, request: httpx.Request) -> str:
        return f"{self.name} {request.method} {host_key(request.url)}"

    def send_request(self, request: httpx.Request) -> httpx.Response:
        """Send a request built with ``self.client.build_request``, as ``send`` does."""
        key = self._prepare(request)
        client = self.client
        is_write = request.method not in SAFE_METHODS
        if is_write and in_shadow():
            return client.send(request)  # stops in the request hook: nothing to retry

        def attempt() -> httpx.Response:
            return checked(client.send(request))

        retry = self.guard.retry
        if retry is None:
            return attempt()
        return retry.call(
            attempt,
            action=self._retry_action(request),
            is_write=is_write,
            idempotency_key=key,
            telemetry=self.guard.telemetry,
        )

    async def asend_request(self, request: httpx.Request) -> httpx.Response:
        """``send_request`` for async code (build with ``self.async_client.build_request``)."""
        key = self._prepare(request)
        client = self.async_client
        is_write = request.method not in SAFE_METHODS
        if is_write and in_shadow():
            return await client.send(request)

        async def attempt() -> httpx.Response:
            return checked(await client.send(request))

        retry = self.guard.retry
        if retry is None:
            return await attempt()
        return await retry.acall(
            attempt,
            action=self._retry_action(request),
            is_write=is_write,
            idempotency_key=key,
            telemetry=self.guard.telemetry,
        )

    # -- request helpers for connector authors --------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (``path`` relative to the base URL) and return its response.

        Rate limited, through the host's breaker, retried by the guard's
        ``RetryPolicy`` (a write only with the current idempotency key, sent as
        ``Idempotency-Key``); each attempt is counted in the guarded call's
        record.  Raises
        ``httpx.HTTPStatusError`` for a non-2xx answer and httpx's transport
        errors, or ``WriteNotRetried`` / ``CircuitOpen`` from the resilience
        layer.  In shadow mode a write raises ``ShadowIntercepted`` instead of
        being sent (the guard turns it into a ``ShadowResult``).
        """
        request = self.client.build_request(
            method.upper(), path, params=params, json=json, content=content, headers=headers
        )
        return self.send_request(request)

    async def asend(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """``send`` for async code."""
        request = self.async_client.build_request(
            method.upper(), path, params=params, json=json, content=content, headers=headers
        )
        return await self.asend_request(request)

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``path`` and return its JSON body (None for an empty one); as ``send``."""
        return json_body(self.send("GET", path, params=params, headers=headers), self.name)

    async def aget_json(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """``get_json`` for async code."""
        return json_body(await self.asend("GET", path, params=params, headers=headers), self.name)

    def paginate_cursor(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        records: Records = "items",
        next_cursor: str | Callable[[Any], str | None] = "next_cursor",
        cursor_param: str = "cursor",
        headers: Mapping[str, str] | None = None,
    ) -> Pages[Any]:
        """The records of a cursor-paginated GET, fetched lazily page by page.

        Each page is ``GET path?{params}&{cursor_param}={cursor}`` (no cursor on
        the first); its records are at ``records`` in the JSON body and the
        next cursor at ``next_cursor`` (dotted keys, or functions of the body);
        the read ends at a page without one.  Return the result from a list
        operation as it is: each record's source (the page URL) then reaches
        the quarantine.
        """

        def fetch(cursor: str | None) -> Page[Any]:
            query = _with(params, cursor_param, cursor)
            response = self.send("GET", path, params=query, headers=headers)
            return self._cursor_page(response, records, next_cursor)

        return cursor_pages(fetch)

    def apaginate_cursor(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        records: Records = "items",
        next_cursor: str | Callable[[Any], str | None] = "next_cursor",
        cursor_param: str = "cursor",
        headers: Mapping[str, str] | None = None,
    ) -> AsyncPages[Any]:
        """``paginate_cursor`` for async code: ``async for record in ...``."""

        async def fetch(cursor: str | None) -> Page[Any]:
            query = _with(params, cursor_param, cursor)
            response = await self.asend("GET", path, params=query, headers=headers)
            return self._cursor_page(response, records, next_cursor)

        return acursor_pages(fetch)

    def paginate_offset(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        records: Records = "items",
        limit: int = 100,
        offset_param: str = "offset",
        limit_param: str = "limit",
        start: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> Pages[Any]:
        """The records of an offset-paginated GET, fetched lazily page by page.

        Each page is ``GET path?{params}&{offset_param}=..&{limit_param}={limit}``;
        the read ends at a page with fewer than ``limit`` records.
        """

        def fetch(offset: int, size: int) -> Page[Any]:
            query = _with(_with(params, offset_param, offset), limit_param, size)
            response = self.send("GET", path, params=query, headers=headers)
            return Page(self._records(response, records), source=shown_url(response.url))

        return offset_pages(fetch, limit=limit, start=start)

    def apaginate_offset(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        records: Records = "items",
        limit: int = 100,
        offset_param: str = "offset",
        limit_param: str = "limit",
        start: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncPages[Any]:
        """``paginate_offset`` for async code."""

        async def fetch(offset: int, size: int) -> Page[Any]:
            query = _with(_with(params, offset_param, offset), limit_param, size)
            response = await self.asend("GET", path, params=query, headers=headers)
            return Page(self._records(response, records), source=shown_url(response.url))

        return aoffset_pages(fetch, limit=limit, start=start)

    def paginate_links(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        records: Records = None,
        headers: Mapping[str, str] | None = None,
    ) -> Pages[Any]:
        """The records of a GET paginated by ``Link: <...>; rel="next"`` headers, fetched lazily.

        The first page is ``GET path?{params}``; each next page is the URL its
        predecessor links to (same origin only).  ``records`` says where the
        records are in a page's JSON body (default: the body is the list).
        """
        first = self.client.build_request("GET", path, params=params).url

        def fetch(url: str) -> httpx.Response:
            return self.send("GET", url, headers=headers)

        return link_pages(first, fetch, records=lambda response: self._records(response, records))

    def apaginate_links(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        records: Records = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncPages[Any]:
        """``paginate_links`` for async code."""
        first = self.async_client.build_request("GET", path, params=params).url

        async def fetch(url: str) -> httpx.Response:
            return await self.asend("GET", url, headers=headers)

        return alink_pages(first, fetch, records=lambda response: self._records(response, records))

    def _records(self, response: httpx.Response, where: Records) -> Sequence[Any]:
        found = pluck(json_body(response, self.name), where)
        if not isinstance(found, list):
            raise ConnectorError(
                self.name,
                f"{shown_url(response.url)}: expected a list of records at "
                f"{describe(where)}, got {type(found).__name__}",
            )
        return found

    def _cursor_page(
        self,
        response: httpx.Response,
        where: Records,
        next_cursor: str | Callable[[Any], str | None],
    ) -> Page[Any]:
        body = json_body(response, self.name)
        following = pluck(body, next_cursor)
        if following is not None and not isinstance(following, str | int):
            raise ConnectorError(
                self.name,
                f"{shown_url(response.url)}: the next cursor at {describe(next_cursor)} "
                f"is a {type(following).__name__}, not a string",
            )
        return Page(
            self._records(response, where),
            next_cursor=None if following is None else str(following),
            source=shown_url(response.url),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={shown_url(self.base_url)!r})"


# -- configuration ----------------------------------------------------------------------------


def _timeout(timeout: float | dt.timedelta | httpx.Timeout) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, dt.timedelta):
        return httpx.Timeout(timeout.total_seconds())
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        return httpx.Timeout(float(timeout))
    raise ConfigurationError(
        f"HTTPConnector: timeout={timeout!r} must be seconds > 0, a timedelta or an httpx.Timeout"
    )


def _acting_user() -> str | None:
    """The id of the user the acting principal works for: whose delegated credential to use."""
    principal = current_principal()
    if principal is None or principal.on_behalf_of is None:
        return None
    return principal.on_behalf_of.id


def _auth(credentials: CredentialProvider | httpx.Auth | None, owner: str) -> httpx.Auth | None:
    if credentials is None:
        return None
    if isinstance(credentials, httpx.Auth):
        return MarkedAuth(credentials)
    if isinstance(credentials, CredentialProvider):
        return MarkedAuth(credential_auth(credentials, for_user=_acting_user))
    raise ConfigurationError(
        f"{owner}: credentials must be a CredentialProvider or an httpx.Auth, "
        f"got {type(credentials).__name__}"
    )


def _rate_limit(
    limit: RateLimits | TokenBucket | float | None, owner: str
) -> RateLimits | TokenBucket | None:
    if limit is None or isinstance(limit, RateLimits | TokenBucket):
        return limit
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        return TokenBucket(limit, burst=max(1, int(limit)) if math.isfinite(limit) else 1)
    raise ConfigurationError(
        f"{owner}: rate_limit must be RateLimits, a TokenBucket, requests per second or None, "
        f"got {type(limit).__name__}"
    )


# -- queries ------------------------------------------------------------------------------


def _with(params: Mapping[str, Any] | None, name: str, value: object) -> dict[str, Any]:
    query = dict(params or {})
    if value is not None:
        query[name] = value
    return query
