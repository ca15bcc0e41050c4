"""Notification channels: how the escalation router reaches the people who decide.

A ``Channel`` delivers one ``Notification`` and raises if it could not.  The
router catches the error, audits it and tries that channel again later, so
delivery is at least once and one failing channel never holds up the others.
Receivers de-duplicate on ``Notification.id``: a webhook's is the body's
signed ``id`` (the ``Idempotency-Key`` header repeats it, unsigned), email's
the ``Message-ID``.

The channels: ``LogChannel`` and ``CallableChannel`` here; ``WebhookChannel``
and ``SlackWebhookChannel`` in ``_webhook`` (over ``_posting``, the shared
HTTP shell), ``EmailChannel`` in ``_email``.  Each formats its message from
the one composition in ``_message`` and checks its arguments with
``_channel_checks``.

Secrets (a webhook's signing key and extra header values, a Slack webhook URL,
an SMTP password, credentials in any URL) never appear in a channel's repr,
in the errors it raises or in what it logs.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from .._errors import ConfigurationError
from ._channel_checks import check_name
from ._model import _NAME_RE, Notification

__all__ = ["CallableChannel", "Channel", "LogChannel"]


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
    except that ``level`` is logged as ``escalation_level`` (structlog's
    ``add_log_level`` would overwrite it with ``"info"``) and the signed
    ``links`` are left out: they are bearer secrets, and logs are read widely.  ``logger``
    defaults to ``structlog.get_logger("handrail.escalation")``, looked up on
    every send so that configuring structlog later still applies.
    """

    __slots__ = ("_logger", "name")

    def __init__(self, name: str = "log", *, logger: Any = None) -> None:
        self.name = check_name(name, "LogChannel")
        self._logger = logger

    async def send(self, notification: Notification) -> None:
        """Log the notification at info level; raises only if the logger does."""
        logger = self._logger
        if logger is None:
            import structlog

            logger = structlog.get_logger("handrail.escalation")
        fields = notification.to_payload()
        fields["escalation_level"] = fields.pop("level")
        fields.pop("links", None)
        logger.info("escalation.notification", **fields)

    def __repr__(self) -> str:
        return f"LogChannel(name={self.name!r})"


class CallableChannel:
    """Hands each notification to your function (sync or async): a chat bot, a pager, a queue.

    ``fn`` gets the whole notification, ``links`` included: each decider's
    signed decision link is a bearer secret, so hand each only to its
    decider and never log or store it.  ``fn`` raises to report a failed
    delivery.  A sync ``fn`` runs on the event loop, so keep it quick (or
    make it async, or use ``asyncio.to_thread`` inside).  ``name``
    defaults to ``fn``'s name.
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
        self.name = check_name(name, "CallableChannel")
        self._fn = fn

    async def send(self, notification: Notification) -> None:
        """Call ``fn(notification)`` (awaiting it if it returns an awaitable); its errors pass."""
        result = self._fn(notification)
        if inspect.isawaitable(result):
            await result

    def __repr__(self) -> str:
        fn = getattr(self._fn, "__qualname__", None) or type(self._fn).__name__
        return f"CallableChannel(name={self.name!r}, fn={fn})"
