"""Approvals: who decided an escalation, verified.

A decision counts only from an ``Identity`` an authenticator verified:
``DecisionLinks`` (signed links in notifications), ``SlackInteractions``
(Slack's signed button callbacks), ``TrustedHeaderAuthenticator`` (your SSO
proxy), or your own ``Authenticator``; see ``docs/approvals.md``.
"""

from ._identity import Identity, LinkBinding
from ._links import DecisionLinks
from ._os_user import OSUserAuthenticator
from ._request import Authenticator, HttpRequest
from ._slack import SlackAction, SlackInteractions
from ._trusted_header import TrustedHeaderAuthenticator

__all__ = [
    "Authenticator",
    "DecisionLinks",
    "HttpRequest",
    "Identity",
    "LinkBinding",
    "OSUserAuthenticator",
    "SlackAction",
    "SlackInteractions",
    "TrustedHeaderAuthenticator",
]
