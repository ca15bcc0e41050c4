"""Conditions: typed, analysable predicates over a request, in three-valued logic.

A condition evaluates to True, False or *undetermined* (``None``): an
attribute is missing, or has the wrong type for the comparison.  The policy
decides what undetermined means (never enough for a grant, always enough for
a restriction); this module only computes it.

The file syntax is a small mapping language::

    when:
      args.discount_pct: {gt: 20}          # one comparison
      context.environment: production      # shorthand for {eq: production}
      any:                                 # all / any / not combine
        - args.to_domain: {not_in: [acme.com]}
        - args.cc: {exists: true}

Several entries in one mapping must all hold.

Limits: at most ``MAX_CONDITION_DEPTH`` levels of all / any / not nest, in
files and in code.  A comparison whose
result is not a real ``bool`` (numpy answers ``np.True_``), or that raises, is
undetermined.  ``matches`` patterns are checked and bounded by ``_regex``.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._names import canonical_name
from .._values import normalise
from ._regex import check_pattern as _check_pattern
from ._regex import compile_search

if TYPE_CHECKING:
    from ._model import ActionRequest

__all__ = [
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "ConditionSyntaxError",
    "Exists",
    "MAX_CONDITION_DEPTH",
    "Not",
    "Predicate",
    "Trace",
    "condition_depth",
    "parse_condition",
]

MAX_CONDITION_DEPTH = 64
"""How many levels of all / any / not may nest: a single test is 0, each combinator adds 1."""

Tri: TypeAlias = bool | None
"""True, False, or None for undetermined."""

Test: TypeAlias = Callable[["ActionRequest"], Tri]

Operator = Literal[
    "eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains", "startswith", "matches"
]
OPERATORS: tuple[str, ...] = get_args(Operator)
_ORDERING = frozenset({"lt", "le", "gt", "ge"})
_SYMBOL = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}

# A path is a root, then the fields of handrail's models, then free keys
# into mappings.  Validating this at load means a typo fails there, not at 3 a.m.
_ROOTS = ("principal", "resource", "args", "context")
_MODEL_FIELDS: dict[str, dict[str, str | None]] = {
    # model -> field -> the model that field holds (None: a mapping or a value)
    "principal": {"agent": None, "roles": None, "attributes": None, "on_behalf_of": "user"},
    "user": {"id": None, "roles": None, "groups": None, "attributes": None},
    "resource": {"type": None, "id": None, "attributes": None},
}


# Paths that hold names (ids, roles, groups): a condition compares them in their
# canonical form (see handrail._names), so "Bot" in a policy matches agent "bot".
_NAME_PATHS = frozenset(
    {
        "principal.agent",
        "principal.roles",
        "principal.on_behalf_of.id",
        "principal.on_behalf_of.roles",
        "principal.on_behalf_of.groups",
    }
)
_NAME_OPS = frozenset({"eq", "ne", "in", "not_in", "contains", "startswith"})


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class ConditionSyntaxError(ValueError):
    """A condition in a policy is malformed; ``.loc`` points inside it."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        self.loc = loc
        self.message = message
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        super().__init__(f"{where}: {message}" if where else message)


# -- paths -------------------------------------------------------------------


def _path_steps(path: str) -> tuple[tuple[bool, str], ...]:
    """Turn ``principal.on_behalf_of.id`` into (is_attribute, name) steps, or raise."""
    parts = path.split(".")
    if parts[0] not in _ROOTS or any(not p for p in parts):
        raise ValueError(
            f"path {path!r} must start with one of {', '.join(_ROOTS)} and name fields "
            "separated by single dots (for example args.amount or resource.attributes.owner)"
        )
    steps: list[tuple[bool, str]] = [(True, parts[0])]
    model: str | None = parts[0] if parts[0] in _MODEL_FIELDS else None
    for part in parts[1:]:
        if model is None:
            steps.append((False, part))
            continue
        fields = _MODEL_FIELDS[model]
        if part not in fields:
            raise ValueError(
                f"path {path!r}: {model} has no field {part!r} "
                f"(expected one of {', '.join(fields)}; free keys go under .attributes)"
            )
        steps.append((True, part))
        model = fields[part]
    return tuple(steps)


