"""The approval page over ASGI (httpx's transport): signed links, sign-in, the form's token."""

from __future__ import annotations

import asyncio
import html
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest
import structlog.testing
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount

from handrail import ConfigurationError
from handrail.approvals import DecisionLinks, Identity, TrustedHeaderAuthenticator
from handrail.audit import AuditLog
from handrail.escalation import EscalationRouter, EscalationState, Level, MemoryStore, Route
from handrail.testing import FakeClock
from handrail.web import approval_app
from handrail.web._auth import FormTokens
from handrail.web._render import Shown, shown

from .conftest import (
    FORM_SECRET,
    ROUTER_KEY,
    Browserless,
    forged,
    link_path,
    open_case,
    payment,
)


def test_a_signed_link_shows_the_request_and_approves_it(
    router: EscalationRouter, links: DecisionLinks, page: Browserless
) -> None:
    """The link's page shows every argument, the resource, context and rule; Approve decides."""
    case = open_case(router)
    path = link_path(links, case)
    shown = page.get(path)
    assert shown.status_code == 200
    body = shown.text
    for text in (
        "250000",
        "250,000",
        "DE44 5001 0517 5407 3249 31",
        "Q3 supplier invoice",
        "erp.payment.create",
        "pay-bot",
        "sam",
        "invoice",
        "inv-7",
        "ACME",
        "production",
        "big-payments",
        "finance / 0 (controllers)",
        case.id,
    ):
        assert text in body, text
    assert 'id="approve"' in body
    assert path.removeprefix("/link/") not in body  # the form posts back; no token in the page

    decided = page.post(path, {"decision": "approve", "reason": "checked the invoice"})
    assert decided.status_code == 200
    assert "Approved by maria" in decided.text
    after = router.get(case.id)
    assert after.state is EscalationState.APPROVED
    assert after.decided_by == "maria"
    assert after.reason == "checked the invoice"


def test_a_signed_link_rejects(
    router: EscalationRouter, links: DecisionLinks, page: Browserless
) -> None:
    """Reject through a link is final, with the reason."""
    case = open_case(router)
    decided = page.post(link_path(links, case), {"decision": "reject", "reason": "unknown vendor"})
    assert decided.status_code == 200
    assert router.get(case.id).state is EscalationState.REJECTED


def test_forged_expired_and_malformed_links_are_refused_without_echoing_the_token(
    router: EscalationRouter,
    links: DecisionLinks,
    clock: FakeClock,
    page: Browserless,
    audit: AuditLog,
) -> None:
    """A forged, an expired or a malformed link gets a 403 page saying why; nothing changes.
    The expired link names its case (its signature checked out): that refusal is audited on
    it; a forged or malformed token names nothing to trust, and is only logged."""
    case = open_case(router)
    path = link_path(links, case)
    token = path.removeprefix("/link/")
    for bad, why in ((f"/link/{forged(token)}", "forged"), ("/link/not-a-token", "malformed")):
        for response in (page.get(bad), page.post(bad, {"decision": "approve"})):
            assert response.status_code == 403
            assert why in response.text
            assert bad.removeprefix("/link/") not in response.text
    clock.advance(timedelta(hours=25))
    for response in (page.get(path), page.post(path, {"decision": "approve"})):
        assert response.status_code == 403
        assert "expired" in response.text
        assert token not in response.text
    assert router.get(case.id).state is EscalationState.OPEN
    refused = [r for r in audit.records() if r.outcome == "refused"]
    assert [(r.escalation_id, r.context["attempted"], r.context["via"]) for r in refused] == [
        (case.id, "view", "signed-link"),
        (case.id, "approve", "signed-link"),
    ]
    assert all(token not in r.model_dump_json() for r in refused)


def test_a_used_link_is_refused(
    router: EscalationRouter, links: DecisionLinks, page: Browserless, audit: AuditLog
) -> None:
    """A link decides once: opened or posted again it is refused with a 403 saying so, and
    each refusal is audited."""
    case = open_case(router)
    path = link_path(links, case)
    assert page.post(path, {"decision": "approve"}).status_code == 200
    again = page.get(path)
    assert again.status_code == 403
    assert "already used" in again.text
    assert page.post(path, {"decision": "reject"}).status_code == 403
    assert router.get(case.id).state is EscalationState.APPROVED
    refused = [r for r in audit.records() if r.outcome == "refused"]
    assert [r.context["attempted"] for r in refused] == ["view", "reject"]


