"""``handrail shadow report``: what an agent in shadow mode would have written.

Reads an audit log (read-only) and summarises its ``shadowed`` records: per
action, how many writes, to how many resources, by whom, over which time;
then each intent with the request it would have sent.  The review an
operator does before letting a new agent write for real.  Everything taken
from the records is printed terminal-safe (see ``_terminal``); a file that
is not an audit log is an error (exit 1), not an empty report.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..audit import AuditError, AuditRecord, Outcome
from ._audit import _open, _print_json, _when
from ._terminal import safe, say, warn

__all__ = ["add_commands"]


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``shadow`` and its ``report`` subcommand on the top-level parser."""
    shadow = commands.add_parser(
        "shadow",
        help="review what an agent in shadow mode would have written",
        description="Review the writes an agent recorded in shadow mode instead of running them.",
    )
    sub = shadow.add_subparsers(
        title="commands", dest="shadow_command", metavar="COMMAND", required=True
    )
    report = sub.add_parser(
        "report",
        help="summarise the shadowed writes in an audit log",
        description=(
            "Summarise the audit log's shadowed writes per action (count, resources, agents, "
            "first and last), then list each with the request it would have sent."
        ),
    )
    report.add_argument("path", metavar="PATH", type=Path, help="a JSONL or SQLite audit log")
    report.add_argument(
        "--since", type=_when, metavar="WHEN", help="only from WHEN (ISO 8601, or 30m, 1h, 2d)"
    )
    report.add_argument("--action", metavar="ACTION", help="only this action")
    report.add_argument("--summary", action="store_true", help="print the per-action summary only")
    report.add_argument("--json", action="store_true", help="print JSON instead of text")
    report.set_defaults(handler=_report, parser=report)


def _report(args: argparse.Namespace) -> int:
    with _open(args) as log:
        try:
            records = list(
                log.records(outcome=Outcome.SHADOWED, action=args.action, since=args.since)
            )
        except AuditError as exc:
            warn(f"error: {exc}")
            return 1
    summary = _summarise(records)
    if args.json:
        _print_json(
            {
                "actions": summary,
                "intents": [] if args.summary else [_intent(r) for r in records],
            }
        )
        return 0
    if not records:
        say("no shadowed writes")
        return 0
    say(f"{len(records)} shadowed writes in {args.path}")
    header = ("ACTION", "WRITES", "RESOURCES", "AGENTS", "FIRST", "LAST")
    rows = [
        (
            s["action"],
            str(s["writes"]),
            str(s["resources"]),
            ", ".join(s["agents"]),
            s["first"],
            s["last"],
        )
        for s in summary
    ]
    _table(header, rows)
    if not args.summary:
        say("")
        for record in records:
            say(_line(record))
    return 0


def _summarise(records: list[AuditRecord]) -> list[dict[str, Any]]:
    by_action: dict[str, list[AuditRecord]] = collections.defaultdict(list)
    for record in records:
        by_action[record.action].append(record)
    summary = []
    for action, group in sorted(by_action.items()):
        resources = {_resource(r) for r in group if r.resource}
        agents = sorted({_who(r) for r in group})
        summary.append(
            {
                "action": action,
                "writes": len(group),
                "resources": len(resources),
                "agents": agents,
                "first": _time(min(r.timestamp for r in group)),
                "last": _time(max(r.timestamp for r in group)),
            }
        )
    return summary


def _intent(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "timestamp": _time(record.timestamp),
        "action": record.action,
        "agent": record.agent,
        "on_behalf_of": record.on_behalf_of,
        "resource": record.resource,
        "args": record.args,
        "request": _detail(record, "shadow_request"),
        "escalation": _detail(record, "escalation"),
        "idempotency_key": record.idempotency_key,
    }


def _detail(record: AuditRecord, name: str) -> Any:
    # Records before 0.x kept the intercepted request in the context.
    found = (record.details or {}).get(name)
    return record.context.get(name) if found is None else found


def _line(record: AuditRecord) -> str:
    parts = [_time(record.timestamp), record.action, _who(record)]
    if record.resource:
        parts.append(_resource(record))
    escalation = _detail(record, "escalation")
    if isinstance(escalation, dict):
        deciders = ", ".join(str(d) for d in escalation.get("deciders") or ()) or "nobody"
        parts.append(f"would escalate to {escalation.get('route')} ({deciders})")
    request = _detail(record, "shadow_request")
    if isinstance(request, dict):
        parts.append(f"{request.get('method')} {request.get('url')}")
        if request.get("body") is not None:
            parts.append(f"body={request['body']}")
    else:
        parts.append(f"args={record.args}")
    return "  ".join(parts)


def _who(record: AuditRecord) -> str:
    return record.agent + (f" for {record.on_behalf_of}" if record.on_behalf_of else "")


def _resource(record: AuditRecord) -> str:
    resource = record.resource or {}
    return f"{resource.get('type')}:{resource.get('id')}"


def _time(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    # Cells are made safe before they are measured, so the columns line up as printed.
    cells = [tuple(safe(cell) for cell in row) for row in (header, *rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
