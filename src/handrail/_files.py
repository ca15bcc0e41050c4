"""Files people write (policies, test cases, routes): read safely, every value located.

Policy files, policy test cases and routes files are written by people and
read by handrail; they are read the same way (YAML by ``handrail._yaml``,
TOML by ``handrail._toml``), and this module holds what the readers and the
loaders after them share:

* **Reading.** ``read_text`` reads a regular file as UTF-8 (never a FIFO or a
  device, which would block or never end), with universal newlines.
* **Locations.** A value's place in the data is a ``Location``
  (``("rules", 3, "when")``); a ``LineMap`` gives the line of each recorded
  one, and ``line_of`` the line of a location or of its nearest ancestor.
  ``dotted`` spells a location as a field (``rules[3].when``).
* **Bounds.** Mappings and lists may nest at most ``MAX_DEPTH`` (200) levels:
  the deepest condition a policy accepts needs about 135, so 200 is never in
  the way, and every recursive step after the reader (validation,
  compilation, writing back) stays far from Python's recursion limit.  An
  integer longer than Python's digit limit (4,300 digits by default,
  ``sys.get_int_max_str_digits()``) is a problem on its line.
* **Messages.** ``describe``, ``show``, ``expected_text`` and ``unknown_key``
  word the usual problems the same way in every loader; ``located_problems``
  turns a reader's ``Issue``\\ s into ``PolicyProblem``\\ s with file and line.

Messages never carry raw control characters: ``handrail._text.problem``
escapes them (``\\x1b``, ``\\u202e``), so a hostile key cannot rewrite a terminal.
"""

from __future__ import annotations

import difflib
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from ._errors import PolicyError, PolicyProblem
from ._text import problem

__all__ = [
    "MAX_DEPTH",
    "Issue",
    "LineMap",
    "Location",
    "describe",
    "digits_limit",
    "dotted",
    "expected_text",
    "is_too_long",
    "line_of",
    "loc_key",
    "located_problems",
    "read_text",
    "show",
    "too_deep",
    "too_long_number",
    "unknown_key",
]

MAX_DEPTH = 200
"""The most levels of mappings and lists a document may nest."""

Location: TypeAlias = tuple[str | int, ...]
"""Where a value sits in the file's data: ``("rules", 3, "when", "all", 1)``."""

LineMap: TypeAlias = Mapping[Location, int]
"""The 1-based line of each recorded location (a key, a list item or a TOML header)."""


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem before it is placed: where in the data, what, and the line if already known."""

    loc: Location
    message: str
    line: int | None = None


# -- files -----------------------------------------------------------------------

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX: open a FIFO without waiting for a writer
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; a PolicyError naming it (``what`` says which file) if not.

    Only a regular file is read: a FIFO would block the reader until some
    writer came (forever, for ``handrail policy check``), and a device such as
    ``/dev/zero`` never ends.  It is opened without blocking and refused after
    ``fstat``, so the check and the read are about the same file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PolicyError(
                    problem(
                        f"cannot read the {what}: not a regular file (a directory, FIFO or "
                        "device); check the path",
                        path,
                    )
                )
            with os.fdopen(fd, "rb", closefd=False) as file:
                data = file.read()
        finally:
            os.close(fd)
        # Universal newlines, as Path.read_text reads: line numbers count the same.
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            problem(f"not UTF-8 text ({exc.reason}): save the file as UTF-8", path)
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PolicyError(
            problem(f"cannot read the {what}: {reason}; check the path", path)
        ) from exc


def line_of(loc: Location, lines: LineMap | None) -> int | None:
    """The line of ``loc``, or of its nearest recorded ancestor."""
    if not lines:
        return None
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


def too_deep(source: Path | None, line: int | None) -> PolicyError:
    """The error for a document nested deeper than ``MAX_DEPTH`` (at ``line`` if known)."""
    return PolicyError(
        problem(
            f"nested deeper than {MAX_DEPTH} levels of mappings and lists: "
            "no policy, case or route needs that many; flatten the document",
            source,
            line,
        )
    )


def digits_limit() -> int:
    """Python's limit on the digits of an integer read or written (0: no limit)."""
    return sys.get_int_max_str_digits()


def is_too_long(value: int) -> bool:
    """True when ``str(value)`` would exceed Python's digit limit (any base was read)."""
    limit = digits_limit()
    # 3.32 bits a digit: a value this many bits long has more digits than the limit.
    return limit > 0 and value.bit_length() > limit * 3.33 - 4 and len(_bounded_str(value)) > limit


def _bounded_str(value: int) -> str:
    try:
        return str(value)
    except ValueError:
        return "9" * (digits_limit() + 1)


def too_long_number(digits: int | None = None) -> str:
    """The message for an integer past ``digits_limit()`` (with its length if known)."""
    limit = digits_limit()
    count = f" ({digits:,} digits)" if digits else ""
    return (
        f"a number too long to read{count}: integers may have at most {limit:,} digits; "
        "write a shorter number, or quote it if it is an id"
    )


def loc_key(key: object) -> str | int:
    """A mapping key as a step of a ``Location`` (keys that are neither text nor int as repr)."""
    return key if isinstance(key, str | int) else repr(key)


# -- messages --------------------------------------------------------------------


def located_problems(
    issues: Iterable[Issue], source: Path | None, lines: LineMap | None
) -> list[PolicyProblem]:
    """Each issue as a ``PolicyProblem`` naming the file, the line and the field."""
    return [
        problem(i.message, source, i.line or line_of(i.loc, lines), field=dotted(i.loc) or None)
        for i in issues
    ]


def dotted(loc: Location) -> str:
    """``("when", "all", 1, "args.x")`` -> ``when.all[1].args.x``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else f".{part}"
    return text.lstrip(".")


def unknown_key(key: object, allowed: tuple[str, ...], owner: str) -> str:
    """``unknown field 'efect': did you mean 'effect'? (a rule takes id, effect, ...)``."""
    message = f"unknown field {key!r}"
    close = difflib.get_close_matches(str(key), allowed, n=1)
    if close:
        message += f": did you mean {close[0]!r}?"
    return f"{message} ({owner} takes {', '.join(allowed)})"


def expected_text(value: object) -> str:
    """The message for a value that should have been text; says to quote a number."""
    if value is None:
        return "is empty: give it a value or remove the key"
    if isinstance(value, bool | int | float):
        return f"expected text, got {describe(value)}: quote it ('{show(value)}')"
    return f"expected text, got {describe(value)}"


def show(value: object) -> str:
    """A value as the file would spell it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and is_too_long(value):
        return "(a number too long to show)"
    return repr(value) if isinstance(value, str) else str(value)


def describe(value: object) -> str:
    """What a value is, for a message: ``number 3``, ``text 'x'``, ``a list``."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"boolean {show(value)}"
    if isinstance(value, int | float):
        return f"number {show(value)}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"
