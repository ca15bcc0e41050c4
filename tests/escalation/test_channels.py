"""Notification channels against real servers on 127.0.0.1: HTTP for webhooks and Slack, SMTP."""

from __future__ import annotations

import asyncio
import email
import email.policy
import html
import json
import re
import socket
import string
import traceback
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, TypeVar

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from structlog.testing import CapturingLogger, capture_logs

from _scripted_http import Reply, ScriptedServer, serving
from handrail import ActionRequest, ConfigurationError, Policy, Principal
from handrail.approvals import DecisionLinks
from handrail.escalation import (
    CallableChannel,
    Channel,
    EmailChannel,
    EscalationRouter,
    EscalationState,
    Level,
    LogChannel,
    MemoryStore,
    Notification,
    Route,
    SlackWebhookChannel,
    WebhookChannel,
    verify_signature,
)
from handrail.resilience import RetryPolicy
from handrail.testing import FakeClock, no_waits

T = TypeVar("T")

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SECRET = "whsec-test-signing-key"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def make_notification(**changes: Any) -> Notification:
    fields: dict[str, Any] = {
        "id": "esc-7f3a:1",
        "escalation_id": "esc-7f3a",
        "kind": "opened",
        "route": "crm-approvals",
        "level": 0,
        "level_name": "team-leads",
        "state": EscalationState.OPEN,
        "recipients": ("team-leads", "alice"),
        "deciders": ("group:leads",),
        "due": NOW + timedelta(hours=3, minutes=59),
        "summary": "sales-agent wants to update contact 42 for bob",
        "action": "crm.contact.update",
        "agent": "sales-agent",
        "on_behalf_of": "bob",
        "resource": {"type": "contact", "id": "42"},
        "reason": "changes the email of a VIP contact",
        "created_at": NOW,
        "commands": (
            "handrail escalation approve esc-7f3a --by YOU",
            "handrail escalation reject esc-7f3a --by YOU --reason '...'",
        ),
    }
    fields.update(changes)
    return Notification(**fields)


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    """Retries here never sleep: what they retry is checked, not how long they wait."""
    with no_waits():
        yield


# -- a scripted HTTP server ----------------------------------------------------------------


Server = ScriptedServer


@pytest.fixture
def server() -> Iterator[Server]:
    """A scripted HTTP server on 127.0.0.1 (200 once the script runs out), stopped after."""
    with serving(Reply()) as running:
        yield running


# -- an SMTP server --------------------------------------------------------------------------


