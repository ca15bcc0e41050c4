"""``Identity``: a decider as an authenticator verified them, and what a signed link binds.

A decision counts only from an ``Identity``: the router refuses a bare user
id or a ``User`` (anyone can type a name).  Authenticators make identities
(``DecisionLinks``, ``SlackInteractions``, ``TrustedHeaderAuthenticator``,
``OSUserAuthenticator``, or your own): ``method`` says how the user was
verified and ``detail`` what vouched for them (a Slack user id, the proxy's
address), both kept in the case's history and the audit trail.
"""

from __future__ import annotations

import dataclasses

from .._names import canonical_name
from .._text import printable

__all__ = ["Identity", "LinkBinding"]

_MAX_LABEL = 200


@dataclasses.dataclass(frozen=True, slots=True)
class LinkBinding:
    """What one signed decision link was issued for; it authenticates that and nothing else.

    The router accepts a decision made with it only for escalation
    ``escalation_id`` while the case is at ``level`` and its request's
    fingerprint is ``fingerprint``, and only once: ``token_id`` is recorded
    in the case's history, and a second decision with it is refused.
    """

    escalation_id: str
    level: int
    fingerprint: str
    token_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """A decider's user id, as ``method`` verified it.

    ``user`` is canonicalised as a ``User`` id is (``"Alice"`` is ``alice``);
    ``method`` names the authenticator (``"signed-link"``, ``"slack"``,
    ``"trusted-header"``, ``"os-user"``, ``"admin"`` or your own) and
    ``detail`` what vouched (shown escaped).  ``binding`` is set for a signed
    link: the decision must be the one the link was issued for.

    Building an ``Identity`` is the claim "I verified this person": do it only
    in code that did (an approval service behind your SSO, say), never in the
    agent's process.
    """

    user: str
    method: str
    detail: str = ""
    binding: LinkBinding | None = None

    def __post_init__(self) -> None:
        user = canonical_name(self.user, "decider")
        if user.startswith("group:"):  # a decider list's group entry, never a person
            raise ValueError(f"Identity.user {user!r} names a group, not a user")
        object.__setattr__(self, "user", user)
        for field in ("method", "detail"):
            value = getattr(self, field)
            if not isinstance(value, str):
                raise TypeError(f"Identity.{field} must be a str, got {type(value).__name__}")
            object.__setattr__(self, field, printable(value)[:_MAX_LABEL])
        if not self.method:
            raise ValueError("Identity.method must name how the decider was verified")

    @property
    def via(self) -> str:
        """How the decider was verified, as the history and the audit trail show it."""
        parts = [self.method]
        if self.detail:
            parts.append(self.detail)
        if self.binding is not None:
            parts.append(f"token {self.binding.token_id}")
        return " ".join(parts)
