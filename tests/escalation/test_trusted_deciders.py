"""Who may decide: only a verified ``Identity``, listed by the router's own directory, never the
agent or the user it acts for, as many different people as the level requires, and a signed
link only for the case, level and request it was issued for, once.  Every refusal is audited."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from handrail import ActionRequest, Decision, Policy, Principal, User
from handrail._text import printable
from handrail.approvals import Identity, LinkBinding
from handrail.audit import AuditLog, AuditRecord
from handrail.escalation import (
    Escalation,
    EscalationRouter,
    EscalationState,
    EscalationStore,
    IllegalTransition,
    Level,
    MemoryStore,
    NotADecider,
    NotAuthenticated,
    Route,
    load_routes,
)
from handrail.escalation._sqlite import SQLiteStore
from handrail.testing import FakeClock

T0 = datetime(2025, 1, 1, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)

FINANCE = Route(
    name="finance",
    levels=(
        Level(
            name="controllers",
            deciders=("maria", "alice", "bot", "group:leads"),
            ack_within=HOUR,
            resolve_within=4 * HOUR,
        ),
        Level(name="cfo", deciders="group:cfo", resolve_within=8 * HOUR),
    ),
)
GROUPS = {"leads": ["lena", "li"], "cfo": ["carla"]}
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "pay", "effect": "allow", "actions": "pay.*"},
            {
                "id": "big-payment",
                "effect": "escalate",
                "actions": "pay.*",
                "escalate_to": "finance",
            },
        ]
    }
)


def decision(amount: int = 250_000) -> Decision:
    """``bot`` paying for ``alice``: both are listed deciders, so only four eyes refuses them."""
    request = ActionRequest(
        action="pay.vendor",
        principal=Principal(agent="bot", on_behalf_of="alice"),
        args={"vendor": "acme", "amount": amount},
    )
    return POLICY.evaluate(request)


def verified(user: str, binding: LinkBinding | None = None) -> Identity:
    return Identity(user, method="sso", detail="idp.example.com", binding=binding)


def refusals(audit: AuditLog, escalation_id: str) -> list[AuditRecord]:
    return [
        r for r in audit.records() if r.escalation_id == escalation_id and r.outcome == "refused"
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog.memory()


@pytest.fixture
def store() -> EscalationStore:
    return MemoryStore()


def make_router(
    store: EscalationStore,
    clock: FakeClock,
    audit: AuditLog,
    *,
    routes: tuple[Route, ...] = (FINANCE,),
    groups: dict[str, list[str]] | None = None,
) -> EscalationRouter:
    return EscalationRouter(
        routes, store, clock=clock, audit=audit, groups=GROUPS if groups is None else groups
    )


@pytest.fixture
def router(store: EscalationStore, clock: FakeClock, audit: AuditLog) -> EscalationRouter:
    return make_router(store, clock, audit)


# --- a verified identity, nothing else ---------------------------------------------------


def test_a_free_string_or_user_is_refused_and_audited_with_the_name_escaped(
    router: EscalationRouter, audit: AuditLog
) -> None:
    """A bare id (a listed decider's, even), a User or None is no identity: NotAuthenticated."""
    case = router.open(decision())
    forged = "maria\x1b[2J\u202e"
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("approve", lambda: router.approve(case.id, by="maria")),  # type: ignore[arg-type]
        ("reject", lambda: router.reject(case.id, by=forged)),  # type: ignore[arg-type]
        ("acknowledge", lambda: router.acknowledge(case.id, by=User(id="maria"))),  # type: ignore[arg-type]
        ("approve", lambda: router.decide(case.id, approve=True, by=None)),  # type: ignore[arg-type]
    ]
    for _, attempt in attempts:
        with pytest.raises(NotAuthenticated) as caught:
            attempt()
        assert caught.value.escalation_id == case.id
        assert "Identity" in caught.value.why
    assert router.get(case.id) == case
    records = refusals(audit, case.id)
    assert [r.context["attempted"] for r in records] == [a for a, _ in attempts]
    assert [r.context["by"] for r in records] == ["maria", printable(forged), "maria", "NoneType"]
    assert "\x1b" not in records[1].context["by"]
    assert "\\x1b" in records[1].context["by"]
    assert all(r.context["authenticated"] is False for r in records)
    assert all(r.action == "pay.vendor" and r.context["level"] == 0 for r in records)


