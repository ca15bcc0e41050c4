"""A tour of a real policy: what the sales assistant may do, and why.

Loads ``policies/crm-agent.yaml``, decides a dozen requests the assistant
makes for Acme's sales staff, explains one decision in full, and runs the
policy's own test cases.  Then runs three of the assistant's tools behind a
``Guard`` against a flaky CRM, writing an audit log, and verifies the log's
hash chain.  Then a discount that needs a manager: the escalation opens on
the route in ``routes/sales.yaml``, the team lead misses the half-hour
acknowledgement deadline on an accelerated clock, and the case moves up to the
sales director.  Her notice carries her own signed link; she opens it on the
approval page (``handrail.web``, called in process: no port, no server), sees
the real arguments, and approves; the same link used again, and a forged one,
are refused.  The assistant's retried call runs, once, and ``handrail
escalations show`` tells from a terminal how the approver was verified.
Finally the assistant reads contacts from
the example CRM server (``crm/``) through a connector — messy records set
aside in quarantine — and updates one contact twice: in shadow mode (nothing
is sent) and for real.  Run it from the repository root::

    .venv/bin/python examples/demo.py
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import importlib.util
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from handrail import (
    ActionRequest,
    Decision,
    EscalationRequired,
    Guard,
    PermissionDenied,
    Policy,
    Principal,
    Resource,
    User,
    acting_as,
)
from handrail.approvals import DecisionLinks
from handrail.audit import AuditLog
from handrail.connectors import JSONLQuarantine
from handrail.escalation import (
    CallableChannel,
    EscalationRouter,
    Notification,
    SQLiteStore,
    load_routes,
    resuming,
)
from handrail.policy import PolicyCases
from handrail.resilience import RetryPolicy, current_idempotency_key
from handrail.shadow import ShadowResult
from handrail.testing import FakeClock
from handrail.web import approval_app

EXAMPLES = Path(__file__).resolve().parent
POLICIES = EXAMPLES / "policies"
ROUTES = EXAMPLES / "routes" / "sales.yaml"
# Tuesday 24 November 2026, 10:00 in Berlin: inside the sales team's business hours.
TUESDAY_MORNING = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
# The router key binds an approval to the exact request (a keyed fingerprint).  The demo
# makes one per run; in production it is one secret, at least 32 bytes, shared by every
# process that opens or resumes cases, from your secret store (or HANDRAIL_ROUTER_KEY).
ROUTER_KEY = secrets.token_bytes(32)
# The signed decision links' key, and the approval page's form key: secrets as well, one
# per deployment in production (the links key may be the router key; separate is cleaner).
LINKS_KEY = secrets.token_bytes(32)
PAGE_SECRET = secrets.token_bytes(32)
# Where the approval page is mounted: the links in the notices point there.
APPROVALS_URL = "https://approvals.acme.com"

PEOPLE = {
    "alice": User(id="alice", roles=frozenset({"sales_rep"}), groups=frozenset({"sales"})),
    "maya": User(id="maya", roles=frozenset({"sales_manager"}), groups=frozenset({"sales"})),
    "ivan": User(id="ivan", roles=frozenset({"sales_intern"}), groups=frozenset({"sales"})),
    "carl": User(
        id="carl", roles=frozenset({"sales_rep"}), groups=frozenset({"sales", "contractors"})
    ),
}


def request(
    user: str,
    action: str,
    resource: tuple[str, str] | None = None,
    *,
    region: str | None = None,
    environment: str = "production",
    **args: Any,
) -> ActionRequest:
    """A request from the sales assistant acting for one of the people above."""
    return ActionRequest(
        principal=Principal(agent="sales-assistant", on_behalf_of=PEOPLE[user]),
        action=action,
        resource=None
        if resource is None
        else Resource(
            type=resource[0], id=resource[1], attributes={"region": region} if region else {}
        ),
        args=args,
        context={"environment": environment},
    )


REQUESTS = [
    request("alice", "crm.contact.read", ("contact", "c-1"), region="us"),
    request("alice", "crm.contact.read", ("contact", "c-7"), region="eu"),
    request("ivan", "crm.contact.update", ("contact", "c-1"), phone="+1 415 555 0100"),
    request("alice", "crm.opportunity.update", ("opportunity", "opp-9"), stage="negotiation"),
    request("alice", "crm.opportunity.update", ("opportunity", "opp-9"), discount_pct=35),
    request("carl", "crm.opportunity.update", ("opportunity", "opp-9"), discount_pct=5),
    request("maya", "crm.contact.delete", ("contact", "c-1")),
    request("alice", "email.send", to_domain="acme.com"),
    request("alice", "email.send", to_domain="globex.com"),
    request("ivan", "email.send", to_domain="globex.com"),
    request("alice", "email.send", to_domain="mailinator.com"),
    request("maya", "crm.contact.export", environment="production"),
]


def details(req: ActionRequest) -> str:
    """The arguments and attributes that decide this request, as ``key=value``."""
    shown: dict[str, Any] = dict(req.args)
    if req.resource is not None:
        shown.update(req.resource.attributes)
    if req.action.endswith(".export"):
        shown["env"] = req.context["environment"]
    return " ".join(f"{key}={value}" for key, value in shown.items()) or "-"


def who(req: ActionRequest) -> str:
    """``agent for user``."""
    user = req.principal.on_behalf_of
    return req.principal.agent if user is None else f"{req.principal.agent} for {user.id}"


def table(decisions: list[Decision]) -> list[str]:
    """The decisions as aligned columns, each with its reason on the line below."""
    header = ("who", "action", "details", "effect", "deciding rule")
    rows = [
        (
            who(d.request),
            d.request.action,
            details(d.request),
            d.effect.value.upper(),
            d.rule_id or "(default deny)",
        )
        for d in decisions
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    lines = [line(header).rstrip(), line(tuple("-" * w for w in widths))]
    for row, decision in zip(rows, decisions, strict=True):
        lines.append(line(row).rstrip())
        lines.append(f"    why: {decision.reason}")
    return lines


class FlakyCRM:
    """Stands in for the CRM's API: the first write answers 503, as real ones do."""

    def __init__(self) -> None:
        self.calls = 0

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            request = httpx.Request("PATCH", f"https://crm.example.com{path}")
            response = httpx.Response(503, request=request)
            raise httpx.HTTPStatusError(
                "503 Service Unavailable", request=request, response=response
            )
        return {"path": path, **body}


