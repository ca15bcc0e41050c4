"""Approvals: who decided an escalation, verified.

A decision counts only from an ``Identity`` an authenticator verified; see
``docs/approvals.md``.
"""

from ._identity import Identity, LinkBinding
from ._os_user import OSUserAuthenticator

__all__ = ["Identity", "LinkBinding", "OSUserAuthenticator"]
