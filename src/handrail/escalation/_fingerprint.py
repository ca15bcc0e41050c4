"""``request_fingerprint``: the digest of what an approval covers, refusing what it cannot tell."""

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
from .._text import printable
from .._values import OpaqueValue
from ..policy import ActionRequest

__all__ = ["request_fingerprint"]


def request_fingerprint(request: ActionRequest) -> str:
    """A digest of what an approval covers: action, agent, user, resource and the full arguments.

    Secrets count (a changed password is a different request); only the
    digest is stored.  Resuming an escalation with a request whose
    fingerprint differs is refused.

    Raises ``ConfigurationError`` naming the argument if it holds a value the
    digest could not tell from another (a value handrail could not read, such
    as an n-d array or a container past the size or depth limits, or an
    object only shown by its ``repr()``): no case is opened for it, and no
    approval runs it.
    """
    for name, value in request.args.items():
        why = _unstable(value, 0)
        if why is not None:
            raise ConfigurationError(
                f"argument {printable(str(name))[:80]} cannot be fingerprinted: it holds {why}, "
                "and an approval could not tell it from another value of its kind, so the call "
                "cannot be escalated (pass plain data: numbers, strings, lists, mappings, "
                "dataclasses or pydantic models of them)"
            )
    principal = request.principal
    resource = request.resource
    return args_digest(
        {
            "action": request.action,
            "agent": principal.agent,
            "on_behalf_of": None if principal.on_behalf_of is None else principal.on_behalf_of.id,
            "resource": None if resource is None else {"type": resource.type, "id": resource.id},
            "args": request.args,
        }
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
