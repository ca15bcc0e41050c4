"""Escalation: routing decisions to humans, under SLA clocks.

See ``docs/escalation.md``.
"""

from .._errors import (
    AlreadyExecuted,
    EscalationError,
    IllegalTransition,
    NotADecider,
    UnknownEscalation,
)
from ._calendar import BusinessHours
from ._channels import (
    CallableChannel,
    Channel,
    EmailChannel,
    LogChannel,
    SlackWebhookChannel,
    WebhookChannel,
    verify_signature,
)
from ._memory import MemoryStore
from ._model import (
    Delivery,
    Escalation,
    EscalationState,
    Event,
    Level,
    Notification,
    OnTimeout,
    Route,
)
from ._resume import current_resume, resuming
from ._router import EscalationRouter, TickReport, request_fingerprint
from ._store import Change, EscalationStore

__all__ = [
    "AlreadyExecuted",
    "BusinessHours",
    "CallableChannel",
    "Channel",
    "Change",
    "Delivery",
    "EmailChannel",
    "Escalation",
    "EscalationError",
    "EscalationRouter",
    "EscalationState",
    "EscalationStore",
    "Event",
    "IllegalTransition",
    "Level",
    "LogChannel",
    "MemoryStore",
    "NotADecider",
    "Notification",
    "OnTimeout",
    "Route",
    "SlackWebhookChannel",
    "TickReport",
    "UnknownEscalation",
    "WebhookChannel",
    "current_resume",
    "request_fingerprint",
    "resuming",
    "verify_signature",
]
