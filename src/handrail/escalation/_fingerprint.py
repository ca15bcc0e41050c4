"""``request_fingerprint``: the keyed digest of what an approval covers."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from fractions import Fraction
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from .._encoding import args_digest
from .._errors import ConfigurationError
from .._keys import MIN_KEY_BYTES
from .._text import printable
from .._values import OpaqueValue
from ..policy import ActionRequest

__all__ = ["request_fingerprint"]


def request_fingerprint(request: ActionRequest, *, key: bytes) -> str:
    """The keyed digest of what an approval covers: everything the policy can read.

    The action; the agent with its roles and attributes; the on-behalf-of
    user with id, roles, groups and attributes; the resource with type, id
    and attributes; every argument; the context.  A request that differs in
    any of them has another fingerprint, so an approval of one never runs the
    other.  Secrets count (a changed password is a different request).

    An HMAC-SHA256 under ``key`` (``hmac-sha256:<hex>``), never a bare hash:
    the digest of a request holding a short secret (a 6-digit code) cannot
    be confirmed by guessing without the key.  ``EscalationRouter.fingerprint``
    calls this with the router's fingerprint key.

    Raises ``ConfigurationError`` for a ``key`` shorter than 32 bytes, and,
    naming the field, if the request holds a value the digest could not tell
    from another (a value handrail could not read, such as an n-d array or a
    container past the size or depth limits, or an object only shown by its
    ``repr()``): no case is opened for it, and no approval runs it.
    """
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(
            f"request_fingerprint: key must be bytes of at least {MIN_KEY_BYTES} bytes"
        )
    principal = request.principal
    user = principal.on_behalf_of
    resource = request.resource
    _check_stable("argument", request.args)
    _check_stable("context key", request.context)
    _check_stable("agent attribute", principal.attributes)
    if user is not None:
        _check_stable("user attribute", user.attributes)
    if resource is not None:
        _check_stable("resource attribute", resource.attributes)
    # Every field a condition path can name (policy._paths), spelled out, so a new
    # model field is a decision here rather than silently covered or left out.
    return args_digest(
        {
            "action": request.action,
            "agent": {
                "id": principal.agent,
                "roles": principal.roles,
                "attributes": principal.attributes,
            },
            "on_behalf_of": None
            if user is None
            else {
                "id": user.id,
                "roles": user.roles,
                "groups": user.groups,
                "attributes": user.attributes,
            },
            "resource": None
            if resource is None
            else {"type": resource.type, "id": resource.id, "attributes": resource.attributes},
            "args": request.args,
            "context": request.context,
        },
        key=key,
    )


def _check_stable(kind: str, values: Mapping[str, Any]) -> None:
    """``ConfigurationError`` naming the first key of ``values`` an approval could not tell."""
    for name, value in values.items():
        why = _unstable(value, 0)
        if why is not None:
            raise ConfigurationError(
                f"{kind} {printable(str(name))[:80]} cannot be fingerprinted: it holds {why}, "
                "and an approval could not tell it from another value of its kind, so the call "
                "cannot be escalated (pass plain data: numbers, strings, lists, mappings, "
                "dataclasses or pydantic models of them)"
            )


# Values whose digest (``plain``) spells out everything they hold.
_LEAVES = (
    str, int, float, type(None), bytes, bytearray, Decimal, Fraction, complex,
    date, time_of_day, timedelta, uuid.UUID, PurePath, SecretStr, SecretBytes,
)  # fmt: skip
_MAX_FINGERPRINT_DEPTH = 64


def _unstable(value: Any, depth: int) -> str | None:
    """What in ``value`` a digest would not tell apart from another value, or None.

    A value handrail could not read (``OpaqueValue``: an n-d array, a container
    too large or too deep) and an object of a type ``plain`` only shows by its
    ``repr()`` (which may leave out what it holds) are both refused.
    """
    if depth > _MAX_FINGERPRINT_DEPTH:
        return f"values nested more than {_MAX_FINGERPRINT_DEPTH} deep"
    if isinstance(value, _LEAVES):
        return None
    if isinstance(value, OpaqueValue):
        return printable(f"a {value.type_name} handrail could not read ({value.why})")
    if isinstance(value, enum.Enum):
        return _unstable(value.value, depth + 1)
    items: Iterable[Any]
    if isinstance(value, BaseModel):
        items = dict(value).values()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = (getattr(value, f.name) for f in dataclasses.fields(value))
    elif isinstance(value, Mapping):
        items = (part for pair in value.items() for part in pair)
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        return printable(
            f"a {type(value).__qualname__}, which handrail can only show by its repr()"
        )
    for item in items:
        why = _unstable(item, depth + 1)
        if why is not None:
            return why
    return None
