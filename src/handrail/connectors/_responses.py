"""Reading a response: the status check, the JSON body, and the records at a key of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from .._errors import ConnectorError
from ._pagination import shown_url

__all__ = ["checked", "describe", "json_body", "pluck"]


def checked(response: httpx.Response) -> httpx.Response:
    """Raise ``HTTPStatusError`` for a non-2xx response."""
    response.raise_for_status()
    return response


def json_body(response: httpx.Response, connector: str) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise ConnectorError(
            connector,
            f"{response.request.method} {shown_url(response.url)} answered "
            f"{response.status_code} with a body that is not JSON "
            f"(content-type {response.headers.get('content-type', 'missing')!r})",
        ) from exc


def pluck(body: Any, where: str | Callable[[Any], Any] | None) -> Any:
    if where is None:
        return body
    if callable(where):
        return where(body)
    value = body
    for part in where.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def describe(where: str | Callable[[Any], Any] | None) -> str:
    if where is None:
        return "the top of the body"
    if callable(where):
        return getattr(where, "__name__", "the given function")
    return repr(where)
