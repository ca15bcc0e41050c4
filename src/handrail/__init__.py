"""handrail: production guardrails for AI agents.

Everything listed in ``__all__`` is the public, semver-stable API; anything
reached through a ``_private`` module may change without notice.
"""

from ._errors import (
    ConfigurationError,
    EscalationRequired,
    HandrailError,
    PermissionDenied,
    PolicyError,
)
from ._version import __version__
from .identity import Principal, User
from .permissions import (
    acting_as,
    current_principal,
    requires_permission,
    set_default_policy,
    using_policy,
)
from .policy import ActionRequest, Decision, Effect, Explanation, Policy, Resource, Rule

__all__ = [
    "ActionRequest",
    "ConfigurationError",
    "Decision",
    "Effect",
    "EscalationRequired",
    "Explanation",
    "HandrailError",
    "PermissionDenied",
    "Policy",
    "PolicyError",
    "Principal",
    "Resource",
    "Rule",
    "User",
    "__version__",
    "acting_as",
    "current_principal",
    "requires_permission",
    "set_default_policy",
    "using_policy",
]
