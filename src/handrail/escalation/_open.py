"""``open_store`` and ``upgrade_store``: an escalation store from one string, as the CLI takes it.

A ``postgresql://`` (or ``postgres://``) URL, or a libpq ``key=value``
connection string (``host=db port=5432 dbname=app user=app password=...``,
recognised by its first keyword), means ``PostgresStore``; any other string
or path is an SQLite file.  What looks like a URL but is not a PostgreSQL
one (``mysql://...``, ``sqlite:/x``) or a mistyped one (``postgresql:/db``,
``postgres:db``) is refused rather than taken for an odd file name, which
would create a file named after it, password and all.  ``redact_store`` and
``scrub_store`` keep a location's password out of whatever is printed.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ..redaction import MASK, Redactor

if TYPE_CHECKING:
    from ._postgres import PostgresStore
    from ._sqlite import SQLiteStore

__all__ = [
    "STORE_ENV",
    "check_store",
    "is_postgres_url",
    "open_store",
    "redact_store",
    "scrub_store",
    "upgrade_store",
]

STORE_ENV = "HANDRAIL_ESCALATION_STORE"
"""The environment variable ``open_store(None)`` reads: a path or a PostgreSQL URL."""

_REDACTOR = Redactor()
_PLACEHOLDER = "\x00store\x00"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_POSTGRES = ("postgresql://", "postgres://")
# The keywords of libpq's connection strings (PostgreSQL docs, "Parameter Key
# Words"); a string starting with one of them and "=" is a connection string.
_CONNINFO_KEYWORDS = (
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
)
_CONNINFO = re.compile(rf"\s*(?:{'|'.join(_CONNINFO_KEYWORDS)})\s*=")
# postgresql:/db, postgres:db, PostgreSQL:\\db: a PostgreSQL URL with its slashes mistyped.
_MISTYPED_POSTGRES = re.compile(r"\s*(postgres(?:ql)?:[/\\]*)(?!//)", re.IGNORECASE)
# sqlite:/x, file:/x: a scheme of two letters or more, then ":/" (one letter is a drive).
_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")
# user:password@ in something that is not a URL (a path, a URL missing its slashes).
_USERINFO = re.compile(r"(?<![^\s/\\])([^\s/\\:@]*):[^\s/\\@]+@")


def open_store(
    target: str | os.PathLike[str] | None,
    *,
    schema: str | None = None,
    create: bool = True,
) -> SQLiteStore | PostgresStore:
    """Open the escalation store ``target`` names: a PostgreSQL URL or an SQLite file path.

    ``None`` reads the ``HANDRAIL_ESCALATION_STORE`` environment variable.
    ``schema`` (PostgreSQL only, default ``public``) holds the tables;
    ``create`` creates or migrates them (see ``SQLiteStore`` and
    ``PostgresStore``).  Either is an ``EscalationStore`` and a context
    manager that closes it.  Raises ``ConfigurationError`` for an unknown URL
    scheme, a ``schema`` given for an SQLite file, or a store that cannot be opened.
    """
    location = _location(target)
    if _is_postgres(location):
        from ._postgres import PostgresStore

        return PostgresStore(location, schema=schema or "public", create=create)
    _no_schema(location, schema)
    from ._sqlite import SQLiteStore

    return SQLiteStore(location, create=create)


def upgrade_store(
    target: str | os.PathLike[str] | None,
    *,
    schema: str | None = None,
    timeout: timedelta = timedelta(seconds=10),
) -> int:
    """Create or migrate the store's tables (``handrail db upgrade``); returns steps applied.

    Idempotent: 0 when the tables are current.  ``timeout`` bounds the wait
    to connect (PostgreSQL) or for another writer (SQLite).
    """
    location = _location(target)
    if _is_postgres(location):
        from ._postgres import upgrade_schema

        return upgrade_schema(location, schema or "public", connect_timeout=timeout)
    _no_schema(location, schema)
    from ._sqlite import upgrade_sqlite

    return upgrade_sqlite(location, busy_timeout=timeout)


def is_postgres_url(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` is a PostgreSQL URL or ``key=value`` string rather than a file path."""
    return _is_postgres(os.fspath(target))


