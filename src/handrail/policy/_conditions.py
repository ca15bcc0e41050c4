"""Conditions: typed, analysable predicates over a request, in three-valued logic.

A condition evaluates to True, False or *undetermined* (``None``): an
attribute is missing, or has the wrong type for the comparison.  The policy
decides what undetermined means (never enough for a grant, always enough for
a restriction); this module only computes it.

The nodes: ``Compare`` (``path op value``), ``Exists``, ``AllOf``, ``AnyOf``,
``Not`` and ``Predicate`` (Python code).  Each compiles to a fast test
(``_comparisons``), traces itself for ``explain``, renders one line for
people and writes itself back in the file syntax (read by ``_condition_syntax``).
Paths are checked by ``_paths``, value kinds by ``_kinds``.

Limits: at most ``MAX_CONDITION_DEPTH`` levels of all / any / not nest, in
files and in code.  A comparison whose result is not a real ``bool`` (numpy
answers ``np.True_``), or that raises, is undetermined.  ``matches``
patterns are checked and bounded by ``_regex``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._names import canonical_name
from ._comparisons import Test, Tri, compile_compare
from ._kinds import is_number, kind_of, looks_numeric, show
from ._paths import MISSING, NAME_PATHS, getter, path_steps
from ._regex import check_pattern as _check_pattern

if TYPE_CHECKING:
    from ._model import ActionRequest

__all__ = [
    "MAX_CONDITION_DEPTH",
    "OPERATORS",
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "ConditionSyntaxError",
    "Exists",
    "Node",
    "Not",
    "Predicate",
    "Trace",
    "condition_depth",
    "too_deep",
]

MAX_CONDITION_DEPTH = 64
"""How many levels of all / any / not may nest: a single test is 0, each combinator adds 1."""

Operator = Literal[
    "eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "contains", "startswith", "matches"
]
OPERATORS: tuple[str, ...] = get_args(Operator)
_ORDERING = frozenset({"lt", "le", "gt", "ge"})
_SYMBOL = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
# The operators that compare names: on a name path their values are canonical names.
_NAME_OPS = frozenset({"eq", "ne", "in", "not_in", "contains", "startswith"})


class ConditionSyntaxError(ValueError):
    """A condition in a policy is malformed; ``.loc`` points inside it."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        self.loc = loc
        self.message = message
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        super().__init__(f"{where}: {message}" if where else message)


# -- the nodes ---------------------------------------------------------------


class Trace(BaseModel):
    """How a condition evaluated on one request, for humans (``Policy.explain``)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    value: bool | None
    text: str
    undetermined: tuple[str, ...] = ()


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

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


class Compare(Node):
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
        path_steps(value)
        return value

    @model_validator(mode="after")
    def _valid_value(self) -> Compare:
        op, value = self.op, self.value
        if op in ("in", "not_in"):
            if not isinstance(value, list | tuple | set | frozenset):
                raise ValueError(f"{op} needs a list of values, got {show(value)}")
            kinds = {kind_of(v) for v in value}
            if len(kinds) > 1:
                raise ValueError(f"{op} needs values of one kind, got {', '.join(sorted(kinds))}")
            if isinstance(value, list | set | frozenset):
                object.__setattr__(self, "value", tuple(value))
        if self.path in NAME_PATHS and op in _NAME_OPS:
            object.__setattr__(self, "value", _canonical_value(self.path, self.value))
            value = self.value
        if kind_of(value) == "number" and not is_number(value):
            raise ValueError("NaN compares with nothing: use a number")
        if op in ("in", "not_in") and any(
            kind_of(v) == "number" and not is_number(v) for v in self.value
        ):
            raise ValueError("NaN compares with nothing: use numbers")
        if op in _ORDERING:
            if kind_of(value) not in ("number", "string", "datetime", "date"):
                raise ValueError(
                    f"{op} compares numbers, strings or dates, got {kind_of(value)} {show(value)}"
                )
            if isinstance(value, str) and looks_numeric(value):
                raise ValueError(
                    f"{op} {show(value)} compares with a string that looks like a number, "
                    "and a number is never compared with a string (every request would be "
                    f"undetermined): write the number without quotes, {op}: {value.strip()}"
                )
        elif op in ("startswith", "matches"):
            if not isinstance(value, str):
                raise ValueError(f"{op} needs a string, got {show(value)}")
            if op == "matches":
                _check_pattern(value, ignore_case=self.path in NAME_PATHS)
        elif op not in ("in", "not_in") and kind_of(value) in ("list", "mapping"):
            raise ValueError(f"{op} compares single values, got {kind_of(value)} {show(value)}")
        return self

    def compile(self) -> Test:
        return compile_compare(self.path, self.op, self.value)

    def trace(self, request: ActionRequest) -> Trace:
        actual = getter(self.path)(request)
        value = self.compile()(request)
        text = self.render()
        if actual is MISSING:
            return Trace(
                value=None, text=f"{text}: {self.path} is missing", undetermined=(self.path,)
            )
        if value is None:
            return Trace(
                value=None,
                text=f"{text}: {self.path} is {kind_of(actual)} {show(actual)}, "
                f"not comparable with {kind_of(self.value)}",
                undetermined=(self.path,),
            )
        return Trace(value=value, text=f"{text}: {self.path} is {show(actual)}")

    def render(self) -> str:
        if self.op in _SYMBOL:
            return f"{self.path} {_SYMBOL[self.op]} {show(self.value)}"
        if self.op in ("in", "not_in"):
            word = "in" if self.op == "in" else "not in"
            return f"{self.path} {word} [{', '.join(show(v) for v in self.value)}]"
        return f"{self.path} {self.op} {show(self.value)}"

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


class Exists(Node):
    """True when ``path`` resolves to a value that is not null.

    The one operator that observes absence, so it is never undetermined.
    """

    kind: Literal["exists"] = "exists"
    path: str

    @field_validator("path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        path_steps(value)
        return value

    def compile(self) -> Test:
        get = getter(self.path)

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


class _Junction(Node):
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


class Not(Node):
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


class Predicate(Node):
    """A Python callable over the request, for policies defined in code.

    It must return a bool; anything else, or an exception, fails the
    decision closed (DENY).  It cannot be written to a policy file.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True
    )

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
"""Any condition node: ``Compare``, ``Exists``, ``AllOf``, ``AnyOf``, ``Not`` or ``Predicate``."""


def _finish(action_request: type) -> None:
    """Name ActionRequest here once _model has defined it, for the nodes' forward references.

    The nodes build their validators on first use (``defer_build``) and look
    ``ActionRequest`` and ``Condition`` up in this module's namespace; a
    ``model_rebuild`` here would build every node's schema at import.
    """
    globals()["ActionRequest"] = action_request


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


def too_deep(depth: int) -> str:
    return (
        f"conditions nest {depth} levels of all / any / not; the limit is "
        f"{MAX_CONDITION_DEPTH} (MAX_CONDITION_DEPTH): flatten them"
    )


def _check_depth(node: Node) -> None:
    depth = condition_depth(node, MAX_CONDITION_DEPTH)
    if depth > MAX_CONDITION_DEPTH:
        raise ValueError(too_deep(depth))


def _group(condition: Node) -> str:
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
