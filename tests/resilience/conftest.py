"""A real HTTP server on 127.0.0.1 that answers from a script, and telemetry that records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from _scripted_http import Reply, ScriptedServer, serving
from handrail.telemetry import Telemetry
from handrail.testing import CapturedTelemetry, capture_telemetry
from handrail.testing._resilience import no_waits


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    """Retries in these tests never wait: the waits they choose are checked, not slept."""
    with no_waits():
        yield


# 418 is permanent, so a test that runs past its script fails loudly, unretried.
NO_REPLY_LEFT = Reply(418, body=b"no reply left")
Server = ScriptedServer


@pytest.fixture
def server() -> Iterator[Server]:
    """A scripted HTTP server on 127.0.0.1, stopped after the test."""
    with serving(NO_REPLY_LEFT) as running:
        yield running


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    """One HTTP client for the session: building one (and its TLS context) costs ~50 ms."""
    with httpx.Client() as shared:
        yield shared


@dataclass
class Recorded:
    captured: CapturedTelemetry

    @property
    def telemetry(self) -> Telemetry:
        return self.captured.telemetry

    def events(self, name: str) -> list[dict[str, Any]]:
        """The fields of every log event called ``name`` (without ``event`` and ``log_level``)."""
        return [
            {key: value for key, value in event.items() if key not in ("event", "log_level")}
            for event in self.captured.events
            if event["event"] == name
        ]

    def counter(self, name: str) -> list[tuple[dict[str, Any], int | float]]:
        """(attributes, value) for every data point of the counter ``name``."""
        return [(dict(point.attributes), point.value) for point in self.captured.points(name)]


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """A Telemetry whose log events and metrics the test can read (capture_telemetry)."""
    with capture_telemetry() as captured:
        yield Recorded(captured)
