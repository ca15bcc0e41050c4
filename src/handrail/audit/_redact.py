"""How a record's parts are redacted: ``Redactor.redact``, with a fast path for plain data.

Every append redacts its arguments, resource and context, and, when
something was masked, scrubs the raw secrets from the reason and the error
message.  For plain data (str-keyed dicts, lists and scalars, with
``SecretStr``/``SecretBytes`` leaves) and a ``Redactor`` with no value
redactors of its own, the only things to mask are secret leaves, values
under sensitive keys and the credentials of URLs in strings.  The fast path
asks about each key once (the answer is cached), copies nothing unless
something is masked, and collects the raw secrets as it masks them.
Anything else goes through ``Redactor.redact`` and ``Redactor.secrets_in``
themselves.  That both give the same results is a property test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretBytes, SecretStr

from .._encoding import is_plain, plain
from ..redaction import Redactor

__all__ = ["NOT_PLAIN", "PartRedactor", "Redacted"]

_CACHE_LIMIT = 10_000
_SCALARS = frozenset({str, int, float, bool, type(None)})
_SECRETS = frozenset({SecretStr, SecretBytes})
NOT_PLAIN: Any = object()
"""What ``PartRedactor.fast`` returns for a part that is not plain data: take ``slow``."""

Redacted = tuple[Any, Any, "list[str] | None", bool]
"""(the part as plain data, its redacted copy, the raw secrets masked in it (None: not
collected, ask ``Redactor.secrets_in``), whether the copy *is* the part, unchanged)."""


class PartRedactor:
    """Redacts the parts of records for one ``AuditLog``.  Thread-safe (the cache only grows)."""

    __slots__ = ("_fast", "_mask", "_sensitive", "fast", "redactor", "standard_scrub")

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._mask = redactor.mask
        # The fast path is exact only for handrail's own Redactor without value
        # redactors: a subclass, or a user redactor, may mask anything.
        self._fast = type(redactor) is Redactor and not redactor._redactors
        # What prepare calls on each part, the fast path itself: ``(part, found)``
        # -> the part, its masked copy, or NOT_PLAIN (then ``slow``).  None:
        # call ``redact``, as a subclass overriding it asks.
        self.fast: Callable[[Any, list[str]], Any] | None = (
            self._walk if self._fast and type(self) is PartRedactor else None
        )
        # handrail's own Redactor.scrub, which changes nothing without a secret or a URL.
        self.standard_scrub = type(redactor) is Redactor
        self._sensitive: dict[str, bool] = {}

    def redact(self, value: Any, path: str) -> Redacted:
        """Redact one part (``path`` is its name: ``args``, ``resource``, ``context``)."""
        if self._fast:
            found: list[str] = []
            redacted = self._walk(value, found)
            if redacted is not NOT_PLAIN:
                return value, redacted, found, redacted is value
        return self.slow(value, path)

    def slow(self, value: Any, path: str) -> Redacted:
        """``redact`` through ``Redactor.redact`` itself, for what the fast path cannot take."""
        if not is_plain(value):
            value = plain(value)
        redacted = self.redactor.redact(value, path)
        if not is_plain(redacted):
            redacted = plain(redacted)
        return value, redacted, None, False

    def _walk(self, value: Any, found: list[str]) -> Any:
        """``value`` with its secrets masked (``value`` itself if it has none), collecting
        them in ``found``; or ``NOT_PLAIN``."""
        kind = type(value)
        if kind is dict:
            copy: dict[str, Any] | None = None
            sensitive = self._sensitive
            for key, item in value.items():
                is_sensitive = sensitive.get(key)
                if is_sensitive is None:
                    if type(key) is not str:
                        return NOT_PLAIN
                    is_sensitive = self.redactor.is_sensitive_key(key)
                    if len(sensitive) < _CACHE_LIMIT:
                        sensitive[key] = is_sensitive
                item_kind = type(item)
                if is_sensitive:
                    if not _collect(item, found):
                        return NOT_PLAIN
                    new = self._mask
                elif item_kind in _SCALARS:
                    if item_kind is not str or "://" not in item:
                        continue
                    new = self.redactor.mask_urls(item, found)
                    if new == item:
                        continue
                else:
                    new = self._walk(item, found)
                    if new is item:
                        continue
                    if new is NOT_PLAIN:
                        return NOT_PLAIN
                if copy is None:
                    copy = dict(value)
                copy[key] = new
            return value if copy is None else copy
        if kind is list:
            items = []
            changed = False
            for item in value:
                item_kind = type(item)
                if item_kind in _SCALARS:
                    if item_kind is str and "://" in item:
                        new = self.redactor.mask_urls(item, found)
                        changed = changed or new != item
                        items.append(new)
                    else:
                        items.append(item)
                    continue
                new = self._walk(item, found)
                if new is NOT_PLAIN:
                    return NOT_PLAIN
                changed = changed or new is not item
                items.append(new)
            return items if changed else value
        if kind in _SCALARS:
            if kind is str and "://" in value:
                new = self.redactor.mask_urls(value, found)
                return value if new == value else new
            return value
        if kind in _SECRETS:
            _collect(value, found)
            return self._mask
        return NOT_PLAIN


def _collect(value: Any, found: list[str]) -> bool:
    """Add the raw secrets in ``value`` (all of it is secret) to ``found``; False if not plain.

    As ``Redactor.secrets_in`` reads a value under a sensitive key.
    """
    kind = type(value)
    if kind is str:
        found.append(value)
    elif kind is int or kind is float or kind is bool:
        found.append(str(value))
    elif kind is SecretStr:
        found.append(value.get_secret_value())
    elif kind is SecretBytes:
        found.append(value.get_secret_value().decode(errors="replace"))
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _collect(item, found):
                return False
    elif kind is list:
        return all(_collect(item, found) for item in value)
    elif value is not None:
        return False
    return True
