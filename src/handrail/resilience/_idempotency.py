"""Idempotency keys: the same request always gets the same key, a different one a different key.

A write may be retried only if the system it calls can tell a retry from a
new request; an idempotency key (sent, say, as an ``Idempotency-Key``
header) is how it tells.  The key must therefore be derived from the request
itself — never from the time, a counter or a random number — so it is the
same on every attempt, in every process, after every restart.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, SecretBytes, SecretStr

from ..identity import Principal

__all__ = ["current_idempotency_key", "idempotency_key", "using_idempotency_key"]

# Bumped if the canonical form ever changes, so old and new keys never collide.
_VERSION = b"handrail.idempotency.v1\x00"
_SECRET = "<secret>"

_current: ContextVar[str | None] = ContextVar("handrail_idempotency_key", default=None)


class _Resource(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def id(self) -> str | None: ...


@runtime_checkable
class _Request(Protocol):
    """The parts of a request a key is made of: ``handrail.ActionRequest`` has them.

    A protocol, not the class: resilience sits beside policy, below it in no way.
    """

    @property
    def action(self) -> str: ...
    @property
    def principal(self) -> Principal: ...
    @property
    def resource(self) -> _Resource | None: ...
    @property
    def args(self) -> Mapping[str, Any]: ...


def idempotency_key(request: _Request | Mapping[str, Any]) -> str:
    """A stable key for a write: the hex SHA-256 of the request's canonical form.

    From an ``ActionRequest`` the key covers the action, the agent, the user
    it acts for, the resource's type and id, and the arguments; not the
    context (timestamps, trace ids) nor the resource's other attributes,
    which may differ between attempts.  From a mapping, it covers the whole
    mapping, e.g. ``idempotency_key({"action": "erp.order.create", "order": "o-1"})``.

    Mapping order never matters; ``1``, ``1.0``, ``True`` and ``"1"`` differ.
    Values may be None, bool, int, float, str, bytes, lists, tuples, sets,
    mappings with str keys, dates and times (aware ones in UTC), Decimal,
    UUID, enums, paths, dataclasses and pydantic models.  Secret values
    (``SecretStr``, ``SecretBytes``) do not enter the key, which may be
    logged; if two writes differ only in a secret, add a part that tells them
    apart.  Raises ``TypeError`` for any other type: a key built from
    ``repr()`` could change between processes.
    """
    if not isinstance(request, Mapping) and isinstance(request, _Request):
        principal = request.principal
        resource = request.resource
        parts: Mapping[str, Any] = {
            "action": request.action,
            "agent": principal.agent,
            "on_behalf_of": principal.on_behalf_of.id if principal.on_behalf_of else None,
            "resource": None if resource is None else {"type": resource.type, "id": resource.id},
            "args": request.args,
        }
    elif isinstance(request, Mapping):
        parts = request
    else:
        raise TypeError(
            f"idempotency_key: expected an ActionRequest or a mapping of the request's parts, "
            f"got {type(request).__name__}"
        )
    canonical = json.dumps(
        _canonical(parts, "request"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    # surrogatepass: text with a lone surrogate (not valid UTF-8) still has a key of its own.
    return hashlib.sha256(_VERSION + canonical.encode("utf-8", "surrogatepass")).hexdigest()


def current_idempotency_key() -> str | None:
    """The idempotency key of the retried call running now, or None.

    Inside a function decorated with ``@retry(idempotency_key=...)`` (or run
    by ``RetryPolicy.call(..., idempotency_key=...)``) this is the key of the
    current call, the same on every attempt: send it to the remote system,
    e.g. as an ``Idempotency-Key`` header.
    """
    return _current.get()


@contextmanager
def using_idempotency_key(key: str | None) -> Iterator[None]:
    """Make ``key`` the current idempotency key inside the block (private to handrail)."""
    token = _current.set(key)
    try:
        yield
    finally:
        _current.reset(token)


def _canonical(value: Any, path: str) -> Any:
    """``value`` as plain JSON data, with one spelling for each meaning."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # JSON already spells 1 and 1.0 apart; it has no spelling for inf and nan.
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, SecretStr | SecretBytes):
        return _SECRET
    if isinstance(value, enum.Enum):
        return _canonical(value.value, path)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"idempotency_key: {path} has a key {key!r} of type "
                    f"{type(key).__name__}; only str keys give a stable key"
                )
            out[key] = _canonical(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_canonical(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [_canonical(item, f"{path}[]") for item in value]
        return {"$set": sorted(items, key=lambda item: json.dumps(item, sort_keys=True))}
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(dt.UTC)
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date | dt.time | dt.timedelta):
        return {f"${type(value).__name__}": str(value)}
    if isinstance(value, Decimal | uuid.UUID | PurePath):
        return {f"${type(value).__name__}": str(value)}
    if isinstance(value, BaseModel):
        return _canonical(dict(value), path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _canonical(fields, path)
    raise TypeError(
        f"idempotency_key: {path} is a {type(value).__name__}, which has no stable form; "
        "pass the fields that identify it (str, int, a dataclass or a pydantic model)"
    )
