"""Reading YAML and TOML files: data, the line of every key and item, within bounds.

Policy files, policy test cases and routes files are written by people and
read by handrail; this module reads all three the same way and refuses,
with a ``PolicyError`` naming the file and line, what no honest file needs
and a hostile one would use to stall or crash the reader:

* **Depth.** Mappings and lists may nest at most ``MAX_DEPTH`` (200) levels.
  The deepest condition a policy accepts needs about 135, so 200 is never
  in the way; it keeps every recursive step after the reader (validation,
  compilation, writing back) far from Python's recursion limit.
* **Aliases.** YAML anchors, aliases and ``<<`` merges may repeat at most
  ``max(ALIAS_NODES_MIN, ALIAS_NODES_PER_CHAR * len(text))`` nodes in total
  (1,000, or 4 per character of the document), so a "billion laughs"
  document of a few hundred bytes is refused after a few thousand nodes
  instead of expanding to billions.
* **Numbers.** An integer longer than Python's digit limit (4,300 digits by
  default, ``sys.get_int_max_str_digits()``) is a problem on its line.

So reading a document costs time and memory linear in its length.

YAML lines are exact: the nodes come from libyaml's composer (PyYAML's
``CSafeLoader``) when PyYAML has it, or from PyYAML's own, and the data is
built from them here, recording the line of every key and item.  TOML
comes from the standard library's ``tomllib``, with lines from a small
locator that follows table headers and ``key =`` lines.

Messages never carry raw control characters: ``handrail._text.printable``
escapes them (``\\x1b``, ``\\u202e``), so a hostile key cannot rewrite a terminal.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from ._errors import PolicyError, PolicyProblem
from ._text import problem

__all__ = [
    "ALIAS_NODES_MIN",
    "ALIAS_NODES_PER_CHAR",
    "MAX_DEPTH",
    "Issue",
    "LineMap",
    "Location",
    "alias_budget",
    "is_too_long",
    "line_of",
    "read_text",
    "read_toml",
    "read_yaml",
]

MAX_DEPTH = 200
"""The most levels of mappings and lists a document may nest."""

ALIAS_NODES_MIN = 1_000
ALIAS_NODES_PER_CHAR = 4
"""Aliases may repeat ``max(ALIAS_NODES_MIN, ALIAS_NODES_PER_CHAR * len(text))`` nodes."""

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


def alias_budget(text: str) -> int:
    """How many nodes aliases may repeat in a YAML document of this text."""
    return max(ALIAS_NODES_MIN, ALIAS_NODES_PER_CHAR * len(text))


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


def _too_deep(source: Path | None, line: int | None) -> PolicyError:
    return PolicyError(
        problem(
            f"nested deeper than {MAX_DEPTH} levels of mappings and lists: "
            "no policy, case or route needs that many; flatten the document",
            source,
            line,
        )
    )


def _digits_limit() -> int:
    return sys.get_int_max_str_digits()


def is_too_long(value: int) -> bool:
    """True when ``str(value)`` would exceed Python's digit limit (any base was read)."""
    limit = _digits_limit()
    # 3.32 bits a digit: a value this many bits long has more digits than the limit.
    return limit > 0 and value.bit_length() > limit * 3.33 - 4 and len(_bounded_str(value)) > limit


def _bounded_str(value: int) -> str:
    try:
        return str(value)
    except ValueError:
        return "9" * (_digits_limit() + 1)


def _too_long_number(digits: int | None = None) -> str:
    limit = _digits_limit()
    count = f" ({digits:,} digits)" if digits else ""
    return (
        f"a number too long to read{count}: integers may have at most {limit:,} digits; "
        "write a shorter number, or quote it if it is an id"
    )


# -- YAML --------------------------------------------------------------------------

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooDeep(Exception):
    def __init__(self, line: int | None) -> None:
        self.line = line


class _TooManyAliases(Exception):
    def __init__(self, line: int | None) -> None:
        self.line = line


