"""PostgreSQL URLs without their passwords: for reprs, errors and logs.

A URL's password (in ``user:password@``, a ``?password=`` parameter or a
``key=value`` connection string) never appears in what ``PostgresStore``
shows: ``redact_url`` masks it in the URL, ``scrub`` wherever else it appears.
"""

from __future__ import annotations

import re

from ..redaction import MASK, Redactor

__all__ = ["KEY_VALUE_PASSWORD", "redact_url", "scrub"]

_REDACTOR = Redactor()
KEY_VALUE_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&][^=&#]*password[^=&#]*=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its password masked, for reprs, errors and logs.

    Masks the password in ``user:password@`` (as libpq reads it: up to the
    first ``@`` before any ``/``), in ``?password=`` parameters and in
    ``key=value`` connection strings.  The user, host and database stay.
    """
    masked = rf"\g<1>{MASK}"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return KEY_VALUE_PASSWORD.sub(masked, url)
    end = len(rest)
    for stop in "/?":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    at = rest.rfind("@", 0, end)
    if at != -1:
        user, colon, _ = rest[:at].partition(":")
        rest = f"{user}{':' + MASK if colon else ''}{rest[at:]}"
    return f"{scheme}://{_QUERY_PASSWORD.sub(masked, rest)}"


def _password(url: str) -> str | None:
    """The password in ``url``, raw and percent-decoded forms, if it has one."""
    _, sep, rest = url.partition("://")
    if not sep:
        found = KEY_VALUE_PASSWORD.search(url)
        return None if found is None else found.group(2).strip("'")
    end = min([i for i in (rest.find("/"), rest.find("?")) if i != -1] or [len(rest)])
    at = rest.rfind("@", 0, end)
    if at == -1:
        return None
    _, colon, password = rest[:at].partition(":")
    return password if colon and password else None


def scrub(text: str, url: str) -> str:
    """``text`` on one line, ``url``'s password (raw or decoded) and URL credentials masked."""
    from urllib.parse import unquote

    secrets: set[str] = set()
    password = _password(url)
    if password:
        secrets |= {password, unquote(password)}
    for found in _QUERY_PASSWORD.finditer(url):
        value = url[found.end(1) : found.end()]
        secrets |= {value, unquote(value)}
    return " ".join(_REDACTOR.scrub(text, secrets).split())
