"""``handrail audit verify | checkpoint | tail | query``: audit trails from the command line.

The log's kind comes from the file: an SQLite database (or a ``.db``,
``.sqlite`` or ``.sqlite3`` name) is read as one, anything else as JSON
Lines.  Logs are opened read-only: these commands never change a log.
A path that names no file is a usage error (exit 2); a file that is not a
readable audit log, or fails verification, is exit 1.  What records hold is
printed terminal-safe (see ``_terminal``).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from ..audit import (
    AuditError,
    AuditIntegrityError,
    AuditLog,
    AuditRecord,
    Checkpoint,
    Outcome,
)
from ._terminal import say, say_json, warn

__all__ = ["add_commands"]

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``audit`` and its subcommands on the top-level parser."""
    audit = commands.add_parser(
        "audit",
        help="verify, anchor and read audit logs",
        description="Verify, anchor and read audit logs (JSONL files or SQLite databases).",
    )
    sub = audit.add_subparsers(
        title="commands", dest="audit_command", metavar="COMMAND", required=True
    )

    verify = sub.add_parser(
        "verify",
        help="check a log's hash chain and name the first record that breaks it",
        description=(
            "Check every record's hash and its link to the one before.  Exit 0 if the log "
            "verifies, 1 naming the first problem (edited, deleted, inserted, reordered, "
            "torn, corrupt) if not."
        ),
    )
    verify.add_argument("path", metavar="PATH", type=Path, help="a JSONL or SQLite audit log")
    verify.add_argument(
        "--against",
        metavar="CHECKPOINT",
        type=Path,
        help="a checkpoint file (from `handrail audit checkpoint`): the records it covers "
        "must be unchanged and all there",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=_verify, parser=verify)

    checkpoint = sub.add_parser(
        "checkpoint",
        help="verify a log and print its head hash and record count, to store elsewhere",
        description=(
            "Verify a log, then print a checkpoint (head hash, record count, time) as JSON. "
            "Store it where the log's writer cannot change it; `handrail audit verify "
            "--against` proves later that nothing before it changed."
        ),
    )
    checkpoint.add_argument("path", metavar="PATH", type=Path, help="a JSONL or SQLite audit log")
    checkpoint.add_argument(
        "--out", metavar="FILE", type=Path, help="write the checkpoint to FILE instead of stdout"
    )
    checkpoint.set_defaults(handler=_checkpoint, parser=checkpoint)

    tail = sub.add_parser(
        "tail",
        help="print the last records of a log",
        description="Print the last records of a log, oldest first.",
    )
    tail.add_argument("path", metavar="PATH", type=Path, help="a JSONL or SQLite audit log")
    tail.add_argument(
        "-n", dest="count", type=_count, default=10, metavar="N", help="how many (default 10)"
    )
    tail.add_argument("--json", action="store_true", help="print records as JSON lines")
    tail.set_defaults(handler=_tail, parser=tail)

    query = sub.add_parser(
        "query",
        help="print the records that match filters",
        description="Print the records that match every filter given, oldest first.",
    )
    query.add_argument("path", metavar="PATH", type=Path, help="a JSONL or SQLite audit log")
    query.add_argument(
        "--action", metavar="PATTERN", help="a shell-style pattern, such as 'crm.*' or '*.delete'"
    )
    query.add_argument("--agent", metavar="AGENT", help="the acting agent's id")
    query.add_argument(
        "--outcome", choices=[o.value for o in Outcome], metavar="OUTCOME",
        help=f"one of {', '.join(o.value for o in Outcome)}",
    )  # fmt: skip
    query.add_argument(
        "--since", type=_when, metavar="WHEN",
        help="records at or after WHEN: an ISO 8601 time (UTC if no offset) or a span back "
        "from now such as 30m, 1h, 2d, 1w",
    )  # fmt: skip
    query.add_argument("--until", type=_when, metavar="WHEN", help="records before WHEN")
    query.add_argument("--json", action="store_true", help="print records as JSON lines")
    query.set_defaults(handler=_query, parser=query)


# -- arguments -----------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _when(text: str) -> dt.datetime:
    """An ISO 8601 time (naive means UTC) or a span back from now (``90m``, ``1h 30m``), in UTC."""
    spans = _RELATIVE.findall(text)
    if spans and "".join(n + u for n, u in spans) == re.sub(r"\s+", "", text):
        try:
            delta = dt.timedelta()
            for number, unit in spans:
                delta += dt.timedelta(**{_UNITS[unit]: int(number)})
            return dt.datetime.now(dt.UTC) - delta
        except (OverflowError, ValueError):  # past year 1, or too many digits to read
            raise argparse.ArgumentTypeError(
                f"{text!r} reaches back before the year 1; give a shorter span or an ISO 8601 time"
            ) from None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2025-06-01T12:00:00Z, or a span back from "
            f"now such as 30m, 1h, 2d, 1w; got {text!r}"
        ) from None
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    try:
        return when.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in the year 0 in UTC
        raise argparse.ArgumentTypeError(f"{text!r} is out of range in UTC") from None


def _usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    parser: argparse.ArgumentParser = args.parser
    parser.error(message)


