"""Regular expressions for ``matches`` conditions: checked when loaded, bounded when run.

A ``matches`` condition searches an agent-controlled string, so a pattern
that backtracks is a way to stall the guard.  Two defences:

* **At run time** a string longer than ``REGEX_INPUT_LIMIT`` characters is not
  searched at all: the condition is undetermined (never a grant, always a
  restriction).
* **At load time** the pattern is checked for the engine that will run it.
  With ``google-re2`` installed (``pip install 'handrail[re2]'``) patterns
  run on RE2, which never backtracks (linear time); a pattern RE2 cannot
  compile (backreferences, lookarounds) is refused.  Without it, patterns
  run on Python's ``re`` and the parsed pattern is inspected: nested
  quantifiers, a quantified alternation, backreferences, conditional groups
  and lookarounds are refused, and so is a pattern whose worst case on a
  ``REGEX_INPUT_LIMIT``-character string exceeds ``REGEX_STEP_BUDGET``
  backtracking steps (each unbounded quantifier multiplies the estimate by
  the input length; a pattern not anchored with ``^`` by the input length
  once more).

The engine is chosen once, when this module is imported: RE2 if it can be
imported.  ``set_regex_engine`` overrides that process-wide default (tests use
it to exercise both paths); it applies to conditions built afterwards.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

from .._errors import ConfigurationError

__all__ = [
    "REGEX_INPUT_LIMIT",
    "REGEX_PATTERN_LIMIT",
    "REGEX_STEP_BUDGET",
    "RegexEngine",
    "check_pattern",
    "compile_search",
    "regex_engine",
    "set_regex_engine",
]

RegexEngine = Literal["re2", "re"]

# The parser behind re.compile, to inspect a pattern's structure rather than its
# text (the public sre_parse alias warns on import since Python 3.11).
_sre_parse: Any = importlib.import_module("re._parser")
_sre: Any = importlib.import_module("re._constants")

REGEX_INPUT_LIMIT = 1024
"""Longer strings are not searched: a ``matches`` condition on them is undetermined."""

REGEX_PATTERN_LIMIT = 1000
"""The longest pattern accepted, in characters."""

REGEX_STEP_BUDGET = 10_000_000
"""Python's ``re`` only: the largest worst-case estimate of backtracking steps accepted."""


def _import_re2() -> ModuleType | None:
    try:
        return importlib.import_module("re2")
    except ImportError:
        return None


_RE2 = _import_re2()
_DEFAULT: RegexEngine = "re2" if _RE2 is not None else "re"
_engine: RegexEngine = _DEFAULT


def regex_engine() -> RegexEngine:
    """The engine new ``matches`` conditions use: ``"re2"`` or ``"re"``."""
    return _engine


def set_regex_engine(engine: RegexEngine | None) -> RegexEngine:
    """Make ``engine`` the default for conditions built from now on; return the previous one.

    ``None`` restores the choice made at import (RE2 when installed).  Asking
    for ``"re2"`` without ``google-re2`` installed raises ``ConfigurationError``.
    """
    global _engine
    if engine is None:
        engine = _DEFAULT
    if engine not in ("re2", "re"):
        raise ConfigurationError(f"regex engine must be 're2' or 're', got {engine!r}")
    if engine == "re2" and _RE2 is None:
        raise ConfigurationError(
            "the re2 regex engine needs google-re2: pip install 'handrail[re2]'"
        )
    previous, _engine = _engine, engine
    return previous


def check_pattern(pattern: str, *, ignore_case: bool = False) -> None:
    """Raise ``ValueError`` saying why, if ``pattern`` may not be used with the current engine."""
    if len(pattern) > REGEX_PATTERN_LIMIT:
        raise ValueError(
            f"regular expression is {len(pattern)} characters long; "
            f"the limit is {REGEX_PATTERN_LIMIT}"
        )
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    if _engine == "re2":
        _compile_re2(pattern, ignore_case)
        return
    _check_backtracking(pattern, compiled.flags)


