"""The message of a notification: one I/O-free composition, rendered for Slack, text and HTML.

``compose`` picks the parts (title, summary, fields, the arguments and
context, due time, the commands to decide); ``plain_text`` and
``html_text`` render them for email, ``slack_message`` as Block Kit with a
text fallback.

A signed decision link is a bearer credential for one decider, so
``compose`` leaves the notification's ``links`` out: a message for one
decider gets that decider's link only, through ``with_link``; Slack (a
shared channel) never gets one.

What the request says (agent, user, resource, arguments, context, reasons,
the summary) is the agent's text, and an agent can be steered by whoever
wrote what it read: it is shown inert everywhere, never as markup.  In
Slack it sits only inside code spans and code blocks (``_text.slack_code``);
in plain text every non-printable character is escaped, one value a line
(``_text.printable``); in HTML every value is escaped (``_text.html_text``)
and no value reaches an ``href``.  The approver always sees the arguments
(as stored: redacted), not only a summary the agent could have shaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .._errors import ConfigurationError
from .._text import html_text as _html
from .._text import printable, slack_code, slack_text
from ._model import EscalationState, Notification

__all__ = [
    "case_page",
    "checked_link",
    "compose",
    "html_message",
    "message_id_part",
    "one_line",
    "plain_text",
    "slack_message",
    "subject",
    "utc",
    "with_link",
]


@dataclass(frozen=True, slots=True)
class _Field:
    """One labelled entry; ``quoted`` when its values are request data, not our own words."""

    label: str
    values: tuple[str, ...]
    quoted: bool


@dataclass(frozen=True, slots=True)
class _Parts:
    """What every human-readable rendering of a notification says."""

    title: str
    summary: str
    fields: tuple[_Field, ...]
    arguments: tuple[str, ...] | None
    context: tuple[str, ...]
    due: datetime | None
    due_in: str
    commands: tuple[str, ...]
    footer: tuple[str, str]
    buttons: str | None
    link: tuple[str, str] | None = None
    """The one decider this rendering is for, and their own signed link (``with_link``)."""


_TITLES = {
    "opened": "approval needed",
    "escalated": "approval needed (escalated)",
    "warning": "decision due soon",
}
_DECIDING_KINDS = frozenset(_TITLES)

# What goes in an href or a Slack <url|label>: a plain http(s) URL we made (the
# router's links), with nothing that could end the link or the attribute.
_LINK = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$()*+,;=%]+")
_BARE_KEY = re.compile(r"[A-Za-z0-9_.\-]+")
# Escalation ids are ULIDs; a case page link takes nothing a path could read as more.
_CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}")

# Per value and per code block, within Slack's limits (section 3000, field 2000).
_VALUE_LIMIT = 500
_BLOCK_LIMIT = 2900
# In text and HTML mail, a value longer than this is cut (the store keeps it whole).
_MAIL_VALUE_LIMIT = 4000


def compose(notification: Notification, now: datetime) -> _Parts:
    n = notification
    if n.kind == "resolved":
        title = n.state.value if n.state.is_terminal else "resolved"
    else:
        title = _TITLES[n.kind]
    level = f"{n.level} ({n.level_name})" if n.level_name else str(n.level)
    fields: list[_Field] = [_quoted("Action", n.action), _quoted("Agent", n.agent)]
    if n.on_behalf_of:
        fields.append(_quoted("On behalf of", n.on_behalf_of))
    if n.resource:
        fields.append(_Field("Resource", _resource(n.resource), quoted=True))
    if n.reason:
        fields.append(_quoted("Reason", n.reason))
    fields.append(_Field("Route", (f"{n.route}, level {level}",), quoted=False))
    if n.state is not EscalationState.OPEN or n.kind == "resolved":
        fields.append(_Field("State", (n.state.value,), quoted=False))
    if n.recipients:
        fields.append(_Field("Notify", (", ".join(n.recipients),), quoted=False))
    if n.deciders:
        fields.append(_Field("Deciders", (", ".join(n.deciders),), quoted=False))
    due = utc(n.due) if n.due is not None else None
    due_in = _relative(due, utc(now)) if due is not None else ""
    if due is not None:
        fields.append(_Field("Due", (f"{due.isoformat()} ({due_in})",), quoted=False))
    deciding = n.kind in _DECIDING_KINDS and not n.state.is_terminal
    return _Parts(
        title=f"{title}: {n.action}",
        summary=n.summary,
        fields=tuple(fields),
        arguments=None if n.args is None else _lines(n.args),
        context=_lines(n.context or {}),
        due=due,
        due_in=due_in,
        commands=n.commands,
        footer=(n.escalation_id, n.id),
        buttons=(
            f"{n.escalation_id}|{n.level}|{n.fingerprint}" if deciding and n.fingerprint else None
        ),
    )


def with_link(parts: _Parts, decider: str, url: str) -> _Parts:
    """``parts`` with ``decider``'s own decision link: for a message that only they read."""
    what = f"notification link for decider {printable(str(decider))[:80]}"
    return replace(parts, link=(decider, checked_link(what, url)))


