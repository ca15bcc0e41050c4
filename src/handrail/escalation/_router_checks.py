"""``EscalationRouter``'s arguments, checked when it is built or called.

A wrong value is refused with a ``ConfigurationError`` naming the argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError, ExternalIdConflict, NotAuthenticated
from .._text import printable
from ..approvals import Identity
from ..redaction import Redactor
from ._model import Escalation, Route

if TYPE_CHECKING:
    from ._channels import Channel

__all__ = [
    "check_channels",
    "check_duration",
    "check_identity",
    "check_routes",
    "check_same_request",
    "without_password",
]


def check_routes(routes: Iterable[Route] | Mapping[str, Route]) -> dict[str, Route]:
    items = list(routes.values()) if isinstance(routes, Mapping) else list(routes)
    found: dict[str, Route] = {}
    for route in items:
        if not isinstance(route, Route):
            raise ConfigurationError(
                f"EscalationRouter: routes must be Route objects, got {type(route).__name__}"
            )
        if route.name in found:
            raise ConfigurationError(f"EscalationRouter: two routes are named {route.name!r}")
        found[route.name] = route
    return found


def check_channels(channels: Sequence[Channel]) -> dict[str, Channel]:
    found: dict[str, Channel] = {}
    for channel in channels:
        name = getattr(channel, "name", None)
        if not isinstance(name, str) or not callable(getattr(channel, "send", None)):
            raise ConfigurationError(
                f"EscalationRouter: a channel needs a str 'name' and an async 'send', "
                f"got {type(channel).__name__}"
            )
        if name in found:
            raise ConfigurationError(f"EscalationRouter: two channels are named {name!r}")
        found[name] = channel
    return found


def check_identity(escalation_id: str, by: object) -> Identity | NotAuthenticated:
    """``by`` if it is a verified ``Identity``; else the ``NotAuthenticated`` to raise (and audit).

    A user id or a ``User`` is only a name anyone can type, and a ``User``'s
    own ``groups`` are the caller's say-so: neither is a decider.
    """
    if isinstance(by, Identity):
        return by
    return NotAuthenticated(
        escalation_id,
        f"a decision needs an Identity an authenticator verified, not a {type(by).__name__}",
    )


def check_same_request(
    found: Escalation, request: Mapping[str, Any], external_id: str
) -> Escalation:
    """``found``, the case opened under ``external_id``, if it is for this request."""
    if found.request.get("fingerprint") != request["fingerprint"]:
        raise ExternalIdConflict(found.id, external_id)
    return found


def check_duration(name: str, value: object, *, allow_zero: bool = False) -> timedelta:
    """``value`` if it is a ``timedelta`` the parameter ``name`` accepts; else ConfigurationError.

    Numbers are refused, not read as seconds: durations are ``timedelta`` everywhere.
    """
    if not isinstance(value, timedelta):
        shown = printable(repr(value))[:40]
        hint = f" (e.g. timedelta(seconds={shown}))" if isinstance(value, int | float) else ""
        raise ConfigurationError(
            f"EscalationRouter: {name} must be a datetime.timedelta, got "
            f"{type(value).__name__} {shown}{hint}"
        )
    if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
        bound = "must not be negative" if allow_zero else "must be positive"
        raise ConfigurationError(f"EscalationRouter: {name} {bound}, got {value}")
    return value


def without_password(target: str) -> str:
    return Redactor().scrub(target, ())