class _PythonLoader(yaml.SafeLoader):
    """PyYAML's own composer, refusing to nest deeper than ``MAX_DEPTH`` before recursing.

    ``compose_node`` is PyYAML's, with the depth check added in place (not
    wrapped) so each level costs two Python frames, as in PyYAML.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            alias: Any = self.get_event()  # type: ignore[no-untyped-call]
            if alias.anchor not in self.anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {alias.anchor!r}", alias.start_mark
                )
            return self.anchors[alias.anchor]
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )
        self.descend_resolver(parent, index)
        node: yaml.Node | None
        if self.check_event(yaml.ScalarEvent):
            node = self.compose_scalar_node(anchor)
        else:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _TooDeep(event.start_mark.line + 1)
            if self.check_event(yaml.SequenceStartEvent):
                node = self.compose_sequence_node(anchor)
            else:
                node = self.compose_mapping_node(anchor)
            self._depth -= 1
        self.ascend_resolver()
        return node


def _c_loader() -> type[Any] | None:
    """libyaml's composer, when PyYAML has it and libyaml bounds nesting (0.2.6 and later).

    libyaml 0.2.5 (bundled with PyYAML 6.0.1) has no nesting limit: its composer
    recurses in C and a document some 50,000 levels deep crashes the process.
    """
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    try:
        from yaml import _yaml

        version = tuple(_yaml.get_version())
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - unusual builds
        return None
    return yaml.CSafeLoader if version >= (0, 2, 6) else None


_COMPOSER: type[Any] = _c_loader() or _PythonLoader
"""The loader class whose composer builds the node graph (tests switch it to the Python one)."""


def read_yaml(text: str, source: Path | None) -> tuple[Any, dict[Location, int], list[Issue]]:
    """YAML text as data, the line of every key and item, and the problems found in values.

    Raises ``PolicyError`` (with the line) for a syntax error, nesting deeper
    than ``MAX_DEPTH`` and aliases that repeat more than ``alias_budget(text)``
    nodes: nothing is built from such a document.  Duplicate keys, values
    that cannot be read and unsupported tags come back as issues.
    """
    builder = _YamlBuilder(alias_budget(text))
    try:
        root = _compose(text)
        if root is None:  # only comments: read as an empty mapping
            return {}, {(): 1}, []
        data = builder.build(root, ())
    except yaml.YAMLError as exc:
        raise PolicyError(_yaml_syntax(exc, source)) from exc
    except UnicodeError as exc:  # a lone surrogate in text given as a str
        raise PolicyError(
            problem(f"not valid Unicode text ({exc}): remove the character", source)
        ) from exc
    except _TooDeep as exc:
        raise _too_deep(source, exc.line) from None
    except _TooManyAliases as exc:
        raise PolicyError(
            problem(
                f"aliases repeat more than {builder.budget:,} nodes (anchors expanded within "
                "anchors, as in a 'billion laughs' document): write the repeated parts out, "
                "or use fewer levels of aliases",
                source,
                exc.line,
            )
        ) from None
    return data, builder.lines, builder.issues


def _compose(text: str) -> yaml.Node | None:
    loader = _COMPOSER(text)
    try:
        return loader.get_single_node()  # type: ignore[no-any-return]
    finally:
        loader.dispose()


def _yaml_syntax(exc: yaml.YAMLError, source: Path | None) -> PolicyProblem:
    hint = "check the indentation (spaces, not tabs) and quote values containing ': ' or ' #'"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return problem(f"YAML syntax error: {exc}; {hint}", source)
    detail = exc.problem or "malformed"
    if exc.context:
        context_line = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        detail = f"{exc.context}{context_line}: {detail}"
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    return problem(f"YAML syntax error: {detail}; {hint}", source, line)


def _loc_key(key: object) -> str | int:
    return key if isinstance(key, str | int) else repr(key)


class _YamlBuilder:
    """Python data from composed YAML nodes, as ``yaml.safe_load`` would build it, plus lines.

    Scalars go through PyYAML's ``SafeConstructor`` so their types are the
    usual YAML ones.  Duplicate keys, which PyYAML silently resolves to the
    last one, are reported instead (the first is kept, so any further problem
    points at the line the user sees first).  An alias is built again where
    it is used, so every location has its own line; ``budget`` bounds how
    many nodes that may repeat, and ``MAX_DEPTH`` how deep it may go.
    """

    def __init__(self, budget: int) -> None:
        self.lines: dict[Location, int] = {}
        self.issues: list[Issue] = []
        self.budget = budget
        self.built = 0  # every node built, repeats included
        self.repeated = 0  # nodes built again through an alias or a merge
        self._constructor = yaml.constructor.SafeConstructor()
        self._constructors = yaml.constructor.SafeConstructor.yaml_constructors
        self._seen: set[int] = set()  # collection nodes built at least once
        self._open: set[int] = set()  # collection nodes being built: catches recursive aliases
        self._repeating = 0  # > 0 while building a collection for the second time or more
        self._alias_at: Location = ()  # where the outermost repeat being built began

    def build(self, node: yaml.Node, loc: Location) -> Any:
        line = node.start_mark.line + 1
        self.lines.setdefault(loc, line)
        self.built += 1
        if self._repeating:
            self.repeated += 1
            if self.repeated > self.budget:
                raise _TooManyAliases(self._alias_line())
        if type(node) is yaml.ScalarNode:
            return self._scalar(node, loc)
        if node.tag not in (_MAP_TAG, _SEQ_TAG):
            what = "mapping" if isinstance(node, yaml.MappingNode) else "list"
            self.issues.append(
                Issue(
                    loc,
                    f"the tag {node.tag!r} is not supported on a {what}: "
                    f"write a plain {what} without a tag",
                    line,
                )
            )
            return None
        key = id(node)
        repeat = key in self._seen
        if repeat and not self._repeating:
            self._alias_at = loc
        if len(loc) >= MAX_DEPTH:
            raise _TooDeep(self._alias_line() if repeat or self._repeating else line)
        if key in self._open:
            self.issues.append(Issue(loc, "an alias refers to its own anchor: unfold it", line))
            return None
        self._seen.add(key)
        self._open.add(key)
        self._repeating += repeat
        try:
            if type(node) is yaml.MappingNode:
                return self._mapping(node, loc)
            items = []
            for index, item in enumerate(node.value):
                items.append(self.build(item, (*loc, index)))
            return items
        finally:
            self._repeating -= repeat
            self._open.discard(key)

    def _alias_line(self) -> int | None:
        """The line of the key (or of the list) where the alias being expanded is written."""
        loc = self._alias_at
        if loc and isinstance(loc[-1], int):  # a list item: its own line is the anchor's
            loc = loc[:-1]
        return line_of(loc, self.lines)

    def _scalar(self, node: yaml.Node, loc: Location) -> Any:
        tag = node.tag
        if tag == _STR_TAG:
            return node.value
        if tag == _INT_TAG and ":" in node.value and len(node.value) > _digits_limit() > 0:
            # Base 60 (1:30:00) is read digit group by digit group, in quadratic time.
            self.issues.append(Issue(loc, _too_long_number(), node.start_mark.line + 1))
            return None
        try:
            construct = self._constructors.get(tag)
            if construct is None:
                return self._constructor.construct_object(node, deep=True)
            value = construct(self._constructor, node)
            if type(value) is int and is_too_long(value):  # 0x... reads past the digit limit
                self.issues.append(Issue(loc, _too_long_number(), node.start_mark.line + 1))
                return None
            return value
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            line = node.start_mark.line + 1
            if tag == _INT_TAG and isinstance(exc, ValueError) and "digits" in str(exc):
                message = _too_long_number(sum(c.isdigit() for c in node.value))
            else:
                detail = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
                message = f"cannot read this value: {detail}"
            self.issues.append(Issue(loc, message, line))
            return None

    def _mapping(self, node: yaml.MappingNode, loc: Location) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        key_lines: dict[Any, int] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if type(key_node) is not yaml.ScalarNode:
                self.issues.append(
                    Issue(loc, "a key must be a plain value, not a list or mapping", key_line)
                )
                continue
            key = self._scalar(key_node, loc)
            here = (*loc, _loc_key(key))
            try:
                first = key_lines.get(key)
            except TypeError:  # an unhashable key (a !!binary of a list, say)
                self.issues.append(Issue(loc, f"cannot use {key!r} as a key", key_line))
                continue
            if first is not None:
                self.issues.append(
                    Issue(
                        here,
                        f"duplicate key {key!r} (first at line {first}): "
                        "a key appears once per mapping (PyYAML would silently keep the last); "
                        "remove or merge one of them",
                        key_line,
                    )
                )
                continue
            key_lines[key] = key_line
            self.lines.setdefault(here, key_line)
            result[key] = self.build(value_node, here)
        for merge in merges:
            self._merge(merge, loc, result)
        return result

    def _merge(self, node: yaml.Node, loc: Location, result: dict[Any, Any]) -> None:
        """Apply ``<<: *anchor`` (or a list of anchors): keys already present win.

        A merged value keeps the lines of the anchor it came from; an explicit
        key keeps its own line.
        """
        saved, self.lines = self.lines, {}
        try:
            items = node.value if type(node) is yaml.SequenceNode else [node]
            sources = [(item, self.build(item, loc)) for item in items]
        finally:
            merged_lines, self.lines = self.lines, saved
        added: set[object] = set()
        for item, source in sources:
            if not isinstance(source, dict):
                line = item.start_mark.line + 1
                self.issues.append(Issue(loc, "'<<' merges a mapping or a list of mappings", line))
                continue
            for key, value in source.items():
                if key in result:
                    continue
                result[key] = value
                added.add(_loc_key(key))
        depth = len(loc)
        for where, line in merged_lines.items():  # one pass: linear in what was merged
            if len(where) > depth and where[depth] in added:
                self.lines.setdefault(where, line)


# -- TOML ----------------------------------------------------------------------------

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
        raise _too_deep(source, text.count("\n", 0, at) + 1)
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
        raise _too_deep(source, None) from None
    lines = _toml_lines(text)
    too_deep = _deeper_than(data, MAX_DEPTH)
    if too_deep is not None:
        raise _too_deep(source, line_of(too_deep, lines))
    too_long = _too_long_numbers(data)
    if too_long:
        raise PolicyError(
            sorted(
                (problem(_too_long_number(), source, line_of(loc, lines)) for loc in too_long),
                key=lambda p: p.line or 0,
            )
        )
    return data, lines


def _toml_long_number(text: str, source: Path | None) -> PolicyProblem:
    limit = _digits_limit()
    for match in _TOML_LONG_NUMBER.finditer(text):
        digits = len(match.group()) - match.group().count("_")
        if digits > limit:
            line = text.count("\n", 0, match.start()) + 1
            return problem(_too_long_number(digits), source, line)
    return problem(_too_long_number(), source)  # pragma: no cover - found above


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
        stack.extend((child, (*loc, _loc_key(key))) for key, child in children)
    return None


def _too_long_numbers(data: object) -> list[Location]:
    """The locations of integers (0x..., 0o..., 0b...) too long to write in decimal."""
    found: list[Location] = []
    stack: list[tuple[object, Location]] = [(data, ())]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, dict):
            stack.extend((child, (*loc, _loc_key(key))) for key, child in value.items())
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
