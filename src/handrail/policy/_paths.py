"""Attribute paths: which fields of a request a condition may read, and reading them.

A path is a root (``principal``, ``resource``, ``args``, ``context``), then
the fields of handrail's models, then free keys into mappings
(``resource.attributes.owner``).  Validating this at load means a typo fails
there, not at 3 a.m.  A value that is not there reads as ``MISSING``, which
no comparison decides on (undetermined).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._model import ActionRequest

__all__ = ["MISSING", "NAME_PATHS", "getter", "mapping_key", "path_steps"]

_ROOTS = ("principal", "resource", "args", "context")
_MODEL_FIELDS: dict[str, dict[str, str | None]] = {
    # model -> field -> the model that field holds (None: a mapping or a value)
    "principal": {"agent": None, "roles": None, "attributes": None, "on_behalf_of": "user"},
    "user": {"id": None, "roles": None, "groups": None, "attributes": None},
    "resource": {"type": None, "id": None, "attributes": None},
}


# Paths that hold names (ids, roles, groups): a condition compares them in their
# canonical form (see handrail._names), so "Bot" in a policy matches agent "bot".
NAME_PATHS = frozenset(
    {
        "principal.agent",
        "principal.roles",
        "principal.on_behalf_of.id",
        "principal.on_behalf_of.roles",
        "principal.on_behalf_of.groups",
    }
)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def path_steps(path: str) -> tuple[tuple[bool, str], ...]:
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


def mapping_key(path: str) -> tuple[Callable[[ActionRequest], Any], str] | None:
    """For a key into a root mapping (``args.x``, ``context.y``): the root's getter and the key."""
    steps = path_steps(path)
    if len(steps) == 2 and not steps[1][0]:
        return attrgetter(steps[0][1]), steps[1][1]
    return None


def getter(path: str) -> Callable[[ActionRequest], Any]:
    # Specialise the common shape (args.x, context.y): a decision walks it on every call.
    direct = mapping_key(path)
    if direct is not None:
        root, key = direct

        def get_key(request: ActionRequest) -> Any:
            mapping = root(request)
            if type(mapping) is dict or isinstance(mapping, Mapping):
                return mapping.get(key, MISSING)
            return MISSING

        return get_key

    steps = path_steps(path)

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
