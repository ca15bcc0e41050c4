"""handrail: production guardrails for AI agents.

Everything listed in ``__all__`` is the public, semver-stable API; anything
reached through a ``_private`` module may change without notice.
"""

from ._errors import (
    AuditError,
    AuditIntegrityError,
    CircuitOpen,
    ConfigurationError,
    CredentialError,
    HandrailError,
    PolicyError,
    WriteNotRetried,
)
from ._version import __version__
from .guard import Guard, audited, requires_permission
from .identity import Principal, User
from .permissions import (
    acting_as,
    current_principal,
    set_default_policy,
    using_policy,
)
from .policy import (
    ActionRequest,
    Decision,
    Effect,
    EscalationRequired,
    Explanation,
    PermissionDenied,
    Policy,
    Resource,
    Rule,
)

__all__ = [
    "ActionRequest",
    "AuditError",
    "AuditIntegrityError",
    "CircuitOpen",
    "ConfigurationError",
    "CredentialError",
    "Decision",
    "Effect",
    "EscalationRequired",
    "Explanation",
    "Guard",
    "HandrailError",
    "PermissionDenied",
    "Policy",
    "PolicyError",
    "Principal",
    "Resource",
    "Rule",
    "User",
    "WriteNotRetried",
    "__version__",
    "acting_as",
    "audited",
    "current_principal",
    "requires_permission",
    "set_default_policy",
    "using_policy",
]
