"""The request, the rule and the effect: the data a policy reasons about."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

# Re-exported: Effect lives in the foundation (audit records it without importing policy).
from .._effect import Effect
from .._names import canonical_names, check_action, check_action_pattern
from .._values import normalise_mapping
from ..identity import Principal
from ._condition_syntax import parse_condition
from ._conditions import Condition, _finish

__all__ = [
    "ActionRequest",
    "Effect",
    "PrincipalMatch",
    "Resource",
    "Rule",
]

RULE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")


def effect_from(value: object) -> object:
    """An Effect from its name in any case (for validators); a clear ValueError if unknown."""
    if isinstance(value, str) and not isinstance(value, Effect):
        try:
            return Effect(value.lower())
        except ValueError:
            raise ValueError(
                f"unknown effect {value!r} (expected allow, audit, escalate, deny)"
            ) from None
    return value


class Resource(BaseModel):
    """What the action touches: a type, an optional id, and attributes."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    type: str = Field(min_length=1)
    id: str | None = None
    attributes: Mapping[str, Any] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _plain_attributes(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        return normalise_mapping(value)

    @classmethod
    def of(cls, data: Mapping[str, Any] | Resource) -> Resource:
        """A ``Resource`` from a mapping (or itself): what front ends call once per guarded call.

        The plain shape ``{"type": str, "id": str | None, "attributes": dict}``
        is built without pydantic's validation (microseconds per call);
        anything else is validated and raises a clear ``ValidationError``.
        """
        return resource_from(data)


class ActionRequest(BaseModel):
    """One thing an agent wants to do: who, what, on what, with which arguments, in which context.

    Conditions address its parts by path: ``principal.*``, ``resource.*``,
    ``args.*`` and ``context.*``.  ``args`` and ``context`` are made plain when
    the request is built (numpy scalars become Python numbers, and so on; see
    ``handrail._values``): the function called still gets its own values.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    principal: Principal
    action: str
    resource: Resource | None = None
    args: Mapping[str, Any] = Field(default_factory=dict)
    context: Mapping[str, Any] = Field(default_factory=dict)

    @field_validator("action")
    @classmethod
    def _valid_action(cls, value: str) -> str:
        return check_action(value)

    @field_validator("args", "context")
    @classmethod
    def _plain_values(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        return normalise_mapping(value)

    @classmethod
    def of(
        cls,
        principal: Principal,
        action: str,
        resource: Resource | None = None,
        args: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> ActionRequest:
        """The request a front end builds for each guarded call, without pydantic's validation.

        Equal to ``ActionRequest(principal=..., action=..., ...)`` (a property
        test says so) at a fraction of the cost: ``principal`` must already be
        a ``Principal`` and ``resource`` a ``Resource`` (see ``Resource.of``);
        ``action`` is checked with the action-name rule; ``args`` and
        ``context`` are made plain.  Raises ``TypeError`` / ``ConfigurationError``.
        """
        if not isinstance(principal, Principal):
            raise TypeError(f"ActionRequest.of: principal must be a Principal, got {principal!r}")
        if resource is not None and not isinstance(resource, Resource):
            raise TypeError(f"ActionRequest.of: resource must be a Resource, got {resource!r}")
        return trusted_request(
            principal, check_action(action, "ActionRequest.of"), resource, args or {}, context or {}
        )


_finish(ActionRequest)

_FIELDS_SET = frozenset(ActionRequest.model_fields)
_set = object.__setattr__
# object.__new__ directly: looking up __new__ through pydantic's metaclass is slow.
_new = object.__new__


def trusted_request(
    principal: Principal,
    action: str,
    resource: Resource | None,
    args: Mapping[str, Any],
    context: Mapping[str, Any],
) -> ActionRequest:
    """Build an ActionRequest from parts the caller has already checked, without validation.

    The decorator builds one per guarded call; validation (``model_construct``
    included) costs microseconds there.  ``args`` and ``context`` are still
    made plain (a mapping of plain values is kept as it is, after a check of
    each value's type).  Equivalence with the validated model is tested.
    """
    request = _new(ActionRequest)
    _set(
        request,
        "__dict__",
        {"principal": principal, "action": action, "resource": resource,
         "args": normalise_mapping(args), "context": normalise_mapping(context)},
    )  # fmt: skip
    _set(request, "__pydantic_fields_set__", _FIELDS_SET)
    _set(request, "__pydantic_extra__", None)
    _set(request, "__pydantic_private__", None)
    return request


class PrincipalMatch(BaseModel):
    """Whom a rule applies to.  Empty means everyone; otherwise any listed match is enough.

    ``agents`` match the agent's id, ``users`` and ``groups`` the user it acts
    for, ``roles`` the roles of either.  Names are canonical (``handrail._names``):
    ``Intern`` is ``intern``, and a look-alike character is refused.  A list
    that is given must not be empty: ``roles: []`` would otherwise read as
    "everyone" (leave the field out for that).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    agents: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    @field_validator("agents", "users", "groups", "roles", mode="before")
    @classmethod
    def _canonical_names(cls, value: object, info: ValidationInfo) -> object:
        field = f"principals.{info.field_name}"
        if isinstance(value, list | tuple | set | frozenset) and not value:
            raise ValueError(
                f"{field} is an empty list, which would make the rule apply to everyone: "
                f"list at least one name, or leave {info.field_name} out"
            )
        try:
            return canonical_names(value, f"{field} entry")
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @model_serializer(mode="wrap")
    def _without_empty_lists(self, handler: SerializerFunctionWrapHandler) -> Any:
        # An empty list is refused on the way in, so it is left out on the way
        # out: a dumped PrincipalMatch validates back to an equal one.
        data = handler(self)
        return (
            {key: value for key, value in data.items() if value} if isinstance(data, dict) else data
        )

    @property
    def is_anyone(self) -> bool:
        """True when the rule names nobody, and so applies to every principal."""
        return not (self.agents or self.users or self.groups or self.roles)


class Rule(BaseModel):
    """One line of policy: for these actions and principals, when this holds, this effect.

    ``description`` and ``owner`` say why the rule exists and who set it, so
    whoever inherits the agent knows whom to ask.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str
    effect: Effect
    actions: tuple[str, ...] = Field(min_length=1)
    # model_construct: the same empty match, without building PrincipalMatch's validator at import.
    principals: PrincipalMatch = PrincipalMatch.model_construct()
    when: Condition | None = None
    escalate_to: str | None = None
    on_timeout: Literal["deny", "allow"] | None = None
    description: str = ""
    owner: str = ""

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not RULE_ID_RE.fullmatch(value):
            raise ValueError(
                f"rule id {value!r} must start with a letter or digit and use only "
                "letters, digits, '_', '.', ':' and '-'"
            )
        return value

    @field_validator("effect", mode="before")
    @classmethod
    def _known_effect(cls, value: object) -> object:
        return effect_from(value)

    @field_validator("actions", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("actions")
    @classmethod
    def _valid_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            check_action_pattern(pattern)
        return value

    @field_validator("when", mode="before")
    @classmethod
    def _parse_when(cls, value: object) -> object:
        # A mapping with "kind" is a dumped node (model_dump); others are file syntax,
        # whose keys are paths or all/any/not and so never "kind".
        if isinstance(value, Mapping) and "kind" not in value:
            return parse_condition(value)
        return value

    @model_validator(mode="after")
    def _route_iff_escalate(self) -> Rule:
        if self.effect is Effect.ESCALATE and not self.escalate_to:
            raise ValueError(
                "an escalate rule needs 'escalate_to': the name of the route whose "
                "people decide (for example escalate_to: sales-managers)"
            )
        if self.escalate_to is not None and self.effect is not Effect.ESCALATE:
            raise ValueError(
                f"'escalate_to' is only meaningful on an escalate rule, not on {self.effect.value}"
            )
        if self.on_timeout is not None and self.effect is not Effect.ESCALATE:
            raise ValueError(
                f"'on_timeout' is only meaningful on an escalate rule, not on {self.effect.value}"
            )
        return self


_RESOURCE_FIELDS_SET = frozenset(Resource.model_fields)
_RESOURCE_KEYS = frozenset({"type", "id", "attributes"})


def resource_from(data: Mapping[str, Any] | Resource) -> Resource:
    """A Resource from a mapping, checking the plain common shape by hand.

    ``{"type": str, "id": str | None, "attributes": dict}`` is built directly
    (pydantic validation costs microseconds per guarded call); anything else
    goes through full validation, which raises a clear ValidationError.
    """
    if type(data) is dict:
        kind = data.get("type")
        id_ = data.get("id")
        attributes = data.get("attributes")
        if attributes is not None and type(attributes) is dict:
            attributes = normalise_mapping(attributes)
        if (
            type(kind) is str
            and kind
            and (id_ is None or type(id_) is str)
            and (attributes is None or type(attributes) is dict)
            # no keys beyond the three known ones
            and len(data) == 1 + ("id" in data) + ("attributes" in data)
        ):
            resource = _new(Resource)
            _set(
                resource,
                "__dict__",
                {"type": kind, "id": id_, "attributes": {} if attributes is None else attributes},
            )
            _set(resource, "__pydantic_fields_set__", _RESOURCE_FIELDS_SET)
            _set(resource, "__pydantic_extra__", None)
            _set(resource, "__pydantic_private__", None)
            return resource
    if isinstance(data, Resource):
        return data
    return Resource.model_validate(data)
