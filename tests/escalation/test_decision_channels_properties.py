"""Contract: whatever the channel, a decision counts only from a verified decider of the case's
current level who is neither the agent nor the user it acts for; every refusal is audited.

A Hypothesis state machine opens cases on a real router over a real SQLite file, moves the
clock past deadlines (the case changes level, or expires), and tries decisions (acknowledge,
approve, reject) through every channel:

* the Python API, with a verified ``Identity`` of anyone (a decider of this level, of the
  other level, an outsider, the agent, the user it acts for) or an unverified ``str`` / ``User``;
* a signed link (``DecisionLinks.issue`` → ``verify`` → router): fresh, forged, expired,
  issued for a stale level, another case or another request, or used before;
* a Slack callback signed per Slack's v0 scheme (``SlackInteractions.verify`` → router): good,
  wrong secret, stale timestamp, unmapped Slack user, a button for a stale level or another
  request, or a replayed body;
* the CLI (``handrail escalations ack|approve|reject``) as the OS user running the tests, who
  is a decider at some levels of the route and not at others, with and without ``--as``;
* the approval page (``handrail.web.approval_app`` over ``httpx.ASGITransport``): a decision
  posted to a signed link, the SSO case page's form (its token taken from the page, or none
  when the page offers no form), a sign-in header from outside the proxy, and Slack's
  callbacks through ``/slack/actions``.

The model predicts each attempt: accepted, refused by the router (``NotAuthenticated`` or
``NotADecider``; exit 1 from the CLI; 403 or a "Refused" Slack reply from the page), refused
because the case is final (``IllegalTransition``, 409), or refused before the router.  After
every step: each case is as the model says; its history holds exactly the accepted decisions,
each by a listed decider of its level who is not the agent nor the user, with how they were
verified; and each case has exactly as many ``refused`` records (the router's log and the
CLI's own) as refusals the model counted, each naming the attempt and who was offered.

Which refusals are audited: every one the router makes, every one the CLI or the page makes
before asking it (``EscalationRouter.record_refusal``) when the credential names its case
authentically (an expired link, an unmapped Slack user: their signatures checked out;
``--as`` without the admin role).  A credential whose signature fails (a forged link, a
Slack callback with a wrong secret or a stale timestamp) names no case worth trusting: no
record.  Calling an authenticator directly (``links.verify``, ``slack.verify``) audits
nothing: there is no router to record it; the page is what records those.  A listed
decider's attempt on a final case is an ``IllegalTransition``: nothing decided, no record;
anyone else's is a ``NotADecider``, audited, as on an open case.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import io
import json
import os
import pwd
import re
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from handrail import ActionRequest, HandrailError, Policy, Principal, User
from handrail.approvals import (
    DecisionLinks,
    Identity,
    SlackAction,
    SlackInteractions,
    TrustedHeaderAuthenticator,
)
from handrail.audit import AuditLog, AuditRecord
from handrail.cli import main
from handrail.escalation import (
    EscalationRouter,
    IllegalTransition,
    Level,
    NotADecider,
    NotAuthenticated,
    Route,
)
from handrail.testing import FakeClock
from handrail.web import approval_app

ME = pwd.getpwuid(os.geteuid()).pw_name  # the OS user the CLI decides as
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
KEY = "contract-router-key-0123456789abcdef"
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
LINK_TTL = 6 * HOUR
BASE_URL = "https://approvals.example.com"
PROXY, ELSEWHERE = "127.0.0.1", "192.0.2.7"  # the SSO proxy's address, and anyone else's
CSRF = re.compile(r'name="csrf" value="([^"]+)"')

AGENT, ON_BEHALF_OF = "bot", "ann"
# The agent and the user it acts for are listed at both levels: only four eyes refuses them.
GROUPS = {"leads": ["lena", AGENT], "board": ["bea", ON_BEHALF_OF]}
BASE_DECIDERS = (("maria", "group:leads", ON_BEHALF_OF), ("carla", "group:board", AGENT))
EXPANDED = (
    frozenset({"maria", "lena", AGENT, ON_BEHALF_OF}),
    frozenset({"carla", "bea", AGENT, ON_BEHALF_OF}),
)
REQUIRED = (2, 1)  # level 0 needs two different approvers
ACK_WITHIN: tuple[timedelta | None, ...] = (HOUR, None)
RESOLVE_WITHIN = (4 * HOUR, 8 * HOUR)
USERS = ("maria", "lena", "carla", "bea", AGENT, ON_BEHALF_OF, "olga", ME)
PEOPLE = st.sampled_from(USERS) | st.sampled_from(["maria", "lena", "carla", "bea"])
SLACK_USERS = {f"U{name.upper()}": name for name in USERS}
VERBS = ("acknowledge", "approve", "approve", "reject")  # approvals weigh more: two are needed
DECISION_KINDS = frozenset({"acknowledged", "approval", "approved", "rejected"})
FINAL = frozenset({"approved", "rejected", "expired"})
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "pay", "effect": "allow", "actions": "pay.*"},
            {"id": "big", "effect": "escalate", "actions": "pay.*", "escalate_to": "payments"},
        ]
    }
)

ACCEPTED = "accepted"
NOT_AUTHENTICATED = "not authenticated"  # refused by the router, audited
NOT_A_DECIDER = "not a decider"  # refused by the router, audited
FINAL_ALREADY = "final"  # IllegalTransition: nothing decided
BEFORE_ROUTER = "refused by the authenticator"  # never reached the router


def payments_route(root_levels: frozenset[int]) -> Route:
    """Two levels; the OS user running the tests (the CLI's decider) listed at ``root_levels``."""
    return Route(
        name="payments",
        levels=tuple(
            Level(
                name=name,
                deciders=(*BASE_DECIDERS[i], *((ME,) if i in root_levels else ())),
                ack_within=ACK_WITHIN[i],
                resolve_within=RESOLVE_WITHIN[i],
                required_approvals=REQUIRED[i],
            )
            for i, name in enumerate(("controllers", "cfo"))
        ),
    )


@dataclasses.dataclass
class Binding:
    """What a link or a Slack click was issued for (the model's copy of a ``LinkBinding``)."""

    escalation_id: str
    level: int
    fingerprint: str
    token_id: str


@dataclasses.dataclass
class IssuedLink:
    token: str
    user: str
    binding: Binding
    expires: float  # epoch seconds


@dataclasses.dataclass
class SentClick:
    kind: str
    headers: dict[str, str]
    body: bytes
    timestamp: int
    user: str | None  # the decider the Slack user maps to; None when unmapped
    approve: bool
    binding: Binding


@dataclasses.dataclass
class Case:
    """The model of one case."""

    id: str
    fingerprint: str
    level_start: datetime
    level: int = 0
    state: str = "open"
    ack_pending: bool = True
    approvals: list[str] = dataclasses.field(default_factory=list)
    decisions: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    tokens: set[str] = dataclasses.field(default_factory=set)
    refusals: int = 0


class DecisionChannels(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="handrail-channels-"))
        self.clock = FakeClock(T0)
        self.cases: list[Case] = []
        self.links_issued: list[IssuedLink] = []
        self.clicks: list[SentClick] = []
        self.serial = 0
        self.seen: set[str] = set()  # ids of the refused records already accounted for
        self.router: EscalationRouter | None = None
        self.audit: AuditLog | None = None

    # -- setup -------------------------------------------------------------------------

    @initialize(root_levels=st.sets(st.sampled_from([0, 1])).map(frozenset))
    def setup(self, root_levels: frozenset[int]) -> None:
        self.deciders = tuple(
            level | ({ME} if i in root_levels else set()) for i, level in enumerate(EXPANDED)
        )
        self.db = self.dir / "escalations.db"
        self.cli_audit = self.dir / "cli-audit.jsonl"  # one writer per log: the CLI's own
        self.audit = AuditLog.jsonl(self.dir / "audit.jsonl", fsync="never")
        self.router = EscalationRouter(
            [payments_route(root_levels)],
            self.db,
            clock=self.clock,
            audit=self.audit,
            groups=GROUPS,
            key=KEY,
        )
        self.links = DecisionLinks(KEY, base_url=BASE_URL, ttl=LINK_TTL, clock=self.clock)
        self.slack = SlackInteractions(SLACK_SECRET, users=SLACK_USERS, clock=self.clock)
        self.app = approval_app(
            self.router,
            links=self.links,
            authenticators=[
                TrustedHeaderAuthenticator("x-forwarded-user", proxies=[f"{PROXY}/32"])
            ],
            slack=self.slack,
            secret=KEY,
        )
        self.open_case(250_000)

    def teardown(self) -> None:
        if self.router is not None:
            self.router.close()
        if self.audit is not None:
            self.audit.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model -----------------------------------------------------------------------

    def expect(self, case: Case, verb: str, user: str, binding: Binding | None) -> str:
        """What the router must do with a verified ``user``'s ``verb`` on ``case`` now."""
        if binding is not None and (
            (binding.escalation_id, binding.level) != (case.id, case.level)
            or binding.fingerprint != case.fingerprint
            or binding.token_id in case.tokens
        ):
            return NOT_AUTHENTICATED
        if user in (AGENT, ON_BEHALF_OF) or user not in self.deciders[case.level]:
            return NOT_A_DECIDER  # final or not: a non-decider learns nothing of the case
        if case.state in FINAL:
            return FINAL_ALREADY
        if verb == "acknowledge":
            return ACCEPTED if case.state == "open" else FINAL_ALREADY
        if verb == "approve" and user in case.approvals:
            return NOT_A_DECIDER
        return ACCEPTED

    @staticmethod
    def accept(case: Case, verb: str, user: str, binding: Binding | None) -> None:
        if verb == "acknowledge":
            case.state, case.ack_pending, kind = "acknowledged", False, "acknowledged"
        elif verb == "reject":
            case.state = kind = "rejected"
        elif len(case.approvals) + 1 < REQUIRED[case.level]:
            case.approvals.append(user)
            kind = "approval"
        else:
            case.state = kind = "approved"
        case.decisions.append((kind, user, case.level))
        if binding is not None:
            case.tokens.add(binding.token_id)

    def fire_timers(self, case: Case, now: datetime) -> None:
        for _ in range(4):
            if case.state in FINAL:
                return
            ack_within = ACK_WITHIN[case.level]
            ack_due = case.level_start + ack_within if case.ack_pending and ack_within else None
            resolve_breached = case.level_start + RESOLVE_WITHIN[case.level] <= now
            ack_breached = ack_due is not None and ack_due <= now
            if not (resolve_breached or ack_breached):
                return
            if case.level + 1 < len(REQUIRED):
                case.level += 1
                case.state, case.approvals, case.level_start = "open", [], now
                case.ack_pending = ACK_WITHIN[case.level] is not None
            elif not resolve_breached:
                case.ack_pending = False
            else:
                case.state = "expired"

    def outcome(
        self, case: Case, verb: str, user: str, binding: Binding | None, act: Callable[[], object]
    ) -> None:
        """Run ``act`` (a call into the router) and check it did what the model expects."""
        expected = self.expect(case, verb, user, binding)
        refused = attempt(act)
        if isinstance(refused, NotAuthenticated | NotADecider):
            wanted = NOT_AUTHENTICATED if isinstance(refused, NotAuthenticated) else NOT_A_DECIDER
            assert expected == wanted, (expected, refused)
            assert getattr(refused, "by", user) == user
            self.refused(case, verb, user)
            return
        if isinstance(refused, HandrailError):
            assert isinstance(refused, IllegalTransition), refused
            assert expected == FINAL_ALREADY, (expected, refused)
            return
        assert expected == ACCEPTED, expected
        self.accept(case, verb, user, binding)

    def refused(self, case: Case, verb: str, by: str) -> None:
        """The refusal just made left one new ``refused`` record, naming the attempt and who."""
        case.refusals += 1
        records = self.refusal_records(case.id)
        new = [record for record in records if record.id not in self.seen]
        assert len(new) == 1, (len(new), verb, by)
        self.seen.add(new[0].id)
        assert (new[0].context["attempted"], new[0].context["by"]) == (verb, by)

    def refusal_records(self, escalation_id: str) -> list[AuditRecord]:
        assert self.audit is not None
        found = [
            r for r in self.audit.records(outcome="refused") if r.escalation_id == escalation_id
        ]
        if self.cli_audit.exists():
            with AuditLog.open(self.cli_audit, read_only=True) as cli:
                found += [
                    r for r in cli.records(outcome="refused") if r.escalation_id == escalation_id
                ]
        return found

    def untouched(self, refusal: NotAuthenticated) -> None:
        """A refusal by the authenticator: nothing reached the router, no credential echoed."""
        assert refusal.why
        for link in self.links_issued:
            assert link.token not in str(refusal)

    @staticmethod
    def people(case: Case) -> st.SearchStrategy[str]:
        """Anyone, the deciders more often, and who already approved at this level too."""
        return PEOPLE | st.sampled_from(case.approvals) if case.approvals else PEOPLE

    # -- rules: cases and time -------------------------------------------------------------

    @precondition(lambda self: len(self.cases) < 4)
    @rule(amount=st.integers(1, 10**6))
    def open_case(self, amount: int) -> None:
        assert self.router is not None
        request = ActionRequest(
            action="pay.vendor",
            principal=Principal(agent=AGENT, on_behalf_of=ON_BEHALF_OF),
            args={"vendor": "acme", "amount": amount},
        )
        opened = self.router.open(POLICY.evaluate(request))
        assert opened.request["fingerprint"] == self.router.fingerprint(request)
        self.cases.append(Case(opened.id, opened.request["fingerprint"], self.clock.now()))

    # Mostly short moves: a case should live through several decisions before it expires.
    @rule(
        delta=st.sampled_from([2 * MINUTE, 10 * MINUTE, 50 * MINUTE, 2 * HOUR, 5 * HOUR, 9 * HOUR])
    )
    def advance(self, delta: timedelta) -> None:
        assert self.router is not None
        self.clock.advance(delta)
        self.router.tick()
        for case in self.cases:
            self.fire_timers(case, self.clock.now())

    # -- rules: decisions through each channel ---------------------------------------------

    @precondition(lambda self: bool(self.cases))
    @rule(
        data=st.data(),
        verb=st.sampled_from(VERBS),
        verified=st.sampled_from(["identity", "identity", "str", "user"]),
    )
    def python_api(self, data: st.DataObject, verb: str, verified: str) -> None:
        router = self.router
        assert router is not None
        case = data.draw(st.sampled_from(self.cases))
        user = data.draw(self.people(case))
        by: object = Identity(user, method="sso", detail="idp.example.com")
        if verified == "str":
            by = user
        elif verified == "user":  # a User's own groups are the caller's say-so: never counted
            by = User(id=user, groups=["leads", "board"])

        def act() -> object:
            if verb == "acknowledge":
                return router.acknowledge(case.id, by=by)  # type: ignore[arg-type]
            return router.decide(case.id, approve=verb == "approve", by=by)  # type: ignore[arg-type]

        if verified == "identity":
            self.outcome(case, verb, user, None, act)
            return
        refused = attempt(act)
        assert isinstance(refused, NotAuthenticated), f"an unverified {verified}: {refused!r}"
        assert refused.escalation_id == case.id
        assert "Identity" in refused.why
        self.refused(case, verb, user)

    @precondition(lambda self: bool(self.cases))
    @rule(
        data=st.data(),
        verb=st.sampled_from(VERBS),
        kind=st.sampled_from(
            [
                "fresh",
                "fresh",
                "stale level",
                "other case",
                "other request",
                "forged",
                "expired",
                "reuse",
            ]
        ),
    )
    def signed_link(self, data: st.DataObject, verb: str, kind: str) -> None:
        router = self.router
        assert router is not None
        case = data.draw(st.sampled_from(self.cases))
        user = data.draw(self.people(case))
        if kind == "reuse" and self.links_issued:
            link = data.draw(st.sampled_from(self.links_issued))
            token, user = link.token, link.user
            case = next(c for c in self.cases if c.id == link.binding.escalation_id)
        else:
            link = self.issue(case, user, kind)
            token = link.token
        if kind == "forged":  # the signature's first character: a bad signature
            body, _, signature = token.partition(".")
            flipped = "A" if signature[0] != "A" else "B"
            token = f"{body}.{flipped}{signature[1:]}"
        verified = attempt(lambda: self.links.verify(token))
        if not isinstance(verified, Identity):
            assert isinstance(verified, NotAuthenticated), verified
            self.untouched(verified)
            expired = self.clock.now().timestamp() >= link.expires
            assert kind == "forged" or expired, (kind, verified.why)
            bound = "" if kind == "forged" else link.binding.escalation_id
            assert verified.escalation_id == bound
            return
        identity = verified
        assert kind != "forged"
        assert self.clock.now().timestamp() < link.expires
        binding = identity.binding
        assert binding is not None
        assert identity.user == user
        assert dataclasses.astuple(link.binding) == (
            binding.escalation_id, binding.level, binding.fingerprint, binding.token_id,
        )  # fmt: skip

        def act() -> object:
            if verb == "acknowledge":
                return router.acknowledge(case.id, by=identity)
            return router.decide(case.id, approve=verb == "approve", by=identity)

        self.outcome(case, verb, user, link.binding, act)

    def issue(self, case: Case, user: str, kind: str) -> IssuedLink:
        """A link for ``user`` to decide ``case``, or (``kind``) for something else."""
        escalation_id, level, fingerprint = case.id, case.level, case.fingerprint
        others = [c for c in self.cases if c.id != case.id]
        if kind == "stale level":
            level = 1 - case.level
        elif kind == "other case" and others:
            escalation_id, level, fingerprint = others[0].id, others[0].level, others[0].fingerprint
        elif kind == "other request":
            fingerprint = others[0].fingerprint if others else "f" * 64
        issuer, issued_at = self.links, self.clock.now()
        if kind == "expired":  # issued a link's lifetime ago
            issued_at -= LINK_TTL
            issuer = DecisionLinks(KEY, base_url=BASE_URL, ttl=LINK_TTL, clock=FakeClock(issued_at))
        token = issuer.issue(
            escalation_id=escalation_id, level=level, decider=user, fingerprint=fingerprint
        )
        nonce = json.loads(_b64(token.partition(".")[0]))["n"]
        binding = Binding(escalation_id, level, fingerprint, nonce)
        link = IssuedLink(token, user, binding, int((issued_at + LINK_TTL).timestamp()))
        if kind != "forged":  # a forged one is never the same token twice
            self.links_issued.append(link)
        return link

    @precondition(lambda self: bool(self.cases))
    @rule(
        data=st.data(),
        approve=st.booleans(),
        slack_user=st.sampled_from([*SLACK_USERS, "UNOBODY"]),
        kind=st.sampled_from(
            [
                "good",
                "good",
                "wrong secret",
                "stale timestamp",
                "stale level",
                "other request",
                "replay",
            ]
        ),
    )
    def slack_click(self, data: st.DataObject, approve: bool, slack_user: str, kind: str) -> None:
        router = self.router
        assert router is not None
        case = data.draw(st.sampled_from(self.cases))
        if kind == "replay" and self.clicks:
            click = data.draw(st.sampled_from(self.clicks))
            case = next(c for c in self.cases if c.id == click.binding.escalation_id)
        else:
            click = self.sign_click(case, approve, slack_user, kind)
        action = attempt(lambda: self.slack.verify(click.headers, click.body))
        if not isinstance(action, SlackAction):
            assert isinstance(action, NotAuthenticated), action
            self.untouched(action)
            stale = abs(self.clock.now().timestamp() - click.timestamp) > 300
            assert stale or click.kind == "wrong secret" or click.user is None, action.why
            return
        assert click.kind != "wrong secret"
        assert click.user is not None
        identity = action.identity
        assert identity.binding is not None
        assert (identity.user, identity.method, action.approve) == (
            click.user, "slack", click.approve,
        )  # fmt: skip
        assert identity.binding.token_id == click.binding.token_id
        verb = "approve" if action.approve else "reject"

        def act() -> object:
            return router.decide(action.escalation_id, approve=action.approve, by=identity)

        self.outcome(case, verb, click.user, click.binding, act)

    def sign_click(self, case: Case, approve: bool, slack_user: str, kind: str) -> SentClick:
        """What Slack sends when ``slack_user`` clicks a button of ``case``, signed as Slack."""
        self.serial += 1
        level, fingerprint = case.level, case.fingerprint
        if kind == "stale level":
            level = 1 - case.level
        elif kind == "other request":
            fingerprint = next((c.fingerprint for c in self.cases if c.id != case.id), "f" * 64)
        button = SlackInteractions.buttons(case.id, level, fingerprint)["elements"][
            0 if approve else 1
        ]
        action_ts = f"{int(self.clock.now().timestamp())}.{self.serial:06d}"
        payload = {
            "type": "block_actions",
            "user": {"id": slack_user},
            "trigger_id": f"trigger.{self.serial}",
            "actions": [
                {"action_id": button["action_id"], "value": button["value"], "action_ts": action_ts}
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        timestamp = int(self.clock.now().timestamp())
        if kind == "stale timestamp":
            timestamp -= 6 * 60
        secret = b"not-the-signing-secret" if kind == "wrong secret" else SLACK_SECRET.encode()
        digest = hmac.new(secret, f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
        click = SentClick(
            kind=kind,
            headers={
                "X-Slack-Request-Timestamp": str(timestamp),
                "X-Slack-Signature": f"v0={digest}",
            },
            body=body,
            timestamp=timestamp,
            user=SLACK_USERS.get(slack_user),
            approve=approve,
            binding=Binding(case.id, level, fingerprint, f"slack:{action_ts}"),
        )
        self.clicks.append(click)
        return click

    @precondition(lambda self: bool(self.cases))
    @rule(data=st.data(), verb=st.sampled_from(VERBS), as_another=st.booleans())
    def cli(self, data: st.DataObject, verb: str, as_another: bool) -> None:
        case = data.draw(st.sampled_from(self.cases))
        command = "ack" if verb == "acknowledge" else verb
        argv = ["escalations", command, case.id, "--store", str(self.db)]
        argv += ["--audit", str(self.cli_audit)]
        if verb != "acknowledge":
            argv += ["--reason", "checked"]
        if as_another:  # an SQLite store has no roles: never an administrator
            argv += ["--as", "maria"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        if as_another:
            assert code == 1, err.getvalue()
            assert "--as maria refused" in err.getvalue()
            self.refused(case, verb, "maria")
            return
        expected = self.expect(case, verb, ME, None)
        assert code == (0 if expected == ACCEPTED else 1), (expected, code, err.getvalue())
        if expected == ACCEPTED:
            self.accept(case, verb, ME, None)
        elif expected == FINAL_ALREADY:
            assert "cannot" in err.getvalue(), err.getvalue()
        else:
            assert expected == NOT_A_DECIDER
            assert f"{ME!r} may not decide" in err.getvalue(), err.getvalue()
            self.refused(case, verb, ME)

    @precondition(lambda self: bool(self.cases))
    @rule(
        data=st.data(),
        verb=st.sampled_from(["approve", "approve", "reject"]),
        kind=st.sampled_from(
            ["fresh", "fresh", "stale level", "other request", "forged", "expired", "reuse"]
        ),
    )
    def page_link(self, data: st.DataObject, verb: str, kind: str) -> None:
        """The approval page: a decider posts the decision to their signed link."""
        case = data.draw(st.sampled_from(self.cases))
        user = data.draw(self.people(case))
        if kind == "reuse" and self.links_issued:
            link = data.draw(st.sampled_from(self.links_issued))
            user = link.user
        else:
            link = self.issue(case, user, kind)
        token = link.token
        if kind == "forged":
            body, _, signature = token.partition(".")
            token = f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
        case = next(c for c in self.cases if c.id == link.binding.escalation_id)
        reply = self.http("POST", f"/link/{token}", data={"decision": verb, "reason": "ok"})
        assert link.token not in reply.text  # a link is never echoed back
        if kind == "forged":  # names no case worth trusting: refused, not audited
            assert reply.status_code == 403
            return
        if self.clock.now().timestamp() >= link.expires:  # signed, so its case is authentic
            assert reply.status_code == 403
            self.refused(case, verb, "")
            return
        self.expect_reply(case, verb, user, link.binding, reply)

    @precondition(lambda self: bool(self.cases))
    @rule(
        data=st.data(),
        verb=st.sampled_from(["approve", "approve", "reject"]),
        spoofed=st.sampled_from([False, False, False, True]),
    )
    def page_sso(self, data: st.DataObject, verb: str, spoofed: bool) -> None:
        """The approval page behind an SSO proxy: open the case, post the form with its token."""
        case = data.draw(st.sampled_from(self.cases))
        user = data.draw(self.people(case))
        sso = {"x-forwarded-user": user}
        if spoofed:  # the header from anywhere but the proxy
            form = {"decision": verb, "csrf": "x"}
            reply = self.http("POST", f"/cases/{case.id}/decide", headers=sso, data=form,
                              client=ELSEWHERE)  # fmt: skip
            assert reply.status_code == 403
            self.refused(case, "decide", "")
            return
        page = self.http("GET", f"/cases/{case.id}", headers=sso)
        found = CSRF.search(page.text)
        offered = (
            case.state not in FINAL
            and user in self.deciders[case.level]
            and user not in (AGENT, ON_BEHALF_OF, *case.approvals)
        )
        assert (found is not None) == offered, (user, case, page.status_code)
        form = {"decision": verb, "reason": "ok", "csrf": found.group(1) if found else ""}
        reply = self.http("POST", f"/cases/{case.id}/decide", headers=sso, data=form)
        if not offered:  # no form for them: the post is refused on the page, and audited
            assert reply.status_code == 403
            self.refused(case, verb, user)
            return
        assert self.expect(case, verb, user, None) == ACCEPTED
        assert reply.status_code == 303
        self.accept(case, verb, user, None)

    @precondition(lambda self: bool(self.cases))
    @rule(
        data=st.data(),
        approve=st.booleans(),
        slack_user=st.sampled_from([*SLACK_USERS, "UNOBODY"]),
        kind=st.sampled_from(
            ["good", "good", "wrong secret", "stale timestamp", "stale level", "replay"]
        ),
    )
    def page_slack(self, data: st.DataObject, approve: bool, slack_user: str, kind: str) -> None:
        """Slack's callback posted to the approval page's /slack/actions."""
        case = data.draw(st.sampled_from(self.cases))
        if kind == "replay" and self.clicks:
            click = data.draw(st.sampled_from(self.clicks))
            case = next(c for c in self.cases if c.id == click.binding.escalation_id)
        else:
            click = self.sign_click(case, approve, slack_user, kind)
        headers = {**click.headers, "content-type": "application/x-www-form-urlencoded"}
        reply = self.http("POST", "/slack/actions", headers=headers, content=click.body)
        stale = abs(self.clock.now().timestamp() - click.timestamp) > 300
        if stale or click.kind == "wrong secret":  # names no case worth trusting
            assert reply.status_code == 401
            return
        verb = "approve" if click.approve else "reject"
        if click.user is None:  # Slack signed it: an authentic case, an unmapped clicker
            assert reply.status_code == 401
            self.refused(case, "decide", "")
            return
        assert reply.status_code == 200
        text = reply.json()["text"]
        expected = self.expect(case, verb, click.user, click.binding)
        assert text.startswith("Case " if expected == ACCEPTED else "Refused: "), (expected, text)
        if expected == ACCEPTED:
            self.accept(case, verb, click.user, click.binding)
        elif expected != FINAL_ALREADY:
            self.refused(case, verb, click.user)

    def expect_reply(
        self, case: Case, verb: str, user: str, binding: Binding | None, reply: httpx.Response
    ) -> None:
        """The page's answer to a decision the router made: as the model expects."""
        expected = self.expect(case, verb, user, binding)
        status = {ACCEPTED: 200, FINAL_ALREADY: 409}.get(expected, 403)
        assert reply.status_code == status, (expected, reply.status_code, reply.text[-300:])
        if expected == ACCEPTED:
            self.accept(case, verb, user, binding)
        elif expected != FINAL_ALREADY:
            self.refused(case, verb, user)

    def http(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        content: bytes | None = None,
        client: str = PROXY,
    ) -> httpx.Response:
        """One request to the approval page, in process (``httpx.ASGITransport``)."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(client, 50_000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://approvals.test"
            ) as browser:
                return await browser.request(
                    method, path, headers=headers, data=data, content=content
                )

        return asyncio.run(send())

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def cases_are_as_the_model_says(self) -> None:
        if self.router is None:
            return
        for case in self.cases:
            stored = self.router.get(case.id)
            assert (stored.state.value, stored.level) == (case.state, case.level)
            assert list(stored.approvals) == case.approvals
            decisions = [
                (event.kind, event.by, event.level)
                for event in stored.history
                if event.kind in DECISION_KINDS
            ]
            assert decisions == case.decisions
            assert {event.token for event in stored.history if event.token} == case.tokens
            assert stored.allowed is (True if case.state == "approved" else
                                      None if case.state not in FINAL else False)  # fmt: skip

    @invariant()
    def only_listed_deciders_other_than_the_requester_ever_decided(self) -> None:
        """The contract itself, read off the stored cases alone (the model aside)."""
        if self.router is None:
            return
        for case in self.cases:
            stored = self.router.get(case.id)
            approvers: set[tuple[str | None, int]] = set()
            for event in stored.history:
                if event.kind not in DECISION_KINDS:
                    continue
                assert event.by is not None
                assert event.by not in (AGENT, ON_BEHALF_OF)
                assert event.by in self.deciders[event.level]
                assert event.via, event  # how the decider was verified is always recorded
                if event.kind in ("approval", "approved"):
                    assert (event.by, event.level) not in approvers  # four eyes: two people
                    approvers.add((event.by, event.level))

    @invariant()
    def every_router_refusal_left_one_record(self) -> None:
        if self.router is None:
            return
        for case in self.cases:
            assert len(self.refusal_records(case.id)) == case.refusals


def attempt(act: Callable[[], object]) -> object:
    """What ``act`` returned, or the ``HandrailError`` it raised (returned, not raised)."""
    try:
        return act()
    except HandrailError as exc:
        return exc


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_no_decision_without_a_verified_listed_decider_on_any_channel() -> None:
    run_state_machine_as_test(
        DecisionChannels,
        settings=settings(
            max_examples=50,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
