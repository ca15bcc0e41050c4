"""Secret keys: read once from an argument or the environment, checked, never shown.

A key is given as ``SecretStr``, ``str`` (UTF-8 encoded) or ``bytes``; ``None``
reads an environment variable.  Shorter than ``MIN_KEY_BYTES`` is refused: an
HMAC keyed with a guessable key is a bare hash again.  The key is kept as
``SecretBytes``, so a ``repr``, a log line or a traceback's locals show
``**********``; errors name the argument or variable, never the value.

``derive_key`` makes a sub-key per purpose (HMAC of the purpose's label under
the key), so one secret can key fingerprints, links and whatever comes next
without one use's output ever being valid for another.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from pydantic import SecretBytes, SecretStr

from ._errors import ConfigurationError

__all__ = ["MIN_KEY_BYTES", "derive_key", "key_bytes", "read_key"]

MIN_KEY_BYTES = 32
"""The shortest key accepted, in bytes: 256 bits, as many as the HMAC-SHA256 it keys."""

KeyInput = SecretStr | SecretBytes | str | bytes | None


def read_key(value: KeyInput, *, argument: str, env: str) -> SecretBytes | None:
    """The key ``value`` holds, or the one in the environment variable ``env`` when None.

    Returns None when neither holds one (an empty variable counts as unset).
    Raises ``ConfigurationError`` naming ``argument`` (or ``env``) for a key of
    the wrong type or shorter than ``MIN_KEY_BYTES`` bytes; the message never
    includes the key.
    """
    if value is None:
        found = os.environ.get(env, "")
        if not found.strip():
            return None
        return key_bytes(found, source=f"${env}")
    return key_bytes(value, source=argument)


def key_bytes(
    value: SecretStr | SecretBytes | str | bytes, *, source: str, minimum: int = MIN_KEY_BYTES
) -> SecretBytes:
    """``value`` (a str as UTF-8) as ``SecretBytes``, at least ``minimum`` bytes long.

    ``minimum`` is ``MIN_KEY_BYTES`` for a key we make ourselves; a secret
    someone else issued (Slack's signing secret) is taken at any non-empty
    length, ``minimum=1``.  Raises ``ConfigurationError`` naming ``source``
    for the wrong type or a short value; the message never includes it.
    """
    if isinstance(value, SecretStr | SecretBytes):
        value = value.get_secret_value()
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bytes | bytearray):
        data = bytes(value)
    else:
        raise ConfigurationError(
            f"{source} must be a SecretStr, str or bytes key, got {type(value).__name__}"
        )
    if len(data) < minimum:
        hint = (
            " (make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
            if minimum >= MIN_KEY_BYTES
            else ""
        )
        raise ConfigurationError(
            f"{source} is too short: it needs at least {minimum} "
            f"byte{'s' if minimum != 1 else ''}, this one has {len(data)}{hint}"
        )
    return SecretBytes(data)


def derive_key(key: SecretBytes, purpose: bytes) -> bytes:
    """The sub-key of ``key`` for ``purpose`` (a label such as ``b"handrail/fingerprint/v1"``)."""
    return hmac.new(key.get_secret_value(), purpose, hashlib.sha256).digest()
