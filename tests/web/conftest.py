"""The approval page's fixtures: a router with one finance route, signed links, a page client."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from handrail import Policy, Principal
from handrail.approvals import DecisionLinks, TrustedHeaderAuthenticator
from handrail.audit import AuditLog
from handrail.escalation import Escalation, EscalationRouter, Level, MemoryStore, Route
from handrail.identity import User
from handrail.policy import ActionRequest
from handrail.testing import FakeClock
from handrail.web import approval_app

POLICY = Policy.from_yaml(
    """
rules:
  - id: big-payments
    effect: escalate
    actions: [erp.payment.create]
    when: {args.amount: {gt: 10000}}
    escalate_to: finance
  - {id: payments, effect: allow, actions: [erp.payment.create]}
"""
)
FINANCE = Route(
    name="finance",
    levels=(
        Level(
            name="controllers",
            deciders=("maria", "sam", "group:cfo"),
            ack_within=timedelta(hours=1),
            resolve_within=timedelta(hours=4),
        ),
    ),
)
GROUPS = {"cfo": ["carl"]}
ROUTER_KEY = "router-key-for-the-web-tests-only-32-bytes"
LINK_KEY = b"link-key-for-tests-only-32-bytes"
FORM_SECRET = "form-secret-for-tests"
ARGS = {"amount": 250000, "iban": "DE44 5001 0517 5407 3249 31", "memo": "Q3 supplier invoice"}


def payment(
    *,
    args: Mapping[str, Any] = ARGS,
    agent: str = "pay-bot",
    user: str | None = "sam",
    resource: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> ActionRequest:
    """A payment the policy escalates (amount over 10,000)."""
    return ActionRequest(
        principal=Principal(agent=agent, on_behalf_of=None if user is None else User(id=user)),
        action="erp.payment.create",
        resource=resource or {"type": "invoice", "id": "inv-7", "attributes": {"vendor": "ACME"}},
        args=dict(args),
        context=dict(context or {"env": "production"}),
    )


def open_case(router: EscalationRouter, request: ActionRequest | None = None) -> Escalation:
    decision = POLICY.evaluate(request or payment())
    assert decision.rule_id == "big-payments"
    return router.open(decision)


def link_path(
    links: DecisionLinks, case: Escalation, decider: str = "maria", level: int | None = None
) -> str:
    token = links.issue(
        escalation_id=case.id,
        level=case.level if level is None else level,
        decider=decider,
        fingerprint=case.request["fingerprint"],
    )
    return f"/link/{token}"


def forged(token: str) -> str:
    """``token`` with its signature's first character changed (still well-formed base64url)."""
    payload, signature = token.split(".")
    return f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog.memory()


@pytest.fixture
def router(clock: FakeClock, audit: AuditLog) -> EscalationRouter:
    return EscalationRouter(
        [FINANCE], MemoryStore(), clock=clock, audit=audit, groups=GROUPS, key=ROUTER_KEY
    )


@pytest.fixture
def links(clock: FakeClock) -> DecisionLinks:
    return DecisionLinks(LINK_KEY, base_url="http://testserver", clock=clock)


@pytest.fixture
def app(router: EscalationRouter, links: DecisionLinks) -> Starlette:
    return approval_app(
        router,
        links=links,
        authenticators=[TrustedHeaderAuthenticator(proxies=["127.0.0.1/32"])],
        secret=FORM_SECRET,
    )


class Browserless:
    """Requests to the app through httpx's ASGI transport, as ``user`` (the proxy's header)."""

    def __init__(self, app: Starlette, user: str | None = None, client: str = "127.0.0.1") -> None:
        self.app = app
        self.user = user
        self.client = client

    def as_user(self, user: str | None, client: str = "127.0.0.1") -> Browserless:
        return Browserless(self.app, user, client)

    def get(self, path: str) -> httpx.Response:
        return asyncio.run(self._send("GET", path))

    def post(self, path: str, data: Mapping[str, str] | None = None) -> httpx.Response:
        return asyncio.run(self._send("POST", path, data=data))

    def post_raw(self, path: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return asyncio.run(self._send("POST", path, content=body, extra=headers))

    async def _send(
        self, method: str, path: str, extra: Mapping[str, str] = {}, **kwargs: Any
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app, client=(self.client, 50000))
        headers = {} if self.user is None else {"X-Forwarded-User": self.user}
        headers.update(extra)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
def page(app: Starlette) -> Browserless:
    return Browserless(app)
