"""Who is acting and under which policy: the context every guarded call reads."""

from ._context import (
    acting_as,
    current_context,
    current_policy,
    current_principal,
    set_default_policy,
    using_policy,
)

__all__ = [
    "acting_as",
    "current_context",
    "current_policy",
    "current_principal",
    "set_default_policy",
    "using_policy",
]
