"""``OSUserAuthenticator``: the operating system's login name of this process, as a decider.

The ``handrail escalations`` command decides as the user the operating
system says runs it, never as a name typed on the command line.  The name
comes from the password database for the process's effective uid (what
``sudo -u`` or ``runuser`` changes, and what a login session sets), so
typing it differently proves nothing: it must be logged in as.

What that proves depends on where the store is.  An SQLite file anyone who
can write it can change, so on a shared machine its file permissions are the
real guard; PostgreSQL refuses decisions from a database role without the
decision grant (see ``docs/escalation-postgres.md``).
"""

from __future__ import annotations

import os
import sys

from .._errors import ConfigurationError, NotAuthenticated
from ._identity import Identity

__all__ = ["OSUserAuthenticator"]

METHOD = "os-user"


class OSUserAuthenticator:
    """Makes the ``Identity`` of the OS user this process runs as (its effective uid).

    ``identity()`` returns ``Identity(user=<login name>, method="os-user",
    detail="uid <uid>")``.  Raises ``NotAuthenticated`` when the uid has no
    entry in the password database (a container started with an arbitrary
    uid) or its name is not a valid handrail name (a space, a non-ASCII
    letter): nobody can be named as that user, so nobody is verified.
    """

    __slots__ = ()

    def identity(self, escalation_id: str = "?") -> Identity:
        """The verified OS user; ``escalation_id`` only names the case in a refusal."""
        if sys.platform == "win32":  # no uids: nothing this authenticator can verify
            raise NotAuthenticated(escalation_id, "there is no OS user id on Windows")
        import pwd  # POSIX only

        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            raise NotAuthenticated(
                escalation_id,
                f"the OS user with uid {uid} has no name in the password database; "
                "run as a named user",
            ) from None
        try:
            return Identity(user=name, method=METHOD, detail=f"uid {uid}")
        except ConfigurationError as exc:
            raise NotAuthenticated(
                escalation_id,
                f"the OS user name of uid {uid} is not a valid decider name ({exc}); "
                "run as a user whose login name is one",
            ) from None

    def __repr__(self) -> str:
        return "OSUserAuthenticator()"
