"""The approval page in a real browser: Debian's chromium, driven by Playwright, against uvicorn.

A decider opens the signed link from the notification, sees the real amount
among the arguments, approves, and the agent's resumed call runs exactly
once; a forged, an expired and a used link are refused in the browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.applications import Starlette

from handrail import EscalationRequired, Principal, acting_as
from handrail.approvals import DecisionLinks
from handrail.audit import AuditLog
from handrail.escalation import (
    AlreadyExecuted,
    CallableChannel,
    EscalationRouter,
    EscalationState,
    Notification,
    SQLiteStore,
    resuming,
)
from handrail.guard import Guard
from handrail.identity import User
from handrail.testing import FakeClock
from handrail.web import approval_app

from .conftest import FINANCE, GROUPS, LINK_KEY, POLICY, ROUTER_KEY, forged

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HANDRAIL_CHROMIUM", "/usr/bin/chromium")
# Flags that keep chromium from reaching out (updates, sync, field trials) on a closed network.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium (``make test`` installs Debian's package when it is missing)."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs chromium) or apt-get it")
    args = [*CHROMIUM_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args, timeout=60_000)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A socket bound to a free port on 127.0.0.1, owned by this test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def serving(app: Starlette, sock: socket.socket) -> Iterator[None]:
    """``app`` on uvicorn in a thread, accepting on ``sock``, until the block ends."""
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):  # bounded: at most ~10 s for the server to start
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not stop"


class Payments:
    """The agent's tool, guarded; its runs are counted, so 'exactly once' can be checked."""

    def __init__(self, guard: Guard) -> None:
        self.runs: list[int] = []

        @guard.protect("erp.payment.create", is_write=True)
        def pay(amount: int, iban: str, memo: str) -> str:
            self.runs.append(amount)
            return f"paid {amount}"

        self.pay = pay


AGENT = Principal(agent="pay-bot", on_behalf_of=User(id="sam"))
CALL = {"amount": 250000, "iban": "DE44 5001 0517 5407 3249 31", "memo": "Q3 supplier invoice"}


def escalated(payments: Payments) -> str:
    with acting_as(AGENT), pytest.raises(EscalationRequired) as raised:
        payments.pay(**CALL)
    assert raised.value.escalation_id is not None
    return raised.value.escalation_id


def deliver(router: EscalationRouter) -> None:
    """``router.tick()`` in a thread: Playwright's sync API keeps an event loop in this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(router.tick).result(timeout=60)


def refused(page: Page, url: str, why: str) -> None:
    response = page.goto(url)
    assert response is not None
    assert response.status == 403
    assert why in page.locator("#why").inner_text()
    assert url.rsplit("/", 1)[1] not in page.content()  # the token is never echoed


def test_a_decider_approves_through_a_signed_link_and_the_call_runs_once(
    browser: Browser, listening: socket.socket, tmp_path: Path
) -> None:
    """Open the notice's link, see 250,000, click Approve: the resumed call runs once; a
    forged, an expired and a used link are refused in the browser."""
    base_url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    clock = FakeClock()
    audit = AuditLog.memory()
    notices: list[Notification] = []
    links = DecisionLinks(LINK_KEY, base_url=base_url, clock=clock)
    router = EscalationRouter(
        [FINANCE],
        SQLiteStore(tmp_path / "cases.db"),
        clock=clock,
        audit=audit,
        groups=GROUPS,
        key=ROUTER_KEY,
        links=links,
        channels=[CallableChannel(notices.append, name="inbox")],
    )
    payments = Payments(Guard(POLICY, audit=audit, escalations=router))
    case_id = escalated(payments)
    deliver(router)  # the notice, with one signed link per decider
    (notice,) = notices
    link = notice.links["maria"]
    assert link.startswith(f"{base_url}/link/")
    assert payments.runs == []

    app = approval_app(router, links=links, authenticators=[], title="Finance approvals")
    with serving(app, listening):
        page = browser.new_page()
        page.set_default_timeout(15_000)
        try:
            response = page.goto(link)
            assert response is not None
            assert response.status == 200
            args = page.locator("#args").inner_text()
            assert "250000" in args
            assert "250,000" in args
            assert "DE44 5001 0517 5407 3249 31" in args
            page.locator("#reason").fill("invoice checked against the PO")
            page.locator("#approve").click()
            page.wait_for_selector("#notice")
            assert "Approved by maria" in page.locator("#notice").inner_text()
            assert page.locator("#state").inner_text() == "approved"
            assert "signed-link" in page.locator("#history").inner_text()

            decided = router.get(case_id)
            assert decided.state is EscalationState.APPROVED
            assert decided.decided_by == "maria"
            with acting_as(AGENT), resuming(case_id):
                assert payments.pay(**CALL) == "paid 250000"
                with pytest.raises(AlreadyExecuted):
                    payments.pay(**CALL)
            assert payments.runs == [250000]

            refused(page, link, "already used")
            token = link.rsplit("/", 1)[1]
            refused(page, f"{base_url}/link/{forged(token)}", "forged")

            second = escalated(payments)
            deliver(router)
            late = notices[-1].links["maria"]
            assert notices[-1].escalation_id == second
            clock.advance(timedelta(hours=25))  # past the links' 24-hour ttl
            refused(page, late, "expired")
            assert router.get(second).state is not EscalationState.APPROVED
        finally:
            page.close()
    assert payments.runs == [250000]
