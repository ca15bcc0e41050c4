"""Instrumentation overhead per guarded action: span, metrics, log event; with and without SDK.

The target is for the common case of a library user who has not configured
OpenTelemetry or structlog: instrumentation must then cost at most 2 µs per
action over the bare call.  With the SDK's in-memory exporter the figure is
printed for information (the SDK's own cost dominates).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from bench_policy import Contender, measure

NO_SDK_BUDGET_NS = 2_000


def run(*, quick: bool = False, repetitions: int | None = None) -> dict[str, Any]:
    """Time the bare call against the same call inside ``Telemetry.action``."""
    import structlog
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from handrail import ActionRequest, Policy, Principal, Rule
    from handrail.telemetry import Telemetry

    structlog.reset_defaults()  # the measured case: an application that configured nothing
    request = ActionRequest(
        principal=Principal(agent="sales-bot", on_behalf_of="alice"), action="crm.contact.read"
    )
    decision = Policy([Rule(id="read", effect="allow", actions=("crm.*.read",))]).evaluate(request)
    quiet = Telemetry()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    loud = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)

    def tool(item: int) -> int:
        return item

    def instrumented(telemetry: Telemetry) -> Any:
        def call(item: int) -> int:
            with telemetry.action(request) as scope:
                scope.decided(decision)
                result = tool(item)
                scope.finished("executed")
            return result

        return call

    with_sdk = instrumented(loud)

    def with_sdk_cleared(item: int) -> int:
        result = with_sdk(item)
        if item == 0:
            exporter.clear()  # keep memory flat
        return result

    items = list(range(64))
    reps = repetitions or (3 if quick else 31)
    medians = measure(
        [
            Contender("bare call", tool, items),
            Contender("instrumented, no SDK", instrumented(quiet), items),
            Contender("instrumented, SDK in memory", with_sdk_cleared, items),
        ],
        repetitions=reps,
        batch_ns=20_000 if quick else 2_000_000,
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()
    added = medians["instrumented, no SDK"] - medians["bare call"]
    met = added <= NO_SDK_BUDGET_NS
    return {
        "benchmark": "telemetry",
        "quick": quick,
        "repetitions": reps,
        "python": platform.python_version(),
        "medians_ns": {name: round(value, 1) for name, value in medians.items()},
        "figures": {
            "no_sdk_added_ns": round(added, 1),
            "sdk_added_ns": round(medians["instrumented, SDK in memory"] - medians["bare call"], 1),
        },
        "target": f"no SDK: <= bare + {NO_SDK_BUDGET_NS:,} ns",
        "agreed": True,
        "passed": None if quick else met,
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table for humans."""
    verdict = {True: "pass", False: "FAIL", None: "not judged (--quick)"}[result["passed"]]
    medians = result["medians_ns"]
    width = max(map(len, medians))
    lines = [
        f"instrumentation overhead: median of {result['repetitions']} interleaved repetitions, "
        f"Python {result['python']}"
        + ("  [--quick: the figures mean nothing]" if result["quick"] else ""),
        "",
        f"{'contender'.ljust(width)}  {'median ns':>10}",
        f"{'-' * width}  {'-' * 10}",
        *(f"{name.ljust(width)}  {value:>10,.0f}" for name, value in medians.items()),
        "",
        f"added without an SDK: {result['figures']['no_sdk_added_ns']:+,.0f} ns "
        f"(target {result['target']}): {verdict}",
        f"added with the SDK (information): {result['figures']['sdk_added_ns']:+,.0f} ns",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or ``--json``; exit 1 if the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="tiny batches; judges no target")
    parser.add_argument("--repetitions", type=int, help="timed repetitions (default 31)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, repetitions=args.repetitions)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
