"""Base URLs of pages we link to: checked once, so what is built on them stays a plain link."""

from __future__ import annotations

from urllib.parse import urlsplit

from ._errors import ConfigurationError
from ._text import printable

__all__ = ["check_base_url"]


def check_base_url(value: object, owner: str, argument: str) -> str:
    """``value`` without a trailing slash, if an http(s) URL with a host and no query or fragment.

    Paths are appended to it (``/link/{token}``, ``/cases/{id}``), so a
    query or fragment would swallow them.  Raises ``ConfigurationError``
    naming ``owner`` and ``argument`` otherwise.
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"{owner}: {argument} must be a str, got {value!r}")
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or not value.isprintable()
        or " " in value
    ):
        raise ConfigurationError(
            f"{owner}: {argument} {printable(value)[:200]!r} is not an http(s) URL "
            "without query or fragment, such as 'https://approvals.example.com'"
        )
    return value.rstrip("/")