def case_page(page_url: str, escalation_id: str) -> str:
    """The approval page's URL for one case: ``{page_url}/cases/{id}``, the id checked and escaped.

    The page authenticates its viewer itself, so the URL is no credential
    and may be shown to everyone.  ``page_url`` is checked by the channel
    (``handrail._urls.check_base_url``); the id is ours (a ULID), and
    anything else (a dot, a slash, a space) is refused rather than rendered.
    """
    if not _CASE_ID.fullmatch(escalation_id):
        raise ConfigurationError(
            f"escalation id {printable(escalation_id)[:80]!r} cannot be put in a page link"
        )
    return checked_link("case page link", f"{page_url}/cases/{quote(escalation_id, safe='')}")


def subject(notification: Notification) -> str:
    """The mail subject: our words, the action name and the escalation id; one printable line."""
    n = notification
    if n.kind == "resolved":
        title = n.state.value if n.state.is_terminal else "resolved"
    else:
        title = _TITLES[n.kind]
    return f"[handrail] {title}: {printable(n.action)} ({printable(n.escalation_id)})"


# -- plain text -------------------------------------------------------------------------------


def plain_text(parts: _Parts) -> str:
    """The text rendering (email): every value printable, one value a line."""
    width = max(len(label.label) for label in parts.fields) + 2
    lines = [_capital(printable(parts.title)), ""]
    if parts.summary:
        lines += [_mail(parts.summary), ""]
    for field in parts.fields:
        for index, value in enumerate(field.values or ("",)):
            head = f"{field.label + ':':<{width}}" if index == 0 else " " * width
            lines.append(head + _mail(value))
    if parts.arguments is not None:
        lines += ["", "Arguments:"]
        lines += [f"    {_mail(line)}" for line in parts.arguments] or ["    (none)"]
    if parts.context:
        lines += ["", "Context:"]
        lines += [f"    {_mail(line)}" for line in parts.context]
    if parts.link is not None:
        name, url = parts.link
        lines += [
            "",
            f"To decide in your browser as {printable(name)}, open your own link",
            "(whoever holds it can decide as you: do not forward it):",
            "",
            f"    {url}",
        ]
    if parts.commands:
        lines += ["", "To decide, run one of:", ""]
        lines += [f"    {_mail(command)}" for command in parts.commands]
    lines += ["", f"-- {_footer(parts, printable)}"]
    return "\n".join(lines) + "\n"


# -- HTML -------------------------------------------------------------------------------------


def html_message(parts: _Parts) -> str:
    """The HTML rendering (email): every value escaped, inside ``<code>``; hrefs only ours."""
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"></head>',
        '<body style="font-family: sans-serif">',
        f"<h2>{_html(_capital(parts.title))}</h2>",
    ]
    if parts.summary:
        out.append(f"<p><code>{_html(_clip(parts.summary))}</code></p>")
    out.append("<table>")
    for field in parts.fields:
        shown = [_html(_clip(value)) for value in field.values]
        if field.quoted:
            shown = [f"<code>{value}</code>" for value in shown]
        cell = "<br>".join(shown)
        out.append(
            f'<tr><th align="left" valign="top">{_html(field.label)}</th><td>{cell}</td></tr>'
        )
    out.append("</table>")
    if parts.arguments is not None:
        out.append("<h3>Arguments</h3>")
        out.append(_html_block(parts.arguments) if parts.arguments else "<p>(none)</p>")
    if parts.context:
        out += ["<h3>Context</h3>", _html_block(parts.context)]
    if parts.link is not None:
        name, url = parts.link
        out += [
            "<h3>Decide</h3>",
            f'<p><a href="{_html(url)}">Decide as {_html(name)}</a> (your own link: '
            "do not forward it)</p>",
        ]
    if parts.commands:
        out += ["<p>To decide, run one of:</p>", _html_block(parts.commands)]
    out += [f"<p>-- {_footer(parts, _html)}</p>", "</body></html>"]
    return "\n".join(out) + "\n"


def _html_block(lines: tuple[str, ...]) -> str:
    return "<pre>" + "\n".join(_html(_clip(line)) for line in lines) + "</pre>"


# -- Slack ------------------------------------------------------------------------------------


# Slack's limits: header text 150, section text 3000, field text 2000, 10 fields.
def slack_message(
    parts: _Parts, *, buttons: bool = False, page: str | None = None
) -> dict[str, Any]:
    """Block Kit blocks and a mrkdwn fallback; request data only inside code spans and blocks.

    ``page`` is the case's page on the approval site (``case_page``), linked
    when given; decision links never are (whoever reads the channel could
    use them).
    """
    fields = []
    for field in parts.fields[:10]:
        if field.label == "Due" and parts.due is not None:
            stamp = int(parts.due.timestamp())
            shown = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{parts.due.isoformat()}>"
            text = f"*Due*\n{shown} ({parts.due_in})"
        else:
            text = f"*{field.label}*\n" + "\n".join(_slack_values(field))
        fields.append({"type": "mrkdwn", "text": text})
    title = _capital(printable(parts.title))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}},
    ]
    if parts.summary:
        blocks.append(_section(_code(parts.summary, _BLOCK_LIMIT)))
    blocks.append({"type": "section", "fields": fields})
    for section in _slack_sections(parts, page):
        blocks.append(_section(section))
    if buttons and parts.buttons is not None:
        blocks.append(_actions(parts.buttons))
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _footer(parts, _code)}]}
    )
    return {"text": _slack_fallback(parts, title, page), "blocks": blocks}


