"""Credentials for connectors: what a secret is, who provides it, and how it reaches a request.

A ``CredentialProvider`` answers ``get()`` (or ``await aget()``) with a
``Credential``: the secret as a ``SecretStr``, how to send it, and when it
expires.  Providers read the environment, mounted secret files or a callable
(a vault client) (``_providers``), or an OAuth2 token endpoint (``_oauth2``);
``credential_auth`` turns any of them into an ``httpx.Auth``.  A credential
that is missing, expired or cannot be fetched raises ``CredentialError``
naming the credential and where it was looked for, before any request is
sent.  See ``docs/credentials.md``.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, SecretStr, model_validator

from .._errors import ConfigurationError, CredentialError

__all__ = [
    "Credential",
    "CredentialKind",
    "CredentialProvider",
    "UserSource",
    "apply_credential",
    "check_kind",
    "checked_user",
    "credential_auth",
    "for_user_note",
]

CredentialKind: TypeAlias = Literal["bearer", "basic", "api_key", "header"]
"""How a secret is sent: ``Authorization: Bearer``, ``Authorization: Basic``, or a named header."""

_DEFAULT_API_KEY_HEADER = "X-API-Key"


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


def checked_user(name: str, where: str, user: str) -> str:
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


def for_user_note(user: str | None) -> str:
    return f" for user {user!r}" if user is not None else ""


def check_kind(kind: str, header: str | None, username_given: bool, owner: str) -> None:
    if kind not in ("bearer", "basic", "api_key", "header"):
        raise ConfigurationError(
            f"{owner}: unknown kind {kind!r} (expected bearer, basic, api_key or header)"
        )
    if kind == "header" and not header:
        raise ConfigurationError(f"{owner}: kind 'header' needs the header's name in header=")
    if kind == "basic" and not username_given:
        raise ConfigurationError(f"{owner}: kind 'basic' needs a username")


def apply_credential(request: httpx.Request, credential: Credential) -> None:
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
        apply_credential(request, self._provider.get(for_user=self._user()))
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        apply_credential(request, await self._provider.aget(for_user=self._user()))
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
    from ._oauth2 import OAuth2ClientCredentials  # here: _oauth2 builds on this module

    if isinstance(provider, OAuth2ClientCredentials) and for_user is None:
        return provider
    return _ProviderAuth(provider, for_user)
