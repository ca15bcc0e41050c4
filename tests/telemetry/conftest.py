"""Real OpenTelemetry SDK providers with in-memory exporters and readers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from handrail.telemetry import Telemetry


@dataclass
class Sdk:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def finished_spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans.get_finished_spans())

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) for every data point of the named metric."""
        data = self.reader.get_metrics_data()
        points: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            if value is None:
                                value = point.count  # type: ignore[attr-defined]
                            points.append((dict(point.attributes or {}), value))
        return points


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    """A Telemetry wired to real SDK providers that record in memory."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Sdk(
        Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider), spans, reader
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()
