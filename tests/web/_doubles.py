"""TEMPORARY stand-ins for the pieces other branches are building (links, core).

Deleted when those land on main: then the tests use handrail.approvals'
DecisionLinks, TrustedHeaderAuthenticator and HttpRequest, and the router
takes an Identity itself.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import handrail.approvals
from handrail.approvals import Identity, LinkBinding
from handrail.clock import Clock, SystemClock
from handrail.escalation import Escalation, EscalationRouter, NotAuthenticated


@dataclasses.dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    client: str
    body: bytes


if not hasattr(handrail.approvals, "HttpRequest"):
    handrail.approvals.HttpRequest = HttpRequest  # type: ignore[attr-defined]


class TrustedHeaderAuthenticator:
    def __init__(self, header: str = "x-forwarded-user", proxies: list[str] | None = None) -> None:
        self.header = header
        self.proxies = [ipaddress.ip_network(p) for p in proxies or ["127.0.0.1/32"]]

    def authenticate(self, request: Any) -> Identity | None:
        user = request.headers.get(self.header)
        if user is None:
            return None
        if not any(ipaddress.ip_address(request.client) in net for net in self.proxies):
            raise NotAuthenticated("", "the header came from outside the proxy's network")
        if "," in user:
            raise NotAuthenticated("", "the header was sent twice")
        return Identity(user, "trusted-header", detail=request.client)


class DecisionLinks:
    def __init__(
        self,
        key: bytes,
        *,
        base_url: str,
        ttl: timedelta = timedelta(hours=24),
        clock: Clock | None = None,
    ) -> None:
        self.key, self.base_url, self.ttl = key, base_url, ttl
        self.clock = clock or SystemClock()
        self.issued = 0

    def issue(self, *, escalation_id: str, level: int, decider: str, fingerprint: str) -> str:
        self.issued += 1
        body = json.dumps(
            [
                escalation_id,
                level,
                decider,
                fingerprint,
                self.clock.now().timestamp() + self.ttl.total_seconds(),
                self.issued,
            ]
        ).encode()
        mac = hmac.new(self.key, body, hashlib.sha256).hexdigest()
        return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + mac

    def url(self, **kwargs: Any) -> str:
        return f"{self.base_url}/link/{self.issue(**kwargs)}"

    def verify(self, token: str) -> Identity:
        try:
            encoded, mac = token.split(".")
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            raise NotAuthenticated("", "the link is malformed") from None
        if not hmac.compare_digest(mac, hmac.new(self.key, body, hashlib.sha256).hexdigest()):
            raise NotAuthenticated("", "the link's signature does not match (forged or altered)")
        case, level, decider, fingerprint, expires, n = json.loads(body)
        if self.clock.now().timestamp() > expires:
            raise NotAuthenticated(case, "the link has expired")
        return Identity(
            decider, "signed-link", binding=LinkBinding(case, level, fingerprint, f"t{n}")
        )


class Router(EscalationRouter):
    """Takes an Identity, as the core branch's router will (no binding checks here)."""

    used: set[str]

    def decide(self, escalation_id: str, *, approve: bool, by: Any, reason: str = "") -> Escalation:
        if not isinstance(by, Identity):
            raise NotAuthenticated(escalation_id, "not an Identity")
        if by.binding is not None:
            if by.binding.token_id in getattr(self, "used", set()):
                raise NotAuthenticated(escalation_id, "the link was already used")
            self.used = {*getattr(self, "used", set()), by.binding.token_id}
        return super().decide(escalation_id, approve=approve, by=by.user, reason=reason)