def test_a_link_for_another_level_or_request_is_refused(
    router: EscalationRouter, links: DecisionLinks, page: Browserless, audit: AuditLog
) -> None:
    """A link bound to another level, or to another request's fingerprint, decides nothing;
    each refusal (the page's own, and the router's) is in the audit trail."""
    case = open_case(router)
    stale = page.get(link_path(links, case, level=1))
    assert stale.status_code == 403
    assert "issued for level 1" in stale.text
    other = links.issue(escalation_id=case.id, level=0, decider="maria", fingerprint="0" * 64)
    response = page.post(f"/link/{other}", {"decision": "approve"})
    assert response.status_code == 403
    assert "request changed" in response.text
    assert router.get(case.id).state is EscalationState.OPEN
    refused = [r for r in audit.records() if r.outcome == "refused"]
    assert [(r.escalation_id, r.context["attempted"]) for r in refused] == [
        (case.id, "view"),
        (case.id, "approve"),
    ]


def test_a_link_to_a_non_decider_is_refused_by_the_router(
    router: EscalationRouter, links: DecisionLinks, page: Browserless, audit: AuditLog
) -> None:
    """A link issued to someone who is not a decider is refused (403) and the refusal audited."""
    case = open_case(router)
    response = page.post(link_path(links, case, decider="mallory"), {"decision": "approve"})
    assert response.status_code == 403
    assert "mallory" in response.text
    assert router.get(case.id).state is EscalationState.OPEN
    refused = [r for r in audit.records() if r.outcome == "refused"]
    assert [r.escalation_id for r in refused] == [case.id]


def test_a_link_post_without_a_decision_changes_nothing(
    router: EscalationRouter, links: DecisionLinks, page: Browserless
) -> None:
    """A post without approve or reject is a 400; an over-long reason too."""
    case = open_case(router)
    path = link_path(links, case)
    assert page.post(path, {"decision": "maybe"}).status_code == 400
    assert page.post(path, {"decision": "approve", "reason": "x" * 2001}).status_code == 400
    assert router.get(case.id).state is EscalationState.OPEN


def test_the_inbox_lists_only_the_cases_the_user_may_decide(
    router: EscalationRouter, page: Browserless
) -> None:
    """Deciders (groups included) see the case; others don't; the user it acts for doesn't."""
    case = open_case(router)
    own = open_case(router, payment(user="maria"))
    maria = page.as_user("maria").get("/")
    assert maria.status_code == 200
    assert case.id in maria.text
    assert own.id not in maria.text  # maria asked for it: four eyes
    carl = page.as_user("carl").get("/")  # group:cfo
    assert case.id in carl.text
    assert own.id in carl.text
    sam = page.as_user("sam").get("/")  # the first case acts for sam
    assert case.id not in sam.text
    assert own.id in sam.text
    bob = page.as_user("bob").get("/")
    assert case.id not in bob.text
    assert "Nothing waits for you" in bob.text
    router.reject(case.id, by=Identity("carl", "test"))
    assert case.id not in page.as_user("maria").get("/").text  # decided: gone


def test_pages_need_a_verified_sign_in(
    router: EscalationRouter, page: Browserless, audit: AuditLog
) -> None:
    """No header is a 401; the header from outside the proxy's network is refused (403), and
    audited when it was aimed at a case."""
    case = open_case(router)
    assert page.get("/").status_code == 401
    assert page.get(f"/cases/{case.id}").status_code == 401
    outside = page.as_user("maria", client="10.1.2.3")
    refused = outside.get("/")
    assert refused.status_code == 403
    assert "trusted proxies" in refused.text
    assert outside.post(f"/cases/{case.id}/decide", {"decision": "approve"}).status_code == 403
    refused = [r for r in audit.records() if r.outcome == "refused"]
    assert [(r.escalation_id, r.context["attempted"], r.context["via"]) for r in refused] == [
        (case.id, "decide", "authenticator")
    ]


def test_the_case_page_is_shown_to_deciders_only(
    router: EscalationRouter, page: Browserless
) -> None:
    """A decider sees the case and the form; anyone else gets a 403; the requester no form."""
    case = open_case(router)
    maria = page.as_user("maria").get(f"/cases/{case.id}")
    assert maria.status_code == 200
    assert 'name="csrf"' in maria.text
    assert "250,000" in maria.text
    assert page.as_user("bob").get(f"/cases/{case.id}").status_code == 403
    sam = page.as_user("sam").get(f"/cases/{case.id}")
    assert sam.status_code == 200
    assert 'id="decide"' not in sam.text  # listed, but he is who the agent acts for
    unknown = page.as_user("maria").get("/cases/nope")
    assert unknown.status_code == 404
    assert "There is no case nope." in unknown.text
    assert "MemoryStore" not in unknown.text  # the store is not named


def _csrf(body: str) -> str:
    marker = 'name="csrf" value="'
    start = body.index(marker) + len(marker)
    return html.unescape(body[start : body.index('"', start)])


