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
    NotAuthenticated,
    UnknownEscalation,
)
from ._calendar import BusinessHours
from ._channels import CallableChannel, Channel, LogChannel
from ._email import EmailChannel
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
from ._open import STORE_ENV, check_store, open_store, redact_store, scrub_store, upgrade_store
from ._postgres import PostgresStore
from ._resume import current_resume, resuming
from ._router import ROUTER_KEY_ENV, EscalationRouter, TickReport
from ._schema import store_schema_version
from ._sqlite import SQLiteStore
from ._store import Change, EscalationStore
from ._summary import summarize
from ._webhook import SlackWebhookChannel, WebhookChannel, verify_signature

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
    "NotAuthenticated",
    "Notification",
    "OnTimeout",
    "PostgresStore",
    "ROUTER_KEY_ENV",
    "Route",
    "RoutesFile",
    "SQLiteStore",
    "STORE_ENV",
    "SlackWebhookChannel",
    "TickReport",
    "UnknownEscalation",
    "WebhookChannel",
    "check_store",
    "current_resume",
    "load_routes",
    "open_store",
    "parse_duration",
    "redact_store",
    "request_fingerprint",
    "resuming",
    "routes_from_dict",
    "routes_from_yaml",
    "scrub_store",
    "store_schema_version",
    "summarize",
    "upgrade_store",
    "verify_signature",
]


def __getattr__(name: str) -> Any:
    if name in _ROUTES_FILE:
        from . import _routes_file

        return getattr(_routes_file, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
