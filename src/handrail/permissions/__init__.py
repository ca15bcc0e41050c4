"""Enforcement: ``@requires_permission`` and the context that says who is acting."""

from ..policy import EscalationRequired, PermissionDenied
from ._context import (
    acting_as,
    current_context,
    current_policy,
    current_principal,
    set_default_policy,
    using_policy,
)
from ._decorator import requires_permission

__all__ = [
    "EscalationRequired",
    "PermissionDenied",
    "acting_as",
    "current_context",
    "current_policy",
    "current_principal",
    "requires_permission",
    "set_default_policy",
    "using_policy",
]
