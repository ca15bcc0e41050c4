"""``TrustedHeaderAuthenticator``: the user your SSO proxy vouches for, in a header it sets.

Behind an authenticating reverse proxy (oauth2-proxy, an identity-aware
proxy, nginx with ``auth_request``) the proxy names the signed-in user in a
header.  Anyone can send that header, so it is believed only on a
connection from the proxy's own address: from anywhere else it is a
spoofing attempt, refused.  The proxy must strip the header from what
clients send, and the app must be reachable only through the proxy or from
addresses outside ``proxies``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from .._errors import ConfigurationError, NotAuthenticated
from .._text import printable
from ._identity import Identity
from ._request import HttpRequest

__all__ = ["TrustedHeaderAuthenticator"]

_HEADER = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")  # an RFC 9110 token, lower-cased
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedHeaderAuthenticator:
    """The user named in ``header``, believed only on a connection from one of ``proxies``.

    ``proxies`` are CIDR networks (``"10.0.0.5/32"``, ``"fd00::/64"``; a
    bare address is one host); at least one is required.  ``authenticate``
    returns ``None`` when the header is absent, raises ``NotAuthenticated``
    when it comes from a peer outside ``proxies`` (or an unknown peer) or
    names no valid user id, and otherwise returns
    ``Identity(user, "trusted-header", detail="{header} via {peer}")``.
    """

    __slots__ = ("header", "proxies")

    def __init__(self, header: str = "x-forwarded-user", *, proxies: Iterable[str]) -> None:
        if not isinstance(header, str) or not _HEADER.fullmatch(header.lower()):
            raise ConfigurationError(
                f"TrustedHeaderAuthenticator: header {printable(repr(header))[:100]} "
                "is not an HTTP header name"
            )
        self.header = header.lower()
        if isinstance(proxies, str | bytes):
            raise ConfigurationError(
                "TrustedHeaderAuthenticator: proxies must be a list of networks, not one string"
            )
        networks: list[_Network] = []
        for proxy in proxies:
            try:
                networks.append(ipaddress.ip_network(proxy))
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"TrustedHeaderAuthenticator: proxy {printable(repr(proxy))[:100]} is not "
                    f"a network such as '10.0.0.5/32' ({exc})"
                ) from None
        if not networks:
            raise ConfigurationError(
                "TrustedHeaderAuthenticator: proxies is empty; name the network of the proxy "
                "that sets the header (trusting every peer would let anyone claim any user)"
            )
        self.proxies: tuple[_Network, ...] = tuple(networks)

    def __repr__(self) -> str:
        shown = [str(network) for network in self.proxies]
        return f"TrustedHeaderAuthenticator(header={self.header!r}, proxies={shown!r})"

    def authenticate(self, request: HttpRequest) -> Identity | None:
        """The proxy-vouched user; ``None`` without the header; raises ``NotAuthenticated``."""
        value = request.headers.get(self.header)
        if value is None:
            return None
        peer = _address(request.client)
        if peer is None or not any(peer in network for network in self.proxies):
            shown = "an unknown peer" if request.client is None else printable(request.client)[:100]
            raise NotAuthenticated(
                "", f"{self.header} header from {shown}, outside the trusted proxies (spoofed?)"
            )
        try:
            user = Identity(user=value, method="trusted-header").user
        except (ValueError, TypeError):  # ConfigurationError is a ValueError
            raise NotAuthenticated(
                "", f"{self.header} header from {peer} does not name a valid user id"
            ) from None
        return Identity(user=user, method="trusted-header", detail=f"{self.header} via {peer}")


def _address(client: object) -> _Address | None:
    if not isinstance(client, str):
        return None
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.5 is 10.0.0.5, as a dual-stack socket reports it
    return address