class Mailbox:
    """Keeps every message the SMTP server accepted."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def received(self) -> list[tuple[str, EmailMessage]]:
        """Each message with the one envelope recipient it went to."""
        out = []
        for envelope, message in zip(self.envelopes, self.messages(), strict=True):
            (to,) = envelope.rcpt_tos
            out.append((to, message))
        return out

    def messages(self) -> list[EmailMessage]:
        out = []
        for envelope in self.envelopes:
            raw = envelope.original_content or b""
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            out.append(parsed)
        return out


@dataclass
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def _smtp_controller() -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"bot",
            b"right-password",
        )
        if ok:
            mailbox.logins.append(data.login)
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=authenticate,
        auth_require_tls=False,  # plain-text AUTH is fine on 127.0.0.1, in a test
    )
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def smtp(_smtp_controller: tuple[Controller, Mailbox]) -> SmtpServer:
    """A real SMTP server on 127.0.0.1 (user bot, password right-password), emptied per test."""
    controller, mailbox = _smtp_controller
    mailbox.envelopes.clear()
    mailbox.logins.clear()
    return SmtpServer(str(controller.hostname), int(controller.port), mailbox)


# -- the protocol ----------------------------------------------------------------------------


def test_every_channel_is_a_channel() -> None:
    """Each built-in channel satisfies the Channel protocol and names itself."""
    channels: list[Channel] = [  # mypy checks each against the protocol, too
        LogChannel(),
        WebhookChannel("https://example.com/hook", secret=SECRET),
        SlackWebhookChannel(SecretStr("https://hooks.slack.com/services/T0/B0/abcd")),
        EmailChannel("smtp.example.com", sender="handrail@example.com"),
        CallableChannel(print),
    ]
    for channel in channels:
        assert isinstance(channel, Channel)
    assert not isinstance(object(), Channel)
    assert [c.name for c in channels] == [
        "log",
        "webhook",
        "slack",
        "email",
        "print",
    ]


# -- LogChannel ------------------------------------------------------------------------------


def test_log_channel_emits_the_payload_fields() -> None:
    """LogChannel logs `escalation.notification` with every payload field but the links."""
    notification = make_notification(level=2)
    with capture_logs() as logs:
        run(LogChannel().send(notification))
    expected = notification.to_payload()
    expected["escalation_level"] = expected.pop("level")  # add_log_level would overwrite it
    del expected["links"]  # bearer secrets: never logged
    assert logs == [{"event": "escalation.notification", "log_level": "info", **expected}]
    assert logs[0]["escalation_level"] == 2


def test_log_channel_uses_the_given_logger() -> None:
    """A logger passed in receives the event instead of the default one."""
    logger = CapturingLogger()
    run(LogChannel("audit-log", logger=logger).send(make_notification()))
    (call,) = logger.calls
    assert (call.method_name, call.args) == ("info", ("escalation.notification",))
    assert call.kwargs["escalation_id"] == "esc-7f3a"


# -- WebhookChannel --------------------------------------------------------------------------


def test_webhook_posts_the_signed_canonical_payload(server: Server) -> None:
    """The body is the payload as compact sorted JSON, signed over timestamp and body."""
    clock = FakeClock(NOW)
    notification = make_notification()
    channel = WebhookChannel(f"{server.url}/hooks/handrail", secret=SECRET, clock=clock)
    run(channel.send(notification))

    (seen,) = server.seen
    assert seen.path == "/hooks/handrail"
    assert json.loads(seen.body) == notification.to_payload()
    assert (
        seen.body
        == json.dumps(notification.to_payload(), separators=(",", ":"), sort_keys=True).encode()
    )
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Idempotency-Key"] == notification.id
    assert seen.headers["X-Handrail-Timestamp"] == str(int(NOW.timestamp()))
    assert seen.headers["User-Agent"].startswith("handrail/")
    args = (seen.body, seen.headers["X-Handrail-Timestamp"], seen.headers["X-Handrail-Signature"])
    assert verify_signature(*args, SECRET, now=NOW)
    assert not verify_signature(*args, "another-secret", now=NOW)
    assert not verify_signature(seen.body + b" ", *args[1:], SECRET, now=NOW)


def test_webhook_retries_503_with_the_same_idempotency_key(server: Server) -> None:
    """A 503 is retried; every attempt carries the same Idempotency-Key and a valid signature."""
    server.script(Reply(503), Reply(200))
    channel = WebhookChannel(server.url, secret=SecretStr(SECRET), headers={"X-Team": "crm"})
    run(channel.send(make_notification()))

    assert len(server.seen) == 2
    assert {s.headers["Idempotency-Key"] for s in server.seen} == {"esc-7f3a:1"}
    for seen in server.seen:
        assert seen.headers["X-Team"] == "crm"
        assert verify_signature(
            seen.body,
            seen.headers["X-Handrail-Timestamp"],
            seen.headers["X-Handrail-Signature"],
            SECRET,
        )


def test_webhook_retries_429_after_the_servers_retry_after(server: Server) -> None:
    """A 429 whose Retry-After fits the retry budget is retried."""
    server.script(Reply(429, headers={"Retry-After": "1"}), Reply(200))
    run(WebhookChannel(server.url, secret=SECRET).send(make_notification()))
    assert len(server.seen) == 2


def test_webhook_gives_up_when_retry_after_exceeds_the_budget(server: Server) -> None:
    """A Retry-After longer than the retry budget fails now; the router retries later."""
    server.script(Reply(429, headers={"Retry-After": "3600"}))
    channel = WebhookChannel(server.url, secret=SECRET)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        run(channel.send(make_notification()))
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "3600"
    assert len(server.seen) == 1


def test_webhook_fails_fast_on_400(server: Server) -> None:
    """A 4xx is the sender's mistake: one attempt, an error naming the status and the answer."""
    server.script(Reply(400, body=b"missing field: id"))
    channel = WebhookChannel(f"{server.url}/hook?token=abcd1234", secret=SECRET)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        run(channel.send(make_notification()))
    assert len(server.seen) == 1
    message = str(caught.value)
    assert "400 Bad Request" in message
    assert "missing field: id" in message
    assert "abcd1234" not in message
    assert f"{server.url}/hook?***" in message


def test_webhook_without_retry_tries_once(server: Server) -> None:
    """retry=None: a transient failure is raised at once, for the router to retry."""
    server.script(Reply(503))
    with pytest.raises(httpx.HTTPStatusError):
        run(WebhookChannel(server.url, secret=SECRET, retry=None).send(make_notification()))
    assert len(server.seen) == 1


def test_webhook_times_out_each_attempt(server: Server) -> None:
    """An attempt that gets no answer within `timeout` fails as a timeout, and is retried."""
    server.script(Reply(hang=True), Reply(hang=True))
    channel = WebhookChannel(
        server.url,
        secret=SECRET,
        timeout=timedelta(milliseconds=200),
        retry=RetryPolicy(attempts=2),
    )
    with pytest.raises(httpx.TimeoutException) as caught:
        run(channel.send(make_notification()))
    assert len(server.seen) == 2
    assert server.url in str(caught.value)