def _mapping_key(path: str) -> tuple[Callable[[ActionRequest], Any], str] | None:
    """For a key into a root mapping (``args.x``, ``context.y``): the root's getter and the key."""
    steps = _path_steps(path)
    if len(steps) == 2 and not steps[1][0]:
        return attrgetter(steps[0][1]), steps[1][1]
    return None


def _getter(path: str) -> Callable[[ActionRequest], Any]:
    # Specialise the common shape (args.x, context.y): a decision walks it on every call.
    direct = _mapping_key(path)
    if direct is not None:
        root, key = direct

        def get_key(request: ActionRequest) -> Any:
            mapping = root(request)
            if type(mapping) is dict or isinstance(mapping, Mapping):
                return mapping.get(key, MISSING)
            return MISSING

        return get_key

    steps = _path_steps(path)

    def get(request: ActionRequest) -> Any:
        current: Any = request
        for is_attribute, name in steps:
            if current is None:
                return MISSING
            if is_attribute:
                current = getattr(current, name)
            elif isinstance(current, Mapping):
                current = current.get(name, MISSING)
                if current is MISSING:
                    return MISSING
            else:
                return MISSING
        return current

    return get


# -- value kinds: a comparison across kinds is undetermined, never False -----


def _kind(value: object) -> str:
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
    """A fast check that a value is of ``kind`` (the hot path avoids _kind's chain)."""
    if kind == "number":
        return _is_number
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
    return lambda v: _kind(v) == kind


# The types that certainly are of a kind: a set lookup on type(value) settles
# the common case without calling the kind check.
# Floats and datetimes are left out on purpose: a NaN, or a naive datetime
# against an aware one, must fail the kind check (undetermined), and only the
# full check (`_fits`) looks that closely.
_EXACT_TYPES: dict[str, frozenset[type]] = {
    "number": frozenset({int}),
    "string": frozenset({str}),
    "bool": frozenset({bool}),
    "date": frozenset({dt.date}),
    "null": frozenset({type(None)}),
}


def _is_number(value: object) -> bool:
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


def _fits(expected: object) -> Callable[[object], bool]:
    """The kind check for attributes compared with ``expected``."""
    if isinstance(expected, dt.datetime):
        aware = expected.utcoffset() is not None
        # Naive and aware datetimes do not compare (and == says False, not an error).
        return lambda v: isinstance(v, dt.datetime) and (v.utcoffset() is not None) is aware
    return _is_kind(_kind(expected))


def _show(value: object) -> str:
    try:
        if isinstance(value, str):
            return repr(value) if len(value) <= 200 else repr(value[:200]) + "..."
        if type(value) is int and value.bit_length() > 200:
            return f"<int of {value.bit_length()} bits>"
        text = str(value)
    except Exception:  # a hostile __str__, or an int too long to print
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:200] + "..."


def _plain(actual: Any) -> Any:
    """A value of an unexpected type made plain (numpy scalar to float, ...), as at the boundary."""
    return normalise(actual)


def _looks_numeric(text: str) -> bool:
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


# -- the nodes ---------------------------------------------------------------


class Trace(BaseModel):
    """How a condition evaluated on one request, for humans (``Policy.explain``)."""

    model_config = ConfigDict(frozen=True)

    value: bool | None
    text: str
    undetermined: tuple[str, ...] = ()


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def compile(self) -> Test:
        """Return a fast function of the request giving True, False or None (undetermined)."""
        raise NotImplementedError  # pragma: no cover - every node overrides

    def trace(self, request: ActionRequest) -> Trace:
        """Evaluate slowly, saying why; used by explain and to name missing attributes."""
        raise NotImplementedError  # pragma: no cover

    def render(self) -> str:
        """A one-line human reading of the condition."""
        raise NotImplementedError  # pragma: no cover

    def to_data(self) -> Any:
        """The condition in the file syntax (what ``parse_condition`` reads back)."""
        raise NotImplementedError  # pragma: no cover

    def paths(self) -> frozenset[str]:
        """Every attribute path the condition reads."""
        raise NotImplementedError  # pragma: no cover


