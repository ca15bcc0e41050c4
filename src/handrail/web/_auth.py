"""Who is asking: the app's authenticators run over each request, and the decide form's token.

A page request is turned into the ``HttpRequest`` the authenticators read
(headers with lower-case names; a header sent twice is joined with ", ", as
HTTP reads it, so a second ``X-Forwarded-User`` cannot slip past a proxy
that set the first).  The first authenticator that recognises credentials
decides who it is; one that finds bad credentials refuses the request
(``NotAuthenticated``), it is never passed over.

The decide form carries a token (an HMAC over the user, the case and its
level): a page of another site cannot post a decision in the name of a
signed-in decider, whatever the browser does with cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from ..approvals import Authenticator, HttpRequest, Identity

__all__ = ["FormTokens", "authenticate", "http_request"]

_CSRF_CONTEXT = b"handrail.web decide-form v1"


def http_request(request: Request, body: bytes) -> HttpRequest:
    """``request`` (whose body is ``body``) as the authenticators read it."""
    from ..approvals import HttpRequest

    headers: dict[str, str] = {}
    for raw, value in request.headers.items():
        name = raw.lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    client = request.client.host if request.client is not None else None
    return HttpRequest(
        method=request.method,
        path=request.url.path,
        headers=headers,
        query=dict(request.query_params),
        client=client,
        body=body,
    )


async def authenticate(
    authenticators: Sequence[Authenticator], request: HttpRequest
) -> Identity | None:
    """The identity the first authenticator that recognises credentials verified, or None.

    Raises ``NotAuthenticated`` when an authenticator found credentials and
    refused them.  Each runs in a worker thread: an authenticator may do I/O.
    """
    for authenticator in authenticators:
        identity = await run_in_threadpool(authenticator.authenticate, request)
        if identity is not None:
            return identity
    return None


class FormTokens:
    """Tokens for the decide form: HMAC-SHA256 over (user, case, level) with a derived key.

    ``secret`` (a str, bytes or ``SecretStr``) is the key material; give
    every process of one deployment the same one.  Without it a random key
    is made per process: forms then work only against the process that
    rendered them (a post to another is refused, never accepted).
    """

    def __init__(self, secret: str | bytes | SecretStr | None) -> None:
        if isinstance(secret, SecretStr):
            secret = secret.get_secret_value()
        if isinstance(secret, str):
            secret = secret.encode()
        if secret is not None and not secret:
            raise ConfigurationError("approval_app: secret must not be empty")
        material = secret if secret is not None else os.urandom(32)
        self._key = hmac.new(material, _CSRF_CONTEXT, hashlib.sha256).digest()

    def issue(self, user: str, escalation_id: str, level: int) -> str:
        """The token a form for ``user`` deciding ``escalation_id`` at ``level`` carries."""
        message = json.dumps([user, escalation_id, level]).encode()  # unambiguous
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def check(self, token: object, user: str, escalation_id: str, level: int) -> bool:
        """True when ``token`` is the one ``issue`` made for these (compared in constant time)."""
        if not isinstance(token, str):
            return False
        return hmac.compare_digest(token, self.issue(user, escalation_id, level))