def test_webhook_connection_refused_is_a_transient_error() -> None:
    """Nothing listening: a ConnectError (transient) after the retries, the URL's secret masked."""
    url = f"http://127.0.0.1:{_free_port()}/hook?api_key=abcd1234"
    with pytest.raises(httpx.ConnectError) as caught:
        run(WebhookChannel(url, secret=SECRET).send(make_notification()))
    assert "abcd1234" not in "".join(traceback.format_exception(caught.value))
    assert "/hook?***" in str(caught.value)


def test_webhook_unsigned_sends_no_signature(server: Server) -> None:
    """secret=None (said explicitly) sends the payload without a signature header."""
    run(WebhookChannel(server.url, secret=None).send(make_notification()))
    (seen,) = server.seen
    assert "X-Handrail-Signature" not in seen.headers
    assert seen.headers["Idempotency-Key"] == "esc-7f3a:1"


def test_webhook_uses_a_shared_client_without_closing_it(server: Server) -> None:
    """A client passed in carries the request and stays open for its owner."""

    async def scenario() -> None:
        async with httpx.AsyncClient() as client:
            channel = WebhookChannel(server.url, secret=SECRET, client=client)
            await channel.send(make_notification())
            await channel.send(make_notification(id="esc-7f3a:2"))
            assert not client.is_closed

    run(scenario())
    assert [s.headers["Idempotency-Key"] for s in server.seen] == ["esc-7f3a:1", "esc-7f3a:2"]


def test_webhook_with_a_secret_url_hides_its_path(server: Server) -> None:
    """A URL given as SecretStr (a token in the path) shows only scheme and host, even on error."""
    server.script(Reply(403, body=b"bad token"))
    channel = WebhookChannel(SecretStr(f"{server.url}/api/hooks/tok3n-in-path"), secret=None)
    assert repr(channel) == f"WebhookChannel(name='webhook', url='{server.url}/***', signed=False)"
    with pytest.raises(httpx.HTTPStatusError) as caught:
        run(channel.send(make_notification()))
    assert server.seen[0].path == "/api/hooks/tok3n-in-path"
    assert "tok3n-in-path" not in "".join(traceback.format_exception(caught.value))


def test_webhook_repr_masks_url_credentials_and_headers() -> None:
    """The repr shows where it posts, not the URL's credentials or the header values."""
    channel = WebhookChannel(
        "https://svc:hunter22@hooks.example.com/in?token=abcd1234",
        secret=SECRET,
        headers={"Authorization": SecretStr("Bearer xyz-987")},
    )
    assert repr(channel) == (
        "WebhookChannel(name='webhook', url='https://***@hooks.example.com/in?***', "
        "signed=True, headers=['Authorization'])"
    )


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"url": "ftp://example.com/x"}, "url must be an http:// or https:// URL"),
        ({"url": "https:///no-host"}, "url must be an http:// or https:// URL"),
        ({"secret": ""}, "secret is empty"),
        ({"secret": b"bytes"}, "secret must be a str or pydantic.SecretStr, got bytes"),
        ({"headers": {"Idempotency-Key": "x"}}, "'Idempotency-Key' is set by the channel"),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, "headers['X-A'] contains a line break"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"timeout": "10s"}, "timeout must be a datetime.timedelta or seconds"),
        ({"retry": 3}, "retry must be a handrail.resilience.RetryPolicy or None"),
        ({"name": "my hook"}, "name must start with a letter or digit"),
        ({"client": object()}, "client must be an httpx.AsyncClient"),
    ],
)
def test_webhook_refuses_bad_arguments(kwargs: dict[str, Any], complaint: str) -> None:
    """Each bad argument raises ConfigurationError naming it."""
    arguments: dict[str, Any] = {"url": "https://example.com/hook", "secret": SECRET, **kwargs}
    with pytest.raises(ConfigurationError, match=re.escape(complaint)):
        WebhookChannel(**arguments)


def test_verify_signature_rejects_stale_and_malformed_requests() -> None:
    """Only a matching sha256= signature over a timestamp within the tolerance passes."""
    body = b'{"id":"esc-7f3a:1"}'
    timestamp = str(int(NOW.timestamp()))
    channel_signature = _sign(body, timestamp)
    assert verify_signature(body, timestamp, channel_signature, SECRET, now=NOW)
    assert verify_signature(
        body,
        timestamp,
        channel_signature.upper().replace("SHA256", "sha256"),
        SecretStr(SECRET),
        now=NOW.timestamp(),
    )
    late = NOW + timedelta(minutes=5, seconds=1)
    assert not verify_signature(body, timestamp, channel_signature, SECRET, now=late)
    assert verify_signature(
        body, timestamp, channel_signature, SECRET, now=late, tolerance=timedelta(minutes=6)
    )
    early = NOW - timedelta(minutes=6)  # a timestamp from the future is as suspect
    assert not verify_signature(body, timestamp, channel_signature, SECRET, now=early)
    for bad_timestamp in ("", "12.5", "-1", "\uff11\uff12\uff13", "now"):
        assert not verify_signature(body, bad_timestamp, channel_signature, SECRET, now=NOW)
    for bad_signature in ("", channel_signature[7:], "sha1=" + channel_signature[7:], "sha256=zz"):
        assert not verify_signature(body, timestamp, bad_signature, SECRET, now=NOW)
    with pytest.raises(ConfigurationError, match="secret is empty"):
        verify_signature(body, timestamp, channel_signature, "")
    with pytest.raises(ConfigurationError, match="tolerance must be zero or more"):
        verify_signature(body, timestamp, channel_signature, SECRET, tolerance=-1)


