"""Escalation: routing decisions to humans, under SLA clocks.

See ``docs/escalation.md``.
"""

from typing import TYPE_CHECKING, Any

from .._errors import (
    AlreadyExecuted,
    EscalationError,
    ExternalIdConflict,
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
from ._fingerprint import request_fingerprint
from ._memory import MemoryStore
from ._model import (
    Delivery,
    Escalation,
    EscalationPreview,
    EscalationState,
    Event,
    Level,
    Notification,
    OnTimeout,
    Route,
)
from ._open import open_store, upgrade_store
from ._postgres import PostgresStore, upgrade_schema
from ._resume import current_resume, resuming
from ._router import EscalationRouter, TickReport
from ._sqlite import SQLiteStore
from ._store import Change, EscalationStore

if TYPE_CHECKING:
    from ._routes_file import (
        RoutesFile,
        load_routes,
        parse_duration,
        routes_from_dict,
        routes_from_yaml,
    )

# The routes-file loader needs PyYAML: loaded on first use, so importing handrail stays light.
_ROUTES_FILE = frozenset(
    {"RoutesFile", "load_routes", "parse_duration", "routes_from_dict", "routes_from_yaml"}
)

__all__ = [
    "AlreadyExecuted",
    "BusinessHours",
    "CallableChannel",
    "Change",
    "Channel",
    "Delivery",
    "EmailChannel",
    "Escalation",
    "EscalationError",
    "EscalationPreview",
    "EscalationRouter",
    "EscalationState",
    "EscalationStore",
    "Event",
    "ExternalIdConflict",
    "IllegalTransition",
    "Level",
    "LogChannel",
    "MemoryStore",
    "NotADecider",
    "Notification",
    "OnTimeout",
    "PostgresStore",
    "Route",
    "RoutesFile",
    "SQLiteStore",
    "SlackWebhookChannel",
    "TickReport",
    "UnknownEscalation",
    "WebhookChannel",
    "current_resume",
    "load_routes",
    "open_store",
    "parse_duration",
    "request_fingerprint",
    "resuming",
    "routes_from_dict",
    "routes_from_yaml",
    "upgrade_schema",
    "upgrade_store",
    "verify_signature",
]


def __getattr__(name: str) -> Any:
    if name in _ROUTES_FILE:
        from . import _routes_file

        return getattr(_routes_file, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