def test_a_users_own_groups_no_longer_widen(router: EscalationRouter, clock: FakeClock) -> None:
    """``User(groups={"cfo"})`` at the CFO level: refused; only the router's cfo member decides."""
    case = router.open(decision())
    clock.advance(HOUR)
    router.tick()
    assert router.get(case.id).level == 1
    with pytest.raises(NotAuthenticated):
        router.approve(case.id, by=User(id="mallory", groups=frozenset({"cfo"})))  # type: ignore[arg-type]
    with pytest.raises(NotADecider):
        router.approve(case.id, by=verified("mallory"))
    assert router.approve(case.id, by=verified("carla")).decided_by == "carla"


# --- the router's directory is authoritative -----------------------------------------------


def test_a_decider_missing_from_this_routers_groups_is_refused(
    store: EscalationStore, clock: FakeClock, audit: AuditLog
) -> None:
    """The case's snapshot lists lena (the opening router's groups); a router whose directory no
    longer has her refuses her, audited.  Its own members still decide."""
    opener = make_router(store, clock, audit)
    case = opener.open(decision())
    assert "lena" in case.deciders
    current = make_router(store, clock, audit, groups={"leads": ["li"], "cfo": ["carla"]})
    with pytest.raises(NotADecider) as caught:
        current.approve(case.id, by=verified("lena"))
    assert "lena" not in caught.value.allowed
    assert refusals(audit, case.id)[-1].context["by"] == "lena"
    assert current.approve(case.id, by=verified("li")).decided_by == "li"


def test_a_tampered_snapshot_does_not_widen(
    store: EscalationStore, router: EscalationRouter
) -> None:
    """Whoever writes the store adds mallory to the case's deciders: the router still refuses."""
    case = router.open(decision())
    store.update(
        case.id,
        lambda e: (e.changed(deciders=(*e.deciders, "mallory")), []),
    )
    assert "mallory" in router.get(case.id).deciders
    with pytest.raises(NotADecider):
        router.approve(case.id, by=verified("mallory"))


def test_a_snapshot_is_still_required_when_the_directory_lists_the_user(
    store: EscalationStore, clock: FakeClock, audit: AuditLog
) -> None:
    """Joined the group after the level began: not in the snapshot, so not a decider there."""
    case = make_router(store, clock, audit).open(decision())
    joined = make_router(store, clock, audit, groups={**GROUPS, "leads": ["lena", "li", "lars"]})
    with pytest.raises(NotADecider):
        joined.acknowledge(case.id, by=verified("lars"))


# --- four eyes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "why"),
    [("alice", "the user the agent acts for"), ("bot", "the agent that asked")],
)
def test_the_requester_and_the_agent_never_decide_their_own_case(
    router: EscalationRouter, audit: AuditLog, who: str, why: str
) -> None:
    """Both are listed deciders of the level; four eyes refuses them anyway, audited."""
    case = router.open(decision())
    for act in (router.acknowledge, router.approve, router.reject):
        with pytest.raises(NotADecider) as caught:
            act(case.id, by=verified(who))
        assert caught.value.why.startswith(why)
        assert why in str(caught.value)
    assert router.get(case.id) == case
    records = refusals(audit, case.id)
    assert [r.context["attempted"] for r in records] == ["acknowledge", "approve", "reject"]
    assert all(r.context["by"] == who and r.context["authenticated"] for r in records)
    assert all(r.context["via"] == "sso idp.example.com" for r in records)


def test_not_a_decider_keeps_its_old_signature() -> None:
    refusal = NotADecider("e-1", "mallory", 0, ("maria",))
    assert (refusal.why, refusal.allowed) == ("", ("maria",))
    assert "'mallory' may not decide at level 0; the deciders are: maria" in str(refusal)


# --- required approvals --------------------------------------------------------------------------

TWO = FINANCE.model_copy(
    update={
        "levels": (
            FINANCE.levels[0].model_copy(update={"required_approvals": 2}),
            FINANCE.levels[1],
        )
    }
)


