"""Secrets given as ``SecretStr``, ``str`` or ``bytes``, turned into key bytes in one place."""

from __future__ import annotations

from pydantic import SecretStr

from .._errors import ConfigurationError

__all__ = ["secret_bytes"]


def secret_bytes(value: object, what: str, *, minimum: int = 1) -> bytes:
    """``value`` as bytes (a str as UTF-8); a ``ConfigurationError`` if shorter than ``minimum``.

    The message names ``what`` and the length needed, never the secret.
    """
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes):
        raise ConfigurationError(
            f"{what} must be a SecretStr, str or bytes, got {type(value).__name__}"
        )
    if len(value) < minimum:
        raise ConfigurationError(
            f"{what} is too short: at least {minimum} bytes are needed "
            "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return value
