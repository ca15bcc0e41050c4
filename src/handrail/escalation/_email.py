"""The email channel: each notification as a text and HTML message through an SMTP server.

``smtplib`` runs in a worker thread, so the event loop never waits on the
server.  TLS is on by default (implicit TLS on 465, STARTTLS elsewhere); a
password is never sent over a connection that is not encrypted unless told to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from pydantic import SecretStr

from .._errors import ConfigurationError
from .._text import printable
from ..clock import Clock
from ._channel_checks import (
    check_address,
    check_clock,
    check_deciders,
    check_name,
    check_recipients,
    check_seconds,
    looks_like_address,
    optional_secret,
)
from ._message import (
    _Parts,
    compose,
    html_message,
    message_id_part,
    one_line,
    plain_text,
    subject,
    utc,
    with_link,
)
from ._model import Notification

__all__ = ["EmailChannel"]


class EmailChannel:
    """Emails each notification through an SMTP server (stdlib ``smtplib``, in a worker thread).

    Each mail is ``multipart/alternative``: a plain-text part (every value
    on its own line, control characters shown escaped) and an HTML part
    (every value escaped; no value is ever a link).  Both show the
    arguments and context as stored (redacted).  The subject is our own
    words, the action name and the escalation id.

    Who gets it: ``recipients`` as a list of addresses gets every
    notification; as a mapping, it turns the notification's ``recipients``
    (a level's ``notify`` entries) into addresses, and only mapped entries
    get mail; ``None`` uses the entries that are themselves addresses.  When
    nobody is left, ``send`` raises ``ConfigurationError`` naming the
    recipients.  That shared mail never carries a signed decision link.

    A decision link is a bearer credential for one decider, so each goes in
    a mail of its own: ``deciders`` maps decider ids to an address that
    only that person reads (never a list), and each decider in the
    notification's ``links`` found there gets the same message with their
    own link and no other.  A decider not found there gets no link; the
    channel logs the warning ``escalation.email.links_not_sent`` naming them
    (never the link) through ``logger`` (default
    ``structlog.get_logger("handrail.escalation")``).

    The ``Message-ID`` is derived from the notification id (and, for a
    decider's own mail, the decider id), so a redelivery is the same
    message to mail clients; ``References`` threads every notification
    about one escalation together.

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
        "_deciders",
        "_logger",
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
        deciders: Mapping[str, str] | None = None,
        username: str | None = None,
        password: SecretStr | str | None = None,
        starttls: bool = False,
        use_ssl: bool = False,
        allow_plaintext_login: bool = False,
        timeout: timedelta | float = 10.0,
        name: str = "email",
        clock: Clock | None = None,
        logger: Any = None,
    ) -> None:
        owner = "EmailChannel"
        self.name = check_name(name, owner)
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
        self._sender = check_address(sender, owner, "sender")
        self._recipients = check_recipients(recipients, owner)
        self._deciders = check_deciders(deciders, owner)
        self._logger = logger
        self._password = optional_secret(password, owner, "password")
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
        self._timeout = check_seconds(timeout, owner, "timeout")
        self._clock = check_clock(clock, owner)

    def addresses(self, notification: Notification) -> list[str]:
        """Who gets this notification; raises ``ConfigurationError`` when nobody would."""
        recipients = self._recipients
        if isinstance(recipients, tuple):
            return list(recipients)
        if recipients is None:
            found = [r for r in notification.recipients if looks_like_address(r)]
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
        """The shared email ``send`` delivers to ``addresses`` (without sending it): no links."""
        now = self._clock.now()
        return self._compose(
            notification, compose(notification, now), now, self.addresses(notification)
        )

    def decider_messages(self, notification: Notification) -> dict[str, EmailMessage]:
        """Decider id -> the email with their own decision link, for each with an address.

        Deciders in ``notification.links`` missing from ``deciders`` are left
        out (``send`` logs them).
        """
        now = self._clock.now()
        parts = compose(notification, now)
        return {
            decider: self._compose(
                notification, with_link(parts, decider, url), now, [address], reader=decider
            )
            for decider, url in notification.links.items()
            if (address := self._deciders.get(decider)) is not None
        }

    def _compose(
        self,
        notification: Notification,
        parts: _Parts,
        now: datetime,
        to: list[str],
        *,
        reader: str | None = None,
    ) -> EmailMessage:
        domain = parseaddr(self._sender)[1].rpartition("@")[2]
        # One Message-ID per notification and reader: "." never occurs in an escaped part.
        local = message_id_part(notification.id)
        if reader is not None:
            local += "." + message_id_part(reader)
        message = EmailMessage()
        message["Subject"] = subject(notification)
        message["From"] = self._sender
        message["To"] = ", ".join(to)
        message["Date"] = format_datetime(utc(now))
        message["Message-ID"] = f"<{local}@{domain}>"
        message["References"] = f"<{message_id_part(notification.escalation_id)}@{domain}>"
        message["X-Handrail-Escalation"] = printable(notification.escalation_id)
        message["X-Handrail-Notification"] = printable(notification.id)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        text = plain_text(parts)
        page = html_message(parts)
        # Readable on the wire: 7bit when it can be, quoted-printable rather than base64.
        message.set_content(text, cte=_transfer_encoding(text))
        message.add_alternative(page, subtype="html", cte=_transfer_encoding(page))
        return message

    async def send(self, notification: Notification) -> None:
        """Send the shared mail, then each decider's own; raises on the first that fails.

        Raises ``ConfigurationError``, ``smtplib.SMTPException`` or ``OSError``.
        All of them go again on a redelivery (with fresh links): their
        Message-IDs are stable, so mail clients drop the copies.
        """
        mails = [(self.message(notification), self.addresses(notification))]
        for decider, mail in self.decider_messages(notification).items():
            mails.append((mail, [self._deciders[decider]]))
        missing = sorted(set(notification.links) - set(self._deciders))
        if missing:
            self._log().warning(
                "escalation.email.links_not_sent",
                channel=self.name,
                notification=notification.id,
                escalation_id=notification.escalation_id,
                deciders=missing,
                why="no address in deciders=",
            )
        for mail, to in mails:
            envelope_to = [parseaddr(a)[1] for a in to]
            await asyncio.to_thread(self._deliver, mail, envelope_to)

    def _log(self) -> Any:
        if self._logger is not None:
            return self._logger
        import structlog

        return structlog.get_logger("handrail.escalation")

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
                f"{one_line(answer)}); check username= and password="
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


def _transfer_encoding(text: str) -> str | None:
    """7bit for short ASCII lines, else quoted-printable (never base64: readable on the wire)."""
    if text.isascii() and all(len(line) <= 998 for line in text.splitlines()):
        return None
    return "quoted-printable"
