"""Conditions in the file syntax: a small mapping language read into condition nodes.

::

    when:
      args.discount_pct: {gt: 20}          # one comparison
      context.environment: production      # shorthand for {eq: production}
      any:                                 # all / any / not combine
        - args.to_domain: {not_in: [acme.com]}
        - args.cc: {exists: true}

Several entries in one mapping must all hold.  A malformed condition raises
``ConditionSyntaxError`` naming where inside it (``all[1].args.x.gte``);
nesting deeper than ``MAX_CONDITION_DEPTH`` is refused before it is read further.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._conditions import (
    MAX_CONDITION_DEPTH,
    OPERATORS,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    ConditionSyntaxError,
    Exists,
    Node,
    Not,
    condition_depth,
    too_deep,
)
from ._kinds import show
from ._paths import path_steps

__all__ = ["parse_condition"]

_COMBINATORS = ("all", "any", "not")


def parse_condition(data: object, loc: tuple[str | int, ...] = ()) -> Condition:
    """Read a condition written in the file syntax; raise ConditionSyntaxError naming where.

    Nesting deeper than ``MAX_CONDITION_DEPTH`` is refused before it is read further.
    """
    return _parse(data, loc, 0)


def _parse(data: object, loc: tuple[str | int, ...], depth: int) -> Condition:
    # depth: how many all / any / not enclose this part of the data.
    if isinstance(data, Node):
        found = condition_depth(data, MAX_CONDITION_DEPTH)
        if depth + found > MAX_CONDITION_DEPTH:
            raise ConditionSyntaxError(too_deep(depth + found), loc)
        return data  # type: ignore[return-value]
    if depth > MAX_CONDITION_DEPTH:
        raise ConditionSyntaxError(too_deep(depth), loc)
    if not isinstance(data, Mapping) or not data:
        raise ConditionSyntaxError(
            f"a condition is a mapping of paths to tests, or all / any / not, got {show(data)}",
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


def _build(loc: tuple[str | int, ...], node: type[Node], **fields: Any) -> Any:
    """``node(**fields)``, its validation error (too deep) raised as a ConditionSyntaxError."""
    try:
        return node(**fields)
    except ValueError as exc:
        message = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
        raise ConditionSyntaxError(message.removeprefix("Value error, "), loc) from None


def _parse_tests(path: str, spec: object, loc: tuple[str | int, ...]) -> list[Condition]:
    try:
        path_steps(path)
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
