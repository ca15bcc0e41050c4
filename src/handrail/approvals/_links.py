"""``DecisionLinks``: signed, expiring decision links, each bound to one decision by one decider.

A token is two base64url parts joined by a dot::

    base64url(canonical JSON payload) "." base64url(HMAC-SHA256(sub-key, first part))

The payload names the escalation, the level, the decider, the fingerprint
of the request, the expiry (epoch seconds) and a 128-bit random nonce, the
token's id.  The sub-key is ``HMAC-SHA256(key, b"handrail/links/v1")``, so
the router key signs nothing else in this format.  A link proves who holds
it (a bearer secret: it goes to that decider only, and is never stored);
that it is used once, at that level, for that request is checked by the
router when the decision is recorded, from ``Identity.binding``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from datetime import timedelta
from typing import Any

from pydantic import SecretStr

from .._errors import ConfigurationError, NotAuthenticated
from .._keys import derive_key, key_bytes
from .._names import canonical_name
from .._text import printable
from .._urls import check_base_url
from ..clock import Clock, SystemClock
from ._identity import Identity, LinkBinding
from ._request import HttpRequest

__all__ = ["DecisionLinks"]

_VERSION = 1
_CONTEXT = b"handrail/links/v1"
MAX_TOKEN = 2048
"""The longest token ``verify`` decodes, in characters; longer ones are refused unread."""

_B64 = re.compile(r"[A-Za-z0-9_-]+")
_NONCE = re.compile(r"[0-9a-f]{32}")
_FIELDS = frozenset({"v", "e", "l", "d", "f", "x", "n"})
_MAX_ID = 256
_MAX_FINGERPRINT = 256
_LINK_PATH = re.compile(r"(?:^|/)link/([^/]*)/?$")


class DecisionLinks:
    """Issues and verifies the signed links a notification carries, one per decider.

    ``key`` is at least 32 bytes (the router key will do: links use a key
    derived from it); ``base_url`` is where the approval page is mounted
    (``https://approvals.example.com``), ``ttl`` how long a link works
    (positive), ``clock`` what expiry is read on.  Thread-safe; the key is
    never shown in a repr.

    Also an ``Authenticator``: a request for ``.../link/{token}`` (or with a
    ``token`` query parameter) is authenticated by the token.
    """

    __slots__ = ("_clock", "_key", "base_url", "ttl")

    def __init__(
        self,
        key: SecretStr | str | bytes,
        *,
        base_url: str,
        ttl: timedelta = timedelta(hours=24),
        clock: Clock | None = None,
    ) -> None:
        self._key = derive_key(key_bytes(key, source="DecisionLinks: key"), _CONTEXT)
        self.base_url = check_base_url(base_url, "DecisionLinks", "base_url")
        if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
            raise ConfigurationError(
                f"DecisionLinks: ttl must be a positive timedelta, got {ttl!r}"
            )
        self.ttl = ttl
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"DecisionLinks(base_url={self.base_url!r}, ttl={self.ttl!r})"

    # -- issuing ------------------------------------------------------------------

    def issue(self, *, escalation_id: str, level: int, decider: str, fingerprint: str) -> str:
        """A new token: ``decider`` may decide ``escalation_id`` at ``level`` for ``fingerprint``.

        Each call makes a different token (a fresh nonce).  It expires
        ``ttl`` after now.  Raises ``ConfigurationError`` for a malformed
        field (an empty id, a negative level, a name that is not a user id).
        """
        _check_id(escalation_id, "escalation_id")
        if isinstance(level, bool) or not isinstance(level, int) or level < 0:
            raise ConfigurationError(f"DecisionLinks: level must be an int >= 0, got {level!r}")
        who = canonical_name(decider, "decider")
        if who.startswith("group:"):
            raise ConfigurationError(f"DecisionLinks: {who!r} is a group; links go to users")
        _check_id(fingerprint, "fingerprint", limit=_MAX_FINGERPRINT)
        expiry = int((self._clock.now() + self.ttl).timestamp())
        payload = {
            "v": _VERSION,
            "e": escalation_id,
            "l": level,
            "d": who,
            "f": fingerprint,
            "x": expiry,
            "n": secrets.token_hex(16),
        }
        body = _b64encode(_canonical(payload))
        return f"{body}.{_b64encode(self._sign(body))}"

    def url(self, *, escalation_id: str, level: int, decider: str, fingerprint: str) -> str:
        """``issue(...)`` as a link to the approval page: ``{base_url}/link/{token}``."""
        token = self.issue(
            escalation_id=escalation_id, level=level, decider=decider, fingerprint=fingerprint
        )
        return f"{self.base_url}/link/{token}"

    # -- verifying ----------------------------------------------------------------

    def verify(self, token: str) -> Identity:
        """The decider a token was issued to, with what it is bound to; raises ``NotAuthenticated``.

        Refused (never echoing the token): one longer than 2 KB (before it
        is decoded), one that is not exactly two canonical base64url parts of
        a canonical JSON payload with the expected fields (``malformed``), one
        whose signature does not match (``bad signature``, compared in
        constant time) and one whose expiry has passed on the clock
        (``expired``).  Raises nothing else, whatever ``token`` is.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN:
            raise NotAuthenticated("", "malformed link: not a token, or too long")
        body, dot, signature = token.partition(".")
        if not dot or not _B64.fullmatch(body) or not _B64.fullmatch(signature):
            raise NotAuthenticated("", "malformed link: not two base64url parts")
        mac = _b64decode(signature)
        raw = _b64decode(body)
        if mac is None or raw is None:
            raise NotAuthenticated("", "malformed link: not canonical base64url")
        if not hmac.compare_digest(mac, self._sign(body)):
            raise NotAuthenticated("", "bad signature on link (forged, altered or another key)")
        payload = _payload(raw)
        if payload is None:
            raise NotAuthenticated("", "malformed link: unexpected payload")
        escalation_id: str = payload["e"]
        if self._clock.now().timestamp() >= payload["x"]:
            raise NotAuthenticated(escalation_id, "expired link")
        try:
            return Identity(
                user=payload["d"],
                method="signed-link",
                binding=LinkBinding(escalation_id, payload["l"], payload["f"], payload["n"]),
            )
        except (ValueError, TypeError):  # signed by this key, yet not a user id: refuse
            raise NotAuthenticated(escalation_id, "malformed link: bad decider") from None

    def authenticate(self, request: HttpRequest) -> Identity | None:
        """The identity a ``.../link/{token}`` path (or a ``token`` query parameter) proves.

        ``None`` when the request has neither; ``NotAuthenticated`` when the
        token is bad (see ``verify``).
        """
        found = _LINK_PATH.search(request.path)
        token = found.group(1) if found else request.query.get("token")
        if token is None:
            return None
        return self.verify(token)

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()


def _check_id(value: object, what: str, *, limit: int = _MAX_ID) -> None:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise ConfigurationError(
            f"DecisionLinks: {what} must be a non-empty printable str of at most {limit} "
            f"characters, got {printable(repr(value))[:100]}"
        )


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """The bytes ``text`` encodes, or ``None`` unless it is their one canonical encoding.

    The last character of unpadded base64 can carry unused bits; a text that
    differs only there decodes to the same bytes, so it is refused: a token
    has one spelling.
    """
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64encode(data) == text else None


def _payload(raw: bytes) -> dict[str, Any] | None:
    """The payload's fields if ``raw`` is exactly a canonical payload, else ``None``."""
    try:
        payload = json.loads(raw.decode("ascii"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict) or set(payload) != _FIELDS:
        return None
    ok = (
        _is_int(payload["v"])
        and payload["v"] == _VERSION
        and isinstance(payload["e"], str)
        and 0 < len(payload["e"]) <= _MAX_ID
        and _is_int(payload["l"])
        and payload["l"] >= 0
        and isinstance(payload["d"], str)
        and isinstance(payload["f"], str)
        and 0 < len(payload["f"]) <= _MAX_FINGERPRINT
        and _is_int(payload["x"])
        and isinstance(payload["n"], str)
        and _NONCE.fullmatch(payload["n"]) is not None
    )
    if not ok or _canonical(payload) != raw:
        return None
    return payload


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result
