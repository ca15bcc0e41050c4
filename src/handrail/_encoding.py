"""Plain data and canonical JSON: one spelling for each value, and digests of it.

Pure functions, no I/O, shared by every package that writes what a call was
given: the audit trail (records and their hash chain), the escalation router
(a case's arguments and their digest) and the guard.

* ``plain`` turns values that are not JSON (datetimes, ``Decimal``, ``bytes``,
  sets, models, dataclasses, ...) into stable JSON forms; anything else
  unknown becomes its ``repr()``;
* ``canonical`` writes plain data as canonical JSON: keys sorted, no
  whitespace (``","`` and ``":"``), UTF-8 rather than ``\\u`` escapes;
* ``args_digest`` is the SHA-256 (or HMAC) of a call's full arguments,
  secrets included, so whoever holds them can show they were the ones used.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = [
    "args_digest",
    "canonical",
    "digest_text",
    "encode_revealing",
    "is_plain",
    "plain",
]

_SCALARS = (str, int, float, bool, type(None))
_JSON_TYPES = frozenset(_SCALARS)


def _chunker(default: Callable[[Any], Any]) -> Callable[[Any, int], Iterable[str]]:
    """A canonical JSON encoder writing unknown objects as ``default(obj)``, called as
    ``"".join(chunks(value, 0))``."""
    if c_make_encoder is None:  # pragma: no cover - no C accelerator (PyPy)
        encoder = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default
        )
        return lambda value, _level: encoder.iterencode(value)
    # json's C encoder, built once: JSONEncoder.encode builds a new one per
    # call, which costs more than encoding a small record.  No circular
    # check: plain data is a tree (a cycle fails as RecursionError).
    chunks: Callable[[Any, int], Iterable[str]]
    chunks = c_make_encoder(None, default, encode_basestring, None, ":", ",", True, False, True)
    return chunks


def _repr(value: Any) -> str:
    """``repr(value)``; if that raises (a hostile or broken object), a stand-in naming its type."""
    try:
        return repr(value)
    except Exception as exc:
        return f"<{type(value).__qualname__}: repr() raised {type(exc).__name__}>"


# Called inline by canonical and encode_revealing, which are on every append's path.
_chunks = _chunker(_repr)


def canonical(value: Any) -> str:
    """``value`` as canonical JSON text (sorted keys, no whitespace, no ``\\u`` escapes).

    ``value`` must be plain data (see ``plain``); anything the encoder does not
    know is written as its ``repr()``.  The same text as ``json.dumps(value,
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)``.
    """
    return "".join(_chunks(value, 0))


# -- plain data ------------------------------------------------------------------


def is_plain(value: Any) -> bool:
    """True when ``value`` is already JSON-shaped: str-keyed dicts, lists and scalars.

    Tuples are not: they would come back from the log as lists.
    """
    kind = type(value)
    if kind in _JSON_TYPES:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in _JSON_TYPES and not is_plain(item):
                return False
        return True
    if kind is list:
        return all(type(item) in _JSON_TYPES or is_plain(item) for item in value)
    return False


def plain(value: Any) -> Any:
    """``value`` as JSON-shaped data that encodes the same way every time.

    Mappings become dicts with string keys, sequences lists, sets sorted lists;
    models and dataclasses dicts of their fields; datetimes ISO 8601 text;
    ``Decimal``, ``UUID`` and paths text; ``bytes`` base64 text; enums their
    value.  ``SecretStr`` and ``SecretBytes`` are kept as they are, for the
    redactor to mask.  Anything else becomes its ``repr()``.
    """
    if type(value) in _JSON_TYPES:
        return value
    if isinstance(value, SecretStr | SecretBytes):
        return value
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):  # an int subclass (bool cannot be subclassed)
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, BaseModel):
        return plain(dict(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return {_key(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=encode_revealing)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal | uuid.UUID | PurePath):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return _repr(value)


def _key(key: Any) -> str:
    """A mapping key as JSON writes it (``1`` as ``"1"``, ``None`` as ``"null"``)."""
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    return encode_revealing(plain(key))


# -- the digest of the full arguments --------------------------------------------


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return base64.b64encode(value.get_secret_value()).decode("ascii")
    return _repr(value)


_revealing_chunks = _chunker(_reveal)


def args_digest(args: Any, *, key: bytes | None = None) -> str:
    """The digest of a call's full arguments, secrets included: ``sha256:<hex>``.

    Computed over the canonical JSON of ``plain(args)`` with ``SecretStr``
    values revealed, so whoever holds the original arguments can show that
    these were the ones used.  With ``key``, it is an HMAC-SHA256
    (``hmac-sha256:<hex>``): a bare hash of a guessable secret (a short
    password, a card number) can be confirmed by guessing; an HMAC cannot
    without the key.
    """
    if not is_plain(args):
        args = plain(args)
    return digest_text(encode_revealing(args), key)


def encode_revealing(value: Any) -> str:
    """``canonical``, except that ``SecretStr`` and ``SecretBytes`` values are written out."""
    return "".join(_revealing_chunks(value, 0))


def digest_text(text: str, key: bytes | None) -> str:
    """``sha256:<hex>`` of ``text``, or ``hmac-sha256:<hex>`` with ``key``."""
    data = text.encode("utf-8", "surrogatepass")
    if key is None:
        return "sha256:" + hashlib.sha256(data).hexdigest()
    return "hmac-sha256:" + hmac.new(key, data, hashlib.sha256).hexdigest()
