"""Slack's Approve / Reject buttons call POST /slack/actions: verified, then the router decides."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette

from handrail.approvals import SlackInteractions
from handrail.audit import AuditLog
from handrail.escalation import Escalation, EscalationRouter, EscalationState
from handrail.testing import FakeClock
from handrail.web import approval_app

from .conftest import Browserless, open_case, payment

SIGNING_SECRET = "slack-signing-secret-for-tests"
USERS = {"U0MARIA": "maria", "U0SAM": "sam", "U0BOB": "bob"}


@pytest.fixture
def slack_app(router: EscalationRouter, clock: FakeClock) -> Starlette:
    slack = SlackInteractions(SIGNING_SECRET, users=USERS, clock=clock)
    return approval_app(router, slack=slack)


def click(
    case: Escalation,
    clock: FakeClock,
    *,
    user: str = "U0MARIA",
    approve: bool = True,
    click_id: str = "1733150000.000100",
    secret: str = SIGNING_SECRET,
) -> tuple[bytes, dict[str, str]]:
    """A callback as Slack signs it: ``payload=<json>``, v0 HMAC over timestamp and body."""
    buttons = SlackInteractions.buttons(case.id, case.level, case.request["fingerprint"])
    button = buttons["elements"][0 if approve else 1]
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "trigger_id": "trigger-1",
        "actions": [{**button, "action_ts": click_id}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(clock.now().timestamp()))
    signature = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={signature.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def test_a_signed_click_approves_as_the_mapped_decider(
    router: EscalationRouter, clock: FakeClock, slack_app: Starlette
) -> None:
    """The click decides as the decider ``users`` maps the Slack user to; Slack gets a reply."""
    case = open_case(router)
    body, headers = click(case, clock)
    reply = Browserless(slack_app).post_raw("/slack/actions", body, headers)
    assert reply.status_code == 200
    assert reply.json()["text"] == f"Case {case.id}: Approved by maria."
    decided = router.get(case.id)
    assert decided.state is EscalationState.APPROVED
    assert decided.history[-1].via.startswith("slack U0MARIA")


def test_a_reject_click_rejects(
    router: EscalationRouter, clock: FakeClock, slack_app: Starlette
) -> None:
    """The Reject button rejects."""
    case = open_case(router)
    body, headers = click(case, clock, approve=False)
    reply = Browserless(slack_app).post_raw("/slack/actions", body, headers)
    assert reply.json()["text"] == f"Case {case.id}: Rejected by maria."
    assert router.get(case.id).state is EscalationState.REJECTED


def test_forged_stale_and_replayed_clicks_are_refused(
    router: EscalationRouter, clock: FakeClock, slack_app: Starlette
) -> None:
    """A bad signature or a stale timestamp is a 401; a replayed click is refused."""
    case = open_case(router)
    page = Browserless(slack_app)
    body, headers = click(case, clock, secret="not-the-secret")
    forged = page.post_raw("/slack/actions", body, headers)
    assert forged.status_code == 401
    assert "bad signature" in forged.text
    body, headers = click(case, clock, approve=False)
    clock.advance(timedelta(minutes=6))  # past Slack's five-minute window
    stale = page.post_raw("/slack/actions", body, headers)
    assert stale.status_code == 401
    assert router.get(case.id).state is EscalationState.OPEN

    body, headers = click(case, clock)
    assert page.post_raw("/slack/actions", body, headers).status_code == 200
    replayed = page.post_raw("/slack/actions", body, headers)
    assert replayed.status_code == 200
    assert replayed.json()["text"].startswith("Refused: ")
    assert "already used" in replayed.json()["text"]
    assert router.get(case.id).state is EscalationState.APPROVED


def test_refusals_are_told_to_the_clicker_and_audited(
    router: EscalationRouter, clock: FakeClock, slack_app: Starlette, audit: AuditLog
) -> None:
    """A Slack user who is no decider, or who asked for the case, is refused in the reply."""
    case = open_case(router)  # on behalf of sam
    page = Browserless(slack_app)
    for user, why in (("U0BOB", "'bob' may not decide"), ("U0SAM", "acts for")):
        body, headers = click(case, clock, user=user, click_id=f"{user}.1")
        reply = page.post_raw("/slack/actions", body, headers)
        assert reply.status_code == 200
        assert reply.json()["text"].startswith("Refused: ")
        assert why in reply.json()["text"]
    assert router.get(case.id).state is EscalationState.OPEN
    assert [r.context["by"] for r in audit.records() if r.outcome == "refused"] == ["bob", "sam"]
    other = open_case(router, payment(user=None))
    body, headers = click(other, clock, user="U0NOBODY")
    assert page.post_raw("/slack/actions", body, headers).status_code == 401


def test_an_unmapped_slack_user_is_audited_on_the_case_a_forged_click_on_none(
    router: EscalationRouter, clock: FakeClock, slack_app: Starlette, audit: AuditLog
) -> None:
    """Slack signed the click, so the case it names is authentic: a Slack user not mapped to a
    decider is a refused decision on it, audited as an expired link is.  A click whose
    signature fails names nothing to trust: no record."""
    case = open_case(router)
    page = Browserless(slack_app)
    body, headers = click(case, clock, secret="not-the-secret")
    assert page.post_raw("/slack/actions", body, headers).status_code == 401
    assert [r for r in audit.records() if r.outcome == "refused"] == []
    body, headers = click(case, clock, user="U0NOBODY")
    refused = page.post_raw("/slack/actions", body, headers)
    assert refused.status_code == 401
    assert "not mapped to a decider" in refused.text
    [record] = [r for r in audit.records() if r.outcome == "refused"]
    assert (record.escalation_id, record.context["via"], record.context["by"]) == (
        case.id, "slack", "",
    )  # fmt: skip
    assert record.reason is not None
    assert "U0NOBODY is not mapped" in record.reason
    assert router.get(case.id).state is EscalationState.OPEN


def test_without_slack_the_endpoint_is_not_there(router: EscalationRouter) -> None:
    """No ``slack`` verifier: 404."""
    reply = Browserless(approval_app(router)).post_raw("/slack/actions", b"payload={}", {})
    assert reply.status_code == 404