def test_verify_signature_returns_false_for_any_malformed_request() -> None:
    """Huge, signed or mistyped timestamps, signatures and bodies give False, never raise."""
    body = b'{"id":"esc-7f3a:1"}'
    timestamp = str(int(NOW.timestamp()))
    good = _sign(body, timestamp)
    for bad_timestamp in ("9" * 310, "1" * 5000, "0" * 13, " 1", "+1", None, 1.5, b"1"):
        assert verify_signature(body, bad_timestamp, good, SECRET, now=NOW) is False  # type: ignore[arg-type]
    for bad_signature in (None, b"sha256=00", "sha256=\udcff", "sha256=" + "0" * 100_000):
        assert verify_signature(body, timestamp, bad_signature, SECRET, now=NOW) is False  # type: ignore[arg-type]
    for bad_body in (None, body.decode(), 12):
        assert verify_signature(bad_body, timestamp, good, SECRET, now=NOW) is False  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64), timestamp=st.text(max_size=400), signature=st.text(max_size=80))
def test_verify_signature_never_raises_for_what_a_request_carries(
    body: bytes, timestamp: str, signature: str
) -> None:
    """Whatever body, timestamp and signature headers arrive, the answer is a bool."""
    assert verify_signature(body, timestamp, signature, SECRET, now=NOW) in (True, False)


def test_a_replay_with_a_new_idempotency_key_is_recognised_by_the_signed_id() -> None:
    """The signature covers the body, so receivers de-duplicate on its id, not on the header."""
    body = b'{"action":"crm.contact.update","id":"esc-7f3a:1"}'
    timestamp = str(int(NOW.timestamp()))
    headers = {"Idempotency-Key": "esc-7f3a:1", "X-Handrail-Timestamp": timestamp,
               "X-Handrail-Signature": _sign(body, timestamp)}  # fmt: skip
    handled: list[str] = []

    def receive(body: bytes, headers: dict[str, str]) -> int:
        if not verify_signature(
            body, headers["X-Handrail-Timestamp"], headers["X-Handrail-Signature"], SECRET, now=NOW
        ):
            return 401
        delivery = json.loads(body)["id"]  # signed, unlike the Idempotency-Key header
        if delivery not in handled:
            handled.append(delivery)
        return 200

    assert receive(body, headers) == 200
    replay = {**headers, "Idempotency-Key": "a-new-key"}  # the header is not signed
    assert verify_signature(body, timestamp, replay["X-Handrail-Signature"], SECRET, now=NOW)
    assert receive(body, replay) == 200
    assert handled == ["esc-7f3a:1"]  # handled once


def _sign(body: bytes, timestamp: str) -> str:
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


# -- SlackWebhookChannel ---------------------------------------------------------------------


def test_slack_posts_blocks_and_a_text_fallback(server: Server) -> None:
    """The message: header, summary, fields, arguments, commands in code blocks, a footer."""
    notification = make_notification(
        reason="limit <!channel> & more", args={"email": "b@example.com", "vip": True}
    )
    channel = SlackWebhookChannel(f"{server.url}/services/T0/B0/abcd", clock=FakeClock(NOW))
    run(channel.send(notification))

    (seen,) = server.seen
    assert seen.path == "/services/T0/B0/abcd"
    assert seen.headers["Content-Type"] == "application/json"
    message = json.loads(seen.body)
    assert message == channel.message(notification)
    assert set(message) == {"text", "blocks"}
    header, summary, fields, arguments, commands, footer = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Approval needed: crm.contact.update"},
    }
    assert summary["text"]["text"] == f"`{notification.summary}`"
    texts = [f["text"] for f in fields["fields"]]
    assert "*Action*\n`crm.contact.update`" in texts
    assert "*On behalf of*\n`bob`" in texts
    assert "*Resource*\n`contact:42`" in texts
    assert "*Notify*\nteam-leads, alice" in texts
    assert "*Reason*\n`limit &lt;!channel&gt; &amp; more`" in texts  # no pings from request data
    assert arguments["text"]["text"] == '*Arguments*\n```email: "b@example.com"\nvip: true```'
    due = int((NOW + timedelta(hours=3, minutes=59)).timestamp())
    assert f"*Due*\n<!date^{due}^{{date_short_pretty}} {{time}}|" in texts[-1]
    assert texts[-1].endswith("(in 3h 59m)")
    assert commands["text"]["text"] == (
        "*To decide, run one of:*\n```handrail escalation approve esc-7f3a --by YOU\n"
        "handrail escalation reject esc-7f3a --by YOU --reason '...'```"
    )
    assert footer["type"] == "context"
    assert footer["elements"][0]["text"] == "escalation `esc-7f3a`, notification `esc-7f3a:1`"
    fallback = message["text"]
    assert fallback.startswith("Approval needed: crm.contact.update\n")
    due_line = "2026-03-02T13:29:00+00:00 (in 3h 59m)"
    for expected in ("`sales-agent`", "`bob`", "`contact:42`", "team-leads", due_line):
        assert expected in fallback
    assert 'email: "b@example.com"' in fallback
    assert notification.commands[0] in fallback


