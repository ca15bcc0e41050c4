"""``handrail db upgrade``: create or migrate an escalation store's tables.

Run it once per release before starting workers whose database role may
not change the schema (``PostgresStore(..., create=False)``); stores opened
with the default ``create=True`` do the same on their own.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._errors import HandrailError
from ..escalation import _postgres, _sqlite
from ..escalation._open import is_postgres_url, upgrade_store
from ..escalation._postgres import redact_url

__all__ = ["add_commands"]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``db`` and its subcommands on the top-level parser."""
    db = commands.add_parser(
        "db",
        help="create and upgrade escalation stores",
        description="Create and upgrade the tables escalation stores keep (SQLite or PostgreSQL).",
    )
    sub = db.add_subparsers(title="commands", dest="db_command", metavar="COMMAND", required=True)

    upgrade = sub.add_parser(
        "upgrade",
        help="create or migrate an escalation store's tables",
        description=(
            "Create the escalation tables, or migrate them to this release's version.  "
            "Idempotent, and safe to run from several machines at once.  Exit 0 when the "
            "tables are current, 1 naming the problem if not."
        ),
    )
    upgrade.add_argument(
        "target",
        metavar="URL",
        help="a postgresql:// URL, or the path of an SQLite file (created if missing)",
    )
    upgrade.add_argument(
        "--schema",
        metavar="SCHEMA",
        help="the PostgreSQL schema that holds the tables (default: public)",
    )
    upgrade.set_defaults(handler=_upgrade, parser=upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    target: str = args.target
    postgres = is_postgres_url(target)
    if args.schema is not None and not postgres:
        parser: argparse.ArgumentParser = args.parser
        parser.error("argument --schema: applies to PostgreSQL URLs only, not to SQLite files")
    where = redact_url(target) if postgres else target
    if postgres:
        where += f" (schema {args.schema or 'public'!r})"
    try:
        applied = upgrade_store(target, schema=args.schema)
    except HandrailError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    version = _postgres.SCHEMA_VERSION if postgres else _sqlite.SCHEMA_VERSION
    if applied:
        print(f"{where}: upgraded to version {version} ({applied} step(s) applied)")
    else:
        print(f"{where}: already at version {version}")
    return 0
