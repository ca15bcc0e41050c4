"""Redaction: mask secrets before anything reaches a sink, a log, a span or an error.

What counts as secret: ``SecretStr``/``SecretBytes`` values anywhere; values
under keys that look sensitive (``password``, ``token``, ``authorization``,
...); and whatever the caller's own redactors say.  Audit records, telemetry
and handrail's error messages all go through one ``Redactor``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = ["DEFAULT_SENSITIVE_KEYS", "MASK", "Redactor"]

MASK = "***"
"""What a masked value is replaced with, wherever handrail masks one."""

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
"""Keys whose values are masked: matched case-insensitively, as substrings of a key."""

ValueRedactor = Callable[[str, Any], Any]
"""A user redactor: receives the dotted path and the value, returns the value to keep."""

# After a "://": where the authority surely ends (its userinfo ends at the last "@"
# before it: clients read ``u:p@ss@host`` as password ``p@ss``), the host and path,
# the query.  Each is one character class under one quantifier, matched forward
# from a known position: no nested or overlapping quantifiers, so no backtracking.
_AUTHORITY_END = re.compile(r"[/\s]")
_HOST_AND_PATH = re.compile(r"[^\s?#'\"]*")
_QUERY = re.compile(r"\?[^\s#'\"]*")

_FRAGMENT = re.compile(r"#[^\s'\"]*")

# Query parameter names that carry credentials without a sensitive-looking name
# (Google's ?key=, Azure SAS's sig=, OAuth's code=), matched whole; plus any name
# holding "signature" (X-Amz-Signature) or a sensitive key.
_SECRET_PARAMETERS = frozenset({"key", "sig", "code", "auth", "pass", "pwd"})

# Characters that repr, json.dumps and percent-encoding all write as they are.
_WRITTEN_AS_IS = re.compile(r"[A-Za-z0-9_.~-]*")

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

    def is_sensitive_parameter(self, name: str) -> bool:
        """True when a URL query (or fragment) parameter's value is masked in arguments.

        A sensitive key (``token``, ``api_key``, ...), a name holding
        ``signature``, or one of ``key``, ``sig``, ``code``, ``auth``,
        ``pass``, ``pwd``; percent-decoded, case-insensitive.
        """
        decoded = unquote_plus(name)
        if self.is_sensitive_key(decoded):
            return True
        folded = decoded.lower().replace("-", "_")
        return folded in _SECRET_PARAMETERS or "signature" in folded

    def mask_urls(self, text: str, found: list[str] | None = None) -> str:
        """``text`` with the credentials of every URL in it masked, the rest kept.

        For a value (an argument, a resource field): the ``user:password@`` of
        each URL, and the value of each query or fragment parameter that
        ``is_sensitive_parameter`` or that holds a URL itself.  The raw
        strings masked are appended to ``found``, when given.  Linear in
        ``len(text)``.
        """
        if "://" not in text:
            return text
        return _mask_urls(text, self.mask, self.is_sensitive_parameter, found, whole_query=False)

    def redact(self, value: Any, path: str = "") -> Any:
        """A copy of ``value`` with every secret masked (mappings become dicts).

        Strings holding URLs have their credentials masked (``mask_urls``).
        """
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
        if isinstance(value, str) and "://" in value:
            value = self.mask_urls(value)
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
        if isinstance(value, str) and "://" in value:
            masked_urls: list[str] = []
            self.mask_urls(value, masked_urls)
            found.update(masked_urls)
        if isinstance(value, str) and self._redactors:
            masked = value
            for redactor in self._redactors:
                masked = redactor(path, masked)
            if masked != value:
                found.add(value)

    def scrub_strings(self, value: Any, secrets: Iterable[str]) -> Any:
        """``value`` (plain data: dicts, lists, tuples) with each secret masked in every string.

        For a copy ``redact`` already masked: a secret masked under one key is
        masked wherever else it is repeated unmarked (a note quoting a token).
        Strings shorter than four characters are not secrets here (see ``scrub``).
        """
        ordered = sorted({s for s in secrets if len(s) >= _MIN_SCRUB_LENGTH}, key=len, reverse=True)
        return _scrub_strings(value, ordered, self.mask) if ordered else value

    def scrub(self, text: str, secrets: Iterable[str]) -> str:
        """``text`` with each secret, and URL credentials and query strings, masked.

        A secret is masked as written and as ``repr``, ``str`` of a container,
        ``json.dumps`` and percent-encoding write it (``p\\w``, ``p\\u00e4``,
        ``p%40w``): error messages quote arguments in those forms.

        URLs in error messages (httpx puts the full URL in them) often carry
        API keys in the query string or ``user:password@``: both are masked.
        """
        forms = {form for secret in set(secrets) for form in _written_forms(secret)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, self.mask)
        if "://" in text:
            text = _mask_urls(text, self.mask, self.is_sensitive_parameter, None, whole_query=True)
        return text


def _scrub_strings(value: Any, secrets: list[str], mask: str) -> Any:
    """``value`` with each of ``secrets`` (longest first) masked in every string."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, mask)
        return value
    if isinstance(value, dict):
        return {key: _scrub_strings(item, secrets, mask) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [_scrub_strings(item, secrets, mask) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _written_forms(secret: str) -> set[str]:
    """``secret`` as error messages may quote it: raw, ``repr``, JSON, percent-encoded."""
    if len(secret) < _MIN_SCRUB_LENGTH:
        return set()
    if _WRITTEN_AS_IS.fullmatch(secret):
        return {secret}  # every form below writes these characters as they are
    return {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }


def _mask_urls(
    text: str,
    mask: str,
    is_secret_name: Callable[[str], bool],
    found: list[str] | None,
    *,
    whole_query: bool,
) -> str:
    """``text`` with the userinfo of every URL in it masked, and its query (all of it, with
    ``whole_query``; else its secret parameters) and its fragment's secret parameters.

    A URL is whatever follows a ``://`` up to whitespace or a quote (the
    scheme before it is not required: masking too much is the safe side).
    Linear in ``len(text)``: each character is looked at a bounded number of
    times, whatever the input.  (A regular expression with the scheme in it
    retried from every position of a long run of letters: quadratic.)
    """
    out: list[str] = []
    done = 0  # text[:done] is in out
    authority_end = -1  # the first "/" or whitespace at or after the last lookup
    last_at = -1  # the last "@" before authority_end (-1: none)
    while True:
        at = text.find("://", done)
        if at < 0:
            break
        start = at + 3
        out.append(text[done:start])
        if authority_end < start:
            # Starts only grow, and no stop character lies between a start and
            # the stop found for an earlier one: reuse it and the last "@"
            # before it (each region is searched once: this stays linear).
            stop = _AUTHORITY_END.search(text, start)
            authority_end = len(text) if stop is None else stop.start()
            last_at = text.rfind("@", start, authority_end)
        if last_at > start:
            # Up to the *last* "@": urllib and httpx read ``u:p@ss@host`` as
            # password ``p@ss``; stopping at the first "@" would show ``ss``.
            userinfo_end = last_at
            userinfo = text[start:userinfo_end]
            _found(found, userinfo.partition(":")[2] or userinfo)
            out.append(f"{mask}@")
            start = userinfo_end + 1
        rest = _HOST_AND_PATH.match(text, start)
        assert rest is not None  # a starred class always matches
        out.append(rest.group())
        done = rest.end()
        query = _QUERY.match(text, done)
        if query is not None:
            if whole_query:
                out.append(f"?{mask}")
            else:
                out.append("?" + _masked_pairs(query.group()[1:], mask, is_secret_name, found))
            done = query.end()
        fragment = _FRAGMENT.match(text, done)
        if fragment is not None:  # e.g. #access_token=... in OAuth redirects
            out.append("#" + _masked_pairs(fragment.group()[1:], mask, is_secret_name, found))
            done = fragment.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _masked_pairs(
    query: str, mask: str, is_secret_name: Callable[[str], bool], found: list[str] | None
) -> str:
    """``a=1&token=S`` with the values of secret names, and of any holding a URL, masked."""
    if "=" not in query and not _holds_url(query):
        return query
    pairs = query.split("&")
    for i, pair in enumerate(pairs):
        name, equals, value = pair.partition("=")
        if not equals:
            if _holds_url(pair):
                pairs[i] = mask
                _found(found, pair)
        elif value and (is_secret_name(name) or _holds_url(value)):
            pairs[i] = f"{name}={mask}"
            _found(found, value)
    return "&".join(pairs)


def _holds_url(text: str) -> bool:
    return "://" in text or "%3a%2f%2f" in text.lower()


def _found(found: list[str] | None, raw: str) -> None:
    if found is not None:
        found.append(raw)
        decoded = unquote_plus(raw)
        if decoded != raw:
            found.append(decoded)
