"""OSUserAuthenticator: the OS user running the process, verified by the operating system."""

from __future__ import annotations

import os
import pwd
from typing import Any

import pytest

from handrail.approvals import Identity, OSUserAuthenticator
from handrail.escalation import NotAuthenticated


def test_the_identity_is_the_login_name_of_the_effective_uid() -> None:
    """user is the password database's name for geteuid(), method os-user, detail the uid."""
    uid = os.geteuid()
    identity = OSUserAuthenticator().identity()
    assert identity == Identity(
        user=pwd.getpwuid(uid).pw_name, method="os-user", detail=f"uid {uid}"
    )
    assert identity.via == f"os-user uid {uid}"


REAL = pwd.getpwuid(os.geteuid())


def _entry(name: str) -> Any:
    return pwd.struct_passwd((name, *REAL[1:]))


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("ad min", "not a valid decider name"),
        ("m\u0430ria", "\\u0430"),  # a Cyrillic a: a look-alike of maria
        ("bob\x1b[2J", "\\x1b"),
    ],
)
def test_a_login_name_that_is_no_handrail_name_is_not_authenticated(
    name: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name the name rule refuses is nobody's decider id: NotAuthenticated, shown escaped."""
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: _entry(name))
    with pytest.raises(NotAuthenticated) as refused:
        OSUserAuthenticator().identity("esc-1")
    assert refused.value.escalation_id == "esc-1"
    assert says in refused.value.why
    assert str(refused.value).isprintable()


def test_a_uid_without_a_name_is_not_authenticated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A uid the password database does not know (a container's arbitrary uid) verifies nobody."""

    def unknown(uid: int) -> Any:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", unknown)
    with pytest.raises(NotAuthenticated, match=f"uid {os.geteuid()} has no name"):
        OSUserAuthenticator().identity("esc-1")
