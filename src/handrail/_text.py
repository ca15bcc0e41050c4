"""Text that is safe to print: control, bidi and zero-width characters escaped.

Messages quote what files and requests say (keys, values, names); printed
raw, an ANSI escape in a YAML key could clear an operator's screen or forge
a line, and a bidi override could reorder what is shown.  Everything that
builds a message from such text passes it through ``printable``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._errors import PolicyProblem

__all__ = ["printable", "problem"]

# C0 and C1 controls, DEL, soft hyphen, bidi controls and overrides, zero-width
# characters, line and paragraph separators, the BOM, and lone surrogates.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control, bidi and zero-width characters escaped (``\\x1b``, ``\\u202e``).

    For messages that end up on a terminal: what a file says can never move
    the cursor, clear the screen or reorder what is shown.  Idempotent.
    """
    return _UNPRINTABLE.sub(_escape, text)


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