def test_two_required_approvals_need_two_different_people(
    store: EscalationStore, clock: FakeClock, audit: AuditLog
) -> None:
    router = make_router(store, clock, audit, routes=(TWO,))
    case = router.open(decision())
    first = router.approve(case.id, by=verified("maria"), reason="ok")
    assert (first.state, first.allowed, first.approvals) == (EscalationState.OPEN, None, ("maria",))
    assert (first.history[-1].kind, first.history[-1].by) == ("approval", "maria")
    with pytest.raises(NotADecider) as caught:
        router.approve(case.id, by=verified("maria"))
    assert caught.value.why == "already approved at this level"
    assert refusals(audit, case.id)[-1].context["by"] == "maria"
    final = router.approve(case.id, by=verified("lena"))
    assert (final.state, final.allowed, final.decided_by) == (
        EscalationState.APPROVED,
        True,
        "lena",
    )
    assert final.approvals == ("maria",)
    kinds = [r.context["event"] for r in audit.records() if r.escalation_id == case.id]
    assert kinds == ["opened", "approval", "refused", "approved"]


def test_a_rejection_after_one_approval_is_final(
    store: EscalationStore, clock: FakeClock, audit: AuditLog
) -> None:
    router = make_router(store, clock, audit, routes=(TWO,))
    case = router.open(decision())
    router.approve(case.id, by=verified("maria"))
    rejected = router.reject(case.id, by=verified("li"), reason="no")
    assert (rejected.state, rejected.allowed) == (EscalationState.REJECTED, False)


def test_approvals_reset_when_the_level_changes(
    store: EscalationStore, clock: FakeClock, audit: AuditLog
) -> None:
    two_at_cfo = TWO.model_copy(
        update={
            "levels": (
                TWO.levels[0],
                Level(
                    name="cfo",
                    deciders=("carla", "maria"),
                    required_approvals=2,
                    resolve_within=8 * HOUR,
                ),
            )
        }
    )
    router = make_router(store, clock, audit, routes=(two_at_cfo,))
    case = router.open(decision())
    router.approve(case.id, by=verified("maria"))
    clock.advance(HOUR)
    router.tick()
    moved = router.get(case.id)
    assert (moved.level, moved.approvals) == (1, ())
    # maria's approval at the first level does not count at the second: she approves again
    assert router.approve(case.id, by=verified("maria")).approvals == ("maria",)
    assert router.approve(case.id, by=verified("carla")).state is EscalationState.APPROVED


def test_this_routers_stricter_route_decides_how_many_approvals(
    store: EscalationStore, clock: FakeClock, audit: AuditLog
) -> None:
    """A case stored under a one-approval route still needs two where this router says two."""
    case = make_router(store, clock, audit).open(decision())
    stricter = make_router(store, clock, audit, routes=(TWO,))
    assert stricter.approve(case.id, by=verified("maria")).state is EscalationState.OPEN


def test_required_approvals_are_checked() -> None:
    with pytest.raises(ValidationError, match="could never be approved"):
        Level(deciders=("maria", "li"), required_approvals=3, resolve_within=HOUR)
    for bad in (0, 11):
        with pytest.raises(ValidationError):
            Level(deciders="group:leads", required_approvals=bad, resolve_within=HOUR)
    assert Level(deciders="group:leads", required_approvals=10, resolve_within=HOUR)


def test_a_routes_file_sets_required_approvals(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes:\n"
        "  - name: finance\n"
        "    levels:\n"
        "      - deciders: [group:controllers]\n"
        "        resolve_within: 4h\n"
        "        required_approvals: 2\n"
        "groups:\n"
        "  controllers: [maria, li]\n",
        encoding="utf-8",
    )
    assert load_routes(path).routes[0].levels[0].required_approvals == 2
    path.write_text(path.read_text().replace("required_approvals: 2", "required_approvals: 0"))
    with pytest.raises(Exception, match=r"required_approvals.*1 to 10"):
        load_routes(path)


# --- signed-link bindings ------------------------------------------------------------------------


def test_a_link_decides_once_for_its_case_level_and_request(
    router: EscalationRouter, audit: AuditLog
) -> None:
    case = router.open(decision())
    other = router.open(decision(amount=12))
    fingerprint = case.request["fingerprint"]
    assert fingerprint != other.request["fingerprint"]

    def link(escalation_id: str = case.id, level: int = 0, fp: str = fingerprint) -> Identity:
        return verified("maria", LinkBinding(escalation_id, level, fp, token_id="tok-1"))

    refused = [
        (link(escalation_id=other.id), "link for another case/level"),
        (link(level=1), "link for another case/level"),
        (link(fp=other.request["fingerprint"]), "request changed"),
    ]
    for identity, why in refused:
        with pytest.raises(NotAuthenticated) as caught:
            router.approve(case.id, by=identity)
        assert caught.value.why == why
    assert router.get(case.id) == case
    approved = router.approve(case.id, by=link())
    event = approved.history[-1]
    assert (event.kind, event.token, event.via) == (
        "approved",
        "tok-1",
        "sso idp.example.com token tok-1",
    )
    decided = [r for r in audit.records() if r.escalation_id == case.id and r.outcome == "approved"]
    assert decided[0].context["via"] == "sso idp.example.com token tok-1"
    records = refusals(audit, case.id)
    assert [r.context["by"] for r in records] == ["maria"] * 3