def test_slack_resolved_message_has_no_commands() -> None:
    """A resolution is FYI: its title says how it ended and there is nothing to run."""
    notification = make_notification(
        kind="resolved", state=EscalationState.APPROVED, commands=(), due=None
    )
    channel = SlackWebhookChannel("https://hooks.slack.com/services/T0/B0/abcd")
    message = channel.message(notification)
    assert message["blocks"][0]["text"]["text"] == "Approved: crm.contact.update"
    assert "```" not in json.dumps(message)
    assert "Due" not in message["text"]


def test_slack_never_shows_its_url(server: Server) -> None:
    """The URL is the credential: repr and errors show only scheme and host."""
    server.script(Reply(404, body=b"no_service"))
    channel = SlackWebhookChannel(SecretStr(f"{server.url}/services/T0/B0/xoxsecret"))
    assert repr(channel) == f"SlackWebhookChannel(name='slack', url='{server.url}/***')"
    with pytest.raises(httpx.HTTPStatusError) as caught:
        run(channel.send(make_notification()))
    text = "".join(traceback.format_exception(caught.value))
    assert "xoxsecret" not in text
    assert "404 Not Found" in text
    assert "no_service" in text
    assert "xoxsecret" not in str(caught.value.request.url)


def test_slack_refuses_a_url_that_is_not_http() -> None:
    """A malformed URL is refused without echoing it (it may be a credential)."""
    with pytest.raises(ConfigurationError, match=r"url must be an http:// or https:// URL") as e:
        SlackWebhookChannel("hooks.slack.com/services/T0/B0/xoxsecret")
    assert "xoxsecret" not in str(e.value)


# -- EmailChannel ----------------------------------------------------------------------------


def test_email_maps_recipients_and_carries_the_commands(smtp: SmtpServer) -> None:
    """Mapped recipients get one mail with subject, commands, a stable Message-ID and thread."""
    channel = EmailChannel(
        smtp.host,
        smtp.port,
        sender="Handrail <handrail@example.com>",
        recipients={"team-leads": "leads@example.com", "carol": "carol@example.com"},
        clock=FakeClock(NOW),
    )
    notification = make_notification()
    run(channel.send(notification))

    (envelope,) = smtp.mailbox.envelopes
    assert envelope.mail_from == "handrail@example.com"
    assert envelope.rcpt_tos == ["leads@example.com"]
    (message,) = smtp.mailbox.messages()
    assert message["Subject"] == "[handrail] approval needed: crm.contact.update (esc-7f3a)"
    assert message["To"] == "leads@example.com"
    assert message["Message-ID"] == "<esc-7f3a%3A1@example.com>"
    assert message["References"] == "<esc-7f3a@example.com>"
    assert message["X-Handrail-Notification"] == "esc-7f3a:1"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    body = _part(message, "plain").replace("\r\n", "\n")
    for command in notification.commands:
        assert f"    {command}\n" in body
    assert "Due:          2026-03-02T13:29:00+00:00 (in 3h 59m)" in body
    assert "On behalf of: bob" in body
    page = _part(message, "html")
    assert '<tr><th align="left" valign="top">On behalf of</th><td><code>bob</code>' in page
    for command in notification.commands:
        assert html.escape(command) in page


