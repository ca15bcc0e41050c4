"""The two refusals a decision raises: denied, or a human must decide first.

Both are ``handrail._errors.Refusal``\\ s (never retried) and carry the
``Decision``, which says by which rule and why.  The rest of the error tree
is drawn in ``handrail._errors``.
"""

from __future__ import annotations

from .._errors import Refusal
from ._decision import Decision

__all__ = ["EscalationRequired", "PermissionDenied"]


class PermissionDenied(Refusal):
    """The action was refused; ``.decision`` says by which rule and why.

    Also raised when the guard itself could not decide (no principal in scope,
    no policy, an error while evaluating): a guard that fails denies.
    """

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(f"{decision.request.action}: denied: {decision.reason}")


class EscalationRequired(Refusal):
    """The action needs a human decision first; ``.decision.escalate_to`` names the route.

    ``.escalation_id`` is set once an escalation router has opened a case for it.
    """

    def __init__(self, decision: Decision, escalation_id: str | None = None) -> None:
        self.decision = decision
        self.escalation_id = escalation_id
        case = f" (escalation {escalation_id})" if escalation_id else ""
        super().__init__(
            f"{decision.request.action}: escalate to {decision.escalate_to!r}{case}: "
            f"{decision.reason}"
        )
