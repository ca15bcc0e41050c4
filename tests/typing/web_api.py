"""Every public call shape of handrail.web, checked by mypy --strict (never executed)."""

from typing import assert_type

from pydantic import SecretStr
from starlette.applications import Starlette

from handrail.approvals import DecisionLinks, SlackInteractions, TrustedHeaderAuthenticator
from handrail.escalation import EscalationRouter, MemoryStore
from handrail.web import approval_app

router = EscalationRouter([], MemoryStore(), key="k" * 32)
links = DecisionLinks(b"k" * 32, base_url="https://approvals.example")
assert_type(approval_app(router), Starlette)
assert_type(
    approval_app(
        router,
        links=links,
        authenticators=[TrustedHeaderAuthenticator(proxies=["10.0.0.5/32"]), links],
        slack=SlackInteractions("s", users={"U1": "maria"}),
        title="Approvals",
        secret=SecretStr("form-key"),
    ),
    Starlette,
)
assert_type(approval_app(router, secret=b"form-key"), Starlette)