def guarded_tools(policy: Policy, log_path: Path) -> bool:
    """Run three tools behind a Guard, then verify the audit log they wrote."""
    crm = FlakyCRM()

    def contact(contact_id: str, **_: Any) -> dict[str, str]:
        return {"type": "contact", "id": contact_id}

    with AuditLog.jsonl(log_path, fsync="batch") as log:
        guard = Guard(policy, audit=log, retry=RetryPolicy(attempts=3))

        @guard.protect("crm.contact.update", resource=contact, is_write=True, idempotent=True)
        def update_contact(contact_id: str, phone: str) -> dict[str, Any]:
            return crm.patch(f"/contacts/{contact_id}", {"phone": phone})

        @guard.protect("crm.opportunity.update", is_write=True, idempotent=True)
        def update_opportunity(opportunity_id: str, discount_pct: float) -> dict[str, Any]:
            return crm.patch(f"/opportunities/{opportunity_id}", {"discount_pct": discount_pct})

        @guard.protect("crm.contact.delete", resource=contact)
        def delete_contact(contact_id: str) -> None:
            raise AssertionError("never runs: deletes are denied")

        with acting_as(Principal(agent="sales-assistant", on_behalf_of=PEOPLE["alice"])):
            update_contact("c-1", phone="+1 415 555 0100")
            try:
                update_opportunity("opp-9", discount_pct=35)
            except EscalationRequired as exc:
                print(f"  escalated to {exc.decision.escalate_to}: {exc.decision.rule_id}")
            try:
                delete_contact("c-1")
            except PermissionDenied as exc:
                print(f"  denied: {exc.decision.rule_id}")

    with AuditLog.open(log_path, read_only=True) as log:
        for record in log.records():
            print(
                f"  {record.seq}  {record.action:<23} {record.outcome:<9} "
                f"rule={record.rule_id}  attempts={record.attempts}  hash={record.hash[:12]}…"
            )
        report = log.verify()
    print(f"  audit log {log_path.name}: {report.message}")
    print(f"  (from a shell: handrail audit verify {log_path.name})")
    return report.ok


def show(notification: Notification) -> None:
    """The escalation channel of this demo: print what Slack or email would carry."""
    to = ", ".join(notification.recipients)
    due = f", due {notification.due:%a %H:%M} UTC" if notification.due else ""
    # Who got a signed link, never the link: a channel many people read shows none.
    signed = f"; links for {', '.join(sorted(notification.links))}" if notification.links else ""
    print(f"  [notify {notification.kind} · level {notification.level_name} → {to}{due}{signed}]")