def test_deciding_on_the_page_needs_the_forms_token(
    router: EscalationRouter, page: Browserless, audit: AuditLog
) -> None:
    """Without the form's token, or with another case's or user's, the post is a 403, audited."""
    case = open_case(router)
    other = open_case(router)
    maria = page.as_user("maria")
    token = _csrf(maria.get(f"/cases/{case.id}").text)
    decide = f"/cases/{case.id}/decide"
    assert maria.post(decide, {"decision": "approve"}).status_code == 403
    assert maria.post(decide, {"decision": "approve", "csrf": "0" * 64}).status_code == 403
    other_token = _csrf(maria.get(f"/cases/{other.id}").text)
    assert maria.post(decide, {"decision": "approve", "csrf": other_token}).status_code == 403
    carl = page.as_user("carl")
    refused = carl.post(decide, {"decision": "approve", "csrf": token})
    assert refused.status_code == 403
    assert "token" in refused.text
    assert router.get(case.id).state is EscalationState.OPEN
    audited = [
        (r.context["by"], r.context["attempted"]) for r in audit.records() if r.outcome == "refused"
    ]
    assert audited == [("maria", "approve")] * 3 + [("carl", "approve")]

    done = maria.post(decide, {"decision": "approve", "csrf": token, "reason": "ok"})
    assert done.status_code == 303
    assert done.headers["location"] == f"/cases/{case.id}"
    assert router.get(case.id).state is EscalationState.APPROVED
    again = maria.post(decide, {"decision": "reject", "csrf": token})
    assert again.status_code == 409


def test_a_non_decider_with_a_valid_token_is_refused_by_the_router(
    router: EscalationRouter, page: Browserless, audit: AuditLog
) -> None:
    """Even a well-formed form from a signed-in non-decider is refused (403), and audited."""
    case = open_case(router)
    token = FormTokens(FORM_SECRET).issue("bob", case.id, case.level)
    refused = page.as_user("bob").post(
        f"/cases/{case.id}/decide", {"decision": "approve", "csrf": token}
    )
    assert refused.status_code == 403
    assert "Not a decider" in refused.text
    assert [r.context["by"] for r in audit.records() if r.outcome == "refused"] == ["bob"]


def test_every_response_carries_the_security_headers(
    router: EscalationRouter, links: DecisionLinks, page: Browserless
) -> None:
    """No script, no framing, no Referer (the link is a credential), nothing cached."""
    case = open_case(router)
    for response in (page.get(link_path(links, case)), page.get("/"), page.get("/nope")):
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


def test_an_over_large_body_is_refused(
    router: EscalationRouter, links: DecisionLinks, page: Browserless
) -> None:
    """A body past 64 KiB is refused before it is all read (413)."""
    case = open_case(router)
    response = page.post(link_path(links, case), {"decision": "approve", "reason": "x" * 70000})
    assert response.status_code == 413
    assert router.get(case.id).state is EscalationState.OPEN


def test_without_the_extra_the_import_names_it() -> None:
    """Importing handrail.web without Starlette says which extra to install."""
    code = "import sys; sys.modules['starlette'] = None; import handrail.web"
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "pip install 'handrail[web]'" in result.stderr


