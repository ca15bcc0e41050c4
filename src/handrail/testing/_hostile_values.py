"""Hostile values and look-alike names: what agents send that a policy must not misread.

``numeric_like_values`` draws values that are, or pass for, numbers (numpy
scalars, ``Decimal`` NaN, strings of digits, objects whose comparisons raise
or lie); ``look_alike_names`` spells a name the way a person would read as
the same (case, full width, Cyrillic and Greek letters, invisible characters).
Requires Hypothesis (``pip install handrail[testing]``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

__all__ = ["LyingNumber", "NotANumber", "RaisingNumber", "look_alike_names", "numeric_like_values"]


class RaisingNumber(int):
    """An int whose comparisons and truth test raise: a value that must never decide."""

    def _raise(self, *_: object) -> bool:
        raise RuntimeError("this number refuses to be compared")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _raise
    __bool__ = _raise
    __hash__ = int.__hash__


class LyingNumber(float):
    """A float whose comparisons answer junk (a string, never a bool)."""

    def _junk(self, *_: object) -> Any:
        return "yes"

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _junk
    __hash__ = float.__hash__


class NotANumber:
    """An object that claims every comparison (``__gt__`` returns truthy junk) and is no number."""

    def _claim(self, *_: object) -> Any:
        return 1

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _claim
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise RuntimeError("no truth here")


_NUMERIC_STRINGS = ("12000", "50000.0", " 1e5 ", "0x10", "1_000", "inf", "nan", "-0")


def _numpy_values() -> st.SearchStrategy[Any]:
    try:
        import numpy as np
    except ImportError:  # numpy is optional: without it, no numpy values
        return st.nothing()
    big = st.integers(min_value=-(2**62), max_value=2**62)
    floats = st.floats(allow_nan=True, allow_infinity=True)
    return st.one_of(
        floats.map(np.float64),
        st.floats(width=32, allow_nan=True).map(np.float32),
        st.floats(width=16).map(np.float16),
        big.map(np.int64),
        st.integers(0, 255).map(np.uint8),
        st.booleans().map(np.bool_),
        floats.map(np.array),  # a 0-d array
        st.integers(-(10**6), 10**6).map(lambda v: np.longdouble(v) / 3),
        st.lists(floats, min_size=2, max_size=3).map(np.array),
    )


@st.composite
def numeric_like_values(draw: st.DrawFn) -> Any:
    """Values that are, or pass for, numbers: what agents put in ``args.amount``.

    Ints (huge ones too), floats with NaN and infinities, ``Decimal`` (NaN and
    sNaN included), ``Fraction``, bools, strings that look like numbers,
    numpy scalars and 0-d arrays when numpy is installed, and hostile objects
    (``RaisingNumber``, ``LyingNumber``, ``NotANumber``).  A policy must treat
    each as the number it is, or as undetermined; never let it decide a
    comparison by itself.
    """
    strategies = st.one_of(
        st.integers(min_value=-(10**6), max_value=10**6),
        st.integers().map(lambda n: n * 10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=True, allow_infinity=True),
        st.sampled_from((Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"))),
        st.fractions(),
        st.booleans(),
        st.sampled_from(_NUMERIC_STRINGS),
        _numpy_values(),
        st.integers(-(10**6), 10**6).map(RaisingNumber),
        st.floats(allow_nan=False).map(LyingNumber),
        st.builds(NotANumber),
    )
    return draw(strategies)


# Letters that look like ASCII ones: Cyrillic and Greek.
_CONFUSABLES = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456",
    "o": "\u043e",
    "p": "\u0440",
    "x": "\u0445",
    "y": "\u0443",
    "s": "\u0455",
    "b": "\u0432",  # lower-case ve: not alike, but a common substitution in attacks
    "n": "\u03b7",
    "t": "\u03c4",
    "k": "\u03ba",
    "v": "\u03bd",
}
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u00ad", " ", "\t")


def _full_width(char: str) -> str:
    return chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char


@st.composite
def look_alike_names(draw: st.DrawFn, name: str) -> str:
    """Spellings of ``name`` that a person would read as the same name.

    Changes of case, full-width letters, Cyrillic or Greek look-alikes, and
    invisible or layout characters (zero-width, bidi, soft hyphen, spaces)
    inserted.  Under handrail's name rule each is either the same name as
    ``name`` or refused; never a different name that escapes a rule.
    """
    chars = list(name)
    for index, char in enumerate(chars):
        change = draw(st.sampled_from(("keep", "keep", "upper", "wide", "confusable")))
        if change == "upper":
            chars[index] = char.upper()
        elif change == "wide":
            chars[index] = _full_width(char)
        elif change == "confusable" and char.lower() in _CONFUSABLES:
            chars[index] = _CONFUSABLES[char.lower()]
    if draw(st.booleans()):
        where = draw(st.integers(min_value=0, max_value=len(chars)))
        chars.insert(where, draw(st.sampled_from(_INVISIBLE)))
    return "".join(chars)
