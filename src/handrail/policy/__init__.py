"""Policies: rules over requests, compiled once, that decide and explain.

See ``docs/policies.md`` for the semantics and the file format.
"""

from typing import TYPE_CHECKING, Any

from .._errors import PolicyError, PolicyProblem
from ._conditions import (
    MAX_CONDITION_DEPTH,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Exists,
    Not,
    Predicate,
    Trace,
)
from ._decision import Decision, Explanation, RuleTrace
from ._model import ActionRequest, Effect, PrincipalMatch, Resource, Rule
from ._policy import Policy
from ._refusals import EscalationRequired, PermissionDenied
from ._regex import REGEX_INPUT_LIMIT, regex_engine, set_regex_engine

if TYPE_CHECKING:
    from ._cases import CaseResult, PolicyCases, PolicyTestReport

# Policy tests are for the CLI and CI, not for guarded calls: loaded on first use,
# so importing handrail does not build their models and dataclasses.
_CASES = frozenset({"CaseResult", "PolicyCases", "PolicyTestReport"})

__all__ = [
    "ActionRequest",
    "AllOf",
    "AnyOf",
    "CaseResult",
    "Compare",
    "Condition",
    "Decision",
    "Effect",
    "EscalationRequired",
    "Exists",
    "Explanation",
    "MAX_CONDITION_DEPTH",
    "Not",
    "PermissionDenied",
    "Policy",
    "PolicyCases",
    "PolicyError",
    "PolicyProblem",
    "PolicyTestReport",
    "Predicate",
    "PrincipalMatch",
    "REGEX_INPUT_LIMIT",
    "Resource",
    "Rule",
    "RuleTrace",
    "Trace",
    "regex_engine",
    "set_regex_engine",
]


def __getattr__(name: str) -> Any:
    if name in _CASES:
        from . import _cases

        return getattr(_cases, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
