"""Action patterns: dotted names where a whole segment may be ``*``, and what they cover.

``*`` matches one segment; a trailing ``*`` one or more; ``*`` alone any
name.  ``PatternTrie`` files values (the evaluator's compiled rules) under
their wildcard patterns by segment, so the values covering a name never
seen before are found by a walk down a few levels, not a pass over every
pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["PatternTrie", "action_matches"]

T = TypeVar("T")


def _pattern_matcher(pattern: str) -> Callable[[tuple[str, ...]], bool]:
    """``*`` matches one segment; a trailing ``*`` one or more; ``*`` alone anything."""
    parts = tuple(pattern.split("."))
    if parts == ("*",):
        return lambda segments: True
    trailing = parts[-1] == "*"
    fixed = parts[:-1] if trailing else parts
    n = len(fixed)

    def matches(segments: tuple[str, ...]) -> bool:
        if trailing:
            if len(segments) <= n:
                return False
        elif len(segments) != n:
            return False
        return all(p in ("*", s) for p, s in zip(fixed, segments, strict=False))

    return matches


def action_matches(pattern: str, action: str) -> bool:
    """True when the action pattern covers the action name."""
    return _pattern_matcher(pattern)(tuple(action.split(".")))


@dataclass(slots=True, eq=False)
class _TrieNode(Generic[T]):
    """One segment position of the wildcard patterns.

    ``literal`` and ``star`` lead to the next segment; ``end`` holds the values
    whose pattern ends here, ``rest`` those whose pattern ends here with a
    trailing ``*`` (one or more segments more).
    """

    literal: dict[str, _TrieNode[T]] = field(default_factory=dict)
    star: _TrieNode[T] | None = None
    end: list[T] = field(default_factory=list)
    rest: list[T] = field(default_factory=list)


class PatternTrie(Generic[T]):
    """Wildcard action patterns by segment: what covers a name, found in a few steps."""

    __slots__ = ("_root",)

    def __init__(self) -> None:
        self._root: _TrieNode[T] = _TrieNode()

    def add(self, pattern: str, value: T) -> None:
        """File ``value`` under the wildcard ``pattern`` (one with a ``*`` segment)."""
        parts = pattern.split(".")
        trailing = parts[-1] == "*"
        node = self._root
        for part in parts[:-1] if trailing else parts:
            if part == "*":
                if node.star is None:
                    node.star = _TrieNode()
                node = node.star
            else:
                node = node.literal.setdefault(part, _TrieNode())
        (node.rest if trailing else node.end).append(value)

    def covering(self, segments: list[str], found: dict[T, None]) -> None:
        """Add to ``found`` every value whose pattern covers ``segments``.

        Level by level: the nodes the first segments lead to (at most two
        ways per level: the literal segment and ``*``), stopping early when
        no pattern goes further.
        """
        nodes = [self._root]
        for segment in segments:
            following = []
            for node in nodes:
                for compiled in node.rest:
                    found[compiled] = None
                child = node.literal.get(segment)
                if child is not None:
                    following.append(child)
                if node.star is not None:
                    following.append(node.star)
            if not following:
                return
            nodes = following
        for node in nodes:
            for compiled in node.end:
                found[compiled] = None