def _part(message: EmailMessage, subtype: str) -> str:
    """The text of the message's ``text/<subtype>`` alternative."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    assert part.get_content_subtype() == subtype
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_email_redelivery_is_the_same_message(smtp: SmtpServer) -> None:
    """Sending the same notification twice gives the same Message-ID; another id, another."""
    channel = EmailChannel(
        smtp.host, smtp.port, sender="handrail@example.com", recipients=["ops@example.com"]
    )
    run(channel.send(make_notification()))
    run(channel.send(make_notification()))
    run(channel.send(make_notification(id="esc-7f3a:2", kind="warning")))
    ids = [m["Message-ID"] for m in smtp.mailbox.messages()]
    assert ids[0] == ids[1] != ids[2]
    assert smtp.mailbox.messages()[2]["Subject"].startswith("[handrail] decision due soon:")


LINKS = {
    "carol": "https://approvals.example.com/link/carol-token.sig1",
    "dan": "https://approvals.example.com/link/dan-token.sig2",
    "erin": "https://approvals.example.com/link/erin-token.sig3",
}


def _links_in(message: EmailMessage) -> set[str]:
    """Whose decision links are anywhere in the message: its headers and both parts, decoded."""
    text = message.as_string() + _part(message, "plain") + _part(message, "html")
    return {decider for decider in LINKS if f"{decider}-token" in text}


def _mail_to_deciders(smtp: SmtpServer, recipients: Any, **kwargs: Any) -> EmailChannel:
    """An email channel to ``recipients`` that mails carol and dan their own links."""
    deciders = {"carol": "carol@example.com", "dan": "dan@example.com"}
    sender = "handrail@example.com"
    return EmailChannel(
        smtp.host, smtp.port, sender=sender, recipients=recipients, deciders=deciders,
        clock=FakeClock(NOW), **kwargs,
    )  # fmt: skip


def test_email_sends_each_decider_only_their_own_link(smtp: SmtpServer) -> None:
    """The shared mail holds no link; each mapped decider's mailbox holds their link only."""
    logger = CapturingLogger()
    channel = _mail_to_deciders(smtp, {"team-leads": "leads@example.com"}, logger=logger)
    run(channel.send(make_notification(links=LINKS)))

    inbox: dict[str, list[EmailMessage]] = {}
    for to, message in smtp.mailbox.received():
        inbox.setdefault(to, []).append(message)
    assert sorted(inbox) == ["carol@example.com", "dan@example.com", "leads@example.com"]
    assert [_links_in(m) for m in inbox["leads@example.com"]] == [set()]
    assert [_links_in(m) for m in inbox["carol@example.com"]] == [{"carol"}]
    assert [_links_in(m) for m in inbox["dan@example.com"]] == [{"dan"}]
    (carol,) = inbox["carol@example.com"]
    assert carol["To"] == "carol@example.com"
    assert "as carol, open your own link" in _part(carol, "plain")
    assert html.escape(LINKS["carol"]) in _part(carol, "html")
    assert carol["Subject"] == inbox["leads@example.com"][0]["Subject"]

    # erin has no address: no mail, and a warning that names her without her link.
    (call,) = logger.calls
    assert (call.method_name, call.args) == ("warning", ("escalation.email.links_not_sent",))
    assert call.kwargs["deciders"] == ["erin"]
    assert "erin-token" not in repr(call)


def test_router_minted_links_reach_only_their_deciders_by_email(smtp: SmtpServer) -> None:
    """End to end: each link the router signs lands in its own decider's mailbox alone."""
    clock = FakeClock(NOW)
    links = DecisionLinks(b"router-key-" * 4, base_url="https://approvals.example.com", clock=clock)
    level = Level(notify="#leads", deciders=("maria", "group:leads"), resolve_within=timedelta(1))
    router = EscalationRouter(
        [Route(name="sales", levels=(level,))],
        MemoryStore(),
        channels=[_mail_to_deciders(smtp, {"#leads": "leads@example.com"})],
        groups={"leads": ["carol", "dan", "erin"]},
        clock=clock,
        audit=None,
        links=links,
    )
    request = ActionRequest(action="crm.deal.discount", principal=Principal(agent="bot"))
    escalate = {"id": "d", "effect": "escalate", "actions": "crm.*.*", "escalate_to": "sales"}
    policy = Policy.from_dict({"rules": [{"id": "crm", "effect": "allow", "actions": "crm.*.*"},
                                         escalate]})  # fmt: skip
    router.open(policy.evaluate(request))
    router.tick()

    holders: dict[str, set[str]] = {}
    for to, message in smtp.mailbox.received():
        text = _part(message, "plain") + _part(message, "html")
        tokens = set(re.findall(r"https://approvals\.example\.com/link/([A-Za-z0-9_.-]+)", text))
        holders[to] = {links.verify(token).user for token in tokens}
    assert holders == {
        "leads@example.com": set(),
        "carol@example.com": {"carol"},
        "dan@example.com": {"dan"},
    }


def test_email_message_ids_are_stable_per_notification_and_reader(smtp: SmtpServer) -> None:
    """A redelivery (with fresh links) repeats each Message-ID; each reader's mail has its own."""
    channel = _mail_to_deciders(smtp, ["ops@example.com"])
    run(channel.send(make_notification(links=LINKS)))
    fresh = {decider: url.replace("sig", "new") for decider, url in LINKS.items()}
    run(channel.send(make_notification(links=fresh)))
    ids = [(to, message["Message-ID"]) for to, message in smtp.mailbox.received()]
    assert ids[:3] == ids[3:]
    assert dict(ids[:3]) == {
        "ops@example.com": "<esc-7f3a%3A1@example.com>",
        "carol@example.com": "<esc-7f3a%3A1.carol@example.com>",
        "dan@example.com": "<esc-7f3a%3A1.dan@example.com>",
    }


