"""How a record is stored: one line of canonical JSON with its hash, chained to the one before.

Pure functions, no I/O.  The rules, which ``verify`` relies on:

* the *body* of a record is every field but ``hash``, encoded as canonical
  JSON (``handrail._encoding.canonical``): keys sorted, no whitespace, UTF-8
  rather than ``\\u`` escapes;
* ``hash`` is the SHA-256 (hex) of the body's UTF-8 bytes; the body includes
  ``prev_hash``, so each hash covers the whole chain before it;
* the stored *line* is the body with ``,"hash":"<hex>"`` spliced in before the
  closing brace, then a newline.  Parsing a line and encoding it again gives
  the same bytes, so any change of any byte is visible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from .._encoding import canonical

__all__ = ["GENESIS_HASH", "check_line", "format_timestamp", "seal"]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of a log's first record."""


def seal(body: dict[str, Any]) -> tuple[bytes, str]:
    """The stored line (with its newline) and the hash for a record ``body`` without ``hash``."""
    text = canonical(body)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate cannot be stored as UTF-8: replace it, so the
        # line written is the line that verifies.
        body = _without_surrogates(body)
        text = canonical(body)
        data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    return b'%s,"hash":"%s"}\n' % (data[:-1], digest.encode("ascii")), digest


def check_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """Parse one stored line (newline stripped) and check it: (its fields, what is wrong or None).

    What can be wrong: ``"unreadable"`` (not UTF-8, not a JSON object, no
    ``hash``), ``"hash"`` (the content does not match the stored hash) or
    ``"form"`` (the hash matches but the bytes are not the canonical encoding,
    so something that does not change the meaning was changed).
    """
    try:
        fields = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "unreadable"
    if type(fields) is not dict or type(fields.get("hash")) is not str:
        return None, "unreadable"
    stored: str = fields.pop("hash")
    try:
        data = canonical(fields).encode("utf-8")
    except (UnicodeEncodeError, ValueError):  # a lone surrogate: never written by seal
        fields["hash"] = stored
        return fields, "form"
    fields["hash"] = stored
    digest = hashlib.sha256(data).hexdigest()
    if digest != stored:
        return fields, "hash"
    if raw != b'%s,"hash":"%s"}' % (data[:-1], digest.encode("ascii")):
        return fields, "form"
    return fields, None


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_surrogates(v) for v in value]
    return value


def format_timestamp(when: dt.datetime) -> str:
    """``when`` in UTC as ``2025-01-01T12:00:00.000000Z``: fixed width, so it sorts by time."""
    if when.tzinfo is not dt.UTC:
        when = when.astimezone(dt.UTC)
    return when.isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"
