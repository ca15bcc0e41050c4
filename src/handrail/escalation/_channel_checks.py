"""Channel arguments, checked when a channel is built: each error names the argument.

What a channel is given comes from configuration; a wrong value is refused
with a ``ConfigurationError`` saying which argument and what it takes, never
echoing a secret (URLs are shown with credentials masked).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from email.utils import parseaddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from .._errors import ConfigurationError
from ..clock import Clock, SystemClock
from ..redaction import MASK, Redactor
from ..resilience import RetryPolicy
from ._model import _NAME_RE

if TYPE_CHECKING:
    import httpx

__all__ = [
    "check_address",
    "check_client",
    "check_clock",
    "check_deciders",
    "check_headers",
    "check_http_url",
    "check_name",
    "check_recipients",
    "check_retry",
    "check_seconds",
    "looks_like_address",
    "optional_secret",
    "required_secret",
    "secret_bytes",
]

_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "idempotency-key",
        "user-agent",
        "x-handrail-timestamp",
        "x-handrail-signature",
    }
)
_REDACTOR = Redactor()


def check_name(name: object, owner: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigurationError(
            f"{owner}: name must start with a letter or digit and use only letters, digits "
            f"and _ . : @ -, got {name!r}"
        )
    return name


def optional_secret(value: object, owner: str, argument: str) -> SecretStr | None:
    return None if value is None else required_secret(value, owner, argument)


def required_secret(value: object, owner: str, argument: str) -> SecretStr:
    if isinstance(value, str):
        value = SecretStr(value)
    if not isinstance(value, SecretStr):
        # The value itself is not shown: it may be the secret in the wrong wrapper.
        raise ConfigurationError(
            f"{owner}: {argument} must be a str or pydantic.SecretStr, got {type(value).__name__}"
        )
    if not value.get_secret_value():
        raise ConfigurationError(f"{owner}: {argument} is empty")
    return value


def secret_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        if not value:
            raise ConfigurationError("verify_signature: secret is empty")
        return value
    return required_secret(value, "verify_signature", "secret").get_secret_value().encode()


def check_seconds(value: object, owner: str, argument: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(
            f"{owner}: {argument} must be a datetime.timedelta or seconds, got {value!r}"
        )
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "positive"
        raise ConfigurationError(f"{owner}: {argument} must be {bound}, got {value!r}")
    return seconds


def check_http_url(
    url: object, owner: str, argument: str, *, path_is_secret: bool
) -> tuple[str, list[str]]:
    """The URL as shown (credentials masked), and the strings to scrub from errors."""
    if isinstance(url, str):
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme in ("http", "https") and parts.hostname and port != -1:
            host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
            if port is not None:
                host = f"{host}:{port}"
            secrets = [url, parts.query, parts.password or "", parts.username or ""]
            if path_is_secret:
                return f"{parts.scheme}://{host}/{MASK}", [*secrets, parts.path]
            return _REDACTOR.scrub(url, ()), secrets
    shown = _REDACTOR.scrub(url, ()) if isinstance(url, str) and not path_is_secret else "..."
    raise ConfigurationError(
        f"{owner}: {argument} must be an http:// or https:// URL with a host, got {shown!r}"
    )


def check_headers(headers: object, owner: str) -> dict[str, SecretStr]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"{owner}: headers must be a mapping of names to values")
    out: dict[str, SecretStr] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not name.isascii() or ":" in name:
            raise ConfigurationError(f"{owner}: headers: {name!r} is not a header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigurationError(
                f"{owner}: headers: {name!r} is set by the channel and cannot be overridden"
            )
        secret = required_secret(value, owner, f"headers[{name!r}]")
        if any(c in secret.get_secret_value() for c in "\r\n"):
            raise ConfigurationError(f"{owner}: headers[{name!r}] contains a line break")
        out[name] = secret
    return out


def check_retry(retry: object, owner: str) -> RetryPolicy | None:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(
            f"{owner}: retry must be a handrail.resilience.RetryPolicy or None, got {retry!r}"
        )
    return retry


def check_client(client: object, owner: str) -> httpx.AsyncClient | None:
    if client is None:
        return None
    import httpx

    if not isinstance(client, httpx.AsyncClient):
        raise ConfigurationError(
            f"{owner}: client must be an httpx.AsyncClient, got {type(client).__name__}"
        )
    return client


def check_clock(clock: object, owner: str) -> Clock:
    if clock is None:
        return SystemClock()
    if not callable(getattr(clock, "now", None)):
        raise ConfigurationError(f"{owner}: clock must have a now() method, got {clock!r}")
    return clock  # type: ignore[return-value]  # checked structurally above


def looks_like_address(value: str) -> bool:
    address = parseaddr(value)[1]
    return "@" in address and not any(c in value for c in "\r\n")


def check_address(value: object, owner: str, argument: str) -> str:
    if not isinstance(value, str) or not looks_like_address(value):
        raise ConfigurationError(f"{owner}: {argument} must be an email address, got {value!r}")
    return value


def check_deciders(deciders: object, owner: str) -> dict[str, str]:
    """Decider id -> the address of that person alone (where their own decision link goes)."""
    if deciders is None:
        return {}
    if not isinstance(deciders, Mapping):
        raise ConfigurationError(
            f"{owner}: deciders must map decider ids to addresses, got {type(deciders).__name__}"
        )
    checked: dict[str, str] = {}
    for who, address in deciders.items():
        if not isinstance(who, str) or not who or who.startswith("group:"):
            raise ConfigurationError(
                f"{owner}: deciders: key {who!r} is not a user's decider id (links go to users)"
            )
        checked[who] = check_address(address, owner, f"deciders[{who!r}]")
    return checked


def check_recipients(recipients: object, owner: str) -> tuple[str, ...] | dict[str, str] | None:
    if recipients is None:
        return None
    if isinstance(recipients, Mapping):
        mapped: dict[str, str] = {}
        for who, address in recipients.items():
            if not isinstance(who, str):
                raise ConfigurationError(f"{owner}: recipients: key {who!r} is not a str")
            mapped[who] = check_address(address, owner, f"recipients[{who!r}]")
        if not mapped:
            raise ConfigurationError(f"{owner}: recipients is empty; pass None to use addresses")
        return mapped
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, Sequence):
        raise ConfigurationError(
            f"{owner}: recipients must be a list of addresses, a mapping or None, "
            f"got {type(recipients).__name__}"
        )
    if not recipients:
        raise ConfigurationError(f"{owner}: recipients is empty; pass None to use addresses")
    return tuple(check_address(a, owner, f"recipients[{i}]") for i, a in enumerate(recipients))
