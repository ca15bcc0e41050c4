"""``approval_app``: the approval page, an ASGI app on Starlette that teams mount in their service.

Routes (relative to where it is mounted):

* ``GET /``: the inbox, the open cases the signed-in decider may decide;
* ``GET /cases/{id}``: one case, the exact redacted request, and the form;
* ``POST /cases/{id}/decide``: approve or reject, with the form's token;
* ``GET`` and ``POST /link/{token}``: a signed decision link, the token its
  own credential (no sign-in);
* ``POST /slack/actions``: Slack's interactivity callback for the buttons.

Every decision is the router's ``aapprove`` / ``areject`` with the verified
``Identity``: the router checks that the decider is listed at the case's
level (and not the agent or the user it acts for), that a signed link is
used once for what it was issued for, and audits every refusal.  The page
shows why a refusal happened and changes nothing else.  Store work runs in
threads (the router's async twins), so the event loop never waits on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import ConfigurationError
from .._names import canonical_name
from .._text import printable
from ..escalation import (
    Escalation,
    EscalationRouter,
    IllegalTransition,
    NotADecider,
    NotAuthenticated,
    UnknownEscalation,
)
from ..telemetry import default_telemetry
from ._auth import FormTokens, authenticate, http_request
from ._render import CONTENT_SECURITY_POLICY, Pages, case_href

if TYPE_CHECKING:
    from ..approvals import Authenticator, DecisionLinks, Identity, LinkBinding, SlackInteractions

__all__ = ["approval_app"]

MAX_BODY = 64 * 1024
"""The largest request body read: a decision form or a Slack callback is far smaller."""

MAX_REASON = 2000
"""The longest reason a decider may give, in characters."""

_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "no-referrer",  # a signed link must not leak through Referer
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def approval_app(
    router: EscalationRouter,
    *,
    links: DecisionLinks | None = None,
    authenticators: Iterable[Authenticator] = (),
    slack: SlackInteractions | None = None,
    title: str = "Approvals",
    secret: str | bytes | SecretStr | None = None,
) -> Starlette:
    """The approval page for ``router``'s cases, as a Starlette app to mount or serve.

    ``authenticators`` say who is signed in on the inbox and case pages
    (``TrustedHeaderAuthenticator`` behind an SSO proxy, or your own); with
    none, only signed links work.  ``links`` verifies the signed decision
    links the router's notifications carry (its ``base_url`` must be where
    this app is mounted); ``slack`` verifies Slack's button callbacks.
    ``secret`` keys the decide form's token: give every process of one
    deployment the same (without it each process makes its own, and a form
    posted to another process is refused).  ``title`` heads every page.
    """
    if not isinstance(router, EscalationRouter):
        raise ConfigurationError(
            f"approval_app: router must be an EscalationRouter, got {type(router).__name__}"
        )
    checked = tuple(authenticators)
    for name, value, method in (
        *(("authenticators", a, "authenticate") for a in checked),
        ("links", links, "verify"),
        ("slack", slack, "verify"),
    ):
        if value is not None and not callable(getattr(value, method, None)):
            raise ConfigurationError(
                f"approval_app: {name} needs a '{method}' method, got {type(value).__name__}"
            )
    if not isinstance(title, str):
        raise ConfigurationError(f"approval_app: title must be a str, got {type(title).__name__}")
    page = _ApprovalPage(
        router,
        links=links,
        authenticators=checked,
        slack=slack,
        pages=Pages(title),
        tokens=FormTokens(secret),
    )
    return Starlette(
        routes=[
            Route("/", page.inbox, methods=["GET"], name="inbox"),
            Route("/cases/{escalation_id}", page.case, methods=["GET"], name="case"),
            Route("/cases/{escalation_id}/decide", page.decide, methods=["POST"], name="decide"),
            Route("/link/{token}", page.link, methods=["GET"], name="link"),
            Route("/link/{token}", page.link_decide, methods=["POST"], name="link_decide"),
            Route("/slack/actions", page.slack_action, methods=["POST"], name="slack_actions"),
        ],
        exception_handlers={_Refusal: page.refused},
        middleware=[Middleware(_SecurityHeaders)],
    )


class _SecurityHeaders:
    """Adds the page's security headers to every response (errors and redirects included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _Refusal(Exception):
    """Nothing was done: the page says ``heading`` and ``why`` with HTTP ``status``."""

    def __init__(self, status: int, heading: str, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.heading = heading
        self.why = why


def _refusal(exc: Exception) -> _Refusal:
    """The refusal page for a router or authenticator error (each says why, no credential)."""
    if isinstance(exc, NotAuthenticated):
        return _Refusal(403, "Not authenticated", exc.why)
    if isinstance(exc, NotADecider):
        return _Refusal(403, "Not a decider", str(exc))
    if isinstance(exc, IllegalTransition):
        return _Refusal(409, "Already decided", str(exc))
    if isinstance(exc, UnknownEscalation):
        # Not str(exc): it names the store (a file path, a database host).
        return _Refusal(404, "No such case", f"There is no case {exc.escalation_id[:80]}.")
    raise exc


_ROUTER_ERRORS = (NotAuthenticated, NotADecider, IllegalTransition, UnknownEscalation)


class _ApprovalPage:
    """The handlers, sharing the router, the authenticators and the templates."""

    def __init__(
        self,
        router: EscalationRouter,
        *,
        links: DecisionLinks | None,
        authenticators: tuple[Authenticator, ...],
        slack: SlackInteractions | None,
        pages: Pages,
        tokens: FormTokens,
    ) -> None:
        self.router = router
        self.links = links
        self.authenticators = authenticators
        self.slack = slack
        self.pages = pages
        self.tokens = tokens

    # -- signed-in pages -------------------------------------------------------------

    async def inbox(self, request: Request) -> HTMLResponse:
        identity = await self._signed_in(request)
        open_cases = await self.router.alist()
        mine = [case for case in open_cases if _may_decide(self.router, case, identity.user)]
        return self._html(self.pages.inbox(mine, user=identity.user, root_path=_root(request)))

    async def case(self, request: Request) -> HTMLResponse:
        identity = await self._signed_in(request)
        case = await self._case(request.path_params["escalation_id"])
        if not _may_view(case, identity.user):
            raise _Refusal(
                403,
                "Not a decider",
                f"{identity.user} is not a decider of case {case.id} and has not acted on it.",
            )
        form = None
        if _may_decide(self.router, case, identity.user):
            form = {
                "action": case_href(_root(request), case.id) + "/decide",
                "csrf": self.tokens.issue(identity.user, case.id, case.level),
            }
        return self._html(self.pages.case(case, root_path=_root(request), form=form))

    async def decide(self, request: Request) -> RedirectResponse:
        identity = await self._signed_in(request)
        case = await self._case(request.path_params["escalation_id"])
        form = await _form(request)
        if not self.tokens.check(form.get("csrf"), identity.user, case.id, case.level):
            refusal = _Refusal(
                403,
                "Form refused",
                "The form's token is missing or does not match this case at its current "
                "level (the form is from another site, or the case moved on): open the case "
                "page again and decide there.",
            )
            await self._audit(case.id, refusal.why, _attempted(form), identity)
            raise refusal
        await self._decide(case.id, form, identity)
        return RedirectResponse(case_href(_root(request), case.id), status_code=303)

    # -- signed links -----------------------------------------------------------------

    async def link(self, request: Request) -> HTMLResponse:
        identity, binding = await self._verified_link(request, "view")
        case = await self._case(binding.escalation_id)
        try:
            _check_link(case, binding)
        except _Refusal as refusal:
            await self._audit(case.id, refusal.why, "view", identity)
            raise
        # The form posts back to this very address: the token is its credential,
        # and it is never written into the page.
        form = {"action": "", "csrf": ""}
        notice = f"Signed in by your link as {identity.user}."
        return self._html(self.pages.case(case, root_path=_root(request), form=form, notice=notice))

    async def link_decide(self, request: Request) -> HTMLResponse:
        form = await _form(request)
        identity, binding = await self._verified_link(request, _attempted(form))
        case = await self._case(binding.escalation_id)
        # No page-side check here: the router refuses a used, stale or misbound link
        # inside its atomic update, and audits the refusal.
        decided = await self._decide(case.id, form, identity)
        notice = f"{_outcome(decided, identity.user)} This link is now used."
        return self._html(
            self.pages.case(decided, root_path=_root(request), form=None, notice=notice)
        )

    # -- Slack -------------------------------------------------------------------------

    async def slack_action(self, request: Request) -> PlainTextResponse | JSONResponse:
        if self.slack is None:
            return PlainTextResponse("Slack interactivity is not enabled here", status_code=404)
        body = await _body(request)
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            action = await run_in_threadpool(self.slack.verify, headers, body)
        except NotAuthenticated as refused:
            # Slack's signature checked out when the refusal names a case (a Slack user
            # not mapped to a decider): audit it there, as an expired link is.
            if refused.escalation_id:
                await self._audit(refused.escalation_id, refused.why, "decide", None, "slack")
            self._log_refusal(request, 401, refused.why)
            return PlainTextResponse(f"refused: {printable(refused.why)}", status_code=401)
        identity = action.identity
        try:
            decided = await self._decide_as(action.escalation_id, action.approve, identity, "")
        except _ROUTER_ERRORS as refused:
            text = printable(refused.why if isinstance(refused, NotAuthenticated) else str(refused))
            self._log_refusal(request, 200, text)
            return JSONResponse(_slack_reply(f"Refused: {text}"))
        return JSONResponse(_slack_reply(f"Case {decided.id}: {_outcome(decided, identity.user)}"))

    # -- shared --------------------------------------------------------------------------

    async def refused(self, request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, _Refusal)
        self._log_refusal(request, exc.status, exc.why)
        html = self.pages.refused(status=exc.status, heading=exc.heading, why=exc.why)
        return self._html(html, exc.status)

    def _log_refusal(self, request: Request, status: int, why: str) -> None:
        """A structlog event for every refusal (the router audits those that reach it)."""
        logger = (self.router.telemetry or default_telemetry()).logger
        if logger is None:
            return
        route = request.scope.get("route")
        logger.warning(
            "handrail.web.refused",
            status=status,
            why=printable(why),
            # The route's pattern, never the path: a signed link's token is a credential.
            route=getattr(route, "path", "?"),
            client=request.client.host if request.client is not None else None,
        )

    async def _signed_in(self, request: Request) -> Identity:
        if not self.authenticators:
            raise _Refusal(
                401,
                "Not signed in",
                "This approval page has no sign-in configured: open the signed link in "
                "your notification instead.",
            )
        try:
            identity = await authenticate(
                self.authenticators, http_request(request, await _body(request))
            )
        except NotAuthenticated as refused:
            case_id = request.path_params.get("escalation_id")
            if isinstance(case_id, str) and case_id:  # a spoofed header on a case's page
                attempted = "decide" if request.method == "POST" else "view"
                await self._audit(case_id, refused.why, attempted, None, "authenticator")
            raise _refusal(refused) from None
        if identity is None:
            raise _Refusal(
                401, "Not signed in", "No credentials were found: sign in through your SSO."
            )
        return identity

    async def _verified_link(
        self, request: Request, attempted: str
    ) -> tuple[Identity, LinkBinding]:
        if self.links is None:
            raise _Refusal(404, "Signed links are off", "This page does not take signed links.")
        try:
            identity = self.links.verify(request.path_params["token"])
        except NotAuthenticated as refused:
            # A case id is known only once the signature checked out (an expired
            # link): audit it on that case.  A forged token names nothing to trust.
            if refused.escalation_id:
                await self._audit(
                    refused.escalation_id, refused.why, attempted, None, "signed-link"
                )
            raise _refusal(refused) from None
        if identity.binding is None:  # verify always binds; refuse rather than trust
            raise _Refusal(403, "Not authenticated", "the link is not bound to a case")
        return identity, identity.binding

    async def _audit(
        self,
        escalation_id: str,
        why: str,
        attempted: str,
        identity: Identity | None,
        via: str = "",
    ) -> None:
        """Audit a refusal made here, before the router was asked (it audits its own)."""
        await self.router.arecord_refusal(
            escalation_id,
            NotAuthenticated(escalation_id, why),
            attempted=attempted,
            by="" if identity is None else identity.user,
            via=via if identity is None else identity.via,
        )

    async def _case(self, escalation_id: str) -> Escalation:
        try:
            return await self.router.aget(escalation_id)
        except UnknownEscalation as refused:
            raise _refusal(refused) from None

    async def _decide(self, escalation_id: str, form: FormData, identity: Identity) -> Escalation:
        decision = form.get("decision")
        reason = form.get("reason", "")
        if decision not in ("approve", "reject"):
            raise _Refusal(400, "No decision", "Choose Approve or Reject.")
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise _Refusal(
                400, "Reason too long", f"Give a reason of at most {MAX_REASON} characters."
            )
        try:
            return await self._decide_as(escalation_id, decision == "approve", identity, reason)
        except _ROUTER_ERRORS as refused:
            raise _refusal(refused) from None

    async def _decide_as(
        self, escalation_id: str, approve: bool, identity: Identity, reason: str
    ) -> Escalation:
        if approve:
            return await self.router.aapprove(escalation_id, by=identity, reason=reason)
        return await self.router.areject(escalation_id, by=identity, reason=reason)

    @staticmethod
    def _html(html: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(html, status_code=status)


def _attempted(form: FormData) -> str:
    """The act a posted form asked for, as the audit trail names it."""
    decision = form.get("decision")
    return decision if decision in ("approve", "reject") else "decide"


def _outcome(decided: Escalation, user: str) -> str:
    """What a decision did, in a sentence: final, or one of the approvals the level needs."""
    if decided.state.value in ("approved", "rejected"):
        return f"{decided.state.value.capitalize()} by {user}."
    required = decided.route.level(decided.level).required_approvals
    return (
        f"Approval by {user} recorded ({len(decided.approvals)} of {required}); "
        "the case waits for another decider."
    )


def _root(request: Request) -> str:
    """Where the app is mounted (``""`` at the root): the prefix of its own links."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _slack_reply(text: str) -> dict[str, Any]:
    # Only router-made ids and verified user ids: no agent text reaches Slack here.
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


async def _body(request: Request) -> bytes:
    """The request body, refused past ``MAX_BODY`` bytes (before it is all read); read once."""
    cached = getattr(request.state, "handrail_body", None)
    if isinstance(cached, bytes):
        return cached
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise _Refusal(413, "Request too large", f"A request body is at most {MAX_BODY} bytes.")
        chunks.append(chunk)
    body = request.state.handrail_body = b"".join(chunks)
    return body


async def _form(request: Request) -> FormData:
    """The posted form (a few small fields; no files)."""
    body = await _body(request)

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, replay).form(max_files=0, max_fields=8)


def _may_decide(router: EscalationRouter, case: Escalation, user: str) -> bool:
    """Whether ``user`` may decide ``case`` now, as the router will check it.

    Listed at the current level both in the case (groups expanded when the
    level began) and in the router's own directory (its route and groups:
    the stored case never widens who may decide); not the agent nor the
    user it acts for; not already among this level's approvals (a further
    approval must come from someone else).  The router checks all of it
    again when the decision is made: this only picks what to offer.
    """
    if case.is_terminal or user.startswith("group:") or user not in case.deciders:
        return False
    route = router.routes.get(case.route.name)
    if route is not None and not _listed(route.level(case.level).deciders, router.groups, user):
        return False
    for asked in (case.request.get("agent"), case.request.get("on_behalf_of")):
        if isinstance(asked, str) and _same_name(asked, user):
            return False
    return user not in case.approvals


def _listed(deciders: Iterable[str], groups: Mapping[str, Iterable[str]], user: str) -> bool:
    for who in deciders:
        if who == user:
            return True
        if who.startswith("group:") and user in groups.get(who.removeprefix("group:"), ()):
            return True
    return False


def _same_name(name: str, user: str) -> bool:
    try:
        return canonical_name(name, "name") == user
    except ValueError:  # not a name an Identity can carry
        return name == user


def _may_view(case: Escalation, user: str) -> bool:
    """A case is shown to its current deciders and to whoever acted on it."""
    return user in case.deciders or any(event.by == user for event in case.history)


def _check_link(case: Escalation, binding: LinkBinding) -> None:
    """Refuse a link that can no longer decide, saying why (the router checks again, atomically)."""
    if any(event.token == binding.token_id for event in case.history):
        raise _Refusal(403, "Link already used", "This link was already used: a link decides once.")
    if case.is_terminal:
        raise _Refusal(409, "Already decided", f"Case {case.id} is {case.state.value} already.")
    if binding.level != case.level:
        raise _Refusal(
            403,
            "Link out of date",
            f"This link was issued for level {binding.level}; case {case.id} is at level "
            f"{case.level} now. Use the link in the newest notification.",
        )
    if binding.fingerprint != case.request.get("fingerprint"):
        raise _Refusal(403, "Link refused", "This link was issued for a different request.")
