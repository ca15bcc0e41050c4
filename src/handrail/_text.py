"""Text that is safe to print: control, bidi and zero-width characters escaped.

Messages quote what files and requests say (keys, values, names); printed
raw, an ANSI escape in a YAML key could clear an operator's screen or forge
a line, and a bidi override could reorder what is shown.  Everything that
builds a message from such text passes it through ``printable``.

Text a human reads in a chat or a mail client needs more than that: Slack
mrkdwn and HTML have markup of their own.  ``slack_code``, ``slack_text``
and ``html_text`` are the one place where text we did not write becomes
inert there (see docs/escalation-channels.md for the substitutions).
"""

from __future__ import annotations

from pathlib import Path

from ._errors import PolicyProblem

__all__ = [
    "MAX_KEY",
    "SLACK_LOOKALIKES",
    "html_text",
    "key_problem",
    "printable",
    "problem",
    "slack_code",
    "slack_text",
]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with every non-printable character shown escaped (``\\n``, ``\\x1b``, ``\\u202e``).

    Non-printable is what ``str.isprintable`` says: control characters (C0,
    DEL, C1), format characters (bidi controls, zero-width characters, tags),
    line and paragraph separators, spaces other than U+0020, surrogates,
    private use and unassigned code points.  For anything that reaches a
    terminal or a page: what a file or a record says can never move the
    cursor, clear the screen, forge a line or reorder what is shown.  The
    result is one printable line; the function is idempotent.
    """
    if text.isprintable():  # the common case: nothing to do, at C speed
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


# Slack has no escape character: its markup characters become look-alikes.  The
# backtick (U+02CB MODIFIER LETTER GRAVE ACCENT) so a value cannot end its code
# span; outside spans also *, _ and ~, so text cannot turn bold, italic or struck.
SLACK_LOOKALIKES = {"`": "\u02cb", "*": "\u2217", "_": "\u02cd", "~": "\u223c"}
"""What ``slack_text`` shows instead of Slack's markup characters (``slack_code``: the backtick)."""

_SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SLACK_CODE = {**_SLACK_ENTITIES, "`": SLACK_LOOKALIKES["`"]}
_SLACK_TEXT = {**_SLACK_ENTITIES, **SLACK_LOOKALIKES}


def slack_code(text: str, limit: int | None = None) -> str:
    """``text`` as the inside of a Slack code span (or a line of a code block), inert.

    ``printable`` first (a line break cannot end the span or start a line),
    then ``&``, ``<`` and ``>`` as entities (no link, no ``<!channel>``) and
    each backtick as U+02CB (no end to the span).  Within a code span Slack
    applies no other markup.  ``limit`` bounds the result's length, cut with
    ``…`` between whole characters (never inside an entity).  Wrap the result
    in backticks yourself, with a space or a line break on either side.
    """
    return _mapped(printable(text), _SLACK_CODE, limit)


def slack_text(text: str, limit: int | None = None) -> str:
    """``text`` as plain mrkdwn, inert: as ``slack_code``, and ``*``, ``_``, ``~`` look-alikes.

    For text we did not write that is not inside a code span, such as a
    decider's name in a link's label: it cannot turn bold, italic, struck
    or into code, link or mention anyone.
    """
    return _mapped(printable(text), _SLACK_TEXT, limit)


def html_text(text: str) -> str:
    """``text`` for an HTML page or mail: ``printable``, then ``html.escape`` (quotes too)."""
    import html  # loaded with the first page or mail, not with `import handrail`

    return html.escape(printable(text), quote=True)


def _mapped(text: str, table: dict[str, str], limit: int | None) -> str:
    out: list[str] = []
    size = 0
    budget = None if limit is None else max(limit - 1, 0)  # room for the "…"
    for index, ch in enumerate(text):
        piece = table.get(ch, ch)
        if budget is not None and size + len(piece) > budget:
            rest = sum(len(table.get(c, c)) for c in text[index:])
            if size + rest <= (limit or 0):
                out.append("".join(table.get(c, c) for c in text[index:]))
            else:
                out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _escaped(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def problem(
    message: str,
    path: Path | None = None,
    line: int | None = None,
    rule_id: str | None = None,
    field: str | None = None,
) -> PolicyProblem:
    """A ``PolicyProblem`` whose message and field are ``printable``."""
    return PolicyProblem(
        printable(message), path, line, rule_id, None if field is None else printable(field)
    )


MAX_KEY = 256
"""The longest idempotency key handrail sends on or records."""


def key_problem(key: object) -> str | None:
    """Why ``key`` cannot be an idempotency key, or None.

    A key is sent on (an ``Idempotency-Key`` header) and shown to humans: a
    non-empty, printable str of at most 256 characters, so no line break can
    split a header and no control character can hide in a log.
    """
    if type(key) is not str:
        return f"must be a str, got {type(key).__name__}"
    if not key or len(key) > MAX_KEY:
        return f"must be 1 to {MAX_KEY} characters long, got {len(key)}"
    if not key.isprintable():
        return "must be printable (no line breaks or control characters)"
    return None
