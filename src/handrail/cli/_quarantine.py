"""``handrail quarantine list | show``: what the agent could not read, for a human.

The quarantine's kind comes from the file: an SQLite database (or a ``.db``,
``.sqlite`` or ``.sqlite3`` name) is read as one, anything else as JSON
Lines.  Quarantines are opened read-only: these commands never change one.
Payloads are whatever a remote system sent: every field is printed
terminal-safe (see ``_terminal``), control characters shown escaped.
"""

from __future__ import annotations

import argparse
import collections
import json
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ._audit import _when
from ._terminal import safe, say, say_json, warn

if TYPE_CHECKING:
    from ..connectors import QuarantinedRecord, QuarantineSink

__all__ = ["add_commands"]

# Table cells longer than this are cut with an ellipsis; `show` prints them whole.
_WIDTHS = {"source": 48, "error": 72}


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``quarantine`` and its subcommands on the top-level parser."""
    quarantine = commands.add_parser(
        "quarantine",
        help="list and show records a connector could not validate",
        description="List and show the records connectors set aside as invalid "
        "(JSONL files or SQLite databases).",
    )
    sub = quarantine.add_subparsers(
        title="commands", dest="quarantine_command", metavar="COMMAND", required=True
    )

    list_ = sub.add_parser(
        "list",
        help="a table of quarantined records: when, connector, operation, source, first error",
        description="Print the quarantined records that match every filter given, oldest "
        "first: id, when, connector, operation, source and the first error.",
    )
    list_.add_argument("path", metavar="PATH", type=Path, help="a JSONL or SQLite quarantine")
    list_.add_argument("--connector", metavar="NAME", help="only this connector's records")
    list_.add_argument("--operation", metavar="NAME", help="only this operation's records")
    list_.add_argument(
        "--since", type=_when, metavar="WHEN",
        help="records at or after WHEN: an ISO 8601 time (UTC if no offset) or a span back "
        "from now such as 30m, 1h, 2d, 1w",
    )  # fmt: skip
    list_.add_argument(
        "--limit", type=_positive, metavar="N", help="only the N most recent matching records"
    )
    list_.add_argument("--json", action="store_true", help="print records as JSON lines")
    list_.set_defaults(handler=_list, parser=list_)

    show = sub.add_parser(
        "show",
        help="one quarantined record: its raw payload and every validation error",
        description="Print one quarantined record: where it came from, every validation "
        "error, and its raw payload (secrets were masked when it was stored).  Exit 1 if "
        "no record has this id.",
    )
    show.add_argument("path", metavar="PATH", type=Path, help="a JSONL or SQLite quarantine")
    show.add_argument("id", metavar="ID", help="the record's id, as `quarantine list` prints it")
    show.add_argument("--json", action="store_true", help="print the record as JSON")
    show.set_defaults(handler=_show, parser=show)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    parser: argparse.ArgumentParser = args.parser
    parser.error(message)


def _open(args: argparse.Namespace) -> QuarantineSink:
    """The quarantine at ``args.path``, read-only; a missing or unopenable file is a usage error."""
    # Imported here: the connectors package is not needed to parse the command line.
    from ..connectors import QuarantineError, open_quarantine

    path: Path = args.path
    if path.is_dir():
        _usage_error(
            args,
            f"argument PATH: {path} is a directory; expected a quarantine file "
            "(JSON Lines, or an SQLite database)",
        )
    if path.exists() and not path.is_file():  # a FIFO would block, a device never end
        _usage_error(
            args,
            f"argument PATH: {path} is not a regular file (a FIFO, device or socket); "
            "expected a quarantine file (JSON Lines, or an SQLite database)",
        )
    if not path.is_file():
        _usage_error(args, f"argument PATH: no quarantine at {path} (no such file)")
    try:
        return open_quarantine(path, read_only=True)
    except QuarantineError as exc:
        _usage_error(args, f"argument PATH: {exc}")


def _reading(args: argparse.Namespace, read: Callable[[QuarantineSink], int]) -> int:
    """Run ``read`` on the quarantine; torn lines are warnings, anything else unreadable exit 1."""
    from ..connectors import QuarantineError, QuarantineWarning

    sink = _open(args)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", QuarantineWarning)
            try:
                code = read(sink)
            except QuarantineError as exc:
                warn(f"error: {exc}")
                code = 1
        for warning in caught:
            warn(f"warning: {warning.message}")
    finally:
        sink.close()
    return code


# -- list ------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    def read(sink: QuarantineSink) -> int:
        records: Iterable[QuarantinedRecord] = sink.records(
            connector=args.connector, operation=args.operation, since=args.since
        )
        if args.limit is not None:
            records = collections.deque(records, maxlen=args.limit)
        if args.json:
            for record in records:
                say_json(record.model_dump_json())
            return 0
        _print_table(records)
        return 0

    return _reading(args, read)


def _print_table(records: Iterable[QuarantinedRecord]) -> None:
    header = ("ID", "WHEN", "CONNECTOR", "OPERATION", "SOURCE", "ERROR")
    rows = [header]
    for record in records:
        more = f" (+{len(record.errors) - 1} more)" if len(record.errors) > 1 else ""
        error = _cut(str(record.errors[0]), _WIDTHS["error"] - len(more)) + more
        rows.append(
            (
                safe(record.id),
                _when_text(record),
                safe(record.connector),
                safe(record.operation),
                _cut(_source_text(record), _WIDTHS["source"]),
                error,
            )
        )
    if len(rows) == 1:
        say("no quarantined records")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        say("  ".join([*cells, row[-1]]))


def _cut(text: str, width: int) -> str:
    """``text`` terminal-safe (one line, its newlines shown as ``\\n``), cut to ``width``."""
    text = safe(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _when_text(record: QuarantinedRecord) -> str:
    return record.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _source_text(record: QuarantinedRecord) -> str:
    source = record.source or "-"
    return source if record.index is None else f"{source} #{record.index}"


# -- show -------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    def read(sink: QuarantineSink) -> int:
        record = sink.get(args.id)
        if record is None:
            warn(f"error: {args.path}: no quarantined record with id {args.id!r}")
            return 1
        if args.json:
            say_json(record.model_dump_json(indent=2))
            return 0
        say(*_describe(record))
        return 0

    return _reading(args, read)


def _describe(record: QuarantinedRecord) -> list[str]:
    """The lines ``show`` prints, each made terminal-safe as it is printed."""
    lines = [
        f"id         {record.id}",
        f"when       {_when_text(record)}",
        f"connector  {record.connector}",
        f"operation  {record.operation}",
        f"source     {record.source or '-'}",
    ]
    if record.index is not None:
        lines.append(f"record     #{record.index} of the read")
    lines.append(f"model      {record.model}")
    lines.append(f"errors     {len(record.errors)}")
    lines.extend(f"  {error}  [{error.type}]" for error in record.errors)
    lines.append("raw payload (values under sensitive keys masked):")
    # json.dumps escapes C0 controls; ``say`` escapes what is left (C1, bidi, zero-width).
    raw = json.dumps(record.raw, indent=2, ensure_ascii=False)
    lines.extend(f"  {line}" for line in raw.split("\n"))
    return lines
