"""Compiled comparisons: the fast function of the request that one ``Compare`` becomes.

Each returns True, False or None (undetermined): a missing attribute, one of
another kind, a comparison that raises or answers something that is not a
real ``bool`` (numpy's ``np.True_``).  The commonest shapes (``args.amount >
10000``, ``args.to_domain in [...]``) are specialised, with the mapping
lookup and the kind check inlined: a decision runs them on every call.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from ._kinds import EXACT_TYPES, kind_check, kind_of, plain
from ._paths import MISSING, NAME_PATHS, getter, mapping_key
from ._regex import compile_search

if TYPE_CHECKING:
    from ._model import ActionRequest

__all__ = ["Test", "Tri", "compile_compare"]

Tri: TypeAlias = bool | None
"""True, False, or None for undetermined."""

Test: TypeAlias = Callable[["ActionRequest"], Tri]


def compile_compare(path: str, op: str, value: Any) -> Test:
    """The test ``path op value`` as a fast function (``value`` already validated)."""
    get = getter(path)
    if op == "contains":
        return _compile_contains(get, value)
    if op == "matches":
        search = compile_search(value, ignore_case=path in NAME_PATHS)

        def matches(request: ActionRequest) -> Tri:
            actual = get(request)
            if type(actual) is not str:
                if not isinstance(actual, str):
                    return None
                actual = str.__str__(actual)
            return search(actual)

        return matches
    direct = mapping_key(path)
    if op in ("in", "not_in"):
        return _compile_member(get, direct, value, op == "not_in")
    fits = kind_check(value)
    if op == "startswith":

        def startswith(request: ActionRequest) -> Tri:
            actual = get(request)
            if type(actual) is not str:
                actual = plain(actual)
            return str.startswith(actual, value) if fits(actual) else None

        return startswith
    compare = _COMPARE[op]
    exact = EXACT_TYPES.get(kind_of(value), frozenset())
    if direct is not None:
        root, key = direct

        # get_key and the kind check inlined: `args.amount > 10000` is the
        # commonest test there is, and each call saved is ~70 ns.
        def compare_key(request: ActionRequest) -> Tri:
            mapping = root(request)
            if type(mapping) is not dict and not isinstance(mapping, Mapping):
                return None
            actual = mapping.get(key, MISSING)
            if type(actual) not in exact:
                if actual is MISSING:
                    return None
                actual = plain(actual)  # np.float64 and kin: compare the plain number
                if not fits(actual):
                    return None
            try:
                result = compare(actual, value)
            except Exception:  # naive vs aware datetimes, a hostile __gt__, ...
                return None
            return result if type(result) is bool else None

        return compare_key

    def compare_test(request: ActionRequest) -> Tri:
        actual = get(request)
        if type(actual) not in exact:
            if actual is MISSING:
                return None
            actual = plain(actual)
            if not fits(actual):
                return None
        try:
            result = compare(actual, value)
        except Exception:  # naive vs aware datetimes, a hostile __gt__, ...
            return None
        return result if type(result) is bool else None

    return compare_test


def _compile_member(
    get: Callable[[ActionRequest], Any],
    direct: tuple[Callable[[ActionRequest], Any], str] | None,
    value: tuple[Any, ...],
    negate: bool,
) -> Test:
    expected = value[0] if value else None
    fits = kind_check(expected) if value else (lambda v: True)
    exact = EXACT_TYPES.get(kind_of(expected), frozenset()) if value else frozenset()
    try:
        options: frozenset[Any] | tuple[Any, ...] = frozenset(value)
    except TypeError:
        options = tuple(value)

    def settle(actual: Any) -> Tri:
        # A value of an unexpected type (a subclass, a numpy scalar) is made
        # plain first: `in` asks the value's own __eq__, which may lie.
        if actual is MISSING:
            return None
        actual = plain(actual)
        if not fits(actual):
            return None
        try:
            return (actual in options) is not negate
        except Exception:  # unhashable actual value
            return None

    if direct is not None:
        root, key = direct

        # get_key and the kind check inlined: `args.to_domain in [...]`
        # is among the commonest tests, and each call saved is ~70 ns.
        def member_key(request: ActionRequest) -> Tri:
            mapping = root(request)
            if type(mapping) is not dict and not isinstance(mapping, Mapping):
                return None
            actual = mapping.get(key, MISSING)
            if type(actual) not in exact:
                return settle(actual)
            try:
                return (actual in options) is not negate
            except TypeError:  # pragma: no cover - exact types are hashable
                return None

        return member_key

    def member(request: ActionRequest) -> Tri:
        actual = get(request)
        if type(actual) not in exact:
            return settle(actual)
        return (actual in options) is not negate

    return member


def _compile_contains(get: Callable[[ActionRequest], Any], value: Any) -> Test:
    fits = kind_check(value)

    def contains(request: ActionRequest) -> Tri:
        actual = get(request)
        if type(actual) is not str and isinstance(actual, str):
            actual = str.__str__(actual)
        if type(actual) is str:
            return (value in actual) if isinstance(value, str) else None
        if isinstance(actual, list | tuple | set | frozenset):
            mismatched = False
            try:
                for element in actual:
                    item = plain(element)
                    if not fits(item):
                        mismatched = True
                        continue
                    same = item == value
                    if same is True:
                        return True
                    if same is not False:
                        mismatched = True
            except Exception:  # a container or item that raises: undetermined
                return None
            return None if mismatched else False
        return None

    return contains


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
