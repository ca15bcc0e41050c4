"""``SlackInteractions``: Approve / Reject buttons in Slack, and verifying their callbacks.

Slack signs every interaction callback it sends with the app's signing
secret (its "v0" scheme)::

    X-Slack-Request-Timestamp: 1531420618
    X-Slack-Signature: v0=hex(HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + raw body))

A callback counts only if that signature matches, its timestamp is within
``window`` of the clock (a replay of an old callback is refused), and the
Slack user who clicked is listed in ``users``: the mapping from Slack user
ids to decider ids is yours, never the payload's.  The identity is bound to
the button's escalation, level and fingerprint, and to the click
(``action_ts``): the router refuses a second decision with the same click.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from pydantic import SecretStr

from .._errors import ConfigurationError, NotAuthenticated
from .._keys import key_bytes
from .._names import canonical_name
from .._text import printable
from ..clock import Clock, SystemClock
from ._identity import Identity, LinkBinding

__all__ = ["APPROVE_ACTION", "REJECT_ACTION", "SlackAction", "SlackInteractions"]

APPROVE_ACTION = "handrail_approve"
"""The ``action_id`` of the Approve button."""
REJECT_ACTION = "handrail_reject"
"""The ``action_id`` of the Reject button."""

MAX_BODY = 64 * 1024
"""The largest callback body verified, in bytes; larger ones are refused unread."""

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_LEVEL = re.compile(r"0|[1-9][0-9]{0,5}")
_MAX_FIELD = 256


@dataclasses.dataclass(frozen=True, slots=True)
class SlackAction:
    """One verified click on a handrail button: approve or reject, by whom, for what.

    ``escalation_id``, ``level`` and ``fingerprint`` are what the button was
    made for (``SlackInteractions.buttons``); ``identity`` is the decider the
    Slack user maps to, bound to them and to the click.
    """

    escalation_id: str
    approve: bool
    level: int
    fingerprint: str
    identity: Identity


class SlackInteractions:
    """Verifies Slack interaction callbacks for handrail's buttons (``verify``) and makes them.

    ``signing_secret`` is the app's signing secret (Slack app settings,
    Basic Information); ``users`` maps Slack user ids (``U024BE7LH``) to
    decider ids, the only way a Slack user becomes a decider; ``window`` is
    how far a callback's timestamp may be from the clock (Slack's advice:
    five minutes).  The secret is never shown in a repr.
    """

    __slots__ = ("_clock", "_secret", "users", "window")

    def __init__(
        self,
        signing_secret: SecretStr | str,
        *,
        users: Mapping[str, str],
        clock: Clock | None = None,
        window: timedelta = timedelta(minutes=5),
    ) -> None:
        if isinstance(signing_secret, bytes):
            raise ConfigurationError("SlackInteractions: signing_secret must be a SecretStr or str")
        # Slack's secret, not one we make: any non-empty length.
        self._secret = key_bytes(
            signing_secret, source="SlackInteractions: signing_secret", minimum=1
        )
        if not isinstance(window, timedelta) or window <= timedelta(0):
            raise ConfigurationError(
                f"SlackInteractions: window must be a positive timedelta, got {window!r}"
            )
        self.window = window
        self.users: Mapping[str, str] = {
            _slack_id(slack_user): _decider(decider, slack_user)
            for slack_user, decider in users.items()
        }
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"SlackInteractions(users={len(self.users)}, window={self.window!r})"

    @staticmethod
    def buttons(escalation_id: str, level: int, fingerprint: str) -> dict[str, Any]:
        """The Block Kit ``actions`` block with the Approve and Reject buttons for one case.

        Each button's ``value`` is ``"{escalation_id}|{level}|{fingerprint}"``.
        Raises ``ConfigurationError`` when a field cannot be put there (a
        ``|`` in the id, a negative level).
        """
        value = _button_value(escalation_id, level, fingerprint)
        return {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "action_id": APPROVE_ACTION,
                    "value": value,
                },
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "style": "danger",
                    "action_id": REJECT_ACTION,
                    "value": value,
                },
            ],
        }

    def verify(self, headers: Mapping[str, str], body: bytes) -> SlackAction:
        """The click a signed Slack callback reports; raises ``NotAuthenticated`` for any other.

        ``headers`` are the request's (any case), ``body`` its raw bytes.
        Refused: a body over 64 KB (unread), a missing or malformed
        timestamp or signature, a timestamp outside ``window`` of the clock
        (a replay), a signature that does not match (compared in constant
        time), a payload that is not one ``block_actions`` click on a
        handrail button, and a Slack user not in ``users``.  Raises nothing
        else, whatever the input.
        """
        if not isinstance(body, bytes) or len(body) > MAX_BODY:
            raise NotAuthenticated("", "Slack callback refused: body missing or over 64 KB")
        lowered = {str(k).lower(): v for k, v in headers.items()}
        timestamp = lowered.get("x-slack-request-timestamp")
        signature = lowered.get("x-slack-signature")
        if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
            raise NotAuthenticated("", "Slack callback refused: no valid X-Slack-Request-Timestamp")
        if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
            raise NotAuthenticated("", "Slack callback refused: no valid v0 X-Slack-Signature")
        if abs(self._clock.now().timestamp() - int(timestamp)) > self.window.total_seconds():
            raise NotAuthenticated(
                "", "Slack callback refused: timestamp outside the window (stale or replayed)"
            )
        base = b"v0:" + timestamp.encode("ascii") + b":" + body
        expected = (
            "v0=" + hmac.new(self._secret.get_secret_value(), base, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            raise NotAuthenticated("", "Slack callback refused: bad signature")
        return self._action(body)

    def _action(self, body: bytes) -> SlackAction:
        """The click in a signed body; only reached once Slack's signature matched."""
        payload = _payload(body)
        actions = payload.get("actions")
        if payload.get("type") != "block_actions" or not isinstance(actions, list):
            raise NotAuthenticated("", "Slack callback refused: not a block_actions payload")
        if len(actions) != 1 or not isinstance(actions[0], dict):
            raise NotAuthenticated("", "Slack callback refused: not exactly one action")
        action: dict[str, Any] = actions[0]
        action_id = action.get("action_id")
        if action_id not in (APPROVE_ACTION, REJECT_ACTION):
            raise NotAuthenticated("", "Slack callback refused: not a handrail button")
        escalation_id, level, fingerprint = _parse_value(action.get("value"))
        user = payload.get("user")
        slack_user = user.get("id") if isinstance(user, dict) else None
        if not isinstance(slack_user, str) or slack_user not in self.users:
            shown = printable(slack_user)[:_MAX_FIELD] if isinstance(slack_user, str) else "none"
            raise NotAuthenticated(escalation_id, f"Slack user {shown} is not mapped to a decider")
        click = action.get("action_ts") or payload.get("trigger_id")
        if not isinstance(click, str) or not _is_field(click):
            raise NotAuthenticated(
                escalation_id, "Slack callback refused: no action_ts or trigger_id"
            )
        identity = Identity(
            user=self.users[slack_user],
            method="slack",
            detail=slack_user,
            binding=LinkBinding(escalation_id, level, fingerprint, f"slack:{click}"),
        )
        return SlackAction(escalation_id, action_id == APPROVE_ACTION, level, fingerprint, identity)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        fields = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=10
        )
        if len(fields) != 1 or fields[0][0] != "payload":
            raise ValueError("not one payload field")
        payload = json.loads(fields[0][1])
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise NotAuthenticated("", "Slack callback refused: body is not payload=<json>") from None
    if not isinstance(payload, dict):
        raise NotAuthenticated("", "Slack callback refused: payload is not an object")
    return payload