def compile_search(pattern: str, *, ignore_case: bool = False) -> Callable[[str], bool | None]:
    """A function searching a string for ``pattern``: True, False, or None past the input limit."""
    check_pattern(pattern, ignore_case=ignore_case)
    if _engine == "re2":
        search: Callable[[str], Any] = _compile_re2(pattern, ignore_case).search
    else:
        search = re.compile(pattern, re.IGNORECASE if ignore_case else 0).search
    limit = REGEX_INPUT_LIMIT

    def bounded(text: str) -> bool | None:
        if len(text) > limit:
            return None
        return search(text) is not None

    return bounded


def _compile_re2(pattern: str, ignore_case: bool) -> Any:
    assert _RE2 is not None
    try:
        return _RE2.compile(f"(?i){pattern}" if ignore_case else pattern)
    except Exception as exc:
        raise ValueError(
            f"regular expression {pattern!r} cannot run on RE2 ({_plain(exc)}): "
            "RE2 has no backreferences or lookarounds; rewrite it without them"
        ) from None


def _plain(exc: Exception) -> str:
    text = exc.args[0] if exc.args else str(exc)
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


# -- Python's re: refuse what backtracks -------------------------------------

_REPEATS = frozenset(
    {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT)}
)
_REFUSED = {
    _sre.GROUPREF: "a backreference",
    _sre.GROUPREF_EXISTS: "a conditional group",
    _sre.ASSERT: "a lookahead or lookbehind",
    _sre.ASSERT_NOT: "a negative lookahead or lookbehind",
}
_ANCHORS = frozenset({_sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING})
_HINT = "install handrail[re2] to run patterns on RE2 (no backtracking), or simplify the pattern"


def _check_backtracking(pattern: str, flags: int) -> None:
    parsed = _sre_parse.parse(pattern, flags)
    items = list(parsed)
    anchored = bool(items) and items[0][0] is _sre.AT and items[0][1] in _ANCHORS
    steps = _steps(items, pattern, inside_repeat=False) * (1 if anchored else REGEX_INPUT_LIMIT)
    if steps > REGEX_STEP_BUDGET:
        raise ValueError(
            f"regular expression {pattern!r} may backtrack for too long on Python's re "
            f"(about {steps:.1e} steps on a {REGEX_INPUT_LIMIT}-character string, over the "
            f"budget of {REGEX_STEP_BUDGET:.0e}): anchor it with ^, use fewer unbounded "
            f"quantifiers, or {_HINT}"
        )


def _steps(items: Any, pattern: str, *, inside_repeat: bool) -> int:
    """The worst-case backtracking factor of a parsed sequence; raise on a hazard."""
    total = 1
    for op, arg in items:
        if op in _REFUSED:
            raise ValueError(
                f"regular expression {pattern!r} uses {_REFUSED[op]}, which Python's re "
                f"can only run by backtracking: {_HINT}"
            )
        if op in _REPEATS:
            low, high, body = arg
            if inside_repeat and high > 1:
                raise ValueError(
                    f"regular expression {pattern!r} nests quantifiers (like (a+)+), which "
                    f"can take exponential time on Python's re: {_HINT}"
                )
            inner = _steps(body, pattern, inside_repeat=inside_repeat or high > 1)
            span = REGEX_INPUT_LIMIT + 1 if high == _sre.MAXREPEAT else high - low + 1
            total *= inner * min(span, REGEX_INPUT_LIMIT + 1)
        elif op is _sre.BRANCH:
            if inside_repeat:
                raise ValueError(
                    f"regular expression {pattern!r} repeats an alternation (like (a|ab)*), "
                    f"which can take exponential time on Python's re: use a character class "
                    f"such as [ab]*, or {_HINT}"
                )
            total *= sum(_steps(branch, pattern, inside_repeat=False) for branch in arg[1])
        elif op is _sre.SUBPATTERN:
            total *= _steps(arg[-1], pattern, inside_repeat=inside_repeat)
        elif op is getattr(_sre, "ATOMIC_GROUP", None):
            total *= _steps(arg, pattern, inside_repeat=inside_repeat)
        if total > REGEX_STEP_BUDGET * REGEX_INPUT_LIMIT:
            return total  # already over budget: stop multiplying
    return total