def _open(args: argparse.Namespace) -> AuditLog:
    """The log at ``args.path``, read-only.

    A path that names no file is a usage error (exit 2).  A file that cannot
    be read as a log (an SQLite database without the audit table, no read
    permission) raises ``AuditError``, which ``main`` prints, exit 1: the
    command line was right, the file is not.
    """
    path: Path = args.path
    if path.is_dir():
        _usage_error(
            args,
            f"argument PATH: {path} is a directory; expected an audit log file "
            "(JSON Lines, or an SQLite database)",
        )
    if path.exists() and not path.is_file():  # a FIFO would block, a device never end
        _usage_error(
            args,
            f"argument PATH: {path} is not a regular file (a FIFO, device or socket); "
            "expected an audit log file (JSON Lines, or an SQLite database)",
        )
    if not path.is_file():
        _usage_error(args, f"argument PATH: no audit log at {path} (no such file)")
    return AuditLog.open(path, read_only=True)


def _print_json(data: Any) -> None:
    say_json(json.dumps(data, indent=2))


# -- verify and checkpoint -------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    against = None
    if args.against is not None:
        against = _read_checkpoint(args, args.against)
    with _open(args) as log:
        try:
            report = log.verify(against=against)
        except AuditError as exc:
            warn(f"{args.path}: {exc}")
            return 1
    if args.json:
        _print_json(report.to_dict())
    elif report.ok:
        say(str(report))
    else:
        warn(str(report))
    return 0 if report.ok else 1


def _read_checkpoint(args: argparse.Namespace, path: Path) -> Checkpoint:
    try:
        return Checkpoint.model_validate_json(path.read_bytes())
    except OSError as exc:
        _usage_error(args, f"argument --against: cannot read {path}: {exc.strerror or exc}")
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        detail = f"{where}: {error['msg']}" if where else error["msg"]
        _usage_error(args, f"argument --against: {path} is not a checkpoint ({detail})")


def _checkpoint(args: argparse.Namespace) -> int:
    with _open(args) as log:
        try:
            checkpoint = log.checkpoint()
        except AuditIntegrityError as exc:
            warn(f"no checkpoint taken: {exc}")
            return 1
        except AuditError as exc:
            warn(f"{args.path}: {exc}")
            return 1
    text = checkpoint.model_dump_json(indent=2)
    if args.out is None:
        say_json(text)
        return 0
    try:
        args.out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        _usage_error(args, f"argument --out: cannot write {args.out}: {exc.strerror or exc}")
    say(f"{args.out}: checkpoint of {checkpoint.count} records, head {checkpoint.head_hash}")
    return 0


# -- tail and query ----------------------------------------------------------------


def _tail(args: argparse.Namespace) -> int:
    with _open(args) as log:
        # -n larger than any log means all of it; deque wants a C-sized length.
        kept: collections.deque[AuditRecord] = collections.deque(
            maxlen=min(args.count, sys.maxsize)
        )
        try:
            kept.extend(log.records())
        except AuditError as exc:
            return _show(args, kept, exc)
        return _show(args, kept, None)


def _query(args: argparse.Namespace) -> int:
    if args.since is not None and args.until is not None and args.since >= args.until:
        _usage_error(args, "argument --until: must be later than --since")
    with _open(args) as log:
        records = log.records(
            action=args.action,
            agent=args.agent,
            outcome=args.outcome,
            since=args.since,
            until=args.until,
        )
        return _show(args, records, None)


def _show(
    args: argparse.Namespace, records: Iterable[AuditRecord], problem: AuditError | None
) -> int:
    """Print each record, then any problem met reading them: a torn last line is a
    warning (the records before it are whole), anything else an error (exit 1)."""
    try:
        for record in records:
            try:
                text = record.to_json() if args.json else _describe(record)
            except RecursionError:  # read at json's depth limit, too deep to write back
                raise AuditIntegrityError(
                    f"{args.path}: record #{record.seq} nests too deeply to print",
                    path=args.path,
                    kind="corrupt",
                ) from None
            if args.json:
                say_json(text)
            else:
                say(text)
    except AuditError as exc:
        problem = exc
    if problem is None:
        return 0
    if isinstance(problem, AuditIntegrityError) and problem.kind == "torn":
        warn(f"warning: {problem}")
        return 0
    warn(f"error: {problem}")
    return 1


def _describe(record: AuditRecord) -> str:
    """One line for humans: when, which, how it ended, what, who, why, and any error."""
    who = record.agent + (f" for {record.on_behalf_of}" if record.on_behalf_of else "")
    parts = [
        record.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z",
        f"#{record.seq}",
        record.outcome.value,
        record.action,
        who,
    ]
    if record.effect is not None:
        rule = f" by rule {record.rule_id!r}" if record.rule_id else ""
        parts.append(f"{record.effect.value}{rule}")
    if record.duration is not None:
        parts.append(f"{record.duration.total_seconds() * 1000:.1f} ms")
    if record.attempts > 1:
        parts.append(f"{record.attempts} attempts")
    if record.escalation_id is not None:
        parts.append(f"case {record.escalation_id}")
    details = record.details or {}
    counts = [f"{k}={v}" for k, v in details.items() if isinstance(v, int | bool | float)]
    if counts:
        parts.append(" ".join(counts))
    escalation = details.get("escalation")
    if isinstance(escalation, dict):
        parts.append(f"would escalate to {escalation.get('route')}")
    if record.error_type is not None:
        parts.append(f"{record.error_type}: {record.error_message or ''}".rstrip(": "))
    return "  ".join(parts)
