"""Value kinds: a comparison across kinds is undetermined, never False.

A condition compares an attribute with a value of one kind (number, string,
bool, date, datetime, null, list, mapping); an attribute of another kind
makes the comparison undetermined.  ``kind_check`` is the check compiled tests
run on every call, so it avoids ``kind_of``'s chain of ``isinstance`` where a
set lookup on the exact type settles it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .._values import normalise

__all__ = ["EXACT_TYPES", "is_number", "kind_check", "kind_of", "looks_numeric", "plain", "show"]


def kind_of(value: object) -> str:
    """``number``, ``string``, ``bool``, ``date``, ``datetime``, ``null``, ``list``, ``mapping``,
    or the type's name: what a comparison compares by."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal | Fraction):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if value is None:
        return "null"
    if isinstance(value, list | tuple | set | frozenset):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return type(value).__name__


def _is_kind(kind: str) -> Callable[[object], bool]:
    """A fast check that a value is of ``kind`` (the hot path avoids kind_of's chain)."""
    if kind == "number":
        return is_number
    if kind == "string":
        return lambda v: isinstance(v, str)
    if kind == "bool":
        return lambda v: isinstance(v, bool)
    if kind == "datetime":
        return lambda v: isinstance(v, dt.datetime)
    if kind == "date":
        return lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime)
    if kind == "null":
        return lambda v: v is None
    return lambda v: kind_of(v) == kind


# The types that certainly are of a kind: a set lookup on type(value) settles
# the common case without calling the kind check.
# Floats and datetimes are left out on purpose: a NaN, or a naive datetime
# against an aware one, must fail the kind check (undetermined), and only the
# full check (`kind_check`) looks that closely.
EXACT_TYPES: dict[str, frozenset[type]] = {
    "number": frozenset({int}),
    "string": frozenset({str}),
    "bool": frozenset({bool}),
    "date": frozenset({dt.date}),
    "null": frozenset({type(None)}),
}


def is_number(value: object) -> bool:
    kind = type(value)
    if kind is int:  # the common case, without isinstance chains
        return True
    if kind is float:
        return not math.isnan(value)  # type: ignore[arg-type] # NaN compares with nothing
    if isinstance(value, Decimal):
        return not value.is_nan()
    if isinstance(value, float):
        return not math.isnan(value)
    return isinstance(value, int | Fraction) and not isinstance(value, bool)


def kind_check(expected: object) -> Callable[[object], bool]:
    """The kind check for attributes compared with ``expected``."""
    if isinstance(expected, dt.datetime):
        aware = expected.utcoffset() is not None
        # Naive and aware datetimes do not compare (and == says False, not an error).
        return lambda v: isinstance(v, dt.datetime) and (v.utcoffset() is not None) is aware
    return _is_kind(kind_of(expected))


def show(value: object) -> str:
    try:
        if isinstance(value, str):
            return repr(value) if len(value) <= 200 else repr(value[:200]) + "..."
        if type(value) is int and value.bit_length() > 200:
            return f"<int of {value.bit_length()} bits>"
        text = str(value)
    except Exception:  # a hostile __str__, or an int too long to print
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:200] + "..."


def plain(actual: Any) -> Any:
    """A value of an unexpected type made plain (numpy scalar to float, ...), as at the boundary."""
    return normalise(actual)


def looks_numeric(text: str) -> bool:
    """True for strings such as "100", " 1e5", "1_000", "0x10", "inf": numbers in quotes."""
    candidate = text.strip()
    if not candidate:
        return False
    try:
        float(candidate)
    except ValueError:
        try:
            int(candidate, 0)
        except ValueError:
            return False
    return True
