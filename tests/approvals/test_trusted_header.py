"""TrustedHeaderAuthenticator: a header believed only from the configured proxies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handrail import ConfigurationError
from handrail.approvals import Authenticator, HttpRequest, TrustedHeaderAuthenticator
from handrail.escalation import NotAuthenticated


def request(client: str | None, headers: dict[str, str]) -> HttpRequest:
    return HttpRequest("GET", "/", headers=headers, client=client)


AUTH = TrustedHeaderAuthenticator(proxies=["10.0.0.5/32", "fd00::/64"])


def test_header_from_the_proxy_is_believed() -> None:
    """From a proxy's address, the header names the (canonical) user and the proxy vouching."""
    identity = AUTH.authenticate(request("10.0.0.5", {"X-Forwarded-User": "Alice"}))
    assert identity is not None
    assert (identity.user, identity.method, identity.detail) == (
        "alice",
        "trusted-header",
        "x-forwarded-user via 10.0.0.5",
    )
    assert AUTH.authenticate(request("fd00::1", {"x-forwarded-user": "bob"})) is not None
    mapped = AUTH.authenticate(request("::ffff:10.0.0.5", {"x-forwarded-user": "bob"}))
    assert mapped is not None
    assert mapped.detail == "x-forwarded-user via 10.0.0.5"


def test_header_from_outside_is_a_spoof() -> None:
    """The header sent by any other peer (or an unknown one) is refused, not ignored."""
    for client in ("10.0.0.6", "127.0.0.1", "fd01::1", "not-an-ip", None):
        with pytest.raises(NotAuthenticated, match="outside the trusted proxies"):
            AUTH.authenticate(request(client, {"x-forwarded-user": "alice"}))


def test_no_header_is_no_credential() -> None:
    """Without the header there is nothing to verify: None, from anywhere."""
    assert AUTH.authenticate(request("10.0.0.5", {})) is None
    assert AUTH.authenticate(request("192.0.2.1", {"x-other": "alice"})) is None


@pytest.mark.parametrize("value", ["", "alice, bob", "al ice", "alice\x1b[2J", "group:leads\n"])
def test_bad_names_are_refused(value: str) -> None:
    """A header value that is not one valid user id is refused."""
    with pytest.raises(NotAuthenticated, match="valid user id"):
        AUTH.authenticate(request("10.0.0.5", {"x-forwarded-user": value}))


def test_custom_header() -> None:
    """The header name is configurable and matched without regard to case."""
    auth = TrustedHeaderAuthenticator("X-Auth-Request-Email", proxies=["127.0.0.1"])
    identity = auth.authenticate(
        request("127.0.0.1", {"x-auth-request-email": "Alice@Example.com"})
    )
    assert identity is not None
    assert identity.user == "alice@example.com"
    assert auth.authenticate(request("127.0.0.1", {"x-forwarded-user": "alice"})) is None


def test_configuration_is_checked() -> None:
    """No proxies, a bare string, a malformed network or header name is refused at construction."""
    with pytest.raises(ConfigurationError, match="empty"):
        TrustedHeaderAuthenticator(proxies=[])
    with pytest.raises(ConfigurationError, match="not one string"):
        TrustedHeaderAuthenticator(proxies="10.0.0.0/8")
    with pytest.raises(ConfigurationError, match="not a network"):
        TrustedHeaderAuthenticator(proxies=["10.0.0.1/8"])
    with pytest.raises(ConfigurationError, match="header"):
        TrustedHeaderAuthenticator("x forwarded user", proxies=["127.0.0.1/32"])
    assert repr(AUTH) == (
        "TrustedHeaderAuthenticator(header='x-forwarded-user', "
        "proxies=['10.0.0.5/32', 'fd00::/64'])"
    )


def test_is_an_authenticator() -> None:
    """It satisfies the Authenticator protocol."""
    assert isinstance(AUTH, Authenticator)


def test_http_request_lowers_header_names() -> None:
    """HttpRequest keys headers by lower-case name, refuses ambiguous ones, and is read-only."""
    req = HttpRequest("GET", "/", headers={"X-Forwarded-User": "alice"})
    assert dict(req.headers) == {"x-forwarded-user": "alice"}
    with pytest.raises(TypeError):
        req.headers["x"] = "y"  # type: ignore[index]
    with pytest.raises(ValueError, match="twice"):
        HttpRequest("GET", "/", headers={"X-User": "a", "x-user": "b"})


@given(
    client=st.one_of(st.none(), st.ip_addresses().map(str), st.text(max_size=40)),
    value=st.text(max_size=300),
)
def test_authenticate_raises_only_not_authenticated(client: str | None, value: str) -> None:
    """Property: any peer and header value gives an identity or NotAuthenticated, nothing else."""
    try:
        identity = AUTH.authenticate(request(client, {"x-forwarded-user": value}))
    except NotAuthenticated:
        return
    assert identity is not None
    assert client is not None


def test_a_group_entry_is_not_a_user() -> None:
    """A header naming a decider list's group entry is refused: no person is called group:x."""
    with pytest.raises(NotAuthenticated, match="valid user id"):
        AUTH.authenticate(request("10.0.0.5", {"x-forwarded-user": "group:leads"}))