class Compare(_Node):
    """``path op value``: eq, ne, lt, le, gt, ge, in, not_in, contains, startswith, matches.

    The attribute must have the value's kind (number, string, bool, date, ...);
    otherwise the comparison is undetermined.  ``matches`` is a regular
    expression searched in the string (anchor it with ``^…$`` for a full match).
    """

    kind: Literal["compare"] = "compare"
    path: str
    op: Operator
    value: Any

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        _path_steps(value)
        return value

    @model_validator(mode="after")
    def _valid_value(self) -> Compare:
        op, value = self.op, self.value
        if op in ("in", "not_in"):
            if not isinstance(value, list | tuple | set | frozenset):
                raise ValueError(f"{op} needs a list of values, got {_show(value)}")
            kinds = {_kind(v) for v in value}
            if len(kinds) > 1:
                raise ValueError(f"{op} needs values of one kind, got {', '.join(sorted(kinds))}")
            if isinstance(value, list | set | frozenset):
                object.__setattr__(self, "value", tuple(value))
        if self.path in _NAME_PATHS and op in _NAME_OPS:
            object.__setattr__(self, "value", _canonical_value(self.path, self.value))
            value = self.value
        if _kind(value) == "number" and not _is_number(value):
            raise ValueError("NaN compares with nothing: use a number")
        if op in ("in", "not_in") and any(
            _kind(v) == "number" and not _is_number(v) for v in self.value
        ):
            raise ValueError("NaN compares with nothing: use numbers")
        if op in _ORDERING:
            if _kind(value) not in ("number", "string", "datetime", "date"):
                raise ValueError(
                    f"{op} compares numbers, strings or dates, got {_kind(value)} {_show(value)}"
                )
            if isinstance(value, str) and _looks_numeric(value):
                raise ValueError(
                    f"{op} {_show(value)} compares with a string that looks like a number, "
                    "and a number is never compared with a string (every request would be "
                    f"undetermined): write the number without quotes, {op}: {value.strip()}"
                )
        elif op in ("startswith", "matches"):
            if not isinstance(value, str):
                raise ValueError(f"{op} needs a string, got {_show(value)}")
            if op == "matches":
                _check_pattern(value, ignore_case=self.path in _NAME_PATHS)
        elif op not in ("in", "not_in") and _kind(value) in ("list", "mapping"):
            raise ValueError(f"{op} compares single values, got {_kind(value)} {_show(value)}")
        return self

    def compile(self) -> Test:
        get, op, value = _getter(self.path), self.op, self.value
        if op == "contains":
            return _compile_contains(get, value)
        if op == "matches":
            search = compile_search(value, ignore_case=self.path in _NAME_PATHS)

            def matches(request: ActionRequest) -> Tri:
                actual = get(request)
                if type(actual) is not str:
                    if not isinstance(actual, str):
                        return None
                    actual = str.__str__(actual)
                return search(actual)

            return matches
        direct = _mapping_key(self.path)
        if op in ("in", "not_in"):
            return _compile_member(get, direct, value, op == "not_in")
        fits = _fits(value)
        if op == "startswith":

            def startswith(request: ActionRequest) -> Tri:
                actual = get(request)
                if type(actual) is not str:
                    actual = _plain(actual)
                return str.startswith(actual, value) if fits(actual) else None

            return startswith
        compare = _COMPARE[op]
        exact = _EXACT_TYPES.get(_kind(value), frozenset())
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
                    actual = _plain(actual)  # np.float64 and kin: compare the plain number
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
                actual = _plain(actual)
                if not fits(actual):
                    return None
            try:
                result = compare(actual, value)
            except Exception:  # naive vs aware datetimes, a hostile __gt__, ...
                return None
            return result if type(result) is bool else None

        return compare_test

    def trace(self, request: ActionRequest) -> Trace:
        actual = _getter(self.path)(request)
        value = self.compile()(request)
        text = self.render()
        if actual is MISSING:
            return Trace(
                value=None, text=f"{text}: {self.path} is missing", undetermined=(self.path,)
            )
        if value is None:
            return Trace(
                value=None,
                text=f"{text}: {self.path} is {_kind(actual)} {_show(actual)}, "
                f"not comparable with {_kind(self.value)}",
                undetermined=(self.path,),
            )
        return Trace(value=value, text=f"{text}: {self.path} is {_show(actual)}")

    def render(self) -> str:
        if self.op in _SYMBOL:
            return f"{self.path} {_SYMBOL[self.op]} {_show(self.value)}"
        if self.op in ("in", "not_in"):
            word = "in" if self.op == "in" else "not in"
            return f"{self.path} {word} [{', '.join(_show(v) for v in self.value)}]"
        return f"{self.path} {self.op} {_show(self.value)}"

    def to_data(self) -> Any:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {self.path: {self.op: value}}

    def paths(self) -> frozenset[str]:
        return frozenset({self.path})