def check_store(target: str | os.PathLike[str] | None) -> tuple[str, bool]:
    """The store's location and whether it is PostgreSQL, checked without connecting.

    Raises ``ConfigurationError`` (its message free of the password) for an
    empty location, a URL scheme that is not PostgreSQL's, a mistyped
    PostgreSQL URL, or a PostgreSQL location libpq cannot parse (checked only
    when psycopg, the ``postgres`` extra, is installed; without it, opening
    the store raises ``ConfigurationError`` naming the extra).
    """
    location = _location(target)
    postgres = _is_postgres(location)
    if postgres:
        _parse_conninfo(location)
    return location, postgres


def redact_store(location: str) -> str:
    """``location`` with any password masked: in a URL's ``user:password@`` or
    ``?password=``, or a ``password=`` keyword.  Safe for SQLite paths too."""
    from ._postgres_urls import redact_url

    if _URL.match(location.lstrip()):
        return redact_url(location)
    # A path, or something mistyped: mask password= keywords, user:password@, and
    # any URL's credentials in it.
    masked = _USERINFO.sub(rf"\g<1>:{MASK}@", _mask_keywords(location))
    return _REDACTOR.scrub(masked, ())


def scrub_store(text: str, location: str) -> str:
    """``text`` (an error message) on one line, ``location``'s password masked wherever it shows.

    The location itself is replaced by ``redact_store(location)``; its
    password, raw or percent-decoded, URL credentials and ``password=``
    keywords are masked anywhere else in ``text``.
    """
    from ._postgres_urls import scrub

    if not location:
        return _mask_keywords(scrub(text, location))
    # The location (raw or already redacted) stands aside while the rest is scrubbed,
    # then comes back redacted: scrubbing it as free text would also hide its user name.
    shown = redact_store(location)
    text = text.replace(location, _PLACEHOLDER).replace(shown, _PLACEHOLDER)
    return _mask_keywords(scrub(text, location)).replace(_PLACEHOLDER, shown)


def _mask_keywords(text: str) -> str:
    from ._postgres_urls import KEY_VALUE_PASSWORD

    return KEY_VALUE_PASSWORD.sub(rf"\g<1>{MASK}", text)


def _parse_conninfo(location: str) -> dict[str, Any] | None:
    """libpq's reading of ``location`` (psycopg's ``conninfo_to_dict``); no connection made.

    None without psycopg: opening the store then says which extra to install.
    """
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return None

    try:
        return conninfo_to_dict(location)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"{redact_store(location)}: not a PostgreSQL connection URL or key=value string: "
            f"{scrub_store(str(exc), location)}"
        ) from None


def _location(target: str | os.PathLike[str] | None) -> str:
    if target is None:
        found = os.environ.get(STORE_ENV, "").strip()
        if not found:
            raise ConfigurationError(
                "no escalation store given: pass an SQLite file path or a postgresql:// URL, "
                f"or set {STORE_ENV}"
            )
        target = found
    location = os.fspath(target)
    if not location.strip():
        raise ConfigurationError("the escalation store's location is empty")
    if _is_postgres(location):
        return location.strip()
    if _URL.match(location.lstrip()):
        scheme = location.lstrip().split("://", 1)[0]
        raise ConfigurationError(
            f"unknown escalation store URL scheme {scheme!r}: use postgresql://... for "
            "PostgreSQL, or a file path for SQLite"
        )
    # Neither message quotes the location past its scheme: what follows may be a password.
    mistyped = _MISTYPED_POSTGRES.match(location)
    if mistyped:
        raise ConfigurationError(
            f"a store location starting {mistyped.group(1)!r} looks like a mistyped PostgreSQL "
            "URL: write postgresql://HOST/DBNAME (two slashes), or give an SQLite file as a "
            "path such as ./escalations.db"
        )
    if _URL_LIKE.match(location.lstrip()):
        scheme = location.lstrip().split(":", 1)[0]
        raise ConfigurationError(
            f"a store location starting '{scheme}:/' looks like a URL, and {scheme!r} is not a "
            "store: use postgresql://... for PostgreSQL, or a file path (./name) for SQLite"
        )
    return location


def _is_postgres(location: str) -> bool:
    return location.lstrip().lower().startswith(_POSTGRES) or _CONNINFO.match(location) is not None


def _no_schema(location: str, schema: str | None) -> None:
    if schema is not None:
        raise ConfigurationError(
            f"{redact_store(location)}: a schema applies to PostgreSQL stores only, "
            "not to an SQLite file"
        )