def test_a_used_token_is_refused(store: EscalationStore, clock: FakeClock, audit: AuditLog) -> None:
    """Two approvals needed: the first link's token cannot give the second (even for another)."""
    router = make_router(store, clock, audit, routes=(TWO,))
    case = router.open(decision())
    binding = LinkBinding(case.id, 0, case.request["fingerprint"], token_id="tok-1")
    router.approve(case.id, by=verified("maria", binding))
    with pytest.raises(NotAuthenticated) as caught:
        router.approve(case.id, by=verified("lena", binding))
    assert caught.value.why == "link already used"
    assert router.get(case.id).approvals == ("maria",)
    assert refusals(audit, case.id)[-1].context["attempted"] == "approve"


def test_two_threads_racing_one_token_on_sqlite_one_wins(tmp_path: Path, clock: FakeClock) -> None:
    """Each thread has its own router and connection; the token check runs in the write lock."""
    path = tmp_path / "cases.db"
    audit = AuditLog.memory()
    stores = [SQLiteStore(path), SQLiteStore(path)]
    three = TWO.model_copy(
        update={"levels": (TWO.levels[0].model_copy(update={"required_approvals": 3}),)}
    )
    routers = [make_router(s, clock, audit, routes=(three,)) for s in stores]
    case = routers[0].open(decision())
    binding = LinkBinding(case.id, 0, case.request["fingerprint"], token_id="tok-race")
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def use(router: EscalationRouter, user: str) -> None:
        start.wait()
        try:
            outcomes.append(router.approve(case.id, by=verified(user, binding)))
        except NotAuthenticated as refusal:
            outcomes.append(refusal.why)

    threads = [
        threading.Thread(target=use, args=(r, u))
        for r, u in zip(routers, ("maria", "lena"), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes if isinstance(o, Escalation)]
    assert len(won) == 1
    assert outcomes.count("link already used") == 1
    stored = routers[0].get(case.id)
    assert [e.token for e in stored.history].count("tok-race") == 1
    assert len(stored.approvals) == 1
    for s in stores:
        s.close()


def test_a_refusal_made_before_the_router_is_audited_through_record_refusal(
    router: EscalationRouter, audit: AuditLog
) -> None:
    """An approval service that refuses a credential itself (an expired link) records it with
    ``record_refusal``: one `refused` record on the case, the offered name escaped, nothing
    changed; a case that does not exist gets none."""
    case = router.open(decision())
    expired = NotAuthenticated(case.id, "expired link")
    router.record_refusal(case.id, expired, attempted="approve", by="maria\x1b[2J", via="link")
    router.record_refusal("no-such-case", expired, attempted="approve", by="maria")
    [record] = refusals(audit, case.id)
    assert (record.context["by"], record.context["attempted"], record.context["via"]) == (
        printable("maria\x1b[2J"), "approve", "link",
    )  # fmt: skip
    assert (record.context["authenticated"], record.context["level"]) == (False, 0)
    assert record.reason is not None
    assert "expired link" in record.reason
    assert len([r for r in audit.records() if r.outcome == "refused"]) == 1
    assert router.get(case.id) == case


def test_a_non_decider_on_a_final_case_is_refused_as_one_and_audited(
    router: EscalationRouter, audit: AuditLog
) -> None:
    """On a decided case an outsider gets NotADecider (audited), not the case's state; a listed
    decider gets IllegalTransition (nothing to decide, nothing recorded)."""
    case = router.open(decision())
    router.approve(case.id, by=verified("maria"))
    with pytest.raises(NotADecider):
        router.reject(case.id, by=verified("mallory"))
    with pytest.raises(NotADecider, match="agent that asked"):
        router.reject(case.id, by=verified("bot"))
    assert [r.context["by"] for r in refusals(audit, case.id)] == ["mallory", "bot"]
    with pytest.raises(IllegalTransition):
        router.reject(case.id, by=verified("lena"))
    assert len(refusals(audit, case.id)) == 2
