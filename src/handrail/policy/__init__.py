"""Policies: rules over requests, compiled once, that decide and explain.

See ``docs/policies.md`` for the semantics and the file format.
"""

from .._errors import PolicyError, PolicyProblem
from ._cases import CaseResult, PolicyCases, PolicyTestReport
from ._conditions import AllOf, AnyOf, Compare, Condition, Exists, Not, Predicate, Trace
from ._decision import Decision, Explanation, RuleTrace
from ._model import ActionRequest, Effect, PrincipalMatch, Resource, Rule
from ._policy import Policy

__all__ = [
    "ActionRequest",
    "AllOf",
    "AnyOf",
    "CaseResult",
    "Compare",
    "Condition",
    "Decision",
    "Effect",
    "Exists",
    "Explanation",
    "Not",
    "Policy",
    "PolicyCases",
    "PolicyError",
    "PolicyProblem",
    "PolicyTestReport",
    "Predicate",
    "PrincipalMatch",
    "Resource",
    "Rule",
    "RuleTrace",
    "Trace",
]