def _parse_value(value: object) -> tuple[str, int, str]:
    parts = value.split("|") if isinstance(value, str) else []
    if (
        len(parts) != 3
        or not _is_field(parts[0])
        or not _LEVEL.fullmatch(parts[1])
        or not _is_field(parts[2])
    ):
        raise NotAuthenticated("", "Slack callback refused: malformed button value")
    return parts[0], int(parts[1]), parts[2]


def _button_value(escalation_id: object, level: object, fingerprint: object) -> str:
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise ConfigurationError(
            f"SlackInteractions.buttons: level must be an int >= 0, got {level!r}"
        )
    for what, field in (("escalation_id", escalation_id), ("fingerprint", fingerprint)):
        if not isinstance(field, str) or not _is_field(field) or "|" in field:
            raise ConfigurationError(
                f"SlackInteractions.buttons: {what} must be a non-empty printable str "
                f"without '|' of at most {_MAX_FIELD} characters"
            )
    return f"{escalation_id}|{level}|{fingerprint}"


def _is_field(value: str) -> bool:
    return 0 < len(value) <= _MAX_FIELD and value.isprintable()


def _decider(value: object, slack_user: str) -> str:
    decider = canonical_name(value, f"decider for Slack user {slack_user}")
    if decider.startswith("group:"):
        raise ConfigurationError(
            f"SlackInteractions: Slack user {slack_user} maps to {decider!r}, a group, not a user"
        )
    return decider


def _slack_id(value: object) -> str:
    if not isinstance(value, str) or not _is_field(value):
        raise ConfigurationError(
            f"SlackInteractions: Slack user id {printable(repr(value))[:100]} is not printable text"
        )
    return value
