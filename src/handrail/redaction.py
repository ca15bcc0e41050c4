"""Redaction: mask secrets before anything reaches a sink, a log, a span or an error.

What counts as secret: ``SecretStr``/``SecretBytes`` values anywhere; values
under keys that look sensitive (``password``, ``token``, ``authorization``,
...); and whatever the caller's own redactors say.  Audit records, telemetry
and handrail's error messages all go through one ``Redactor``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = ["DEFAULT_SENSITIVE_KEYS", "MASK", "Redactor"]

MASK = "***"

DEFAULT_SENSITIVE_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "credential",
    "private_key",
    "session",
)

ValueRedactor = Callable[[str, Any], Any]
"""A user redactor: receives the dotted path and the value, returns the value to keep."""

# scheme, optional user:password@, host and path, optional ?query
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s@]+@)?([^\s?#'\"]*)(\?[^\s#'\"]*)?")

# Shorter strings are too likely to occur by chance in free text to scrub there.
_MIN_SCRUB_LENGTH = 4


class Redactor:
    """Masks secrets in nested data and in free text.

    ``sensitive_keys`` are matched case-insensitively as substrings of a key,
    with ``-`` read as ``_`` (so ``X-Api-Key`` and ``refresh_token`` match).
    ``redactors`` are called for every leaf value as ``fn(path, value)`` and may
    return a masked value.  Immutable and thread-safe.
    """

    __slots__ = ("_key_pattern", "_redactors", "mask")

    def __init__(
        self,
        *,
        sensitive_keys: Iterable[str] = DEFAULT_SENSITIVE_KEYS,
        redactors: Iterable[ValueRedactor] = (),
        mask: str = MASK,
    ) -> None:
        keys = [k.lower().replace("-", "_") for k in sensitive_keys]
        self._key_pattern = re.compile("|".join(map(re.escape, keys))) if keys else None
        self._redactors = tuple(redactors)
        self.mask = mask

    def is_sensitive_key(self, key: str) -> bool:
        """True when values under this key are masked."""
        if self._key_pattern is None:
            return False
        return self._key_pattern.search(key.lower().replace("-", "_")) is not None

    def redact(self, value: Any, path: str = "") -> Any:
        """A copy of ``value`` with every secret masked (mappings become dicts)."""
        if isinstance(value, SecretStr | SecretBytes):
            return self.mask
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                here = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and self.is_sensitive_key(key):
                    out[key] = self.mask
                else:
                    out[key] = self.redact(item, here)
            return out
        if isinstance(value, list | tuple | set | frozenset):
            items = [self.redact(item, f"{path}[{i}]") for i, item in enumerate(value)]
            return items if not isinstance(value, tuple) else tuple(items)
        for redactor in self._redactors:
            value = redactor(path, value)
        return value

    def secrets_in(self, value: Any) -> set[str]:
        """The raw secret strings inside ``value``, to scrub from free text."""
        found: set[str] = set()
        self._collect(value, found, sensitive=False, path="")
        return {s for s in found if len(s) >= _MIN_SCRUB_LENGTH}

    def _collect(self, value: Any, found: set[str], *, sensitive: bool, path: str) -> None:
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
            return
        if isinstance(value, SecretBytes):
            found.add(value.get_secret_value().decode(errors="replace"))
            return
        if isinstance(value, BaseModel):
            value = dict(value)
        if isinstance(value, Mapping):
            for key, item in value.items():
                here = f"{path}.{key}" if path else str(key)
                nested = sensitive or (isinstance(key, str) and self.is_sensitive_key(key))
                self._collect(item, found, sensitive=nested, path=here)
            return
        if isinstance(value, list | tuple | set | frozenset):
            for i, item in enumerate(value):
                self._collect(item, found, sensitive=sensitive, path=f"{path}[{i}]")
            return
        if sensitive and isinstance(value, str | bytes | int | float):
            found.add(value.decode(errors="replace") if isinstance(value, bytes) else str(value))
            return
        if isinstance(value, str) and self._redactors:
            masked = value
            for redactor in self._redactors:
                masked = redactor(path, masked)
            if masked != value:
                found.add(value)

    def scrub(self, text: str, secrets: Iterable[str]) -> str:
        """``text`` with each secret, and URL credentials and query strings, masked.

        URLs in error messages (httpx puts the full URL in them) often carry
        API keys in the query string or ``user:password@``: both are masked.
        """
        for secret in sorted(set(secrets), key=len, reverse=True):
            if len(secret) >= _MIN_SCRUB_LENGTH:
                text = text.replace(secret, self.mask)
        if "://" in text:
            text = _URL.sub(self._mask_url, text)
        return text

    def _mask_url(self, match: re.Match[str]) -> str:
        scheme, userinfo, rest, query = match.group(1, 2, 3, 4)
        return (
            f"{scheme}{self.mask + '@' if userinfo else ''}{rest}{'?' + self.mask if query else ''}"
        )
