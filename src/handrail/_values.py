"""Values from outside, made plain: what a policy condition may safely compare.

Agent arguments, request context and attributes arrive as whatever the
caller had: numpy scalars, ``Decimal``, ``Fraction``, subclasses of ``int`` or
``str`` with their own ``__eq__``, mappings that raise.  Comparing those
directly lets the value decide the comparison (numpy answers ``np.True_``,
which is not ``True``).  ``normalise`` turns them into plain Python values at
the request boundary:

* ``bool``, ``int``, ``float``, ``str``, ``None``, ``Decimal``, ``Fraction``,
  dates and times stay as they are (a subclass becomes its plain base type);
* numpy booleans, integers and floats become ``bool``, ``int`` and ``float``
  (a float wider than 64 bits becomes an exact ``Fraction``); a 0-d array
  becomes its scalar;
* any other ``numbers.Real`` becomes an exact ``int``, ``float`` or ``Fraction``
  through ``as_integer_ratio``;
* mappings become ``dict``, lists ``list``, tuples ``tuple`` and sets
  ``frozenset``, their items normalised;
* what cannot be converted (an n-d array, a number that raises, a container
  nested more than ``MAX_VALUE_DEPTH`` deep or holding more than
  ``MAX_VALUE_ITEMS`` items in all, an integer longer than ``MAX_INT_DIGITS``
  digits or a fraction with one) becomes an ``OpaqueValue``: it compares
  with nothing, so every condition on it is undetermined (never a grant,
  always a restriction).  Such integers cannot even be printed (Python's
  ``int`` to ``str`` limit): kept, they would break every record of the call.

Other objects are left alone: their kind is their type, so conditions on them
are undetermined too.  The caller's function still receives its own values;
only the request the policy sees is normalised.
"""

from __future__ import annotations

import datetime as dt
import numbers
import operator
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

__all__ = [
    "MAX_INT_DIGITS",
    "MAX_VALUE_DEPTH",
    "MAX_VALUE_ITEMS",
    "OpaqueValue",
    "normalise",
    "normalise_mapping",
]

MAX_VALUE_DEPTH = 32
"""Containers nested deeper than this in a request value become opaque."""

MAX_VALUE_ITEMS = 10_000
"""Past this many items in one request mapping, containers become opaque."""

MAX_INT_DIGITS = 4300
"""Integers with more decimal digits than this (Python's default printing limit) become opaque."""

# 10 ** MAX_INT_DIGITS: the first integer with one digit too many, and its length in bits.
_TOO_LONG: int = 10**MAX_INT_DIGITS
_MAX_INT_BITS = _TOO_LONG.bit_length()

_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})
_KEPT: frozenset[type] = frozenset(
    {Decimal, dt.date, dt.datetime, dt.time, dt.timedelta, dt.timezone}
)


class OpaqueValue:
    """A request value handrail could not make plain: it compares with nothing.

    ``type_name`` is the original value's type and ``why`` the reason; the
    value itself is not kept (it may be huge, or hostile).
    """

    __slots__ = ("type_name", "why")

    def __init__(self, type_name: str, why: str) -> None:
        self.type_name = type_name
        self.why = why

    def __repr__(self) -> str:
        return f"<opaque {self.type_name}: {self.why}>"


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_VALUE_ITEMS