def handrail_cli(
    directory: Path, *args: str | Path, keep: Callable[[str], bool] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``handrail`` command as a person would, in a separate process.

    With ``keep``, only the output lines it keeps are printed (``…`` marks the
    lines left out), so the tour stays short.
    """
    command = [sys.executable, "-m", "handrail", *map(str, args)]
    shown = (f"'{a}'" if " " in str(a) else str(a) for a in args)
    print(
        "  $ handrail "
        + " ".join(shown)
        .replace(f"{directory}{os.sep}", "")
        .replace(f"{EXAMPLES.parent}{os.sep}", "")
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elided = False
    for line in (done.stdout + done.stderr).splitlines():
        if keep is None or done.returncode != 0 or keep(line):
            print(f"    {line}")
            elided = False
        elif not elided:
            print("    …")
            elided = True
    return done


def the_decision(line: str) -> bool:
    """From ``handrail escalations show``: the outcome, and the history's last two rows."""
    words = line.split()
    return (
        words[:1] == ["outcome:"]
        or words[1:2] == ["EVENT"]  # the history's header
        # A history row: AT (two words), EVENT, LEVEL, BY (and how verified), REASON.
        or words[2:3] in (["approved"], ["executed"])
    )


class Mailboxes:
    """Each decider's own inbox, in process: the demo's stand-in for their email.

    A signed link is a bearer secret (like a password-reset link): whoever holds
    it decides as its decider.  So a notice's ``links`` are never shown in the
    shared channel (``show`` above, like Slack, prints only who got one); each
    link goes to its own decider's mailbox and nobody else's, as
    ``EmailChannel(deciders=...)`` does in production.
    """

    def __init__(self) -> None:
        self.links: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)

    def deliver(self, notification: Notification) -> None:
        for decider, link in notification.links.items():
            self.links[decider].append((notification.kind, link))


