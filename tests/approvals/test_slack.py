"""SlackInteractions: Slack's v0 request signing, the replay window, and the user directory."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from handrail import ConfigurationError
from handrail.approvals import LinkBinding, SlackInteractions
from handrail.escalation import NotAuthenticated
from handrail.testing import FakeClock

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the placeholder secret in Slack's docs
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))


def slack(clock: FakeClock | None = None) -> SlackInteractions:
    return SlackInteractions(
        SecretStr(SECRET),
        users={"U024BE7LH": "Alice", "U0BOB": "bob"},
        clock=clock or FakeClock(NOW),
    )


def body(
    *,
    action_id: str = "handrail_approve",
    value: str = "esc-1|1|fp123",
    user: str = "U024BE7LH",
    action_ts: str | None = "1772452800.123456",
    **extra: Any,
) -> bytes:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": "alice", "team_id": "T1"},
        "trigger_id": "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
            }
        ],
    }
    if action_ts is not None:
        payload["actions"][0]["action_ts"] = action_ts
    payload.update(extra)
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(raw: bytes, ts: str = TS, secret: str = SECRET) -> dict[str, str]:
    """Headers as Slack sends them, signed per Slack's docs (computed here independently)."""
    basestring = f"v0:{ts}:".encode() + raw
    digest = hmac.new(secret.encode(), basestring, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def test_signed_approve_click_is_accepted() -> None:
    """A click signed as Slack signs it verifies: the action, and the mapped decider bound to it."""
    raw = body()
    action = slack().verify(signed(raw), raw)
    assert (action.escalation_id, action.approve, action.level, action.fingerprint) == (
        "esc-1",
        True,
        1,
        "fp123",
    )
    assert action.identity.user == "alice"
    assert action.identity.method == "slack"
    assert action.identity.detail == "U024BE7LH"
    assert action.identity.binding == LinkBinding("esc-1", 1, "fp123", "slack:1772452800.123456")


def test_reject_click_and_trigger_id_fallback() -> None:
    """The Reject button reports approve=False; without action_ts the trigger id binds the click."""
    raw = body(action_id="handrail_reject", user="U0BOB", action_ts=None)
    action = slack().verify(signed(raw), raw)
    assert not action.approve
    assert action.identity.user == "bob"
    assert action.identity.binding is not None
    assert action.identity.binding.token_id.startswith("slack:398738663015.")


def test_slack_published_example_signature() -> None:
    """Slack's published example (secret, timestamp, body, signature) passes the signature check.

    That body is a slash command, not a button click, so it is then refused for its payload:
    the refusal names the payload, not the signature.
    """
    raw = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        b"&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        b"&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
        b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = {
        "x-slack-request-timestamp": "1531420618",
        "x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    verifier = SlackInteractions(
        SECRET, users={}, clock=FakeClock(datetime.fromtimestamp(1531420618 + 60, UTC))
    )
    with pytest.raises(NotAuthenticated, match="payload=<json>"):
        verifier.verify(headers, raw)
    with pytest.raises(NotAuthenticated, match="bad signature"):
        verifier.verify(headers, raw.replace(b"foobar", b"foobaz"))


def test_stale_timestamp_is_refused() -> None:
    """A callback more than the window away from the clock (either way) is refused as a replay."""
    raw = body()
    clock = FakeClock(NOW)
    verifier = slack(clock)
    clock.advance(timedelta(minutes=5))
    assert verifier.verify(signed(raw), raw).approve
    clock.advance(timedelta(seconds=1))
    with pytest.raises(NotAuthenticated, match="window"):
        verifier.verify(signed(raw), raw)
    future = str(int(NOW.timestamp()) + 3600)
    with pytest.raises(NotAuthenticated, match="window"):
        slack().verify(signed(raw, ts=future), raw)


def test_tampered_body_is_refused() -> None:
    """Changing the body after signing (another case, approve for reject) breaks the signature."""
    raw = body(action_id="handrail_reject")
    headers = signed(raw)
    tampered = raw.replace(b"handrail_reject", b"handrail_approve")
    with pytest.raises(NotAuthenticated, match="bad signature"):
        slack().verify(headers, tampered)
    with pytest.raises(NotAuthenticated, match="bad signature"):
        slack().verify({**headers, "X-Slack-Request-Timestamp": str(int(TS) + 1)}, raw)


def test_wrong_secret_is_refused() -> None:
    """A body signed with another secret is refused."""
    raw = body()
    with pytest.raises(NotAuthenticated, match="bad signature"):
        slack().verify(signed(raw, secret="another-secret"), raw)


def test_unknown_slack_user_is_refused() -> None:
    """A Slack user missing from ``users`` is refused, whatever name the payload gives."""
    raw = body(user="U0MALLORY")
    with pytest.raises(NotAuthenticated, match="U0MALLORY is not mapped") as refused:
        slack().verify(signed(raw), raw)
    assert refused.value.escalation_id == "esc-1"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (body(action_id="other_app_button"), "not a handrail button"),
        (body(value="esc-1|1"), "malformed button value"),
        (body(value="esc-1|one|fp"), "malformed button value"),
        (body(value="esc-1|-1|fp"), "malformed button value"),
        (body(value="|1|fp"), "malformed button value"),
        (body(type="view_submission"), "not a block_actions"),
        (body(actions=[]), "not exactly one action"),
        (body(user="U0BOB", actions="x"), "not a block_actions"),
        (b"payload=%7Bnot+json", "payload=<json>"),
        (b"payload=1&payload=2", "payload=<json>"),
        (b"\xff\xfe", "payload=<json>"),
        (urlencode({"payload": "[1]"}).encode(), "not an object"),
    ],
)
def test_malformed_signed_payloads_are_refused(raw: bytes, why: str) -> None:
    """Even correctly signed, a payload that is not one click on a handrail button is refused."""
    with pytest.raises(NotAuthenticated, match=why):
        slack().verify(signed(raw), raw)


