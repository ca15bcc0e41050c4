"""Credentials for connectors: where a secret comes from, and how it reaches a request.

A ``CredentialProvider`` answers ``get()`` (or ``await aget()``) with a
``Credential``: the secret as a ``SecretStr``, how to send it, and when it
expires.  Providers read the environment, mounted secret files, a callable
(a vault client) or an OAuth2 token endpoint; ``credential_auth`` turns any of
them into an ``httpx.Auth``.  A credential that is missing, expired or cannot
be fetched raises ``CredentialError`` naming the credential and where it was
looked for, before any request is sent.  See ``docs/credentials.md``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import inspect
import json
import os
import stat
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable
from urllib.parse import quote

import httpx
import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict, SecretStr, model_validator

from .._errors import ConfigurationError, CredentialError
from ..clock import Clock, SystemClock
from ..redaction import Redactor

__all__ = [
    "CallableCredentials",
    "Credential",
    "CredentialKind",
    "CredentialProvider",
    "EnvCredentials",
    "FileCredentials",
    "OAuth2ClientCredentials",
    "credential_auth",
]

CredentialKind: TypeAlias = Literal["bearer", "basic", "api_key", "header"]
"""How a secret is sent: ``Authorization: Bearer``, ``Authorization: Basic``, or a named header."""

_DEFAULT_API_KEY_HEADER = "X-API-Key"

_LOGGER = "handrail.connectors"

# A file changed within this many nanoseconds of being read may change again
# without its mtime moving (file systems stamp times from a coarse clock), so
# it is re-read until it is older than that: the "racy git" problem.
_RACY_NS = 2_000_000_000


class Credential(BaseModel):
    """A secret and how to send it; what a ``CredentialProvider`` returns.

    ``kind`` says how it is sent: ``bearer`` (``Authorization: Bearer``),
    ``basic`` (``Authorization: Basic``, needs ``username``), ``api_key`` (the
    ``header`` named, ``X-API-Key`` by default) or ``header`` (the ``header``
    named, which is then required).  ``expires_at`` is when it stops working,
    if known.  The secret never appears in a repr, a str or a validation error.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    secret: SecretStr
    username: str | None = None
    expires_at: AwareDatetime | None = None
    kind: CredentialKind = "bearer"
    header: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_api_key_header(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("kind") == "api_key" and not data.get("header"):
            return {**data, "header": _DEFAULT_API_KEY_HEADER}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Credential:
        if not self.secret.get_secret_value():
            raise ValueError("the secret is empty")
        if self.kind == "basic" and self.username is None:
            raise ValueError("kind 'basic' needs a username")
        if self.kind == "header" and not self.header:
            raise ValueError("kind 'header' needs the header's name in header=")
        if self.kind in ("bearer", "basic") and self.header is not None:
            raise ValueError(
                f"kind {self.kind!r} is sent in Authorization; header= is for 'api_key' or 'header'"
            )
        return self

    def is_expired(self, now: dt.datetime) -> bool:
        """True when ``expires_at`` is set and ``now`` (aware) is at or past it."""
        return self.expires_at is not None and now >= self.expires_at


@runtime_checkable
class CredentialProvider(Protocol):
    """Where a connector gets a credential.  Implement it to plug in any secret store.

    ``name`` names the credential in errors; ``where`` says where it is looked
    for, for a human (``environment variable CRM_TOKEN``).  ``for_user`` is
    the id of the user the agent acts for (``principal.on_behalf_of.id``): a
    provider configured with per-user credentials returns that user's, and
    raises ``CredentialError`` when there is none, never another's; one
    without per-user credentials returns its shared credential.  ``get`` and
    ``aget`` raise ``CredentialError`` for a missing or expired credential.
    """

    @property
    def name(self) -> str:
        """The credential's name, as errors show it."""
        ...

    @property
    def where(self) -> str:
        """Where the credential is looked for, as a human reads it."""
        ...

    def get(self, *, for_user: str | None = None) -> Credential:
        """The current credential (for ``for_user``, if per-user)."""
        ...

    async def aget(self, *, for_user: str | None = None) -> Credential:
        """The current credential, from async code."""
        ...


def _checked_user(name: str, where: str, user: str) -> str:
    # The user id picks a variable or a file name: "../admin" must not pick another's.
    if (
        not user
        or user in (".", "..")
        or any(c in user for c in "/\\=\0")
        or not user.isprintable()
    ):
        raise CredentialError(
            name,
            where,
            f"cannot be looked up for user {user!r}: a user id used to find a per-user "
            "credential must be non-empty and printable, without '/', '\\' or '='",
        )
    return user


def _for_user_note(user: str | None) -> str:
    return f" for user {user!r}" if user is not None else ""


def _check_kind(kind: str, header: str | None, username_given: bool, owner: str) -> None:
    if kind not in ("bearer", "basic", "api_key", "header"):
        raise ConfigurationError(
            f"{owner}: unknown kind {kind!r} (expected bearer, basic, api_key or header)"
        )
    if kind == "header" and not header:
        raise ConfigurationError(f"{owner}: kind 'header' needs the header's name in header=")
    if kind == "basic" and not username_given:
        raise ConfigurationError(f"{owner}: kind 'basic' needs a username")


class EnvCredentials:
    """A credential in an environment variable, read on every ``get`` (so a restart-free
    change of ``os.environ`` is seen).

    ``username_var`` names the variable holding the username (``kind="basic"``).
    ``per_user_var`` is a template such as ``"CRM_TOKEN_{user}"``: with
    ``for_user``, ``{user}`` is replaced by the user id, verbatim (no case
    folding, so two users never share a variable), and a missing variable
    raises ``CredentialError`` instead of falling back to ``var``.
    ``environ`` replaces ``os.environ`` (tests).  Thread-safe.
    """

    __slots__ = ("_environ", "header", "kind", "name", "per_user_var", "username_var", "var")

    def __init__(
        self,
        var: str,
        *,
        kind: CredentialKind = "bearer",
        header: str | None = None,
        username_var: str | None = None,
        per_user_var: str | None = None,
        environ: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        if not var:
            raise ConfigurationError("EnvCredentials: var must name an environment variable")
        if per_user_var is not None and "{user}" not in per_user_var:
            raise ConfigurationError(
                f"EnvCredentials: per_user_var must contain '{{user}}', got {per_user_var!r}"
            )
        _check_kind(kind, header, username_var is not None, f"EnvCredentials({var!r})")
        self.var = var
        self.kind: CredentialKind = kind
        self.header = header
        self.username_var = username_var
        self.per_user_var = per_user_var
        self.name = name or var
        self._environ = environ

    @property
    def where(self) -> str:
        """``environment variable VAR``."""
        return f"environment variable {self.var}"

    def get(self, *, for_user: str | None = None) -> Credential:
        """The credential from the environment; ``CredentialError`` if it is unset or empty."""
        environ = os.environ if self._environ is None else self._environ
        var, user = self.var, None
        if for_user is not None and self.per_user_var is not None:
            where = f"environment variable {self.per_user_var}"
            user = _checked_user(self.name, where, for_user)
            # str.replace, not format: a user id may contain braces.
            var = self.per_user_var.replace("{user}", user)
        secret = self._read(environ, var, user)
        username = None
        if self.username_var is not None:
            username = self._read(environ, self.username_var, None)
        return Credential(
            secret=SecretStr(secret), username=username, kind=self.kind, header=self.header
        )

    async def aget(self, *, for_user: str | None = None) -> Credential:
        """As ``get``; reading the environment does not block."""
        return self.get(for_user=for_user)

    def _read(self, environ: Mapping[str, str], var: str, user: str | None) -> str:
        where = f"environment variable {var}"
        value = environ.get(var)
        if value is None:
            raise CredentialError(
                self.name, where, f"missing{_for_user_note(user)}: {where} is not set"
            )
        if not value:
            raise CredentialError(
                self.name, where, f"empty{_for_user_note(user)}: {where} is empty"
            )
        return value

    def __repr__(self) -> str:
        per_user = f", per_user_var={self.per_user_var!r}" if self.per_user_var else ""
        return f"EnvCredentials({self.var!r}, kind={self.kind!r}, name={self.name!r}{per_user})"


@dataclass(frozen=True, slots=True)
class _FileStamp:
    """What identifies one version of a file without reading it."""

    device: int
    inode: int
    size: int
    mtime_ns: int


class FileCredentials:
    """A credential in a file, such as a mounted Kubernetes or Docker secret.

    The file is ``os.stat``-ed on every ``get`` and re-read when its inode,
    size or modification time changed, so a rotated secret (a rewritten
    file, or a symlink swapped by Kubernetes) is picked up without a restart.
    A trailing newline is stripped.  ``per_user_dir`` holds one file per user,
    named by the user id: with ``for_user``, that file is read and a missing
    one raises ``CredentialError`` instead of falling back to ``path``.
    ``username`` is the username for ``kind="basic"``.  Thread-safe.
    """

    __slots__ = ("_cache", "_lock", "header", "kind", "name", "path", "per_user_dir", "username")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: CredentialKind = "bearer",
        header: str | None = None,
        username: str | None = None,
        per_user_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
    ) -> None:
        self.path = Path(path)
        _check_kind(kind, header, username is not None, f"FileCredentials({str(self.path)!r})")
        self.kind: CredentialKind = kind
        self.header = header
        self.username = username
        self.per_user_dir = Path(per_user_dir) if per_user_dir is not None else None
        self.name = name or self.path.name
        self._cache: dict[Path, tuple[_FileStamp, Credential]] = {}
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """``file PATH``."""
        return f"file {self.path}"

    def get(self, *, for_user: str | None = None) -> Credential:
        """The credential in the file, re-read if it changed; ``CredentialError`` if it
        is missing, empty or unreadable."""
        path, user = self.path, None
        if for_user is not None and self.per_user_dir is not None:
            user = _checked_user(self.name, f"directory {self.per_user_dir}", for_user)
            path = self.per_user_dir / user
        where = f"file {path}"
        note = _for_user_note(user)
        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise CredentialError(
                self.name, where, f"missing{note}: {where} does not exist"
            ) from None
        except OSError as exc:
            raise self._unreadable(where, note, exc) from exc
        if not stat.S_ISREG(info.st_mode):
            raise CredentialError(
                self.name, where, f"unreadable{note}: {where} is not a regular file"
            )
        stamp = _FileStamp(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        read_at = time.time_ns()
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise CredentialError(
                self.name, where, f"missing{note}: {where} does not exist"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unreadable(where, note, exc) from exc
        secret = text.rstrip("\r\n")
        if not secret:
            raise CredentialError(self.name, where, f"empty{note}: {where} is empty")
        credential = Credential(
            secret=SecretStr(secret), username=self.username, kind=self.kind, header=self.header
        )
        with self._lock:
            if stamp.mtime_ns < read_at - _RACY_NS:
                self._cache[path] = (stamp, credential)
            else:
                # Written moments ago: a rewrite within the same clock tick would
                # keep this stamp, so this read is not trusted for the next one.
                self._cache.pop(path, None)
        return credential

    async def aget(self, *, for_user: str | None = None) -> Credential:
        """As ``get``; reading a small local file does not block for long."""
        return self.get(for_user=for_user)

    def _unreadable(self, where: str, note: str, exc: BaseException) -> CredentialError:
        return CredentialError(
            self.name, where, f"unreadable{note}: {where} cannot be read ({type(exc).__name__})"
        )

    def __repr__(self) -> str:
        per_user = f", per_user_dir={str(self.per_user_dir)!r}" if self.per_user_dir else ""
        return (
            f"FileCredentials({str(self.path)!r}, kind={self.kind!r}, name={self.name!r}{per_user})"
        )


CredentialResult: TypeAlias = Credential | SecretStr | str | None
"""What a ``CallableCredentials`` function returns; ``None`` means it has no credential."""


class CallableCredentials:
    """A credential from your own function: a vault client, a secrets manager, a cache.

    ``fn(for_user)`` returns a ``Credential``, a ``SecretStr`` or ``str`` (sent
    as ``kind``/``header``/``username`` say), or ``None`` when it has no
    credential (raised as ``CredentialError``); it may be ``async def``, and
    then only ``aget`` can call it.  An expired ``Credential`` raises
    ``CredentialError``.  A sync ``fn`` runs on the event loop in ``aget``:
    keep it fast (cache inside it) or make it async.  Exceptions ``fn`` raises
    pass through unchanged.
    """

    __slots__ = ("_clock", "_fn", "_is_async", "header", "kind", "name", "username", "where")

    def __init__(
        self,
        fn: Callable[[str | None], CredentialResult | Awaitable[CredentialResult]],
        *,
        name: str,
        where: str | None = None,
        kind: CredentialKind = "bearer",
        header: str | None = None,
        username: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not name:
            raise ConfigurationError("CallableCredentials: name= must name the credential")
        _check_kind(kind, header, username is not None, f"CallableCredentials({name!r})")
        self._fn = fn
        self._is_async = inspect.iscoroutinefunction(fn)
        self.name = name
        self.where = where or f"callable {getattr(fn, '__qualname__', type(fn).__name__)}"
        self.kind: CredentialKind = kind
        self.header = header
        self.username = username
        self._clock: Clock = clock or SystemClock()

    def get(self, *, for_user: str | None = None) -> Credential:
        """Call ``fn(for_user)``; ``TypeError`` if ``fn`` is async (use ``aget``)."""
        if self._is_async:
            raise self._async_only()
        result = self._fn(for_user)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: close it so it does not warn
            raise self._async_only()
        return self._accept(result, for_user)

    async def aget(self, *, for_user: str | None = None) -> Credential:
        """Call ``fn(for_user)`` and await it if it is async."""
        result = self._fn(for_user)
        if inspect.isawaitable(result):
            result = await result
        return self._accept(result, for_user)

    def _async_only(self) -> TypeError:
        return TypeError(
            f"CallableCredentials({self.name!r}) wraps an async function: "
            "use `await provider.aget()` (an httpx.AsyncClient does)"
        )

    def _accept(self, result: object, for_user: str | None) -> Credential:
        note = _for_user_note(for_user)
        if result is None:
            raise CredentialError(
                self.name, self.where, f"missing{note}: {self.where} returned no credential"
            )
        if isinstance(result, str | SecretStr):
            secret = result if isinstance(result, SecretStr) else SecretStr(result)
            if not secret.get_secret_value():
                raise CredentialError(
                    self.name, self.where, f"empty{note}: {self.where} returned an empty secret"
                )
            return Credential(
                secret=secret, username=self.username, kind=self.kind, header=self.header
            )
        if isinstance(result, Credential):
            return _unexpired(result, self.name, self.where, self._clock.now(), note)
        raise TypeError(
            f"CallableCredentials({self.name!r}): {self.where} returned a "
            f"{type(result).__name__}; expected a Credential, a SecretStr, a str or None"
        )

    def __repr__(self) -> str:
        return f"CallableCredentials(name={self.name!r}, where={self.where!r})"


def _unexpired(
    credential: Credential, name: str, where: str, now: dt.datetime, note: str = ""
) -> Credential:
    if credential.is_expired(now):
        assert credential.expires_at is not None
        raise CredentialError(
            name,
            where,
            f"expired{note}: the credential from {where} expired at "
            f"{credential.expires_at.isoformat()}",
        )
    return credential


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
        _apply(request, credential)
        response = yield request
        if response.status_code == 401:
            self._log_rejected(request)
            _apply(request, self.refresh(credential))
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """As ``sync_auth_flow``, for ``httpx.AsyncClient``."""
        await request.aread()
        credential = await self.aget()
        _apply(request, credential)
        response = yield request
        if response.status_code == 401:
            self._log_rejected(request)
            _apply(request, await asyncio.to_thread(self.refresh, credential))
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


def _apply(request: httpx.Request, credential: Credential) -> None:
    """Put ``credential`` on ``request`` as its ``kind`` says."""
    secret = credential.secret.get_secret_value()
    if credential.kind == "bearer":
        request.headers["Authorization"] = f"Bearer {secret}"
    elif credential.kind == "basic":
        pair = f"{credential.username}:{secret}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    else:
        assert credential.header is not None  # the model requires it for these kinds
        request.headers[credential.header] = secret


UserSource: TypeAlias = str | Callable[[], str | None] | None
"""A user id, a function returning the current one (read per request), or ``None``."""


class _ProviderAuth(httpx.Auth):
    """Applies a provider's credential to each request, fetching it anew each time."""

    def __init__(self, provider: CredentialProvider, for_user: UserSource) -> None:
        self._provider = provider
        self._for_user = for_user

    def _user(self) -> str | None:
        return self._for_user() if callable(self._for_user) else self._for_user

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        _apply(request, self._provider.get(for_user=self._user()))
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        _apply(request, await self._provider.aget(for_user=self._user()))
        yield request

    def __repr__(self) -> str:
        return f"credential_auth({self._provider!r})"


def credential_auth(provider: CredentialProvider, *, for_user: UserSource = None) -> httpx.Auth:
    """An ``httpx.Auth`` that sends ``provider``'s credential with every request.

    The credential is fetched for each request, so a rotated secret is used
    from the next request on; a missing or expired one raises
    ``CredentialError`` before anything is sent.  ``for_user`` is a user id or
    a function returning the current one (e.g. from the acting principal).
    An ``OAuth2ClientCredentials`` is returned as it is, keeping its
    refresh-on-401.
    """
    if isinstance(provider, OAuth2ClientCredentials) and for_user is None:
        return provider
    return _ProviderAuth(provider, for_user)