def test_mounted_under_a_prefix_its_links_and_forms_keep_the_prefix(
    router: EscalationRouter, app: Starlette
) -> None:
    """Mounted at /approvals in a service, every link, form and redirect stays under it."""
    service = Starlette(routes=[Mount("/approvals", app=app)])
    maria = Browserless(service, "maria")
    case = open_case(router)
    inbox = maria.get("/approvals/")
    assert f'href="/approvals/cases/{case.id}"' in inbox.text
    shown = maria.get(f"/approvals/cases/{case.id}")
    assert f'action="/approvals/cases/{case.id}/decide"' in shown.text
    done = maria.post(
        f"/approvals/cases/{case.id}/decide", {"decision": "approve", "csrf": _csrf(shown.text)}
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/approvals/cases/{case.id}"
    assert router.get(case.id).state is EscalationState.APPROVED


def test_without_a_secret_a_form_from_another_process_is_refused(router: EscalationRouter) -> None:
    """Each app without ``secret`` keys its own forms: another's token is refused, not taken."""
    auth = [TrustedHeaderAuthenticator(proxies=["127.0.0.1/32"])]
    first = Browserless(approval_app(router, authenticators=auth), "maria")
    second = Browserless(approval_app(router, authenticators=auth), "maria")
    case = open_case(router)
    token = _csrf(first.get(f"/cases/{case.id}").text)
    path = f"/cases/{case.id}/decide"
    assert second.post(path, {"decision": "approve", "csrf": token}).status_code == 403
    assert first.post(path, {"decision": "approve", "csrf": token}).status_code == 303


def test_without_authenticators_only_links_work(
    router: EscalationRouter, links: DecisionLinks
) -> None:
    """With no sign-in configured, the pages say so (401) and signed links still decide."""
    page = Browserless(approval_app(router, links=links), "maria")
    case = open_case(router)
    refused = page.get("/")
    assert refused.status_code == 401
    assert "signed link" in refused.text
    assert page.post(link_path(links, case), {"decision": "approve"}).status_code == 200
    assert Browserless(approval_app(router), None).get("/link/x").status_code == 404


def test_a_level_needing_two_approvals_waits_for_a_second_decider(
    clock: FakeClock, links: DecisionLinks
) -> None:
    """After one approval the case waits; the first approver is no longer offered it."""
    two = Route(
        name="finance",
        levels=(
            Level(
                deciders=("maria", "carl"),
                required_approvals=2,
                resolve_within=timedelta(hours=4),
            ),
        ),
    )
    router = EscalationRouter([two], MemoryStore(), clock=clock, key=ROUTER_KEY)
    app = approval_app(
        router, links=links, authenticators=[TrustedHeaderAuthenticator(proxies=["127.0.0.1/32"])]
    )
    case = open_case(router)
    first = Browserless(app).post(link_path(links, case), {"decision": "approve"})
    assert first.status_code == 200
    assert "Approval by maria recorded (1 of 2)" in first.text
    assert "Approvals</th><td>1 of 2: maria" in first.text
    assert router.get(case.id).state is EscalationState.OPEN
    assert case.id not in Browserless(app, "maria").get("/").text
    carl = Browserless(app, "carl")
    assert case.id in carl.get("/").text
    token = _csrf(carl.get(f"/cases/{case.id}").text)
    carl.post(f"/cases/{case.id}/decide", {"decision": "approve", "csrf": token})
    assert router.get(case.id).state is EscalationState.APPROVED


def test_refusals_are_logged_without_the_token(
    router: EscalationRouter, links: DecisionLinks, clock: FakeClock, page: Browserless
) -> None:
    """Each refusal is a structlog event naming the route's pattern, never the link's token."""
    case = open_case(router)
    path = link_path(links, case)
    clock.advance(timedelta(hours=25))
    with structlog.testing.capture_logs() as logs:
        assert page.get(path).status_code == 403
    (event,) = [e for e in logs if e["event"] == "handrail.web.refused"]
    assert event["route"] == "/link/{token}"
    assert event["status"] == 403
    assert "expired" in event["why"]
    assert path.removeprefix("/link/") not in repr(logs)


def test_a_link_to_a_case_decided_by_someone_else_says_so(
    router: EscalationRouter, links: DecisionLinks, page: Browserless
) -> None:
    """Carl rejected through his link; maria's unused link says the case is decided (409)."""
    case = open_case(router)
    maria = link_path(links, case)
    assert page.post(link_path(links, case, "carl"), {"decision": "reject"}).status_code == 200
    late = page.get(maria)
    assert late.status_code == 409
    assert "rejected already" in late.text


def test_the_form_secret_may_be_a_secret_str_but_not_empty(router: EscalationRouter) -> None:
    """``secret`` takes str, bytes or SecretStr (the same key either way); empty is refused."""
    assert FormTokens(SecretStr("k")).issue("maria", "c", 0) == FormTokens(b"k").issue(
        "maria", "c", 0
    )
    with pytest.raises(ConfigurationError, match="secret"):
        approval_app(router, secret="")


def test_values_are_shown_by_kind() -> None:
    """Scalars as text (numbers grouped), containers as indented JSON lines."""
    assert shown(None) == Shown("null", "null")
    assert shown(True) == Shown("bool", "true")
    assert shown(1234.5) == Shown("float", "1234.5", grouped="1,234.5")
    assert shown(999) == Shown("int", "999")
    assert shown({"a": [1]}).lines == ("{", '  "a": [', "    1", "  ]", "}")
    assert shown(b"x").text == "b'x'"


def test_a_wrong_argument_is_refused_when_the_app_is_built(router: EscalationRouter) -> None:
    """Not a router, an authenticator without ``authenticate``, links without ``verify``."""
    with pytest.raises(ConfigurationError, match="router must be an EscalationRouter"):
        approval_app(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="authenticators needs a 'authenticate'"):
        approval_app(router, authenticators=["maria"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="links needs a 'verify'"):
        approval_app(router, links="https://x")  # type: ignore[arg-type]


def test_a_user_header_sent_twice_is_refused(app: Starlette) -> None:
    """A second X-Forwarded-User (one a client slipped past the proxy) is refused, not picked."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = [("X-Forwarded-User", "mallory"), ("X-Forwarded-User", "maria")]
            return await client.get("/", headers=headers)

    response = asyncio.run(send())
    assert response.status_code == 403
    assert "valid user id" in response.text