def _canonical_value(path: str, value: Any) -> Any:
    """Names compared with a name path (``principal.agent``, ...) in their canonical form."""
    try:
        if isinstance(value, str):
            return canonical_name(value, f"value for {path}")
        if isinstance(value, tuple):
            return tuple(
                canonical_name(v, f"value for {path}") if isinstance(v, str) else v for v in value
            )
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return value


def _compile_member(
    get: Callable[[ActionRequest], Any],
    direct: tuple[Callable[[ActionRequest], Any], str] | None,
    value: tuple[Any, ...],
    negate: bool,
) -> Test:
    expected = value[0] if value else None
    fits = _fits(expected) if value else (lambda v: True)
    exact = _EXACT_TYPES.get(_kind(expected), frozenset()) if value else frozenset()
    try:
        options: frozenset[Any] | tuple[Any, ...] = frozenset(value)
    except TypeError:
        options = tuple(value)

    def settle(actual: Any) -> Tri:
        # A value of an unexpected type (a subclass, a numpy scalar) is made
        # plain first: `in` asks the value's own __eq__, which may lie.
        if actual is MISSING:
            return None
        actual = _plain(actual)
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
    fits = _fits(value)

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
                    item = _plain(element)
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


class Exists(_Node):
    """True when ``path`` resolves to a value that is not null.

    The one operator that observes absence, so it is never undetermined.
    """

    kind: Literal["exists"] = "exists"
    path: str

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        _path_steps(value)
        return value

    def compile(self) -> Test:
        get = _getter(self.path)

        def exists(request: ActionRequest) -> Tri:
            actual = get(request)
            return actual is not MISSING and actual is not None

        return exists

    def trace(self, request: ActionRequest) -> Trace:
        value = self.compile()(request)
        return Trace(value=value, text=f"{self.render()}: {'yes' if value else 'no'}")

    def render(self) -> str:
        return f"{self.path} exists"

    def to_data(self) -> Any:
        return {self.path: {"exists": True}}

    def paths(self) -> frozenset[str]:
        return frozenset({self.path})


def _kleene(values: Iterable[Tri], dominant: bool) -> Tri:
    """Kleene's and (``dominant=False``) or or (``dominant=True``) over three-valued results.

    The dominant value settles it at once; otherwise any undetermined value
    leaves the result undetermined.
    """
    result: Tri = not dominant
    for value in values:
        if value is dominant:
            return dominant
        if value is not (not dominant):
            result = None
    return result


class _Junction(_Node):
    """All of, or any of, several conditions; the two differ only in the dominant value."""

    conditions: tuple[Condition, ...]

    @model_validator(mode="after")
    def _shallow_enough(self) -> _Junction:
        _check_depth(self)
        return self

    _name: ClassVar[str]  # "all" / "any", as in the file syntax
    _dominant: ClassVar[bool]
    _word: ClassVar[str]  # "and" / "or"
    _empty: ClassVar[str]  # how an empty junction reads

    def compile(self) -> Test:
        tests = tuple(c.compile() for c in self.conditions)
        if len(tests) == 1:
            return tests[0]
        dominant = self._dominant
        neutral = not dominant

        # _kleene inlined: a generator per call would cost more than the tests.
        def junction(request: ActionRequest) -> Tri:
            result: Tri = neutral
            for test in tests:
                value = test(request)
                if value is dominant:
                    return dominant
                if value is not neutral:  # None, or anything not a real bool
                    result = None
            return result

        return junction

    def trace(self, request: ActionRequest) -> Trace:
        traces = [c.trace(request) for c in self.conditions]
        value = _kleene((t.value for t in traces), self._dominant)
        return _combine(value, f"{self._name} of", traces)

    def render(self) -> str:
        return f" {self._word} ".join(_group(c) for c in self.conditions) or self._empty

    def to_data(self) -> Any:
        return {self._name: [c.to_data() for c in self.conditions]}

    def paths(self) -> frozenset[str]:
        return frozenset().union(*(c.paths() for c in self.conditions))


