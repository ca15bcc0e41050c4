"""``Outcome``: how an action ended, as the audit trail records it."""

from __future__ import annotations

import enum

__all__ = ["Outcome"]


class Outcome(enum.StrEnum):
    """How an action ended, as the audit trail records it."""

    EXECUTED = "executed"
    """It ran and returned."""
    DENIED = "denied"
    """The policy refused it; it did not run."""
    ESCALATED = "escalated"
    """It waits for a human decision; it has not run."""
    OPENED = "opened"
    """A case was opened for an escalated action and its first level notified."""
    REASSIGNED = "reassigned"
    """An escalation moved to its route's next level."""
    APPROVED = "approved"
    """A human approved an escalated action."""
    REJECTED = "rejected"
    """A human rejected an escalated action."""
    EXPIRED = "expired"
    """An escalation ran out of time without a decision."""
    SHADOWED = "shadowed"
    """Shadow mode: recorded as if it ran, but it did not."""
    FAILED = "failed"
    """It ran (or handrail tried to run it) and raised."""
    ACKNOWLEDGED = "acknowledged"
    """A human took an escalated action on; the decision is pending."""
    WARNED = "warned"
    """An escalation's deadline is near; its level was reminded."""
    BREACHED = "breached"
    """An escalation's deadline passed: it moved to the next level, or timed out."""
    CANCELLED = "cancelled"
    """The agent withdrew an escalated action; it did not run."""
    REFUSED = "refused"
    """Someone who may not decide an escalation tried to; nothing changed."""
    UNDELIVERED = "undelivered"
    """A notification about an escalation could not be delivered (it is retried)."""
