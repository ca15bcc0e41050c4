"""``HttpRequest`` and ``Authenticator``: the seam between a web front end and who is asking.

An approval page (``handrail.web``) or your own service turns each incoming
request into an ``HttpRequest`` and asks its authenticators, in order, who
sent it.  Each answers for one kind of credential only: ``None`` when the
request carries none of its kind (ask the next one), an ``Identity`` when it
carries a good one, and ``NotAuthenticated`` when it carries one that is
bad (a forged link, a header from outside the proxy): a bad credential is
refused outright, never passed on to a weaker authenticator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from ._identity import Identity

__all__ = ["Authenticator", "HttpRequest"]


@dataclasses.dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request as an authenticator sees it, independent of any web framework.

    ``headers`` are keyed by lower-case name (any case given is lowered; two
    names that differ only in case are refused, as ambiguous); ``query`` holds
    the decoded query parameters; ``client`` is the address of the peer that
    connected (the proxy, behind one), ``None`` when unknown; ``body`` the raw
    bytes.  Both mappings are read-only copies.
    """

    method: str
    path: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    query: Mapping[str, str] = dataclasses.field(default_factory=dict)
    client: str | None = None
    body: bytes = b""

    def __post_init__(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in headers:
                raise ValueError(f"HttpRequest: header {lowered!r} given twice")
            headers[lowered] = value
        object.__setattr__(self, "headers", MappingProxyType(headers))
        object.__setattr__(self, "query", MappingProxyType(dict(self.query)))


@runtime_checkable
class Authenticator(Protocol):
    """Who sent a request, as one kind of credential proves it.

    ``authenticate`` returns ``None`` when the request carries no credential
    of this kind, the verified ``Identity`` when it carries a good one, and
    raises ``NotAuthenticated`` when it carries one that is present but bad.
    It must not raise anything else for any request, however malformed.
    """

    def authenticate(self, request: HttpRequest) -> Identity | None:
        """The verified identity; ``None`` without credentials of this kind."""
        ...