def test_email_without_deciders_sends_no_link_and_says_so(smtp: SmtpServer) -> None:
    """With links but no deciders=, only the shared mail goes, linkless; the warning names all."""
    with capture_logs() as logs:
        channel = EmailChannel(smtp.host, smtp.port, sender="h@example.com", recipients=["o@x.io"])
        run(channel.send(make_notification(links=LINKS)))
    (message,) = smtp.mailbox.messages()
    assert _links_in(message) == set()
    (warning,) = [log for log in logs if log["event"] == "escalation.email.links_not_sent"]
    assert warning["log_level"] == "warning"
    assert warning["deciders"] == ["carol", "dan", "erin"]
    assert "-token" not in repr(logs)


def test_email_without_a_mapping_mails_recipients_that_are_addresses(smtp: SmtpServer) -> None:
    """recipients=None: the level's notify entries that are addresses get the mail."""
    channel = EmailChannel(smtp.host, smtp.port, sender="handrail@example.com")
    notification = make_notification(recipients=("team-leads", "dana@example.com"))
    run(channel.send(notification))
    assert smtp.mailbox.envelopes[0].rcpt_tos == ["dana@example.com"]


def test_email_with_nobody_to_mail_raises_naming_the_recipients(smtp: SmtpServer) -> None:
    """When no recipient maps to an address, nothing is sent and the error names them."""
    channel = EmailChannel(
        smtp.host, smtp.port, sender="handrail@example.com", recipients={"finance": "f@example.com"}
    )
    with pytest.raises(ConfigurationError) as caught:
        run(channel.send(make_notification()))
    assert "'team-leads', 'alice'" in str(caught.value)
    assert "none of them is in recipients=" in str(caught.value)
    assert smtp.mailbox.envelopes == []


def test_email_logs_in(smtp: SmtpServer) -> None:
    """With username and password the channel logs in before sending."""
    channel = EmailChannel(
        smtp.host,
        smtp.port,
        sender="handrail@example.com",
        recipients=["ops@example.com"],
        username="bot",
        password=SecretStr("right-password"),
        allow_plaintext_login=True,  # the local test server has no TLS
    )
    run(channel.send(make_notification()))
    assert smtp.mailbox.logins == [b"bot"]
    assert len(smtp.mailbox.envelopes) == 1


def test_email_refused_login_is_a_clear_configuration_error(smtp: SmtpServer) -> None:
    """A wrong password raises ConfigurationError saying what to check; nothing is sent."""
    channel = EmailChannel(
        smtp.host,
        smtp.port,
        sender="handrail@example.com",
        recipients=["ops@example.com"],
        username="bot",
        password="wrong-password",
        allow_plaintext_login=True,
    )
    with pytest.raises(ConfigurationError, match="refused the login") as caught:
        run(channel.send(make_notification()))
    assert "check username= and password=" in str(caught.value)
    assert "wrong-password" not in "".join(traceback.format_exception(caught.value))
    assert smtp.mailbox.envelopes == []


def test_email_never_logs_in_over_plain_text_unless_told_to(smtp: SmtpServer) -> None:
    """A password without TLS is refused when built; allow_plaintext_login=True is the way out."""
    with pytest.raises(ConfigurationError, match="starttls=True") as caught:
        EmailChannel(smtp.host, smtp.port, sender="h@example.com", username="bot",
                     password=SecretStr("right-password"))  # fmt: skip
    assert "right-password" not in str(caught.value)
    for tls in ({"starttls": True}, {"use_ssl": True}, {"allow_plaintext_login": True}):
        EmailChannel(smtp.host, sender="h@example.com", username="bot", password="pw", **tls)
    EmailChannel(smtp.host, sender="h@example.com")  # no login: nothing to protect
    assert smtp.mailbox.logins == []


