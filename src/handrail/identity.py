"""Who is acting: the agent, and the user it acts for.

Ids, roles and groups are names, canonicalised when a ``User`` or ``Principal``
is built (see ``handrail._names``): ``Principal(agent="Support-Bot")`` has
``agent == "support-bot"``, and a name with a look-alike character from another
script is refused there, with a ``ValidationError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ._names import canonical_name, canonical_names
from ._values import normalise_mapping

__all__ = ["Principal", "User"]


class User(BaseModel):
    """A human identity an agent acts for: their id, roles and groups.

    A plain string is accepted wherever a ``User`` is expected and becomes
    ``User(id=...)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    id: str = Field(min_length=1)
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _canonical_id(cls, value: object) -> object:
        # The empty id is left to min_length, which says so in pydantic's words.
        return value if value == "" else canonical_name(value, "user id")

    @field_validator("roles", "groups", mode="before")
    @classmethod
    def _canonical_names(cls, value: object, info: ValidationInfo) -> object:
        return canonical_names(value, f"user {info.field_name}")

    @field_validator("attributes")
    @classmethod
    def _plain_attributes(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        return normalise_mapping(value)


class Principal(BaseModel):
    """The acting identity of one request.

    ``agent`` is the agent's own id; ``on_behalf_of`` is the user it acts as,
    if any.  Acting for a user never widens what the agent may do: policies
    evaluate both and the stricter result stands.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    agent: str = Field(min_length=1)
    on_behalf_of: User | None = None
    roles: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = Field(default_factory=dict)

    @field_validator("on_behalf_of", mode="before")
    @classmethod
    def _user_from_id(cls, value: object) -> object:
        return User(id=value) if isinstance(value, str) else value

    @field_validator("agent", mode="before")
    @classmethod
    def _canonical_agent(cls, value: object) -> object:
        return value if value == "" else canonical_name(value, "agent id")

    @field_validator("roles", mode="before")
    @classmethod
    def _canonical_roles(cls, value: object) -> object:
        return canonical_names(value, "agent roles")

    @field_validator("attributes")
    @classmethod
    def _plain_attributes(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        return normalise_mapping(value)
