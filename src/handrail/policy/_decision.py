"""What a policy decided, and a readable account of why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ._model import ActionRequest, Effect, Rule

__all__ = ["Decision", "Explanation", "RuleTrace"]


# A NamedTuple, not a frozen dataclass: it is built on every guarded call, and
# a frozen dataclass's __init__ costs ~2 µs here, the whole decision budget.
class Decision(NamedTuple):
    """The outcome of evaluating one request against a policy.

    ``rule`` is the deciding rule (``None`` for the default deny); ``matched``
    lists every rule that matched, strictest first.  When the principal acts
    on behalf of a user, ``as_agent`` and ``as_user`` hold the two halves and
    this decision is the stricter of them.  ``undetermined`` names attributes
    that were missing or of the wrong type, and so counted against the
    request.  A plain, slotted record: built on every guarded call.
    """

    effect: Effect
    reason: str
    request: ActionRequest
    rule: Rule | None = None
    matched: tuple[Rule, ...] = ()
    escalate_to: str | None = None
    undetermined: tuple[str, ...] = ()
    subject: str = ""
    as_agent: Decision | None = None
    as_user: Decision | None = None

    @property
    def is_allowed(self) -> bool:
        """True when the action may run now (ALLOW or AUDIT)."""
        return self.effect.is_grant

    @property
    def rule_id(self) -> str | None:
        """The deciding rule's id, or None for the default deny."""
        return None if self.rule is None else self.rule.id

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no request arguments: they may hold secrets)."""
        data: dict[str, Any] = {
            "effect": self.effect.value,
            "rule_id": self.rule_id,
            "reason": self.reason,
            "escalate_to": self.escalate_to,
            "matched": [r.id for r in self.matched],
            "undetermined": list(self.undetermined),
            "subject": self.subject,
            "action": self.request.action,
        }
        if self.as_agent is not None and self.as_user is not None:
            data["as_agent"] = self.as_agent.to_dict()
            data["as_user"] = self.as_user.to_dict()
        return data


RuleOutcome = Literal[
    "matched", "action not covered", "principal not covered", "condition false", "undetermined"
]


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """How one rule fared against one subject (the agent, or the user it acts for)."""

    rule: Rule
    subject: str
    outcome: RuleOutcome
    detail: str = ""

    @property
    def counted(self) -> bool:
        """True when the rule took part in the decision."""
        return self.outcome == "matched" or (
            self.outcome == "undetermined" and self.rule.effect is not Effect.ALLOW
        )


@dataclass(frozen=True, slots=True)
class Explanation:
    """A readable account of a decision: every rule, and what happened to it.

    ``str(explanation)`` is for humans; ``to_dict()`` for machines.
    """

    decision: Decision
    traces: tuple[RuleTrace, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the explanation."""
        return {
            "decision": self.decision.to_dict(),
            "rules": [
                {
                    "rule_id": t.rule.id,
                    "effect": t.rule.effect.value,
                    "subject": t.subject,
                    "outcome": t.outcome,
                    "detail": t.detail,
                }
                for t in self.traces
            ],
        }

    def __str__(self) -> str:
        d = self.decision
        lines = [
            f"{d.request.action} by {d.subject}: {d.effect.value.upper()}",
            f"  reason: {d.reason}",
        ]
        if d.escalate_to:
            lines.append(f"  escalate to: {d.escalate_to}")
        if d.undetermined:
            lines.append(f"  undetermined: {', '.join(d.undetermined)}")
        for title, wanted in (("matched", True), ("not matched", False)):
            chosen = [t for t in self.traces if t.counted is wanted]
            if not chosen:
                continue
            lines.append(f"  {title}:")
            for t in chosen:
                detail = f": {t.detail}" if t.detail else ""
                lines.append(
                    f"    {t.rule.effect.value:<8} {t.rule.id} [{t.subject}] {t.outcome}{detail}"
                )
        return "\n".join(lines)