class AllOf(_Junction):
    """Every condition holds (undetermined if none fails and one is undetermined)."""

    kind: Literal["all"] = "all"
    _name = "all"
    _dominant = False
    _word = "and"
    _empty = "always"


class AnyOf(_Junction):
    """At least one condition holds (undetermined if none holds and one is undetermined)."""

    kind: Literal["any"] = "any"
    _name = "any"
    _dominant = True
    _word = "or"
    _empty = "never"


class Not(_Node):
    """The condition does not hold (undetermined stays undetermined)."""

    kind: Literal["not"] = "not"
    condition: Condition

    @model_validator(mode="after")
    def _shallow_enough(self) -> Not:
        _check_depth(self)
        return self

    def compile(self) -> Test:
        test = self.condition.compile()

        def negate(request: ActionRequest) -> Tri:
            value = test(request)
            if value is True:
                return False
            return True if value is False else None

        return negate

    def trace(self, request: ActionRequest) -> Trace:
        inner = self.condition.trace(request)
        value = None if inner.value is None else not inner.value
        return _combine(value, "not", [inner])

    def render(self) -> str:
        return f"not {_group(self.condition)}"

    def to_data(self) -> Any:
        return {"not": self.condition.to_data()}

    def paths(self) -> frozenset[str]:
        return self.condition.paths()


