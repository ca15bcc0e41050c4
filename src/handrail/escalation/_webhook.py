"""Webhook channels: a signed JSON POST to your endpoint, or a message to a Slack webhook.

``WebhookChannel`` signs each body with HMAC-SHA256 over ``timestamp.body``
(headers ``X-Handrail-Timestamp`` and ``X-Handrail-Signature``);
``verify_signature`` is the receiver's half.  Both channels post through
``_posting.Poster``: retried by a policy, errors re-raised with the URL masked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from .._errors import ConfigurationError
from .._urls import check_base_url
from ..clock import Clock
from ..resilience import RetryPolicy
from ._channel_checks import (
    check_client,
    check_clock,
    check_headers,
    check_http_url,
    check_name,
    check_retry,
    check_seconds,
    optional_secret,
    required_secret,
    secret_bytes,
)
from ._message import case_page, checked_link, compose, slack_message
from ._model import Notification
from ._posting import DEFAULT_RETRY, Poster

if TYPE_CHECKING:
    import httpx

__all__ = ["SlackWebhookChannel", "WebhookChannel", "verify_signature"]

_DEFAULT_TOLERANCE = timedelta(minutes=5)
_SIGNATURE_PREFIX = "sha256="


class WebhookChannel:
    """POSTs each notification's JSON payload to ``url``, signed with HMAC-SHA256.

    The body is ``notification.to_payload()`` as compact JSON with sorted
    keys: the exact bytes signed.  It includes ``links``, each decider's
    signed decision link: bearer secrets, so the receiver must be your own
    service, hand each link only to its decider and never log or store it.
    Headers: ``Idempotency-Key`` (the notification id, the same on every
    retry; not signed, so receivers de-duplicate on the body's ``id``),
    ``X-Handrail-Timestamp`` (unix seconds, fresh per attempt) and, with a
    ``secret``, ``X-Handrail-Signature: sha256=<hex>`` over
    ``b"<timestamp>." + body``; check it with ``verify_signature``.
    ``secret=None`` sends unsigned requests and must be said explicitly.

    A 5xx, 429, 408, timeout or connection error is retried with ``retry``
    (``None``: one attempt); any other non-2xx fails at once.  Failures raise
    ``httpx.HTTPStatusError`` or ``httpx.RequestError`` with the URL's
    credentials masked.  ``timeout`` (a ``timedelta``, or seconds) bounds
    each attempt.  Pass ``client`` to share a connection pool; it is not
    closed here.  Raises ``ConfigurationError`` for a bad argument.

    The repr and errors show ``url`` with its user:password and query masked;
    when the path itself is the credential (as with many chat webhooks), pass
    ``url`` as a ``SecretStr`` and only scheme and host are shown.
    """

    __slots__ = ("_headers", "_http", "_secret", "name")

    def __init__(
        self,
        url: str | SecretStr,
        *,
        secret: SecretStr | str | None,
        name: str = "webhook",
        headers: Mapping[str, str | SecretStr] | None = None,
        timeout: timedelta | float = 10.0,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        owner = "WebhookChannel"
        self.name = check_name(name, owner)
        hidden = isinstance(url, SecretStr)
        raw = url.get_secret_value() if isinstance(url, SecretStr) else url
        display_url, url_secrets = check_http_url(raw, owner, "url", path_is_secret=hidden)
        self._secret = optional_secret(secret, owner, "secret")
        self._headers = check_headers(headers, owner)
        secrets = [*url_secrets, *(v.get_secret_value() for v in self._headers.values())]
        if self._secret is not None:
            secrets.append(self._secret.get_secret_value())
        self._http = Poster(
            owner=owner,
            name=self.name,
            url=raw,
            display_url=display_url,
            secrets=secrets,
            timeout=check_seconds(timeout, owner, "timeout"),
            retry=check_retry(retry, owner),
            client=check_client(client, owner),
            clock=check_clock(clock, owner),
        )

    async def send(self, notification: Notification) -> None:
        """POST the signed payload; raises ``httpx.HTTPError`` when it was not accepted."""
        body = _canonical_json(notification.to_payload())

        def headers() -> dict[str, str]:
            timestamp = str(int(self._http.clock.now().timestamp()))
            out = {name: value.get_secret_value() for name, value in self._headers.items()}
            out["Content-Type"] = "application/json"
            out["Idempotency-Key"] = notification.id
            out["X-Handrail-Timestamp"] = timestamp
            if self._secret is not None:
                digest = _signature(self._secret.get_secret_value().encode(), timestamp, body)
                out["X-Handrail-Signature"] = _SIGNATURE_PREFIX + digest
            return out

        await self._http.post(body, headers, notification.id)

    def __repr__(self) -> str:
        extra = f", headers={sorted(self._headers)!r}" if self._headers else ""
        signed = self._secret is not None
        return (
            f"WebhookChannel(name={self.name!r}, url={self._http.display_url!r}, "
            f"signed={signed}{extra})"
        )


class SlackWebhookChannel:
    """Posts each notification to a Slack incoming webhook, as Block Kit with a text fallback.

    The message shows the summary, the action, agent, on behalf of,
    resource and reason, the arguments and context (as stored: redacted),
    the level and recipients, the deadline (in the reader's time zone, and
    relative), and the decide commands in a code block.  It never shows the
    notification's signed decision links: each is a bearer credential for
    one decider, and a channel is read by many.  Deciders decide with the
    buttons, or on the approval page: with ``page_url`` (where
    ``handrail.web.approval_app`` is mounted, ``https://approvals.example.com``)
    the message links to the case's page, ``{page_url}/cases/{escalation id}``,
    which authenticates its viewer itself.  What the request
    says appears only inside code spans and blocks, escaped so that it can
    neither end them nor link, mention or format anything.

    ``buttons=True`` adds Approve and Reject buttons (``action_id``
    ``handrail_approve`` / ``handrail_reject``, ``value``
    ``"<escalation id>|<level>|<fingerprint>"``) to messages that ask for a
    decision; the Slack app's interactivity URL must point at a receiver
    that verifies Slack's signature (``handrail.approvals.SlackInteractions``).
    A button click proves who clicked only through that verification.  The URL
    is the credential (anyone holding it can post): pass it as a
    ``SecretStr`` from your secret store; it is never shown, only
    ``https://hooks.slack.com/***``.

    Retries and errors as ``WebhookChannel``: Slack answers 429 with
    ``Retry-After`` when rate limited, and 4xx (``invalid_payload``,
    ``channel_not_found``, ...) for mistakes that retrying cannot fix.
    Retrying after a timeout may post the message twice.
    """

    __slots__ = ("_http", "buttons", "name", "page_url")

    def __init__(
        self,
        url: SecretStr | str,
        *,
        name: str = "slack",
        buttons: bool = False,
        page_url: str | None = None,
        timeout: timedelta | float = 10.0,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        owner = "SlackWebhookChannel"
        self.name = check_name(name, owner)
        if not isinstance(buttons, bool):
            raise ConfigurationError(f"{owner}: buttons must be True or False, got {buttons!r}")
        self.buttons = buttons
        if page_url is not None:
            page_url = checked_link(
                f"{owner}: page_url", check_base_url(page_url, owner, "page_url")
            )
        self.page_url = page_url
        secret_url = required_secret(url, owner, "url")
        raw = secret_url.get_secret_value()
        display_url, url_secrets = check_http_url(raw, owner, "url", path_is_secret=True)
        self._http = Poster(
            owner=owner,
            name=self.name,
            url=raw,
            display_url=display_url,
            secrets=url_secrets,
            timeout=check_seconds(timeout, owner, "timeout"),
            retry=check_retry(retry, owner),
            client=check_client(client, owner),
            clock=check_clock(clock, owner),
        )

    def message(self, notification: Notification) -> dict[str, Any]:
        """The Slack message ``send`` posts: ``{"text": ..., "blocks": [...]}``."""
        parts = compose(notification, self._http.clock.now())
        page = (
            None if self.page_url is None else case_page(self.page_url, notification.escalation_id)
        )
        return slack_message(parts, buttons=self.buttons, page=page)

    async def send(self, notification: Notification) -> None:
        """Post the message; raises ``httpx.HTTPError`` when Slack did not accept it."""
        body = _canonical_json(self.message(notification))
        await self._http.post(body, _json_headers, notification.id)

    def __repr__(self) -> str:
        extra = ", buttons=True" if self.buttons else ""
        if self.page_url is not None:
            extra += f", page_url={self.page_url!r}"
        return f"SlackWebhookChannel(name={self.name!r}, url={self._http.display_url!r}{extra})"


def verify_signature(
    body: bytes,
    timestamp: str,
    signature: str,
    secret: SecretStr | str | bytes,
    *,
    tolerance: timedelta | float = _DEFAULT_TOLERANCE,
    now: datetime | float | None = None,
) -> bool:
    """True when a ``WebhookChannel`` request is authentic and fresh; for receivers.

    ``body`` is the raw request body (before any JSON parsing), ``timestamp``
    and ``signature`` the ``X-Handrail-Timestamp`` and
    ``X-Handrail-Signature`` headers.  False when the signature does not
    match (compared in constant time) or the timestamp is more than
    ``tolerance`` (a ``timedelta``, or seconds; default 5 minutes) from
    ``now`` (a datetime or unix seconds; default the current time), which
    stops replays of old requests.

    Fails closed and never raises for what the request carries: a body that
    is not bytes, a timestamp that is not a plain number of unix seconds
    (signs, spaces, 310 digits), a signature that is not ``sha256=<hex>``
    all give False.  Raises ``ConfigurationError`` only for the receiver's
    own mistakes: an empty secret, a negative tolerance, a bad ``now``.

    The signature covers the body, not the ``Idempotency-Key`` header:
    de-duplicate on the body's ``id`` (signed), never on the header, which
    a replayer can change.
    """
    key = secret_bytes(secret)
    window = check_seconds(tolerance, "verify_signature", "tolerance", allow_zero=True)
    current = _unix_seconds(now)
    if not isinstance(body, bytes | bytearray | memoryview):
        return False
    if not (
        isinstance(timestamp, str)
        and 0 < len(timestamp) <= _MAX_TIMESTAMP_DIGITS
        and timestamp.isascii()
        and timestamp.isdigit()
    ):
        return False
    if abs(current - int(timestamp)) > window:
        return False
    if not isinstance(signature, str) or not signature.startswith(_SIGNATURE_PREFIX):
        return False
    given = signature[len(_SIGNATURE_PREFIX) :].strip().lower().encode(errors="replace")
    return hmac.compare_digest(_signature(key, timestamp, bytes(body)).encode(), given)


# Unix seconds stay below 10**12 for 30,000 years; a longer "timestamp" is not one
# (and int() of thousands of digits is slow, float() of it overflows).
_MAX_TIMESTAMP_DIGITS = 12


def _unix_seconds(now: object) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    if isinstance(now, int | float) and not isinstance(now, bool) and math.isfinite(now):
        return float(now)
    raise ConfigurationError(
        f"verify_signature: now must be a datetime, unix seconds or None, got {now!r}"
    )


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _canonical_json(payload: Mapping[str, Any]) -> bytes:
    """Compact, sorted, UTF-8: the same payload always gives the same bytes (and signature)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _signature(key: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
