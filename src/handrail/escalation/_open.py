"""``open_store`` and ``upgrade_store``: an escalation store from one string, as the CLI takes it.

A ``postgresql://`` (or ``postgres://``) URL means ``PostgresStore``; any
other string or path is an SQLite file.  Other URL schemes are refused
rather than taken for odd file names.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import TYPE_CHECKING

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from ._postgres import PostgresStore
    from ._sqlite import SQLiteStore

__all__ = ["STORE_ENV", "is_postgres_url", "open_store", "upgrade_store"]

STORE_ENV = "HANDRAIL_ESCALATION_STORE"
"""The environment variable ``open_store(None)`` reads: a path or a PostgreSQL URL."""

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_POSTGRES = ("postgresql://", "postgres://")


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
    """True when ``target`` is a PostgreSQL URL rather than a file path."""
    return _is_postgres(os.fspath(target))


def _location(target: str | os.PathLike[str] | None) -> str:
    if target is None:
        found = os.environ.get(STORE_ENV, "").strip()
        if not found:
            raise ConfigurationError(
                "no escalation store given: pass an SQLite file path or a postgresql:// URL, "
                f"or set {STORE_ENV}"
            )
        return found
    location = os.fspath(target)
    if not location:
        raise ConfigurationError("the escalation store's location is empty")
    if _URL.match(location) and not _is_postgres(location):
        scheme = location.split("://", 1)[0]
        raise ConfigurationError(
            f"unknown escalation store URL scheme {scheme!r}: use postgresql://... for "
            "PostgreSQL, or a file path for SQLite"
        )
    return location


def _is_postgres(location: str) -> bool:
    return location.lower().startswith(_POSTGRES)


def _no_schema(location: str, schema: str | None) -> None:
    if schema is not None:
        raise ConfigurationError(
            f"{location}: a schema applies to PostgreSQL stores only, not to an SQLite file"
        )