class Predicate(_Node):
    """A Python callable over the request, for policies defined in code.

    It must return a bool; anything else, or an exception, fails the
    decision closed (DENY).  It cannot be written to a policy file.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    kind: Literal["predicate"] = "predicate"
    fn: Callable[[ActionRequest], bool]
    name: str = ""

    def compile(self) -> Test:
        fn, name = self.fn, self.label

        def predicate(request: ActionRequest) -> Tri:
            value = fn(request)
            if not isinstance(value, bool):
                raise TypeError(f"predicate {name} returned {type(value).__name__}, not bool")
            return value

        return predicate

    @property
    def label(self) -> str:
        """The predicate's name, or its function's."""
        return self.name or getattr(self.fn, "__qualname__", repr(self.fn))

    def trace(self, request: ActionRequest) -> Trace:
        value = self.compile()(request)
        return Trace(value=value, text=f"{self.render()}: {value}")

    def render(self) -> str:
        return f"{self.label}(request)"

    def to_data(self) -> Any:
        raise ValueError(
            f"predicate {self.label} is Python code and cannot be written to a policy file"
        )

    def paths(self) -> frozenset[str]:
        return frozenset()


Condition: TypeAlias = Annotated[
    Union[Compare, Exists, AllOf, AnyOf, Not, Predicate],  # noqa: UP007 - forward refs
    Field(discriminator="kind"),
]


def _finish(action_request: type) -> None:
    """Resolve the forward references to ActionRequest once _model has defined it."""
    namespace = {"ActionRequest": action_request, "Condition": Condition}
    for node in (Predicate, AllOf, AnyOf, Not):
        node.model_rebuild(_types_namespace=namespace)


def condition_depth(condition: object, limit: int | None = None) -> int:
    """How many levels of all / any / not nest in ``condition`` (a single test: 0).

    Stops counting past ``limit``.  Iterative, so a condition built without
    validation (``model_construct``) thousands deep is measured without a
    RecursionError.
    """
    deepest = 0
    # (node, how many combinators enclose it)
    stack: list[tuple[object, int]] = [(condition, 0)]
    while stack:
        node, above = stack.pop()
        if isinstance(node, _Junction):
            deepest = max(deepest, above + 1)
            stack.extend((child, above + 1) for child in node.conditions)
        elif isinstance(node, Not):
            deepest = max(deepest, above + 1)
            stack.append((node.condition, above + 1))
        if limit is not None and deepest > limit:
            return deepest
    return deepest


def _too_deep(depth: int) -> str:
    return (
        f"conditions nest {depth} levels of all / any / not; the limit is "
        f"{MAX_CONDITION_DEPTH} (MAX_CONDITION_DEPTH): flatten them"
    )


def _check_depth(node: _Node) -> None:
    depth = condition_depth(node, MAX_CONDITION_DEPTH)
    if depth > MAX_CONDITION_DEPTH:
        raise ValueError(_too_deep(depth))


def _group(condition: _Node) -> str:
    text = condition.render()
    return (
        f"({text})"
        if isinstance(condition, AllOf | AnyOf) and len(condition.conditions) > 1
        else text
    )


def _combine(value: Tri, label: str, traces: Sequence[Trace]) -> Trace:
    undetermined = tuple(dict.fromkeys(p for t in traces for p in t.undetermined))
    inner = "; ".join(t.text for t in traces)
    return Trace(value=value, text=f"{label} [{inner}]", undetermined=undetermined)


# -- the file syntax ---------------------------------------------------------

_COMBINATORS = ("all", "any", "not")


def parse_condition(data: object, loc: tuple[str | int, ...] = ()) -> Condition:
    """Read a condition written in the file syntax; raise ConditionSyntaxError naming where.

    Nesting deeper than ``MAX_CONDITION_DEPTH`` is refused before it is read further.
    """
    return _parse(data, loc, 0)


def _parse(data: object, loc: tuple[str | int, ...], depth: int) -> Condition:
    # depth: how many all / any / not enclose this part of the data.
    if isinstance(data, _Node):
        found = condition_depth(data, MAX_CONDITION_DEPTH)
        if depth + found > MAX_CONDITION_DEPTH:
            raise ConditionSyntaxError(_too_deep(depth + found), loc)
        return data  # type: ignore[return-value]
    if depth > MAX_CONDITION_DEPTH:
        raise ConditionSyntaxError(_too_deep(depth), loc)
    if not isinstance(data, Mapping) or not data:
        raise ConditionSyntaxError(
            f"a condition is a mapping of paths to tests, or all / any / not, got {_show(data)}",
            loc,
        )
    parts: list[Condition] = []
    for key, value in data.items():
        here = (*loc, key)
        if key in ("all", "any"):
            if not isinstance(value, list):
                raise ConditionSyntaxError(f"{key} takes a list of conditions", here)
            items = tuple(_parse(item, (*here, i), depth + 1) for i, item in enumerate(value))
            kind = AllOf if key == "all" else AnyOf
            parts.append(_build(here, kind, conditions=items))
        elif key == "not":
            parts.append(_build(here, Not, condition=_parse(value, here, depth + 1)))
        elif isinstance(key, str):
            parts.extend(_parse_tests(key, value, here))
        else:
            raise ConditionSyntaxError(f"a condition key must be a path, got {key!r}", here)
    return parts[0] if len(parts) == 1 else _build(loc, AllOf, conditions=tuple(parts))


def _build(loc: tuple[str | int, ...], node: type[_Node], **fields: Any) -> Any:
    """``node(**fields)``, its validation error (too deep) raised as a ConditionSyntaxError."""
    try:
        return node(**fields)
    except ValueError as exc:
        message = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
        raise ConditionSyntaxError(message.removeprefix("Value error, "), loc) from None


def _parse_tests(path: str, spec: object, loc: tuple[str | int, ...]) -> list[Condition]:
    try:
        _path_steps(path)
    except ValueError as exc:
        raise ConditionSyntaxError(str(exc), loc) from None
    if not isinstance(spec, Mapping):
        if isinstance(spec, list):
            raise ConditionSyntaxError(
                f"a list needs an operator: write {{in: [...]}} or {{contains: ...}} for {path}",
                loc,
            )
        spec = {"eq": spec}
    if not spec:
        raise ConditionSyntaxError(f"no test given for {path}", loc)
    tests: list[Condition] = []
    for op, value in spec.items():
        here = (*loc, op)
        if op == "exists":
            if not isinstance(value, bool):
                raise ConditionSyntaxError("exists takes true or false", here)
            exists = Exists(path=path)
            tests.append(exists if value else _build(here, Not, condition=exists))
            continue
        if op not in OPERATORS:
            raise ConditionSyntaxError(
                f"unknown operator {op!r} (expected {', '.join(OPERATORS)} or exists)", here
            )
        try:
            tests.append(Compare(path=path, op=op, value=value))
        except ValueError as exc:
            message = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
            raise ConditionSyntaxError(message.removeprefix("Value error, "), here) from None
    return tests
