"""One line that says what an escalation asks: who wants to do what, on what, by which rule."""

from __future__ import annotations

from ._model import Escalation

__all__ = ["summarize"]


def summarize(escalation: Escalation) -> str:
    """``sales-bot for maria wants to crm.deal.discount on deal:d-1 (rule big-discount)``.

    The line notifications carry as their ``summary`` and ``handrail
    escalations show`` prints.  It quotes the request as stored, unescaped:
    pass it through a printable filter before it reaches a terminal.
    """
    request = escalation.request
    who = str(request.get("agent", ""))
    if request.get("on_behalf_of"):
        who += f" for {request['on_behalf_of']}"
    resource = request.get("resource") or {}
    target = f" on {resource.get('type')}:{resource.get('id')}" if resource else ""
    rule = escalation.decision.get("rule_id")
    why = f" (rule {rule})" if rule else ""
    return f"{who} wants to {escalation.action}{target}{why}"
