"""OpenTelemetry spans and metrics and structlog events for guarded actions.

No-op without an OpenTelemetry SDK; quiet until structlog is configured.
See ``docs/telemetry.md``.
"""

from ._telemetry import ActionScope, AuditUnavailableWarning, Telemetry, default_telemetry

__all__ = ["ActionScope", "AuditUnavailableWarning", "Telemetry", "default_telemetry"]
