"""Text that is safe to print: control, bidi and zero-width characters escaped.

Messages quote what files and requests say (keys, values, names); printed
raw, an ANSI escape in a YAML key could clear an operator's screen or forge
a line, and a bidi override could reorder what is shown.  Everything that
builds a message from such text passes it through ``printable``.
"""

from __future__ import annotations

from pathlib import Path

from ._errors import PolicyProblem

__all__ = ["MAX_KEY", "key_problem", "printable", "problem"]

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
