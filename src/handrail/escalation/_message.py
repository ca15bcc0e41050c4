"""The message of a notification: one I/O-free composition, rendered as text or Slack blocks.

``compose`` picks the parts (title, summary, due time, links, the commands
to decide); ``plain_text`` renders them for email and logs, ``slack_message``
as Block Kit with a text fallback.  Every part is one line, clipped: what
the request says cannot add lines or break a message's layout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ._model import EscalationState, Notification

__all__ = ["compose", "message_id_part", "one_line", "plain_text", "slack_message", "utc"]


@dataclass(frozen=True, slots=True)
class _Parts:
    """What every human-readable rendering of a notification says."""

    title: str
    summary: str
    fields: tuple[tuple[str, str], ...]
    due: datetime | None
    due_in: str
    commands: tuple[str, ...]
    footer: str


_TITLES = {
    "opened": "approval needed",
    "escalated": "approval needed (escalated)",
    "warning": "decision due soon",
}


def compose(notification: Notification, now: datetime) -> _Parts:
    n = notification
    if n.kind == "resolved":
        title = n.state.value if n.state.is_terminal else "resolved"
    else:
        title = _TITLES[n.kind]
    level = f"{n.level} ({n.level_name})" if n.level_name else str(n.level)
    fields: list[tuple[str, str]] = [("Action", n.action), ("Agent", n.agent)]
    if n.on_behalf_of:
        fields.append(("On behalf of", n.on_behalf_of))
    if n.resource:
        fields.append(("Resource", _compact(n.resource)))
    if n.reason:
        fields.append(("Reason", n.reason))
    fields.append(("Route", f"{n.route}, level {level}"))
    if n.state is not EscalationState.OPEN or n.kind == "resolved":
        fields.append(("State", n.state.value))
    if n.recipients:
        fields.append(("Notify", ", ".join(n.recipients)))
    if n.deciders:
        fields.append(("Deciders", ", ".join(n.deciders)))
    due = utc(n.due) if n.due is not None else None
    due_in = _relative(due, utc(now)) if due is not None else ""
    if due is not None:
        fields.append(("Due", f"{due.isoformat()} ({due_in})"))
    footer = f"escalation {n.escalation_id}, notification {n.id}"
    return _Parts(
        title=f"{title}: {n.action}",
        summary=n.summary,
        fields=tuple(fields),
        due=due,
        due_in=due_in,
        commands=n.commands,
        footer=footer,
    )


def plain_text(parts: _Parts) -> str:
    width = max(len(label) for label, _ in parts.fields) + 2
    lines = [parts.title[:1].upper() + parts.title[1:], ""]
    if parts.summary:
        lines += [parts.summary, ""]
    for label, value in parts.fields:
        head, *rest = value.splitlines() or [""]
        lines.append(f"{label + ':':<{width}}{head}")
        lines += [" " * width + line for line in rest]
    if parts.commands:
        lines += ["", "To decide, run one of:", ""]
        lines += [f"    {command}" for command in parts.commands]
    lines += ["", f"-- {parts.footer}"]
    return "\n".join(lines) + "\n"


# Slack's limits: header text 150, section text 3000, field text 2000, 10 fields.
def slack_message(parts: _Parts) -> dict[str, Any]:
    fields = []
    for label, value in parts.fields[:10]:
        if label == "Due" and parts.due is not None:
            stamp = int(parts.due.timestamp())
            shown = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{parts.due.isoformat()}>"
            text = f"*Due*\n{shown} ({parts.due_in})"
        else:
            text = f"*{label}*\n{_mrkdwn(value)}"
        fields.append({"type": "mrkdwn", "text": _clip(text, 2000)})
    title = parts.title[:1].upper() + parts.title[1:]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}},
    ]
    if parts.summary:
        blocks.append(_section(_mrkdwn(parts.summary)))
    blocks.append({"type": "section", "fields": fields})
    if parts.commands:
        code = _mrkdwn("\n".join(parts.commands)).replace("```", "`\u200b``")
        blocks.append(_section(f"*To decide, run one of:*\n```{code}```"))
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(parts.footer)}]}
    )
    return {"text": _clip(_mrkdwn(plain_text(parts)), 3000), "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, 3000)}}


def _mrkdwn(text: str) -> str:
    """Text shown as itself in Slack: no <!channel> pings or <url|links> from request data."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters turned into spaces (headers)."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)


def message_id_part(text: str) -> str:
    """``text`` as the left part of a Message-ID: RFC 5322 atext, dots escaped too."""
    return quote(text, safe="").replace(".", "%2E")


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _relative(due: datetime, now: datetime) -> str:
    seconds = (due - now).total_seconds()
    span = _span(abs(seconds))
    return f"in {span}" if seconds >= 0 else f"overdue by {span}"


def _span(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    units = [(days, "d"), (hours, "h"), (rest // 60, "m")]
    first = next(i for i, (count, _) in enumerate(units) if count)
    shown = [f"{count}{unit}" for count, unit in units[first : first + 2] if count]
    return " ".join(shown)
