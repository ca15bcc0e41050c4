"""Approvals: who decided an escalation, verified.

A decision counts only from an ``Identity`` an authenticator verified; see
``docs/approvals.md``.
"""

from ._identity import Identity, LinkBinding

__all__ = ["Identity", "LinkBinding"]
