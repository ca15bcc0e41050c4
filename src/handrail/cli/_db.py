"""``handrail db upgrade``: create or migrate an escalation store's tables.

Run it once per release before starting workers whose database role may
not change the schema (``PostgresStore(..., create=False)``); stores opened
with the default ``create=True`` do the same on their own.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from .._errors import ConfigurationError, HandrailError
from ..escalation import (
    check_store,
    redact_store,
    scrub_store,
    store_schema_version,
    upgrade_store,
)
from ._terminal import say, warn

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
        help="a postgresql:// URL or libpq key=value string (host=... dbname=...), or the "
        "path of an SQLite file (created if missing)",
    )
    upgrade.add_argument(
        "--schema",
        metavar="SCHEMA",
        help="the PostgreSQL schema that holds the tables (default: public)",
    )
    upgrade.set_defaults(handler=_upgrade, parser=upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    target: str = args.target
    try:
        # A mistyped URL is refused here, before it can become an SQLite file's name.
        location, postgres = check_store(target)
    except ConfigurationError as exc:
        _usage_error(args, f"argument URL: {scrub_store(str(exc), target)}")
    if args.schema is not None and not postgres:
        _usage_error(
            args, "argument --schema: applies to PostgreSQL URLs only, not to SQLite files"
        )
    where = redact_store(location)
    if postgres:
        where += f" (schema {args.schema or 'public'!r})"
    try:
        applied = upgrade_store(location, schema=args.schema)
    except HandrailError as exc:
        warn(f"error: {scrub_store(str(exc), location)}")
        return 1
    version = store_schema_version(location)
    if applied:
        say(f"{where}: upgraded to version {version} ({applied} step(s) applied)")
    else:
        say(f"{where}: already at version {version}")
    return 0


def _usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    parser: argparse.ArgumentParser = args.parser
    parser.error(message)