class PageText(HTMLParser):
    """What a person reads on the approval page: each table's rows, each element's text by id."""

    VOID = frozenset({"br", "hr", "img", "input", "link", "meta", "source", "wbr"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: dict[str, list[list[str]]] = collections.defaultdict(list)
        self.text: dict[str, str] = collections.defaultdict(str)
        self._ids: list[str] = []  # the id of each open element ("" for none)
        self._table = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        element_id = dict(attrs).get("id") or ""
        self._ids.append(element_id)
        if tag == "table":
            self._table = element_id
        elif tag == "tr" and self._table:
            self.rows[self._table].append([])
        elif tag in ("th", "td") and self.rows[self._table]:
            self.rows[self._table][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self._ids:
            self._ids.pop()
        if tag == "table":
            self._table = ""

    def handle_data(self, data: str) -> None:
        for element_id in filter(None, self._ids):
            self.text[element_id] += data
        if self._table and self.rows[self._table] and self.rows[self._table][-1]:
            self.rows[self._table][-1][-1] += data

    def said(self, element_id: str) -> str:
        """The text of one element, on one line."""
        return " ".join(self.text[element_id].split())

    def table(self, table_id: str) -> dict[str, str]:
        """A two-column table (the page's arguments, its request) as name -> shown value."""
        rows = (row for row in self.rows[table_id] if len(row) == 2)
        return {" ".join(name.split()): " ".join(value.split()) for name, value in rows}


def forged(link: str) -> str:
    """``link`` with one character of its signature changed: what a guesser would try."""
    at = link.rindex(".") + 10  # inside the signature, clear of its last (padding) character
    return link[:at] + ("A" if link[at] != "A" else "B") + link[at + 1 :]


async def decide_on_the_page(router: EscalationRouter, links: DecisionLinks, link: str) -> bool:
    """Dana opens her signed link on the approval page, approves, and the link is spent.

    The page is an ASGI app, so httpx calls it in process (no port, no server);
    in production it is mounted in your service behind TLS.
    """
    page = approval_app(router, links=links, secret=PAGE_SECRET, title="Acme approvals")
    transport = httpx.ASGITransport(app=page)
    async with httpx.AsyncClient(transport=transport, base_url=APPROVALS_URL) as browser:
        opened = await browser.get(link)
        shown = PageText(opened.text)
        request, args = shown.table("request"), shown.table("args")
        print(
            f"  she opens it: HTTP {opened.status_code}, {request.get('Action')} for "
            f"{request.get('On behalf of')} by {request.get('Agent')}, "
            f"state {shown.said('state')}"
        )
        # Each argument's cell is its value then its type ("35 int"): what would run.
        print(
            "    arguments: "
            + "; ".join(f"{name} = {cell.rpartition(' ')[0]}" for name, cell in args.items())
        )
        decided = await browser.post(
            link, data={"decision": "approve", "reason": "multi-year renewal; margin checked"}
        )
        result = PageText(decided.text)
        print(
            f"  she approves with a reason: HTTP {decided.status_code}, "
            f"{result.said('notice') or result.said('why')}"
        )
        again = await browser.post(link, data={"decision": "approve", "reason": "once more"})
        print(
            f"  the same link again: HTTP {again.status_code}, {PageText(again.text).said('why')}"
        )
        fake = await browser.get(forged(link))
        print(
            f"  a forged link (one character changed): HTTP {fake.status_code}, "
            f"{PageText(fake.text).said('why')}"
        )
    return (
        opened.status_code == 200
        and args.get("discount_pct") == "35 int"  # the page shows what would run
        and decided.status_code == 200
        and again.status_code == 403
        and fake.status_code == 403
    )


def escalation(policy: Policy, directory: Path) -> bool:
    """A 35 % discount: escalated, breached, moved up, approved through a signed link, run once."""
    routes = load_routes(ROUTES)
    clock = FakeClock(TUESDAY_MORNING)
    store_path = directory / "escalations.db"
    crm = FlakyCRM()
    crm.calls = 1  # the CRM is healthy in this part
    mailboxes = Mailboxes()
    # The same DecisionLinks signs the links in the notices and verifies them on the page.
    links = DecisionLinks(LINKS_KEY, base_url=APPROVALS_URL, clock=clock)

    with AuditLog.jsonl(directory / "agent-audit.jsonl") as log:
        router = EscalationRouter(
            routes.routes,
            SQLiteStore(store_path),
            channels=[
                CallableChannel(show, name="slack"),
                CallableChannel(mailboxes.deliver, name="email"),
            ],
            clock=clock,
            audit=log,
            groups=routes.groups,
            store_hint=str(store_path),
            key=ROUTER_KEY,
            links=links,
        )
        guard = Guard(policy, audit=log, escalations=router)

        @guard.protect("crm.opportunity.update", is_write=True, idempotent=True)
        def update_opportunity(opportunity_id: str, discount_pct: float) -> dict[str, Any]:
            key = current_idempotency_key()
            print(f"  CRM PATCH /opportunities/{opportunity_id} (Idempotency-Key: {key})")
            return crm.patch(f"/opportunities/{opportunity_id}", {"discount_pct": discount_pct})

        alice = Principal(agent="sales-assistant", on_behalf_of=PEOPLE["alice"])
        with acting_as(alice):
            try:
                update_opportunity("opp-9", discount_pct=35)
            except EscalationRequired as pending:
                case = pending.escalation_id
                print(f"  assistant: a 35 % discount needs approval; escalation {case}")
        assert case is not None
        router.tick()  # the worker loop (router.run()) does this every second in production

        print("  ... 31 minutes pass; nobody on the team-lead level acknowledges ...")
        clock.advance(dt.timedelta(minutes=31))
        router.tick()
        moved = router.get(case)
        print(
            f"  case is at level {moved.level} ({moved.route.level(moved.level).name}), "
            f"deciders {', '.join(moved.deciders)}"
        )
        # Dana reads her own mail: the escalated notice's link for her, and only hers.
        link = next(url for kind, url in mailboxes.links["dana"] if kind == "escalated")
        # Printed only up to its signature (which is what makes it a credential).
        print(f"  dana's mailbox: her signed link {link[: len(APPROVALS_URL) + 16]}…")
        page_ok = asyncio.run(decide_on_the_page(router, links, link))

        print("  The assistant retries the same call under the escalation:")
        with acting_as(alice), resuming(case):
            update_opportunity("opp-9", discount_pct=35)
            try:
                update_opportunity("opp-9", discount_pct=35)
            except Exception as again:  # AlreadyExecuted: it never runs twice
                print(f"  a second resume: {type(again).__name__}")
        history = router.get(case).history
        print("  history: " + " → ".join(f"{e.kind}@L{e.level}" for e in history))
        # Who approved, and how the router verified them: dana, by her signed link.
        via_link = [(e.by, e.via.partition(" ")[0]) for e in history if e.kind == "approved"]
        router.store.close()
        agent_ok = log.verify().ok

    print("  From a terminal, the case and how each decider was verified:")
    shown = handrail_cli(
        directory, "escalations", "show", case, "--store", store_path, keep=the_decision
    )
    return (
        page_ok
        and via_link == [("dana", "signed-link")]
        and shown.returncode == 0
        and agent_ok
        and crm.calls == 2
    )


def example(name: str) -> ModuleType:
    """``crm/<name>.py``, loaded from its file (the examples are not a package on the path)."""
    module_name = f"handrail_example_crm_{name}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / "crm" / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module


def connector(policy: Policy, directory: Path) -> bool:
    """Read messy contacts from a live CRM; one update in shadow mode, one for real."""
    server, crm_connector = example("server"), example("connector")
    alice = Principal(agent="sales-assistant", on_behalf_of=PEOPLE["alice"])
    with (
        server.CRMServer(seed=7, records=60) as crm,
        AuditLog.jsonl(directory / "crm-audit.jsonl") as log,
        JSONLQuarantine(directory / "quarantine.jsonl") as quarantine,
    ):
        options: dict[str, Any] = {
            "client_id": crm.client_id,
            "client_secret": crm.client_secret,  # in production: from a CredentialProvider
            "policy": policy,
            "audit": log,
            "quarantine": quarantine,
        }
        live = crm_connector.CRMConnector(crm.base_url, **options)
        shadow = crm_connector.CRMConnector(crm.base_url, shadow=True, **options)
        with acting_as(alice), live, shadow:
            contacts = live.list_contacts(page_size=25)
            first = list(contacts)
            set_aside = sorted(record.raw.get("id") or "(no id)" for record in quarantine.records())
            print(
                f"  read {contacts.valid} contacts in pages of 25; {contacts.quarantined} "
                f"malformed set aside in quarantine: {', '.join(set_aside)}"
            )
            target = first[0].id
            intent = shadow.update_contact(id=target, phone="+1 415 555 0199")
            assert isinstance(intent, ShadowResult)
            assert intent.request is not None
            print(
                f"  shadow mode: {intent.request.method} {intent.request.url} "
                f"{intent.request.body} — recorded, not sent"
            )
            updated = live.update_contact(id=target, phone="+1 415 555 0199")
            print(f"  for real: {target} now has phone {updated.phone} (ETag {updated.etag})")
        outcomes = collections.Counter(record.outcome.value for record in log.records())
        print(f"  audit: {dict(outcomes)}; the CRM applied {crm.writes_applied} write")
        print(
            "  (from a shell: handrail shadow report crm-audit.jsonl; "
            "handrail quarantine list quarantine.jsonl)"
        )
        malformed = len(crm.malformed_ids("contacts"))
        return crm.writes_applied == 1 and contacts.quarantined == malformed


def main() -> int:
    """Print the tour; exit 1 if the policy's own test cases fail."""
    policy = Policy.from_file(POLICIES / "crm-agent.yaml")
    print(f"policy {policy.name!r}: {len(policy.rules)} rules, {policy.description}")
    print()
    for text in table([policy.evaluate(r) for r in REQUESTS]):
        print(text)

    print()
    print("Why may ivan, an intern, not email a customer when the assistant may?")
    print(policy.explain(REQUESTS[9]))

    cases = PolicyCases.from_file(POLICIES / "crm-agent.tests.yaml")
    report = cases.run(policy)
    print()
    print(
        f"policy tests: {len(report.results)} cases, {len(report.failures)} failed; "
        f"rule coverage {len(report.covered_rules)}/{len(report.rule_ids)} ({report.coverage:.0%})"
    )
    if not report.passed:
        print(report)

    print()
    print("The tools behind a Guard (the CRM fails the first write with 503; it is retried):")
    with tempfile.TemporaryDirectory() as directory:
        verified = guarded_tools(policy, Path(directory) / "audit.jsonl")

    print()
    print("A discount that needs a manager (escalation route 'sales-managers', accelerated clock):")
    with tempfile.TemporaryDirectory() as directory:
        escalated = escalation(policy, Path(directory))

    print()
    print("The assistant on a live CRM through a connector (the example server in crm/):")
    with tempfile.TemporaryDirectory() as directory:
        connected = connector(policy, Path(directory))
    return 0 if report.passed and verified and escalated and connected else 1


if __name__ == "__main__":
    sys.exit(main())
