"""Every public call shape of handrail.approvals, checked by mypy --strict (never executed)."""

from datetime import timedelta
from typing import Any, assert_type

from pydantic import SecretStr

from handrail.approvals import (
    Authenticator,
    DecisionLinks,
    HttpRequest,
    Identity,
    LinkBinding,
    SlackAction,
    SlackInteractions,
    TrustedHeaderAuthenticator,
)
from handrail.escalation import EscalationRouter, MemoryStore
from handrail.testing import FakeClock

links = DecisionLinks(SecretStr("k" * 32), base_url="https://a.example", ttl=timedelta(hours=1))
links = DecisionLinks(b"k" * 32, base_url="https://a.example", clock=FakeClock())
token = links.issue(escalation_id="esc-1", level=0, decider="maria", fingerprint="fp")
assert_type(token, str)
assert_type(links.url(escalation_id="esc-1", level=0, decider="maria", fingerprint="fp"), str)
identity = links.verify(token)
assert_type(identity, Identity)
assert_type(identity.binding, LinkBinding | None)

request = HttpRequest("GET", "/link/x", headers={"x-forwarded-user": "maria"}, client="10.0.0.1")
authenticators: list[Authenticator] = [
    links,
    TrustedHeaderAuthenticator("x-forwarded-user", proxies=["10.0.0.0/8"]),
]
for authenticator in authenticators:
    assert_type(authenticator.authenticate(request), Identity | None)

slack = SlackInteractions("secret", users={"U1": "maria"}, window=timedelta(minutes=5))
action = slack.verify({"x-slack-signature": "v0=..."}, b"payload=...")
assert_type(action, SlackAction)
assert_type(action.approve, bool)
assert_type(SlackInteractions.buttons("esc-1", 0, "fp"), dict[str, Any])

router = EscalationRouter([], MemoryStore(), links=links)
