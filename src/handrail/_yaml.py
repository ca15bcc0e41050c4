"""YAML as data, with the line of every key and item, within bounds.

The nodes come from libyaml's composer (PyYAML's ``CSafeLoader``) when
PyYAML has it, or from PyYAML's own, and the data is built from them here,
recording the line of every key and item: YAML lines are exact.  What no
honest file needs and a hostile one would use to stall or crash the reader
is refused with a ``PolicyError`` naming the file and line:

* **Depth.** Mappings and lists nest at most ``handrail._files.MAX_DEPTH`` levels.
* **Aliases.** Anchors, aliases and ``<<`` merges may repeat at most
  ``max(ALIAS_NODES_MIN, ALIAS_NODES_PER_CHAR * len(text))`` nodes in total
  (1,000, or 4 per character of the document), so a "billion laughs"
  document of a few hundred bytes is refused after a few thousand nodes
  instead of expanding to billions.
* **Numbers.** An integer longer than Python's digit limit is a problem on its line.

So reading a document costs time and memory linear in its length.  Imported
only when a YAML file is read: ``import handrail`` does not load PyYAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ._errors import PolicyError, PolicyProblem
from ._files import (
    MAX_DEPTH,
    Issue,
    Location,
    digits_limit,
    is_too_long,
    line_of,
    loc_key,
    too_deep,
    too_long_number,
)
from ._text import problem

__all__ = ["ALIAS_NODES_MIN", "ALIAS_NODES_PER_CHAR", "alias_budget", "read_yaml"]

ALIAS_NODES_MIN = 1_000
ALIAS_NODES_PER_CHAR = 4
"""Aliases may repeat ``max(ALIAS_NODES_MIN, ALIAS_NODES_PER_CHAR * len(text))`` nodes."""


def alias_budget(text: str) -> int:
    """How many nodes aliases may repeat in a YAML document of this text."""
    return max(ALIAS_NODES_MIN, ALIAS_NODES_PER_CHAR * len(text))


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
        raise too_deep(source, exc.line) from None
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
        if tag == _INT_TAG and ":" in node.value and len(node.value) > digits_limit() > 0:
            # Base 60 (1:30:00) is read digit group by digit group, in quadratic time.
            self.issues.append(Issue(loc, too_long_number(), node.start_mark.line + 1))
            return None
        try:
            construct = self._constructors.get(tag)
            if construct is None:
                return self._constructor.construct_object(node, deep=True)
            value = construct(self._constructor, node)
            if type(value) is int and is_too_long(value):  # 0x... reads past the digit limit
                self.issues.append(Issue(loc, too_long_number(), node.start_mark.line + 1))
                return None
            return value
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            line = node.start_mark.line + 1
            if tag == _INT_TAG and isinstance(exc, ValueError) and "digits" in str(exc):
                message = too_long_number(sum(c.isdigit() for c in node.value))
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
            here = (*loc, loc_key(key))
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
                added.add(loc_key(key))
        depth = len(loc)
        for where, line in merged_lines.items():  # one pass: linear in what was merged
            if len(where) > depth and where[depth] in added:
                self.lines.setdefault(where, line)
