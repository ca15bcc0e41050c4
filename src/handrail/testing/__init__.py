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

import importlib
from typing import TYPE_CHECKING, Any

from ._approver import FakeApprover
from ._cases import check_policy_cases
from ._clock import FakeClock
from ._resilience import is_no_waits, no_waits, set_no_waits
from ._telemetry import CapturedTelemetry, MetricPoint, capture_telemetry

if TYPE_CHECKING:
    from ._hostile import hostile_json, hostile_toml, hostile_yaml
    from ._hostile_values import look_alike_names, numeric_like_values
    from ._postgres import PostgresServer
    from ._rule_strategies import conditions, policies, rules
    from ._strategies import action_requests, principals, resources, users
    from ._vocabulary import attribute_values, scalar_values

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

# Loaded on first use: the strategies and hostile documents import Hypothesis,
# PostgresServer starts processes.  Each name -> the module that defines it.
_LAZY = {
    "PostgresServer": "_postgres",
    "action_requests": "_strategies",
    "attribute_values": "_vocabulary",
    "conditions": "_rule_strategies",
    "hostile_json": "_hostile",
    "hostile_toml": "_hostile",
    "hostile_yaml": "_hostile",
    "look_alike_names": "_hostile_values",
    "numeric_like_values": "_hostile_values",
    "policies": "_rule_strategies",
    "principals": "_strategies",
    "resources": "_strategies",
    "rules": "_rule_strategies",
    "scalar_values": "_vocabulary",
    "users": "_strategies",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'handrail.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
