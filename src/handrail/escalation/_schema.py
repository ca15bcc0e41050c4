"""The version of the tables an escalation store is migrated to, by the kind of store."""

from __future__ import annotations

import os

from ._open import check_store

__all__ = ["store_schema_version"]


def store_schema_version(target: str | os.PathLike[str] | None) -> int:
    """The schema version this handrail migrates ``target``'s store to (SQLite or PostgreSQL).

    What ``upgrade_store`` brings the tables to, and what opening a store
    expects.  Checked without connecting; raises ``ConfigurationError`` for
    a location ``check_store`` refuses.
    """
    _, postgres = check_store(target)
    if postgres:
        from ._postgres_schema import SCHEMA_VERSION as POSTGRES_VERSION

        return POSTGRES_VERSION
    from ._sqlite import SCHEMA_VERSION

    return SCHEMA_VERSION
