"""``Effect``: what a policy says about an action, shared by the layers that decide and record.

A foundation module so that ``handrail.audit`` can record an effect without
importing ``handrail.policy``; ``handrail.Effect`` and
``handrail.policy.Effect`` are this same class.
"""

from __future__ import annotations

import enum

__all__ = ["Effect"]


class Effect(enum.StrEnum):
    """What a rule (or a decision) says about an action.

    ``ALLOW`` and ``AUDIT`` are grants; ``ESCALATE`` and ``DENY`` are
    restrictions that only narrow a grant.  Strictness: DENY > ESCALATE >
    AUDIT > ALLOW.
    """

    ALLOW = "allow"
    AUDIT = "audit"
    ESCALATE = "escalate"
    DENY = "deny"

    @property
    def is_grant(self) -> bool:
        """True for ALLOW and AUDIT: the effects that let an action run."""
        return self is Effect.ALLOW or self is Effect.AUDIT

    @property
    def strictness(self) -> int:
        """0 (ALLOW) to 3 (DENY); the stricter effect wins."""
        return _STRICTNESS[self]


_STRICTNESS = {Effect.ALLOW: 0, Effect.AUDIT: 1, Effect.ESCALATE: 2, Effect.DENY: 3}
