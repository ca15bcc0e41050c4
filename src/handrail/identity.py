"""Who is acting: the agent, and the user it acts for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Principal", "User"]


class User(BaseModel):
    """A human identity an agent acts for: their id, roles and groups.

    A plain string is accepted wherever a ``User`` is expected and becomes
    ``User(id=...)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = Field(default_factory=dict)


class Principal(BaseModel):
    """The acting identity of one request.

    ``agent`` is the agent's own id; ``on_behalf_of`` is the user it acts as,
    if any.  Acting for a user never widens what the agent may do: policies
    evaluate both and the stricter result stands.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str = Field(min_length=1)
    on_behalf_of: User | None = None
    roles: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = Field(default_factory=dict)

    @field_validator("on_behalf_of", mode="before")
    @classmethod
    def _user_from_id(cls, value: object) -> object:
        return User(id=value) if isinstance(value, str) else value
