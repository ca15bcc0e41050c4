"""Helpers for testing code that uses handrail: a fake clock, policy case checks,
telemetry captured in memory, a scripted approver, Hypothesis strategies for
handrail's types, and a throwaway PostgreSQL server.

The contract suites users run on their own implementations are modules of
their own: ``handrail.testing.contracts`` (escalation stores) and
``handrail.testing.conformance`` (connectors).  See ``docs/testing.md``.

The strategies import Hypothesis when first used (install it with
``handrail[testing]``), and ``capture_telemetry()`` the OpenTelemetry SDK;
the rest of this package, and ``import handrail``, never do.
``PostgresServer`` is loaded on first use too.
"""

from typing import TYPE_CHECKING, Any

from ._approver import FakeApprover
from ._cases import check_policy_cases
from ._clock import FakeClock
from ._resilience import is_no_waits, no_waits, set_no_waits
from ._telemetry import CapturedTelemetry, MetricPoint, capture_telemetry

if TYPE_CHECKING:
    from ._hostile import hostile_json, hostile_toml, hostile_yaml
    from ._postgres import PostgresServer
    from ._strategies import (
        action_requests,
        attribute_values,
        conditions,
        look_alike_names,
        numeric_like_values,
        policies,
        principals,
        resources,
        rules,
        scalar_values,
        users,
    )

__all__ = [
    "CapturedTelemetry",
    "FakeApprover",
    "FakeClock",
    "MetricPoint",
    "PostgresServer",
    "action_requests",
    "attribute_values",
    "capture_telemetry",
    "check_policy_cases",
    "conditions",
    "hostile_json",
    "hostile_toml",
    "hostile_yaml",
    "is_no_waits",
    "look_alike_names",
    "no_waits",
    "numeric_like_values",
    "policies",
    "principals",
    "resources",
    "rules",
    "scalar_values",
    "set_no_waits",
    "users",
]

_STRATEGIES = frozenset(
    {
        "action_requests",
        "attribute_values",
        "conditions",
        "look_alike_names",
        "numeric_like_values",
        "policies",
        "principals",
        "resources",
        "rules",
        "scalar_values",
        "users",
    }
)


_HOSTILE = frozenset({"hostile_json", "hostile_toml", "hostile_yaml"})


def __getattr__(name: str) -> Any:
    # Strategies load Hypothesis, so they are imported on first use only.
    if name in _HOSTILE:
        from . import _hostile

        return getattr(_hostile, name)
    if name in _STRATEGIES:
        from . import _strategies

        return getattr(_strategies, name)
    if name == "PostgresServer":
        from ._postgres import PostgresServer

        return PostgresServer
    raise AttributeError(f"module 'handrail.testing' has no attribute {name!r}")
