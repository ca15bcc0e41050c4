"""OAuth2 client credentials: a token fetched from the token endpoint, cached, refreshed.

``OAuth2ClientCredentials`` is a ``CredentialProvider`` and an ``httpx.Auth``:
as the auth of a client it sends the cached token, fetches a new one shortly
before it expires, and refreshes once when the server answers 401.  The
client secret and the tokens never reach a repr, an error or a log event.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
from collections.abc import AsyncGenerator, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
import structlog
from pydantic import SecretStr

from .._errors import ConfigurationError, CredentialError
from ..clock import Clock, SystemClock
from ..redaction import Redactor
from ._credentials import Credential, apply_credential

__all__ = ["OAuth2ClientCredentials"]

_LOGGER = "handrail.connectors"


@dataclass(frozen=True, slots=True)
class _Token:
    credential: Credential
    refresh_at: dt.datetime | None  # None: no expiry given; refreshed only on a 401


class OAuth2ClientCredentials(httpx.Auth):
    """An OAuth2 access token from the client-credentials grant, kept fresh.

    ``get`` returns the cached token and fetches a new one ``refresh_margin``
    before it expires (or halfway through its life, if that is later, so a
    short-lived token is not fetched on every call).  One fetch runs at a
    time: concurrent callers, threads or tasks, wait for it and share its
    token.  As an ``httpx.Auth`` (``httpx.Client(auth=provider)``) it sends
    ``Authorization: Bearer`` and, when the server answers 401, fetches a new
    token once and resends the request once; a second 401 is returned to the
    caller.  The client authenticates with HTTP Basic
    (``auth_method="client_secret_basic"``, the default) or in the form body
    (``"client_secret_post"``).  Token fetches use ``client`` (an
    ``httpx.Client``; one is made, and closed by ``close()``, if omitted); in
    async code they run in a worker thread.  A failing token endpoint raises
    ``CredentialError`` with the URL (credentials masked) and the status,
    never the client secret.  ``for_user`` is ignored: a client-credentials
    token is the service's own identity.
    """

    # The request may be sent twice (after a 401), so its body is read first.
    requires_request_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        *,
        scope: str | Iterable[str] | None = None,
        audience: str | None = None,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        refresh_margin: dt.timedelta = dt.timedelta(seconds=60),
        clock: Clock | None = None,
        client: httpx.Client | None = None,
        name: str | None = None,
    ) -> None:
        if auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ConfigurationError(
                f"OAuth2ClientCredentials: unknown auth_method {auth_method!r} "
                "(expected client_secret_basic or client_secret_post)"
            )
        if refresh_margin < dt.timedelta(0):
            raise ConfigurationError("OAuth2ClientCredentials: refresh_margin must not be negative")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self.audience = audience
        self.auth_method = auth_method
        self.refresh_margin = refresh_margin
        self.name = name or f"oauth2 {client_id}"
        self._clock: Clock = clock or SystemClock()
        self._client = client
        self._owns_client = client is None
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self._shown_url = Redactor().scrub(token_url, ())

    @property
    def where(self) -> str:
        """``token endpoint URL`` (credentials in the URL masked)."""
        return f"token endpoint {self._shown_url}"

    def get(self, *, for_user: str | None = None) -> Credential:
        """The cached token, or a new one if it is due for refresh.  Blocks during a fetch."""
        token = self._token
        if token is not None and self._is_fresh(token):
            return token.credential
        with self._lock:
            token = self._token
            if token is not None and self._is_fresh(token):
                return token.credential
            return self._fetch()

    async def aget(self, *, for_user: str | None = None) -> Credential:
        """As ``get``; a fetch runs in a worker thread so the event loop keeps running."""
        token = self._token
        if token is not None and self._is_fresh(token):
            return token.credential
        return await asyncio.to_thread(self.get)

    def refresh(self, rejected: Credential | None = None) -> Credential:
        """Fetch a new token now, unless another caller already replaced ``rejected``."""
        with self._lock:
            token = self._token
            if (
                rejected is not None
                and token is not None
                and token.credential is not rejected
                and self._is_fresh(token)
            ):
                return token.credential
            return self._fetch()

    def close(self) -> None:
        """Close the HTTP client this provider made (never one passed in)."""
        with self._lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Send ``request`` with the token; on a 401, refresh once and resend once."""
        request.read()
        credential = self.get()
        apply_credential(request, credential)
        response = yield request
        if response.status_code == 401:
            self._log_rejected(request)
            apply_credential(request, self.refresh(credential))
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """As ``sync_auth_flow``, for ``httpx.AsyncClient``."""
        await request.aread()
        credential = await self.aget()
        apply_credential(request, credential)
        response = yield request
        if response.status_code == 401:
            self._log_rejected(request)
            apply_credential(request, await asyncio.to_thread(self.refresh, credential))
            yield request

    def _is_fresh(self, token: _Token) -> bool:
        return token.refresh_at is None or self._clock.now() < token.refresh_at

    def _fetch(self) -> Credential:
        # Called with the lock held: one fetch at a time.
        issued_at = self._clock.now()
        if self._client is None:
            self._client = httpx.Client()
        try:
            response = self._client.post(
                self.token_url,
                data=self._form(),
                headers=self._headers(),
                # Never the client's own auth: it may be this very provider.
                auth=httpx.Auth(),
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise self._failed(f"could not be reached ({type(exc).__name__})", status=None) from exc
        credential, lifetime = self._parse(response, issued_at)
        refresh_at = None
        if lifetime is not None:
            refresh_at = issued_at + max(lifetime - self.refresh_margin, lifetime / 2)
        self._token = _Token(credential, refresh_at)
        return credential

    def _form(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        if self.auth_method == "client_secret_post":
            form["client_id"] = self.client_id
            form["client_secret"] = self._client_secret.get_secret_value()
        return form

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.auth_method == "client_secret_basic":
            # RFC 6749 2.3.1: both parts are form-encoded before Basic encoding.
            secret = quote(self._client_secret.get_secret_value(), safe="")
            pair = f"{quote(self.client_id, safe='')}:{secret}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return headers

    def _parse(
        self, response: httpx.Response, issued_at: dt.datetime
    ) -> tuple[Credential, dt.timedelta | None]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200:
            error = body.get("error")
            # Only the RFC 6749 error code is shown: a description may echo what was sent.
            code = f" ({error})" if isinstance(error, str) and _is_error_code(error) else ""
            raise self._failed(f"answered {response.status_code}{code}", response.status_code)
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise self._failed(
                f"answered {response.status_code} without an access_token", response.status_code
            )
        token_type = body.get("token_type", "bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise self._failed(
                f"issued a {token_type!r} token; only bearer tokens are supported",
                response.status_code,
            )
        lifetime = _lifetime(body.get("expires_in"))
        expires_at = issued_at + lifetime if lifetime is not None else None
        return Credential(secret=SecretStr(access_token), expires_at=expires_at), lifetime

    def _failed(self, problem: str, status: int | None) -> CredentialError:
        error = CredentialError(self.name, self.where, f"unavailable: {self.where} {problem}")
        _log(
            "error",
            "handrail.credential.unavailable",
            credential=self.name,
            where=self.where,
            status=status,
            error=str(error),
        )
        return error

    def _log_rejected(self, request: httpx.Request) -> None:
        _log(
            "info",
            "handrail.credential.rejected",
            credential=self.name,
            url=Redactor().scrub(str(request.url), ()),
            status=401,
            action="refreshing the token once and resending",
        )

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials({self._shown_url!r}, client_id={self.client_id!r}, "
            f"name={self.name!r})"
        )


def _log(level: str, event: str, **fields: Any) -> None:
    # Like handrail's telemetry: silent until the application configures structlog,
    # so a library never prints to a stdout it does not own.
    if structlog.is_configured():
        getattr(structlog.get_logger(_LOGGER), level)(event, **fields)


def _is_error_code(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c.isalnum() or c in "_-." for c in text)


def _lifetime(expires_in: object) -> dt.timedelta | None:
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return dt.timedelta(seconds=expires_in)
    return None
