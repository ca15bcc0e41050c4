"""A real HTTP server on 127.0.0.1 that answers from a script, and telemetry that records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from structlog.testing import CapturingLogger

from _scripted_http import Reply, ScriptedServer, serving
from handrail.telemetry import Telemetry
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
    telemetry: Telemetry
    logger: CapturingLogger
    reader: InMemoryMetricReader

    def events(self, name: str) -> list[dict[str, Any]]:
        """The keyword arguments of every log event called ``name``."""
        return [call.kwargs for call in self.logger.calls if call.args == (name,)]

    def counter(self, name: str) -> list[tuple[dict[str, Any], int]]:
        """(attributes, value) for every data point of the counter ``name``."""
        data = self.reader.get_metrics_data()
        points: list[tuple[dict[str, Any], int]] = []
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            points.append(
                                (dict(point.attributes or {}), getattr(point, "value", 0))
                            )
        return points


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """A Telemetry whose log events and metrics the test can read."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    logger = CapturingLogger()
    yield Recorded(Telemetry(meter_provider=meter_provider, logger=logger), logger, reader)
    meter_provider.shutdown()