def test_missing_or_malformed_headers_and_big_bodies_are_refused() -> None:
    """No timestamp, no signature, a non-v0 signature or a body over 64 KB is refused."""
    raw = body()
    good = signed(raw)
    verifier = slack()
    with pytest.raises(NotAuthenticated, match="Timestamp"):
        verifier.verify({"X-Slack-Signature": good["X-Slack-Signature"]}, raw)
    with pytest.raises(NotAuthenticated, match="Timestamp"):
        verifier.verify({**good, "X-Slack-Request-Timestamp": "1e9"}, raw)
    with pytest.raises(NotAuthenticated, match="Signature"):
        verifier.verify({"X-Slack-Request-Timestamp": TS}, raw)
    with pytest.raises(NotAuthenticated, match="Signature"):
        verifier.verify(
            {**good, "X-Slack-Signature": good["X-Slack-Signature"].replace("v0", "v1")}, raw
        )
    big = raw + b"&" + b"x" * 70_000
    with pytest.raises(NotAuthenticated, match="64 KB"):
        verifier.verify(signed(big), big)


def test_buttons_round_trip() -> None:
    """The buttons block carries the documented action ids and value, and a click on it verifies."""
    block = SlackInteractions.buttons("esc-7", 2, "abc")
    assert block["type"] == "actions"
    assert [(b["action_id"], b["value"], b["style"]) for b in block["elements"]] == [
        ("handrail_approve", "esc-7|2|abc", "primary"),
        ("handrail_reject", "esc-7|2|abc", "danger"),
    ]
    element = block["elements"][1]
    raw = body(action_id=element["action_id"], value=element["value"])
    action = slack().verify(signed(raw), raw)
    assert (action.escalation_id, action.level, action.fingerprint, action.approve) == (
        "esc-7",
        2,
        "abc",
        False,
    )
    with pytest.raises(ConfigurationError):
        SlackInteractions.buttons("esc|7", 2, "abc")
    with pytest.raises(ConfigurationError):
        SlackInteractions.buttons("esc-7", -1, "abc")


def test_configuration_and_repr() -> None:
    """An empty secret or a bad decider name is refused; the secret never shows in the repr."""
    with pytest.raises(ConfigurationError, match="too short"):
        SlackInteractions("", users={})
    with pytest.raises(ConfigurationError):
        SlackInteractions(SECRET, users={"U1": "not a name"})
    with pytest.raises(ConfigurationError, match="a group"):
        SlackInteractions(SECRET, users={"U1": "group:leads"})
    with pytest.raises(ConfigurationError, match="window"):
        SlackInteractions(SECRET, users={}, window=timedelta(0))
    assert SECRET not in repr(slack())


def test_a_short_signing_secret_is_slacks_to_choose() -> None:
    """The signing secret is Slack's: any non-empty length is taken (unlike our own keys),
    and a bytes secret is refused; the message names the argument, never the secret."""
    short = SlackInteractions("s", users={"U024BE7LH": "alice"}, clock=FakeClock(NOW))
    raw = body()
    assert short.verify(signed(raw, secret="s"), raw).identity.user == "alice"
    with pytest.raises(ConfigurationError, match="SlackInteractions: signing_secret") as refused:
        SlackInteractions(SecretStr(""), users={})
    assert "make one with" not in str(refused.value)  # not ours to make
    with pytest.raises(ConfigurationError, match="SecretStr or str"):
        SlackInteractions(b"bytes-secret", users={})  # type: ignore[arg-type]


@given(headers=st.dictionaries(st.text(max_size=30), st.text(max_size=80)), raw=st.binary())
def test_verify_raises_only_not_authenticated(headers: dict[str, str], raw: bytes) -> None:
    """Property: any headers and body are refused with NotAuthenticated and nothing else."""
    with pytest.raises(NotAuthenticated):
        slack().verify(headers, raw)


@given(raw=st.binary(max_size=300))
def test_any_signed_body_raises_only_not_authenticated(raw: bytes) -> None:
    """Property: a signed arbitrary body gives an action or NotAuthenticated, nothing else."""
    with contextlib.suppress(NotAuthenticated):
        slack().verify(signed(raw), raw)