def normalise_mapping(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """``mapping`` with its values made plain; the same object when it already is."""
    if type(mapping) is dict:
        for key, value in mapping.items():
            if type(value) not in _PLAIN or type(key) is not str:
                break
            if type(value) is int and value.bit_length() >= _MAX_INT_BITS:
                break  # perhaps too long to print: the slow path decides
        else:
            if len(mapping) <= MAX_VALUE_ITEMS:
                return mapping
    result = normalise(mapping)
    if isinstance(result, OpaqueValue):
        # The mapping itself could not be read: keep no part of it.
        return {}
    return result  # type: ignore[no-any-return]


def normalise(value: Any) -> Any:
    """A plain Python version of ``value`` (see the module docstring); never raises."""
    return _normalise(value, 0, _Budget())


def _normalise(value: Any, depth: int, budget: _Budget) -> Any:
    kind = type(value)
    if kind is int:
        return _checked_int(value)
    if kind in _PLAIN or kind in _KEPT:
        return value
    try:
        return _checked_int(_convert(value, kind, depth, budget))
    except Exception as exc:  # a hostile or broken value: keep nothing of it
        return OpaqueValue(_type_name(kind), f"could not be read ({type(exc).__name__})")


def _checked_int(value: Any) -> Any:
    """``value``, unless it is an integer (or a fraction of them) too long to print."""
    if type(value) is int:
        if _too_long(value):
            return OpaqueValue("int", f"more than {MAX_INT_DIGITS} digits")
    elif type(value) is Fraction and (_too_long(value.numerator) or _too_long(value.denominator)):
        return OpaqueValue("fractions.Fraction", f"a part of more than {MAX_INT_DIGITS} digits")
    return value


def _too_long(number: int) -> bool:
    bits = number.bit_length()
    return bits > _MAX_INT_BITS or (bits == _MAX_INT_BITS and abs(number) >= _TOO_LONG)


def _convert(value: Any, kind: type, depth: int, budget: _Budget) -> Any:
    if kind is Fraction:
        return int(value.numerator) if value.denominator == 1 else value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Decimal):
        return Decimal(value)
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(dt.datetime.isoformat(value))
    if isinstance(value, dt.date):
        return dt.date.fromordinal(dt.date.toordinal(value))
    if kind.__module__ == "numpy":
        return _numpy(value, kind, depth, budget)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return _container(value, kind, depth, budget)
    if isinstance(value, numbers.Integral):
        result = operator.index(value)
        if type(result) is not int:
            raise TypeError("__index__ did not give an int")
        return result
    if isinstance(value, numbers.Real):
        return _exact(value.as_integer_ratio())  # type: ignore[attr-defined]
    return value


def _numpy(value: Any, kind: type, depth: int, budget: _Budget) -> Any:
    # Without importing numpy: its scalars and arrays say what they hold in dtype.kind.
    if kind.__name__ == "ndarray":
        if value.ndim != 0:
            return OpaqueValue("numpy.ndarray", f"an array of shape {value.shape}, not a scalar")
        return _normalise(value[()], depth + 1, budget)
    code = value.dtype.kind
    if code == "b":
        return bool(value)
    if code in "iu":
        result = value.item()
        if type(result) is not int:
            raise TypeError("numpy integer did not give an int")
        return result
    if code == "f":
        if value.dtype.itemsize <= 8:
            result = float(value)
            if type(result) is not float:
                raise TypeError("numpy float did not give a float")
            return result
        return _exact(value.as_integer_ratio())
    return OpaqueValue(_type_name(kind), f"numpy kind {code!r} is not a plain scalar")


def _exact(ratio: tuple[Any, Any]) -> int | float | Fraction:
    """``numerator / denominator`` exactly: an int, a float only if exact, else a Fraction."""
    numerator, denominator = ratio
    if type(numerator) is not int or type(denominator) is not int or denominator <= 0:
        raise TypeError("as_integer_ratio did not give two ints")
    fraction = Fraction(numerator, denominator)
    if fraction.denominator == 1:
        return int(fraction.numerator)
    try:
        approximate = float(fraction)
    except OverflowError:
        return fraction
    return approximate if Fraction(approximate) == fraction else fraction


def _container(value: Any, kind: type, depth: int, budget: _Budget) -> Any:
    if depth >= MAX_VALUE_DEPTH:
        return OpaqueValue(_type_name(kind), f"nested more than {MAX_VALUE_DEPTH} deep")
    size = len(value)
    if size > budget.left:
        return OpaqueValue(_type_name(kind), f"more than {MAX_VALUE_ITEMS} items in all")
    budget.left -= size
    below = depth + 1
    if isinstance(value, Mapping):
        result: dict[Any, Any] = {}
        for original, item in value.items():
            key: Any = original
            if isinstance(original, str):
                key = str.__str__(original)
            elif type(original) not in _PLAIN:
                key = OpaqueValue(_type_name(type(original)), "a key that is not plain")
            else:
                key = _checked_int(original)
            result[key] = _normalise(item, below, budget)
        return result
    items = [_normalise(item, below, budget) for item in value]
    if isinstance(value, list):
        return items
    if isinstance(value, tuple):
        return tuple(items)
    return frozenset(items)


def _type_name(kind: type) -> str:
    module = getattr(kind, "__module__", "")
    name = getattr(kind, "__qualname__", "?")
    return name if module in ("builtins", "") else f"{module}.{name}"
