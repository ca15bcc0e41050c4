"""Telemetry recorded in memory by the real OpenTelemetry SDK (handrail.testing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from handrail.testing import CapturedTelemetry, capture_telemetry


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    """A Telemetry wired to real SDK providers and a structlog logger that record in memory."""
    with capture_telemetry() as recording:
        yield recording