def _slack_values(field: _Field) -> list[str]:
    if field.quoted:
        return [_code(value, _VALUE_LIMIT) for value in field.values]
    return [slack_text(value, _VALUE_LIMIT) for value in field.values]


def _slack_sections(parts: _Parts, page: str | None) -> list[str]:
    """The sections after the fields: arguments, context, the case page, commands (mrkdwn).

    Never a decision link (``parts.link``): a Slack channel is shared.
    """
    sections = []
    if parts.arguments is not None:
        sections.append("*Arguments*\n" + _code_block(parts.arguments, "arguments"))
    if parts.context:
        sections.append("*Context*\n" + _code_block(parts.context, "entries"))
    if page is not None:
        sections.append(f"*Approval page:* <{page}|open this case>")
    if parts.commands:
        sections.append("*To decide, run one of:*\n" + _code_block(parts.commands, "commands"))
    return sections


def _slack_fallback(parts: _Parts, title: str, page: str | None) -> str:
    """The message's ``text`` (notifications, old clients): whole pieces, never a cut span."""
    pieces = [slack_text(title, 150)]
    if parts.summary:
        pieces.append(_code(parts.summary, _VALUE_LIMIT))
    for field in parts.fields:
        pieces.append(f"*{field.label}:* " + " ".join(_slack_values(field)))
    pieces += _slack_sections(parts, page)
    pieces.append(_footer(parts, _code))
    text, size = [], 0
    for piece in pieces:
        if size + len(piece) + 1 > 2990:
            text.append("…")
            break
        text.append(piece)
        size += len(piece) + 1
    return "\n".join(text)


def _code(value: str, limit: int | None = _VALUE_LIMIT) -> str:
    """``value`` as an inert inline code span (an empty value as our own word, in italics)."""
    inside = slack_code(value, limit)
    return f"`{inside}`" if inside else "_(empty)_"


def _code_block(lines: tuple[str, ...], what: str) -> str:
    """``lines`` as one code block, whole lines only, within a section's limit."""
    if not lines:
        return "_(none)_"
    shown: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        inside = slack_code(line, _VALUE_LIMIT)
        more = len(lines) - index
        if size + len(inside) + 1 > _BLOCK_LIMIT - 60:
            shown.append(f"... {more} more {what}, not shown here")
            break
        shown.append(inside)
        size += len(inside) + 1
    return "```" + "\n".join(shown) + "```"


def _actions(value: str) -> dict[str, Any]:
    """Approve and Reject buttons; the click's callback is verified by ``SlackInteractions``."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": action_id,
                "text": {"type": "plain_text", "text": label},
                "style": style,
                "value": value,
            }
            for action_id, label, style in (
                ("handrail_approve", "Approve", "primary"),
                ("handrail_reject", "Reject", "danger"),
            )
        ],
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# -- shared -----------------------------------------------------------------------------------


def _quoted(label: str, value: str) -> _Field:
    return _Field(label, (value,), quoted=True)


def _resource(resource: Mapping[str, Any]) -> tuple[str, ...]:
    """``type:id``, then ``attributes: {...}`` (if any, as JSON): one value a line."""
    rest = {k: v for k, v in resource.items() if k not in ("type", "id") and v}
    head = str(resource.get("type", ""))
    if resource.get("id") is not None:
        head += f":{resource['id']}"
    return (head, *_lines(rest))


def _lines(mapping: Mapping[str, Any]) -> tuple[str, ...]:
    """``key: value`` lines, sorted by key; values as JSON (a string quoted, redacted as stored)."""
    out = []
    for key in sorted(mapping, key=str):
        name = str(key)
        shown = name if _BARE_KEY.fullmatch(name) else json.dumps(name, ensure_ascii=False)
        out.append(f"{shown}: {_compact(mapping[key])}")
    return tuple(out)


def checked_link(what: str, url: object) -> str:
    """``url`` if it is a plain http(s) URL that cannot end a link or an attribute; else raises.

    ``ConfigurationError`` says ``what`` the URL is, never the URL.
    """
    if not (isinstance(url, str) and _LINK.fullmatch(url)):
        raise ConfigurationError(f"{what} is not a plain http(s) URL: refusing to render it")
    return url


def _footer(parts: _Parts, shown: Any) -> str:
    escalation_id, notification_id = parts.footer
    return f"escalation {shown(escalation_id)}, notification {shown(notification_id)}"


def _mail(text: str) -> str:
    return printable(_clip(text))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clip(text: str, limit: int = _MAIL_VALUE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: Any) -> str:
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
