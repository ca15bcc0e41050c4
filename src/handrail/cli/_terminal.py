"""Text that is safe to print to an operator's terminal, whatever a record holds.

Audit records, quarantined payloads and escalations carry text an agent (or
whoever it read from) chose.  Printed as it is, an ESC starts a terminal
control sequence (``\\x1b[2J`` clears the screen), a newline forges a line
that looks like another record, a bidi override (U+202E) shows text in an
order other than the stored one, and a zero-width character hides a
difference.  Every field the CLI prints goes through ``safe`` (plain text:
``handrail._text.printable``, the one rule for every message) or
``json_safe`` (JSON text), which show each non-printable character escaped
instead, in Python's notation: ``\\n``, ``\\x1b``, ``\\u202e``, ...

Non-printable means what ``str.isprintable`` says: control characters (C0,
DEL, C1), format characters (bidi controls, zero-width characters, tags),
line and paragraph separators, spaces other than U+0020, surrogates, private
use and unassigned code points.  A backslash already in the text is printed
as it is: ``\\x1b`` in the output is either an escaped ESC or those four
characters, and neither moves the cursor.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TextIO

from .._text import printable as safe

__all__ = ["json_safe", "safe", "say", "say_json", "warn"]


def json_safe(text: str) -> str:
    """JSON text with every non-printable character inside it written as a ``\\u`` escape.

    The result is valid JSON for the same value: a JSON encoder escapes the
    C0 controls itself, so whatever non-printable character remains (DEL,
    C1 controls, bidi and zero-width characters, lone surrogates) is inside
    a string, where ``\\uXXXX`` means the same character.  Newlines are kept:
    outside strings they are only the encoder's own indentation.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch == "\n" or ch.isprintable() else _json_escaped(ch) for ch in text)


def say(*lines: str, file: TextIO | None = None) -> None:
    """Print each of ``lines`` as one terminal-safe line (to stdout by default)."""
    stream = sys.stdout if file is None else file
    for line in lines:
        print(safe(line), file=stream)


def say_json(text: str) -> None:
    """Print JSON text (one line, or indented over several) to stdout, terminal-safe."""
    print(json_safe(text))


def warn(message: str | Iterable[str]) -> None:
    """Print a message (or each of several) to stderr, one terminal-safe line each."""
    if isinstance(message, str):
        message = (message,)
    say(*message, file=sys.stderr)


def _json_escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
