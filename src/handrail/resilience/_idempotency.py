"""Idempotency keys: one key names one intended write, on every attempt and nowhere else.

A write may be retried only if the system it calls can tell a retry from a
new write; an idempotency key (sent, say, as an ``Idempotency-Key`` header)
is how it tells.  So a key must be the same on every attempt of one write and
shared with no other write.  It is never derived from the write's arguments
alone: two refunds of 40 on one invoice are two refunds.  It is the caller's
(a request id, a framework's tool-call id), or a fresh one per call (the
guard's default); ``stable_key`` builds one from a business identifier the
caller vouches is unique per intended write, the same in every process and
after every restart.
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
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = ["current_idempotency_key", "stable_key", "using_idempotency_key"]

# Bumped if the canonical form ever changes, so old and new keys never collide.
_VERSION = b"handrail.idempotency.v1\x00"
_SECRET = "<secret>"

_current: ContextVar[str | None] = ContextVar("handrail_idempotency_key", default=None)


def stable_key(parts: Mapping[str, Any]) -> str:
    """An idempotency key from a business identifier: the hex SHA-256 of ``parts``' canonical form.

    ``parts`` is a mapping the caller chose to name one intended write, e.g.
    ``stable_key({"action": "erp.order.create", "order": order_id})``: the
    caller vouches that the order id is unique per order it means to create,
    so every attempt, process and restart computes the same key, and another
    order another key.  Never build it from the write's arguments: two
    refunds of 40 on one invoice have the same arguments and are two writes.
    Hence an ``ActionRequest`` (or any other model) is refused, not keyed.

    Mapping order never matters; ``1``, ``1.0``, ``True`` and ``"1"`` differ.
    Values may be None, bool, int, float, str, bytes, lists, tuples, sets,
    mappings with str keys, dates and times (aware ones in UTC), Decimal,
    UUID, enums, paths, dataclasses and pydantic models.  Secret values
    (``SecretStr``, ``SecretBytes``) do not enter the key, which may be
    logged; if two writes differ only in a secret, add a part that tells them
    apart.  Raises ``TypeError`` for anything else: a key built from
    ``repr()`` could change between processes.
    """
    if not isinstance(parts, Mapping):
        if isinstance(parts, BaseModel) or dataclasses.is_dataclass(parts):
            # An ActionRequest above all: its arguments are the same for two intended writes.
            raise TypeError(
                f"stable_key: refused {type(parts).__name__}: a key from a whole request or "
                "from a write's arguments merges two intended writes with the same arguments "
                "(two refunds of 40 would be one). Pass the business identifier that names "
                'this one write, e.g. stable_key({"action": "erp.order.create", '
                '"order": order_id}), or let each call get a fresh key'
            )
        raise TypeError(
            "stable_key: expected a mapping of the parts that name one intended write, "
            f"e.g. {{'action': ..., 'order': order_id}}, got {type(parts).__name__}"
        )
    canonical = json.dumps(
        _canonical(parts, "parts"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    # surrogatepass: text with a lone surrogate (not valid UTF-8) still has a key of its own.
    return hashlib.sha256(_VERSION + canonical.encode("utf-8", "surrogatepass")).hexdigest()


def current_idempotency_key() -> str | None:
    """The idempotency key of the retried call running now, or None.

    Inside a function decorated with ``@retry(idempotency_key="request_id")``
    (or run by ``RetryPolicy.call(..., idempotency_key=key)``, or guarded)
    this is the key of the current call, the same on every attempt: send it
    to the remote system, e.g. as an ``Idempotency-Key`` header.
    """
    return _current.get()


@contextmanager
def using_idempotency_key(key: str | None) -> Iterator[None]:
    """Make ``key`` the current idempotency key inside the block.

    The guard runs every call under its key this way; a front end or an
    adapter that calls the system itself does the same, so the code beneath
    reads it with ``current_idempotency_key()``.
    """
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
                    f"stable_key: {path} has a key {key!r} of type "
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
        f"stable_key: {path} is a {type(value).__name__}, which has no stable form; "
        "pass the fields that identify it (str, int, a dataclass or a pydantic model)"
    )
