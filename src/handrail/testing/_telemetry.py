"""``capture_telemetry()``: spans, metric points and log events of a test, held in memory.

In the manner of structlog's ``capture_logs``, but nothing global changes:
the spans come from a ``TracerProvider`` and the metrics from a
``MeterProvider`` made for the block (the real OpenTelemetry SDK, with its
in-memory exporter and reader), and the events from a structlog logger of
its own.  A ``Telemetry`` wired to all three is handed to the code under
test.  The SDK is a test dependency: it is imported when the block starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import structlog

from ..redaction import Redactor
from ..telemetry import Telemetry

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["CapturedTelemetry", "MetricPoint", "capture_telemetry"]

_MISSING_SDK = (
    "capture_telemetry() needs the OpenTelemetry SDK, a test dependency of handrail: "
    "pip install opentelemetry-sdk (or 'handrail[testing]')"
)


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One data point of one metric, as the SDK's reader collected it.

    ``value`` is a counter's or gauge's value; for a histogram it is how
    many measurements were recorded, and ``sum`` their total (``None`` for
    the others).
    """

    name: str
    attributes: Mapping[str, Any]
    value: int | float
    sum: int | float | None = None


class _Events:
    """The structlog processor that keeps every event dict and drops it (as ``LogCapture``)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def __call__(self, _logger: object, method_name: str, event_dict: Any) -> NoReturn:
        event_dict["log_level"] = "warning" if method_name == "warn" else method_name
        self.entries.append(dict(event_dict))
        raise structlog.DropEvent


class CapturedTelemetry:
    """What one ``capture_telemetry()`` block recorded; pass ``.telemetry`` to the code under test.

    ``spans`` are the finished spans; ``metrics`` the metric points (read
    when asked; frozen when the block ends); ``events`` the structlog event
    dicts, each with ``event`` and ``log_level``.  ``tracer_provider`` and
    ``meter_provider`` are the block's own SDK providers, e.g. to start a
    caller's span around the code under test.
    """

    __slots__ = (
        "_final",
        "_reader",
        "_spans",
        "events",
        "meter_provider",
        "telemetry",
        "tracer_provider",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        spans: InMemorySpanExporter,
        reader: InMemoryMetricReader,
        events: list[dict[str, Any]],
    ) -> None:
        self.telemetry = telemetry
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.events = events
        self._spans = spans
        self._reader = reader
        self._final: list[MetricPoint] | None = None

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        """The finished spans, oldest first."""
        return tuple(self._spans.get_finished_spans())

    @property
    def metrics(self) -> list[MetricPoint]:
        """Every metric point recorded so far (cumulative), or at the end of the block."""
        if self._final is not None:
            return list(self._final)
        return _points(self._reader.get_metrics_data())

    def points(self, name: str) -> list[MetricPoint]:
        """The points of the metric called ``name``."""
        return [point for point in self.metrics if point.name == name]

    def _close(self) -> None:
        self._final = _points(self._reader.get_metrics_data())
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def __repr__(self) -> str:
        return (
            f"<CapturedTelemetry: {len(self.spans)} spans, {len(self.metrics)} metric points, "
            f"{len(self.events)} events>"
        )


@contextmanager
def capture_telemetry(*, redactor: Redactor | None = None) -> Iterator[CapturedTelemetry]:
    """Record the spans, metrics and log events of the code in the block, in memory.

    Yields a ``CapturedTelemetry``; give its ``.telemetry`` to the ``Guard``,
    router, connector, retry policy or breaker under test (``redactor``, if
    given, is that ``Telemetry``'s).  OpenTelemetry's and structlog's global
    configuration are left alone, so code that uses ``default_telemetry()``
    instead is not captured.  Raises ``ImportError`` naming the fix when the
    OpenTelemetry SDK is not installed.
    """
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError as exc:
        raise ImportError(_MISSING_SDK) from exc

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    events = _Events()
    logger = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[events],
        # Explicit, so a filtering level or class configured globally changes nothing here.
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        context_class=dict,
        cache_logger_on_first_use=False,
    )
    telemetry = Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger=logger,
        redactor=redactor,
    )
    captured = CapturedTelemetry(
        telemetry, tracer_provider, meter_provider, spans, reader, events.entries
    )
    try:
        yield captured
    finally:
        captured._close()


def _points(data: MetricsData | None) -> list[MetricPoint]:
    if data is None:
        return []
    points = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    value = getattr(point, "value", None)
                    if value is None:  # a histogram: how many were recorded, and their sum
                        count: int = getattr(point, "count", 0)
                        total: int | float = getattr(point, "sum", 0)
                        points.append(MetricPoint(metric.name, attributes, count, total))
                    else:
                        points.append(MetricPoint(metric.name, attributes, value))
    return points
