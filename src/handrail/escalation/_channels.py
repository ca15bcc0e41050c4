"""Notification channels: how the escalation router reaches the people who decide.

A ``Channel`` delivers one ``Notification`` and raises if it could not.  The
router catches the error, audits it and tries that channel again later, so
delivery is at least once and one failing channel never holds up the others.
Receivers de-duplicate on ``Notification.id``: a webhook's is the body's
signed ``id`` (the ``Idempotency-Key`` header repeats it, unsigned), email's
the ``Message-ID``.

Secrets (a webhook's signing key and extra header values, a Slack webhook URL,
an SMTP password, credentials in any URL) never appear in a channel's repr,
in the errors it raises or in what it logs.  httpx errors are re-raised as
the same type with the URL masked, so ``is_transient`` classifies them as
before; the original is dropped because its message holds the URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

from .._errors import ConfigurationError
from .._version import __version__
from ..clock import Clock, SystemClock
from ..redaction import MASK, Redactor
from ..resilience import RetryPolicy
from ._model import _NAME_RE, EscalationState, Notification

if TYPE_CHECKING:
    import ssl

    import httpx

__all__ = [
    "CallableChannel",
    "Channel",
    "EmailChannel",
    "LogChannel",
    "SlackWebhookChannel",
    "WebhookChannel",
    "verify_signature",
]

# Short: the router retries a failed delivery on its next tick anyway.
_DEFAULT_RETRY = RetryPolicy(
    attempts=3,
    timeout=timedelta(seconds=30),
    wait_initial=timedelta(milliseconds=500),
    wait_max=timedelta(seconds=5),
)
_DEFAULT_TOLERANCE = timedelta(minutes=5)
_SIGNATURE_PREFIX = "sha256="
_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "idempotency-key",
        "user-agent",
        "x-handrail-timestamp",
        "x-handrail-signature",
    }
)
_REDACTOR = Redactor()


@runtime_checkable
class Channel(Protocol):
    """Somewhere the router sends notifications: a log, a webhook, Slack, email, your code.

    ``name`` is what a route level's ``channels`` refers to.  ``send``
    delivers one notification or raises: the router catches the error,
    audits it and retries later, so a channel need not retry for long and
    never has to protect the other channels.  Delivery is at least once; a
    receiver de-duplicates on ``notification.id``.
    """

    name: str

    async def send(self, notification: Notification) -> None:
        """Deliver ``notification``; raise if it may not have arrived."""
        ...


class LogChannel:
    """Logs each notification as the structlog event ``escalation.notification``.

    The event's fields are the notification's payload (``Notification.to_payload()``),
    except that ``level`` is logged as ``escalation_level``: structlog's
    ``add_log_level`` would overwrite it with ``"info"``.  ``logger``
    defaults to ``structlog.get_logger("handrail.escalation")``, looked up on
    every send so that configuring structlog later still applies.
    """

    __slots__ = ("_logger", "name")

    def __init__(self, name: str = "log", *, logger: Any = None) -> None:
        self.name = _channel_name(name, "LogChannel")
        self._logger = logger

    async def send(self, notification: Notification) -> None:
        """Log the notification at info level; raises only if the logger does."""
        logger = self._logger
        if logger is None:
            import structlog

            logger = structlog.get_logger("handrail.escalation")
        fields = notification.to_payload()
        fields["escalation_level"] = fields.pop("level")
        logger.info("escalation.notification", **fields)

    def __repr__(self) -> str:
        return f"LogChannel(name={self.name!r})"


class WebhookChannel:
    """POSTs each notification's JSON payload to ``url``, signed with HMAC-SHA256.

    The body is ``notification.to_payload()`` as compact JSON with sorted
    keys: the exact bytes signed.  Headers: ``Idempotency-Key`` (the
    notification id, the same on every retry; not signed, so receivers
    de-duplicate on the body's ``id``),
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
        retry: RetryPolicy | None = _DEFAULT_RETRY,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        owner = "WebhookChannel"
        self.name = _channel_name(name, owner)
        hidden = isinstance(url, SecretStr)
        raw = url.get_secret_value() if isinstance(url, SecretStr) else url
        display_url, url_secrets = _http_url(raw, owner, "url", path_is_secret=hidden)
        self._secret = _optional_secret(secret, owner, "secret")
        self._headers = _extra_headers(headers, owner)
        secrets = [*url_secrets, *(v.get_secret_value() for v in self._headers.values())]
        if self._secret is not None:
            secrets.append(self._secret.get_secret_value())
        self._http = _Poster(
            owner=owner,
            name=self.name,
            url=raw,
            display_url=display_url,
            secrets=secrets,
            timeout=_seconds(timeout, owner, "timeout"),
            retry=_retry_policy(retry, owner),
            client=_async_client(client, owner),
            clock=_clock(clock, owner),
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

    The message shows the summary (action, agent, on behalf of, resource,
    reason), the level and recipients, the deadline (in the reader's time
    zone, and relative), and the decide commands in a code block.  The URL
    is the credential (anyone holding it can post): pass it as a
    ``SecretStr`` from your secret store; it is never shown, only
    ``https://hooks.slack.com/***``.

    Retries and errors as ``WebhookChannel``: Slack answers 429 with
    ``Retry-After`` when rate limited, and 4xx (``invalid_payload``,
    ``channel_not_found``, ...) for mistakes that retrying cannot fix.
    Retrying after a timeout may post the message twice.
    """

    __slots__ = ("_http", "name")

    def __init__(
        self,
        url: SecretStr | str,
        *,
        name: str = "slack",
        timeout: timedelta | float = 10.0,
        retry: RetryPolicy | None = _DEFAULT_RETRY,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        owner = "SlackWebhookChannel"
        self.name = _channel_name(name, owner)
        secret_url = _required_secret(url, owner, "url")
        raw = secret_url.get_secret_value()
        display_url, url_secrets = _http_url(raw, owner, "url", path_is_secret=True)
        self._http = _Poster(
            owner=owner,
            name=self.name,
            url=raw,
            display_url=display_url,
            secrets=url_secrets,
            timeout=_seconds(timeout, owner, "timeout"),
            retry=_retry_policy(retry, owner),
            client=_async_client(client, owner),
            clock=_clock(clock, owner),
        )

    def message(self, notification: Notification) -> dict[str, Any]:
        """The Slack message ``send`` posts: ``{"text": ..., "blocks": [...]}``."""
        return _slack_message(_compose(notification, self._http.clock.now()))

    async def send(self, notification: Notification) -> None:
        """Post the message; raises ``httpx.HTTPError`` when Slack did not accept it."""
        body = _canonical_json(self.message(notification))
        await self._http.post(body, _json_headers, notification.id)

    def __repr__(self) -> str:
        return f"SlackWebhookChannel(name={self.name!r}, url={self._http.display_url!r})"


class EmailChannel:
    """Emails each notification through an SMTP server (stdlib ``smtplib``, in a worker thread).

    Who gets it: ``recipients`` as a list of addresses gets every
    notification; as a mapping, it turns the notification's ``recipients``
    (a level's ``notify`` entries) into addresses, and only mapped entries
    get mail; ``None`` uses the entries that are themselves addresses.  When
    nobody is left, ``send`` raises ``ConfigurationError`` naming the
    recipients.  The ``Message-ID`` is derived from the notification id, so
    a redelivery is the same message to mail clients; ``References`` threads
    every notification about one escalation together.

    ``use_ssl`` connects with TLS (usually port 465); ``starttls`` upgrades
    a plain connection (usually 587).  With ``username`` and ``password`` it
    logs in; a refused login raises ``ConfigurationError``.  A login needs
    TLS: with a password and neither ``starttls`` nor ``use_ssl`` the
    constructor raises ``ConfigurationError``, unless
    ``allow_plaintext_login=True`` (for a local test server only: the
    password then crosses the network in plain text).  SMTP and socket
    errors pass through (``smtplib.SMTPException``, ``OSError``), after at
    most ``timeout`` per network operation.  Raises ``ConfigurationError``
    for a bad argument.
    """

    __slots__ = (
        "_clock",
        "_password",
        "_recipients",
        "_sender",
        "_timeout",
        "_username",
        "host",
        "name",
        "port",
        "starttls",
        "use_ssl",
    )

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        recipients: Mapping[str, str] | Sequence[str] | None = None,
        username: str | None = None,
        password: SecretStr | str | None = None,
        starttls: bool = False,
        use_ssl: bool = False,
        allow_plaintext_login: bool = False,
        timeout: timedelta | float = 10.0,
        name: str = "email",
        clock: Clock | None = None,
    ) -> None:
        owner = "EmailChannel"
        self.name = _channel_name(name, owner)
        if not isinstance(host, str) or not host or any(c.isspace() for c in host):
            raise ConfigurationError(f"{owner}: host must be a host name or address, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigurationError(f"{owner}: port must be an int in 1..65535, got {port!r}")
        flags = (
            ("starttls", starttls),
            ("use_ssl", use_ssl),
            ("allow_plaintext_login", allow_plaintext_login),
        )
        for flag, value in flags:
            if not isinstance(value, bool):
                raise ConfigurationError(f"{owner}: {flag} must be True or False, got {value!r}")
        if starttls and use_ssl:
            raise ConfigurationError(
                f"{owner}: starttls and use_ssl are exclusive: use_ssl=True for a TLS port "
                "(usually 465), starttls=True to upgrade a plain one (usually 587)"
            )
        self.host = host
        self.port = port
        self.starttls = starttls
        self.use_ssl = use_ssl
        self._sender = _address(sender, owner, "sender")
        self._recipients = _email_recipients(recipients, owner)
        self._password = _optional_secret(password, owner, "password")
        if username is not None and (not isinstance(username, str) or not username):
            raise ConfigurationError(f"{owner}: username must be a non-empty str or None")
        if (username is None) != (self._password is None):
            raise ConfigurationError(
                f"{owner}: pass both username and password to log in, or neither"
            )
        if self._password is not None and not (starttls or use_ssl or allow_plaintext_login):
            raise ConfigurationError(
                f"{owner}: a login without TLS would send the password in plain text: pass "
                "starttls=True (usually port 587) or use_ssl=True (usually 465); only for a "
                "local test server, allow_plaintext_login=True"
            )
        self._username = username
        self._timeout = _seconds(timeout, owner, "timeout")
        self._clock = _clock(clock, owner)

    def addresses(self, notification: Notification) -> list[str]:
        """Who gets this notification; raises ``ConfigurationError`` when nobody would."""
        recipients = self._recipients
        if isinstance(recipients, tuple):
            return list(recipients)
        if recipients is None:
            found = [r for r in notification.recipients if _looks_like_address(r)]
            how = "none of them is an email address; pass recipients= to map them"
        else:
            found = [recipients[r] for r in notification.recipients if r in recipients]
            how = "none of them is in recipients="
        unique = list(dict.fromkeys(found))
        if not unique:
            named = ", ".join(map(repr, notification.recipients)) or "nobody"
            raise ConfigurationError(
                f"{self!r}: notification {notification.id} is for {named}, "
                f"but {how}: no address to send it to"
            )
        return unique

    def message(self, notification: Notification) -> EmailMessage:
        """The email ``send`` delivers (without sending it)."""
        now = self._clock.now()
        parts = _compose(notification, now)
        domain = parseaddr(self._sender)[1].rpartition("@")[2]
        message = EmailMessage()
        message["Subject"] = _one_line(f"[handrail] {parts.title} ({notification.escalation_id})")
        message["From"] = self._sender
        message["To"] = ", ".join(self.addresses(notification))
        message["Date"] = format_datetime(_utc(now))
        message["Message-ID"] = f"<{_message_id_part(notification.id)}@{domain}>"
        message["References"] = f"<{_message_id_part(notification.escalation_id)}@{domain}>"
        message["X-Handrail-Escalation"] = _one_line(notification.escalation_id)
        message["X-Handrail-Notification"] = _one_line(notification.id)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        text = _plain_text(parts)
        # Readable on the wire: 7bit when it can be, quoted-printable rather than base64.
        message.set_content(text, cte=None if text.isascii() else "quoted-printable")
        return message

    async def send(self, notification: Notification) -> None:
        """Send the email; raises ``ConfigurationError``, ``smtplib.SMTPException``, ``OSError``."""
        message = self.message(notification)
        envelope_to = [parseaddr(a)[1] for a in self.addresses(notification)]
        await asyncio.to_thread(self._deliver, message, envelope_to)

    def _deliver(self, message: EmailMessage, envelope_to: list[str]) -> None:
        import smtplib
        import ssl

        context = ssl.create_default_context() if self.use_ssl or self.starttls else None
        smtp: smtplib.SMTP
        if self.use_ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self._timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self._username is not None and self._password is not None:
                self._login(smtp, self._username, self._password)
            refused = smtp.send_message(
                message, from_addr=parseaddr(self._sender)[1], to_addrs=envelope_to
            )
        if refused:
            # Some were accepted: raising makes the router redeliver to all, and the
            # stable Message-ID lets mail clients drop the copies.
            raise smtplib.SMTPRecipientsRefused(refused)

    def _login(self, smtp: Any, username: str, password: SecretStr) -> None:
        import smtplib

        try:
            smtp.login(username, password.get_secret_value())
        except smtplib.SMTPAuthenticationError as exc:
            answer = exc.smtp_error
            if isinstance(answer, bytes):
                answer = answer.decode(errors="replace")
            raise ConfigurationError(
                f"{self!r}: the SMTP server refused the login ({exc.smtp_code} "
                f"{_one_line(answer)}); check username= and password="
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise ConfigurationError(
                f"{self!r}: the SMTP server offers no login (AUTH) on this connection; "
                "many offer it only after starttls=True, or on use_ssl=True"
            ) from exc

    def __repr__(self) -> str:
        tls = "ssl" if self.use_ssl else "starttls" if self.starttls else "none"
        return (
            f"EmailChannel(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"sender={self._sender!r}, tls={tls!r}, login={self._username is not None})"
        )


class CallableChannel:
    """Hands each notification to your function (sync or async): a chat bot, a pager, a queue.

    ``fn`` raises to report a failed delivery.  A sync ``fn`` runs on the
    event loop, so keep it quick (or make it async, or use
    ``asyncio.to_thread`` inside).  ``name`` defaults to ``fn``'s name.
    """

    __slots__ = ("_fn", "name")

    def __init__(
        self, fn: Callable[[Notification], object | Awaitable[object]], *, name: str | None = None
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(
                f"CallableChannel: fn must be a function taking the Notification, got {fn!r}"
            )
        if name is None:
            name = getattr(fn, "__name__", None)
            if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                raise ConfigurationError(
                    f"CallableChannel: {fn!r} has no usable name; pass name='...'"
                )
        self.name = _channel_name(name, "CallableChannel")
        self._fn = fn

    async def send(self, notification: Notification) -> None:
        """Call ``fn(notification)`` (awaiting it if it returns an awaitable); its errors pass."""
        result = self._fn(notification)
        if inspect.isawaitable(result):
            await result

    def __repr__(self) -> str:
        fn = getattr(self._fn, "__qualname__", None) or type(self._fn).__name__
        return f"CallableChannel(name={self.name!r}, fn={fn})"


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
    key = _secret_bytes(secret)
    window = _seconds(tolerance, "verify_signature", "tolerance", allow_zero=True)
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


# -- HTTP: one POST with retries, errors re-raised with the URL masked ----------------------


class _Poster:
    """POSTs bytes to one URL, retried by a policy; the shared shell of the HTTP channels."""

    __slots__ = (
        "_client",
        "_secrets",
        "_tls",
        "clock",
        "display_url",
        "name",
        "owner",
        "retry",
        "timeout",
        "url",
    )

    def __init__(
        self,
        *,
        owner: str,
        name: str,
        url: str,
        display_url: str,
        secrets: Iterable[str],
        timeout: float,
        retry: RetryPolicy | None,
        client: httpx.AsyncClient | None,
        clock: Clock,
    ) -> None:
        self.owner = owner
        self.name = name
        self.url = url
        self.display_url = display_url
        self._secrets = tuple(s for s in secrets if s)
        self.timeout = timeout
        self.retry = retry
        self._client = client
        self.clock = clock
        self._tls: ssl.SSLContext | None = None

    async def post(self, body: bytes, headers: Callable[[], dict[str, str]], key: str) -> None:
        if self.retry is None:
            await self._attempt(body, headers)
            return
        await self.retry.acall(
            self._attempt,
            body,
            headers,
            action=f"escalation.channel.{self.name}",
            is_write=True,
            idempotency_key=key,
        )

    async def _attempt(self, body: bytes, headers: Callable[[], dict[str, str]]) -> None:
        import httpx

        sent = {**headers(), "User-Agent": f"handrail/{__version__}"}
        try:
            if self._client is not None:
                response = await self._client.post(
                    self.url, content=body, headers=sent, timeout=self.timeout
                )
            else:
                async with httpx.AsyncClient(
                    timeout=self.timeout, verify=self._tls_context(), follow_redirects=False
                ) as client:
                    response = await client.post(self.url, content=body, headers=sent)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            # Not chained: the original's message (and request) hold the URL.
            raise self._masked(exc) from None

    def _tls_context(self) -> ssl.SSLContext | bool:
        # Building a TLS context costs ~40 ms; one per channel, not one per send.
        if self._tls is None:
            import httpx

            create = getattr(httpx, "create_ssl_context", None)  # httpx >= 0.28
            if create is None:
                return True
            self._tls = create()
        return self._tls

    def _scrub(self, text: str) -> str:
        return _REDACTOR.scrub(text, self._secrets)

    def _masked(self, error: httpx.HTTPError) -> httpx.HTTPError:
        """The same kind of error, saying what failed, with no secret in it or on it."""
        import httpx

        request = httpx.Request("POST", self.display_url)
        where = f"{self.owner} {self.name!r}: POST {self.display_url}"
        if isinstance(error, httpx.HTTPStatusError):
            original = error.response
            excerpt = _one_line(original.text)[:200].strip()
            detail = f": {self._scrub(excerpt)}" if excerpt else ""
            # Decoded content, so the encoding headers no longer apply.
            skip = {"content-encoding", "content-length", "transfer-encoding"}
            response = httpx.Response(
                original.status_code,
                headers=[(k, v) for k, v in original.headers.multi_items() if k not in skip],
                content=original.content,
                request=request,
            )
            message = f"{where} answered {original.status_code} {original.reason_phrase}{detail}"
            return httpx.HTTPStatusError(message, request=request, response=response)
        cause = self._scrub(str(error)) or "no detail"
        message = f"{where} failed: {type(error).__name__}: {cause}"
        if isinstance(error, httpx.RequestError):
            try:
                return type(error)(message, request=request)
            except TypeError:  # a subclass with its own constructor: keep it transient
                return httpx.TransportError(message, request=request)
        return httpx.HTTPError(message)


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _canonical_json(payload: Mapping[str, Any]) -> bytes:
    """Compact, sorted, UTF-8: the same payload always gives the same bytes (and signature)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _signature(key: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


# -- the message: one I/O-free composition, rendered as text, Slack blocks or email ---------


@dataclass(frozen=True, slots=True)
class _Parts:
    """What every human-readable rendering of a notification says."""

    title: str
    summary: str
    fields: tuple[tuple[str, str], ...]
    due: datetime | None
    due_in: str
    commands: tuple[str, ...]
    footer: str


_TITLES = {
    "opened": "approval needed",
    "escalated": "approval needed (escalated)",
    "warning": "decision due soon",
}


def _compose(notification: Notification, now: datetime) -> _Parts:
    n = notification
    if n.kind == "resolved":
        title = n.state.value if n.state.is_terminal else "resolved"
    else:
        title = _TITLES[n.kind]
    level = f"{n.level} ({n.level_name})" if n.level_name else str(n.level)
    fields: list[tuple[str, str]] = [("Action", n.action), ("Agent", n.agent)]
    if n.on_behalf_of:
        fields.append(("On behalf of", n.on_behalf_of))
    if n.resource:
        fields.append(("Resource", _compact(n.resource)))
    if n.reason:
        fields.append(("Reason", n.reason))
    fields.append(("Route", f"{n.route}, level {level}"))
    if n.state is not EscalationState.OPEN or n.kind == "resolved":
        fields.append(("State", n.state.value))
    if n.recipients:
        fields.append(("Notify", ", ".join(n.recipients)))
    if n.deciders:
        fields.append(("Deciders", ", ".join(n.deciders)))
    due = _utc(n.due) if n.due is not None else None
    due_in = _relative(due, _utc(now)) if due is not None else ""
    if due is not None:
        fields.append(("Due", f"{due.isoformat()} ({due_in})"))
    footer = f"escalation {n.escalation_id}, notification {n.id}"
    return _Parts(
        title=f"{title}: {n.action}",
        summary=n.summary,
        fields=tuple(fields),
        due=due,
        due_in=due_in,
        commands=n.commands,
        footer=footer,
    )


def _plain_text(parts: _Parts) -> str:
    width = max(len(label) for label, _ in parts.fields) + 2
    lines = [parts.title[:1].upper() + parts.title[1:], ""]
    if parts.summary:
        lines += [parts.summary, ""]
    for label, value in parts.fields:
        head, *rest = value.splitlines() or [""]
        lines.append(f"{label + ':':<{width}}{head}")
        lines += [" " * width + line for line in rest]
    if parts.commands:
        lines += ["", "To decide, run one of:", ""]
        lines += [f"    {command}" for command in parts.commands]
    lines += ["", f"-- {parts.footer}"]
    return "\n".join(lines) + "\n"


# Slack's limits: header text 150, section text 3000, field text 2000, 10 fields.
def _slack_message(parts: _Parts) -> dict[str, Any]:
    fields = []
    for label, value in parts.fields[:10]:
        if label == "Due" and parts.due is not None:
            stamp = int(parts.due.timestamp())
            shown = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{parts.due.isoformat()}>"
            text = f"*Due*\n{shown} ({parts.due_in})"
        else:
            text = f"*{label}*\n{_mrkdwn(value)}"
        fields.append({"type": "mrkdwn", "text": _clip(text, 2000)})
    title = parts.title[:1].upper() + parts.title[1:]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}},
    ]
    if parts.summary:
        blocks.append(_section(_mrkdwn(parts.summary)))
    blocks.append({"type": "section", "fields": fields})
    if parts.commands:
        code = _mrkdwn("\n".join(parts.commands)).replace("```", "`\u200b``")
        blocks.append(_section(f"*To decide, run one of:*\n```{code}```"))
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(parts.footer)}]}
    )
    return {"text": _clip(_mrkdwn(_plain_text(parts)), 3000), "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, 3000)}}


def _mrkdwn(text: str) -> str:
    """Text shown as itself in Slack: no <!channel> pings or <url|links> from request data."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters turned into spaces (headers)."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)


def _message_id_part(text: str) -> str:
    """``text`` as the left part of a Message-ID: RFC 5322 atext, dots escaped too."""
    return quote(text, safe="").replace(".", "%2E")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _relative(due: datetime, now: datetime) -> str:
    seconds = (due - now).total_seconds()
    span = _span(abs(seconds))
    return f"in {span}" if seconds >= 0 else f"overdue by {span}"


def _span(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    units = [(days, "d"), (hours, "h"), (rest // 60, "m")]
    first = next(i for i, (count, _) in enumerate(units) if count)
    shown = [f"{count}{unit}" for count, unit in units[first : first + 2] if count]
    return " ".join(shown)


# -- argument checks: each names the argument and says what it takes ------------------------


def _channel_name(name: object, owner: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigurationError(
            f"{owner}: name must start with a letter or digit and use only letters, digits "
            f"and _ . : @ -, got {name!r}"
        )
    return name


def _optional_secret(value: object, owner: str, argument: str) -> SecretStr | None:
    return None if value is None else _required_secret(value, owner, argument)


def _required_secret(value: object, owner: str, argument: str) -> SecretStr:
    if isinstance(value, str):
        value = SecretStr(value)
    if not isinstance(value, SecretStr):
        # The value itself is not shown: it may be the secret in the wrong wrapper.
        raise ConfigurationError(
            f"{owner}: {argument} must be a str or pydantic.SecretStr, got {type(value).__name__}"
        )
    if not value.get_secret_value():
        raise ConfigurationError(f"{owner}: {argument} is empty")
    return value


def _secret_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        if not value:
            raise ConfigurationError("verify_signature: secret is empty")
        return value
    return _required_secret(value, "verify_signature", "secret").get_secret_value().encode()


def _seconds(value: object, owner: str, argument: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(
            f"{owner}: {argument} must be a datetime.timedelta or seconds, got {value!r}"
        )
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "positive"
        raise ConfigurationError(f"{owner}: {argument} must be {bound}, got {value!r}")
    return seconds


def _http_url(
    url: object, owner: str, argument: str, *, path_is_secret: bool
) -> tuple[str, list[str]]:
    """The URL as shown (credentials masked), and the strings to scrub from errors."""
    if isinstance(url, str):
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme in ("http", "https") and parts.hostname and port != -1:
            host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
            if port is not None:
                host = f"{host}:{port}"
            secrets = [url, parts.query, parts.password or "", parts.username or ""]
            if path_is_secret:
                return f"{parts.scheme}://{host}/{MASK}", [*secrets, parts.path]
            return _REDACTOR.scrub(url, ()), secrets
    shown = _REDACTOR.scrub(url, ()) if isinstance(url, str) and not path_is_secret else "..."
    raise ConfigurationError(
        f"{owner}: {argument} must be an http:// or https:// URL with a host, got {shown!r}"
    )


def _extra_headers(headers: object, owner: str) -> dict[str, SecretStr]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"{owner}: headers must be a mapping of names to values")
    out: dict[str, SecretStr] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not name.isascii() or ":" in name:
            raise ConfigurationError(f"{owner}: headers: {name!r} is not a header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ConfigurationError(
                f"{owner}: headers: {name!r} is set by the channel and cannot be overridden"
            )
        secret = _required_secret(value, owner, f"headers[{name!r}]")
        if any(c in secret.get_secret_value() for c in "\r\n"):
            raise ConfigurationError(f"{owner}: headers[{name!r}] contains a line break")
        out[name] = secret
    return out


def _retry_policy(retry: object, owner: str) -> RetryPolicy | None:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(
            f"{owner}: retry must be a handrail.resilience.RetryPolicy or None, got {retry!r}"
        )
    return retry


def _async_client(client: object, owner: str) -> httpx.AsyncClient | None:
    if client is None:
        return None
    import httpx

    if not isinstance(client, httpx.AsyncClient):
        raise ConfigurationError(
            f"{owner}: client must be an httpx.AsyncClient, got {type(client).__name__}"
        )
    return client


def _clock(clock: object, owner: str) -> Clock:
    if clock is None:
        return SystemClock()
    if not callable(getattr(clock, "now", None)):
        raise ConfigurationError(f"{owner}: clock must have a now() method, got {clock!r}")
    return clock  # type: ignore[return-value]  # checked structurally above


def _looks_like_address(value: str) -> bool:
    address = parseaddr(value)[1]
    return "@" in address and not any(c in value for c in "\r\n")


def _address(value: object, owner: str, argument: str) -> str:
    if not isinstance(value, str) or not _looks_like_address(value):
        raise ConfigurationError(f"{owner}: {argument} must be an email address, got {value!r}")
    return value


def _email_recipients(recipients: object, owner: str) -> tuple[str, ...] | dict[str, str] | None:
    if recipients is None:
        return None
    if isinstance(recipients, Mapping):
        mapped: dict[str, str] = {}
        for who, address in recipients.items():
            if not isinstance(who, str):
                raise ConfigurationError(f"{owner}: recipients: key {who!r} is not a str")
            mapped[who] = _address(address, owner, f"recipients[{who!r}]")
        if not mapped:
            raise ConfigurationError(f"{owner}: recipients is empty; pass None to use addresses")
        return mapped
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, Sequence):
        raise ConfigurationError(
            f"{owner}: recipients must be a list of addresses, a mapping or None, "
            f"got {type(recipients).__name__}"
        )
    if not recipients:
        raise ConfigurationError(f"{owner}: recipients is empty; pass None to use addresses")
    return tuple(_address(a, owner, f"recipients[{i}]") for i, a in enumerate(recipients))
