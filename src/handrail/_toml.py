"""TOML as data, with the line of its table headers and keys, within bounds.

The data comes from the standard library's ``tomllib``; lines come from a
small locator that follows ``[table]``, ``[[array]]`` and ``key =`` lines
(deeper values fall back to the nearest of these).  Before parsing, a linear
scan refuses inline arrays and tables nested deeper than
``handrail._files.MAX_DEPTH``, which would take ``tomllib``'s recursive
descent past Python's recursion limit; integers longer than Python's digit
limit are problems on their lines.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from ._errors import PolicyError, PolicyProblem
from ._files import (
    MAX_DEPTH,
    Location,
    digits_limit,
    is_too_long,
    line_of,
    loc_key,
    too_deep,
    too_long_number,
)
from ._text import problem

__all__ = ["read_toml"]

_TOML_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TOML_KEYS = rf"{_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*"
_TOML_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_TOML_KEYS})\s*\]\]")
_TOML_TABLE_HEADER = re.compile(rf"\s*\[\s*({_TOML_KEYS})\s*\]")
_TOML_ASSIGNMENT = re.compile(rf"\s*({_TOML_KEYS})\s*=")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_SPECIAL = re.compile(r"""["'#\[\]{}]""")
_TOML_BASIC_REST = re.compile(r'(?:[^"\\\n]|\\.)*"')
_TOML_MULTILINE_BASIC_REST = re.compile(r'(?:[^"\\]|\\.|"(?!""))*"""', re.DOTALL)
_TOML_LONG_NUMBER = re.compile(r"[0-9][0-9_]*")


def read_toml(text: str, source: Path | None) -> tuple[Any, dict[Location, int]]:
    """TOML text as data and the lines of its headers and keys.

    Raises ``PolicyError`` (with the line where known) for a syntax error,
    inline arrays or tables nested deeper than ``MAX_DEPTH`` (checked before
    parsing), data nested deeper than that through dotted keys, and integers
    with more digits than Python reads.
    """
    deepest, at = _toml_nesting(text)
    if deepest > MAX_DEPTH:
        raise too_deep(source, text.count("\n", 0, at) + 1)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        line = int(position.group(1)) if position else None
        detail = message[: position.start()] if position else message
        raise PolicyError(
            problem(
                f"TOML syntax error: {detail}; check quoting, '=' between key and value, "
                "and that each key appears once per table",
                source,
                line,
            )
        ) from exc
    except ValueError as exc:  # tomllib lets int()'s digit limit through
        raise PolicyError(_toml_long_number(text, source)) from exc
    except RecursionError:  # pragma: no cover - the nesting check comes first
        raise too_deep(source, None) from None
    lines = _toml_lines(text)
    deep = _deeper_than(data, MAX_DEPTH)
    if deep is not None:
        raise too_deep(source, line_of(deep, lines))
    too_long = _too_long_numbers(data)
    if too_long:
        raise PolicyError(
            sorted(
                (problem(too_long_number(), source, line_of(loc, lines)) for loc in too_long),
                key=lambda p: p.line or 0,
            )
        )
    return data, lines


def _toml_long_number(text: str, source: Path | None) -> PolicyProblem:
    limit = digits_limit()
    for match in _TOML_LONG_NUMBER.finditer(text):
        digits = len(match.group()) - match.group().count("_")
        if digits > limit:
            line = text.count("\n", 0, match.start()) + 1
            return problem(too_long_number(digits), source, line)
    return problem(too_long_number(), source)  # pragma: no cover - found above


def _toml_nesting(text: str) -> tuple[int, int]:
    """The deepest nesting of ``[``/``{`` outside strings and comments, and where it is.

    A linear scan, not a parser: it only has to keep tomllib's recursive
    descent from going deeper than ``MAX_DEPTH``.
    """
    depth = deepest = at = 0
    position, end = 0, len(text)
    while (match := _TOML_SPECIAL.search(text, position)) is not None:
        char, position = match.group(), match.end()
        if char == "#":
            newline = text.find("\n", position)
            position = end if newline < 0 else newline
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, match.start()
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif text.startswith(char * 2, position):  # a multi-line string
            if char == '"':
                rest = _TOML_MULTILINE_BASIC_REST.match(text, position + 2)
                position = end if rest is None else rest.end()
            else:
                close = text.find("'''", position + 2)
                position = end if close < 0 else close + 3
        elif char == '"':
            rest = _TOML_BASIC_REST.match(text, position)
            position = text.find("\n", position) if rest is None else rest.end()
            position = end if position < 0 else position
        else:
            close = text.find("'", position)
            newline = text.find("\n", position)
            if close < 0 or (0 <= newline < close):
                position = end if newline < 0 else newline
            else:
                position = close + 1
    return deepest, at


def _deeper_than(data: object, limit: int) -> Location | None:
    """The location of a mapping or list nested deeper than ``limit`` levels, if any."""
    stack: list[tuple[object, Location]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, dict):
            children: Any = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        if len(loc) >= limit:
            return loc
        stack.extend((child, (*loc, loc_key(key))) for key, child in children)
    return None


def _too_long_numbers(data: object) -> list[Location]:
    """The locations of integers (0x..., 0o..., 0b...) too long to write in decimal."""
    found: list[Location] = []
    stack: list[tuple[object, Location]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, dict):
            stack.extend((child, (*loc, loc_key(key))) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((child, (*loc, index)) for index, child in enumerate(value))
        elif type(value) is int and is_too_long(value):
            found.append(loc)
    return found


def _toml_lines(text: str) -> dict[Location, int]:
    """Lines of TOML table headers and ``key =`` assignments, by location.

    A line locator, not a parser: it follows ``[table]``, ``[[array]]`` and
    ``key = value`` lines and skips multi-line strings; deeper values fall
    back to the nearest of these.
    """
    lines: dict[Location, int] = {(): 1}
    arrays: dict[Location, int] = {}  # array-of-tables location -> tables seen so far
    table: Location = ()
    in_string: str | None = None

    def resolve(parts: list[str]) -> Location:
        path: Location = ()
        for part in parts:
            path = (*path, part)
            if path in arrays:  # `rules` in a header means the latest [[rules]]
                path = (*path, arrays[path] - 1)
        return path

    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if in_string in line:
                in_string = None
            continue
        if match := _TOML_ARRAY_HEADER.match(line):
            parts = _toml_key_parts(match.group(1))
            array = (*resolve(parts[:-1]), parts[-1])
            arrays[array] = arrays.get(array, 0) + 1
            table = (*array, arrays[array] - 1)
            lines.setdefault(array, number)
            lines[table] = number
        elif match := _TOML_TABLE_HEADER.match(line):
            table = resolve(_toml_key_parts(match.group(1)))
            lines.setdefault(table, number)
        elif match := _TOML_ASSIGNMENT.match(line):
            lines.setdefault((*table, *_toml_key_parts(match.group(1))), number)
            rest = line[match.end() :]
            for quotes in ('"""', "'''"):
                if rest.count(quotes) % 2 == 1:
                    in_string = quotes
                    break
    return lines


def _toml_key_parts(keys: str) -> list[str]:
    parts = re.findall(_TOML_KEY_PART, keys)
    # A quoted key means what TOML says it means; let tomllib unquote it.
    return [_unquote(p) if p[0] in "\"'" else p for p in parts]


def _unquote(part: str) -> str:
    try:
        return str(tomllib.loads(f"k = {part}")["k"])
    except tomllib.TOMLDecodeError:  # the locator misread a line tomllib accepted
        return part