def test_email_repr_hides_the_login() -> None:
    """The repr says whether it logs in, never the password."""
    channel = EmailChannel(
        "smtp.example.com",
        587,
        sender="handrail@example.com",
        username="bot",
        password="hunter22",
        starttls=True,
    )
    assert repr(channel) == (
        "EmailChannel(name='email', host='smtp.example.com', port=587, "
        "sender='handrail@example.com', tls='starttls', login=True)"
    )


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"starttls": True, "use_ssl": True}, "starttls and use_ssl are exclusive"),
        ({"username": "bot"}, "pass both username and password"),
        ({"password": "x"}, "pass both username and password"),
        ({"sender": "handrail"}, "sender must be an email address"),
        ({"recipients": ["ops@example.com\r\nBcc: x@y"]}, "recipients[0] must be an email"),
        ({"recipients": {"ops": "nobody"}}, "recipients['ops'] must be an email address"),
        ({"recipients": []}, "recipients is empty"),
        ({"port": 0}, "port must be an int in 1..65535"),
        ({"host": ""}, "host must be a host name"),
        ({"timeout": -1}, "timeout must be positive"),
        ({"username": "bot", "password": "pw"}, "would send the password in plain text"),
        ({"allow_plaintext_login": 1}, "allow_plaintext_login must be True or False"),
        ({"deciders": ["carol@example.com"]}, "deciders must map decider ids to addresses"),
        ({"deciders": {"carol": "carol"}}, "deciders['carol'] must be an email address"),
        ({"deciders": {"group:leads": "l@example.com"}}, "'group:leads' is not a user's"),
    ],
)
def test_email_refuses_bad_arguments(kwargs: dict[str, Any], complaint: str) -> None:
    """Each bad argument raises ConfigurationError naming it."""
    arguments: dict[str, Any] = {"host": "smtp.example.com", "sender": "h@example.com", **kwargs}
    with pytest.raises(ConfigurationError, match=re.escape(complaint)):
        EmailChannel(**arguments)


# -- CallableChannel -------------------------------------------------------------------------


def test_callable_channel_calls_sync_and_async_functions() -> None:
    """A sync function is called and an async one awaited, each with the notification."""
    got: list[tuple[str, str]] = []

    def page_on_call(notification: Notification) -> None:
        got.append(("sync", notification.id))

    async def post_to_queue(notification: Notification) -> None:
        await asyncio.sleep(0)
        got.append(("async", notification.id))

    sync_channel = CallableChannel(page_on_call)
    async_channel = CallableChannel(post_to_queue, name="queue")
    run(sync_channel.send(make_notification()))
    run(async_channel.send(make_notification()))
    assert got == [("sync", "esc-7f3a:1"), ("async", "esc-7f3a:1")]
    assert sync_channel.name == "page_on_call"
    assert repr(async_channel) == (
        "CallableChannel(name='queue', "
        "fn=test_callable_channel_calls_sync_and_async_functions.<locals>.post_to_queue)"
    )


def test_callable_channel_passes_errors_through() -> None:
    """The function's own error is the delivery failure the router sees."""

    async def broken(notification: Notification) -> None:
        raise RuntimeError("pager is down")

    with pytest.raises(RuntimeError, match="pager is down"):
        run(CallableChannel(broken).send(make_notification()))


def test_callable_channel_needs_a_name_for_a_lambda() -> None:
    """A lambda has no usable name: the error asks for name=."""
    with pytest.raises(ConfigurationError, match="pass name="):
        CallableChannel(lambda n: None)
    with pytest.raises(ConfigurationError, match="fn must be a function"):
        CallableChannel("not callable", name="x")  # type: ignore[arg-type]


# -- the no-leak property ----------------------------------------------------------------------

secrets = st.text(string.ascii_letters + string.digits, min_size=8, max_size=24).map(
    lambda s: "sek-" + s
)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=secrets)
def test_no_secret_in_repr_errors_or_logs(secret: str, server: Server, smtp: SmtpServer) -> None:
    """Whatever the secret, no channel shows it in its repr, its errors or the logs."""
    refused = f"http://127.0.0.1:{_free_port()}"
    channels: list[Any] = [
        WebhookChannel(
            f"http://svc:{secret}@{server.url.removeprefix('http://')}/h?token={secret}",
            secret=secret,
            headers={"Authorization": f"Bearer {secret}"},
        ),
        WebhookChannel(f"{refused}/h?token={secret}", secret=SecretStr(secret)),
        SlackWebhookChannel(f"{server.url}/services/T0/B0/{secret}"),
        SlackWebhookChannel(SecretStr(f"{refused}/services/T0/B0/{secret}"), retry=None),
        EmailChannel(
            smtp.host,
            smtp.port,
            sender="h@example.com",
            recipients=["ops@example.com"],
            username="bot",
            password=secret,
            allow_plaintext_login=True,
        ),
    ]
    server.script(Reply(503), Reply(503), Reply(503), Reply(400, body=b"invalid_payload"))
    failures: list[str] = []
    with capture_logs() as logs:
        for channel in channels:
            assert secret not in repr(channel)
            with pytest.raises(Exception) as caught:  # noqa: PT011 - each channel fails its own way
                run(channel.send(make_notification()))
            failures.append("".join(traceback.format_exception(caught.value)))
    assert any(log["event"] == "handrail.retry" for log in logs)  # the logs were written
    for text in [*failures, repr(logs)]:
        assert secret not in text
    assert smtp.mailbox.envelopes == []
