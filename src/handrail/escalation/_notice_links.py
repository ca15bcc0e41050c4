"""The signed decision links one notice carries: one per user decider at the case's level.

Made as the notice is sent (``Outbox._links_for``), never when it is queued:
a link is a bearer secret, so it is never written to the outbox or the audit
trail, and a redelivered notice carries fresh ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._model import Escalation

if TYPE_CHECKING:
    from ..approvals import DecisionLinks

__all__ = ["LINK_KINDS", "notice_links"]

LINK_KINDS = frozenset({"opened", "escalated", "warning"})
"""The notices that ask for a decision, and so carry links."""


def notice_links(links: DecisionLinks, case: Escalation | None, level: int) -> dict[str, str]:
    """Decider id -> signed link URL, for a notice about ``case`` at ``level``.

    Empty when the case is gone, final, or no longer at ``level`` (a link for
    a level the case has left would be refused), or has no fingerprint.
    ``group:`` entries are skipped (their members are listed after them),
    and so are the case's agent and on-behalf-of user: they never decide
    their own case.
    """
    if case is None or case.is_terminal or case.level != level:
        return {}
    fingerprint = case.request.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        return {}
    own = {case.request.get("agent"), case.request.get("on_behalf_of")}
    return {
        decider: links.url(
            escalation_id=case.id, level=case.level, decider=decider, fingerprint=fingerprint
        )
        for decider in case.deciders
        if not decider.startswith("group:") and decider not in own
    }
