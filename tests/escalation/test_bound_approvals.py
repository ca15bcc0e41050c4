"""An approval is bound to the exact action: a keyed fingerprint of all the policy reads.

The router key (``key=`` or ``HANDRAIL_ROUTER_KEY``), the fingerprint over
every field a condition can read, the key kept out of everything shown, and
the guard refusing to resume a case for any request that differs from the
one approved, or that the policy now sends to another rule or route.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from handrail import (
    ActionRequest,
    ConfigurationError,
    EscalationRequired,
    PermissionDenied,
    Policy,
    Principal,
    User,
)
from handrail._encoding import args_digest, encode_revealing, plain
from handrail.approvals import Identity
from handrail.audit import AuditLog
from handrail.escalation import (
    ROUTER_KEY_ENV,
    EscalationRouter,
    Level,
    MemoryStore,
    Route,
    request_fingerprint,
    resuming,
)
from handrail.escalation import _fingerprint as fingerprint_module
from handrail.guard import Guard
from handrail.policy import Resource
from handrail.testing import FakeClock, action_requests, principals, resources, users

KEY = "bound-approvals-test-key-0123456789abcdef"
OTHER_KEY = "another-router-key-of-enough-length-0123"

SALES_LEADS = Route(
    name="sales-leads", levels=(Level(deciders=("dora",), resolve_within=timedelta(hours=4)),)
)
CFO = Route(name="cfo", levels=(Level(deciders=("dora",), resolve_within=timedelta(hours=4)),))
ANYONE = Route(name="any", levels=(Level(deciders=("dora",), resolve_within=timedelta(hours=4)),))


def _approve(router: EscalationRouter, escalation_id: str) -> None:
    """Approve as a decider the router accepts: the one place that says how."""
    router.approve(escalation_id, by=Identity("dora", method="test"))


def make_router(*routes: Route, key: str | bytes | SecretStr | None = KEY) -> EscalationRouter:
    return EscalationRouter(routes or (SALES_LEADS, CFO, ANYONE), MemoryStore(), clock=FakeClock(),
                            key=key)  # fmt: skip


ESCALATE_ALL = Policy.from_yaml(
    """
rules:
  - {id: base, effect: allow, actions: ["*"]}
  - {id: everything, effect: escalate, actions: ["*"], escalate_to: any}
"""
)

BOT = Principal(
    agent="sales-bot",
    roles=["writer"],
    attributes={"tier": "gold"},
    on_behalf_of=User(
        id="alice", roles=["sales_rep"], groups=["sales"], attributes={"team": "emea"}
    ),
)
REQUEST = ActionRequest(
    principal=BOT,
    action="crm.deal.discount",
    resource=Resource(type="deal", id="d-1", attributes={"region": "eu"}),
    args={"deal": "d-1", "pct": 30},
    context={"environment": "staging"},
)


# --- the router key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", [KEY, KEY.encode(), SecretStr(KEY)], ids=["str", "bytes", "SecretStr"]
)
def test_a_key_in_any_form_gives_the_same_fingerprints(key: str | bytes | SecretStr) -> None:
    """A str key is its UTF-8 bytes; SecretStr holds the same key."""
    assert make_router(key=key).fingerprint(REQUEST) == make_router(key=KEY).fingerprint(REQUEST)


def test_the_fingerprint_is_an_hmac_under_a_sub_key_of_the_router_key() -> None:
    """HMAC(key, "handrail/fingerprint/v1") keys it: the key itself may serve other purposes."""
    sub_key = hmac.new(KEY.encode(), b"handrail/fingerprint/v1", hashlib.sha256).digest()
    found = make_router().fingerprint(REQUEST)
    assert found == request_fingerprint(REQUEST, key=sub_key)
    assert found.startswith("hmac-sha256:")
    assert found != request_fingerprint(REQUEST, key=KEY.encode())  # the raw key is not used
    assert found != make_router(key=OTHER_KEY).fingerprint(REQUEST)


def test_without_a_key_the_router_reads_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``key=None`` reads HANDRAIL_ROUTER_KEY when the router is built, not later."""
    monkeypatch.setenv(ROUTER_KEY_ENV, KEY)
    router = make_router(key=None)
    monkeypatch.setenv(ROUTER_KEY_ENV, OTHER_KEY)
    assert router.fingerprint(REQUEST) == make_router(key=KEY).fingerprint(REQUEST)
    monkeypatch.delenv(ROUTER_KEY_ENV)
    assert router.fingerprint(REQUEST) == make_router(key=KEY).fingerprint(REQUEST)


@pytest.mark.parametrize("doing", ["open", "preview", "fingerprint"])
def test_opening_previewing_or_fingerprinting_without_a_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, doing: str
) -> None:
    """No key, no case: the error says how to set one; nothing is stored."""
    monkeypatch.delenv(ROUTER_KEY_ENV)
    router = make_router(key=None)
    decision = ESCALATE_ALL.evaluate(REQUEST)
    calls: dict[str, Callable[[], object]] = {
        "open": lambda: router.open(decision),
        "preview": lambda: router.preview(decision),
        "fingerprint": lambda: router.fingerprint(REQUEST),
    }
    with pytest.raises(ConfigurationError, match=rf"key=.*{ROUTER_KEY_ENV}") as refused:
        calls[doing]()
    assert f"EscalationRouter.{doing}" in str(refused.value)
    assert router.list() == []


def test_reading_and_deciding_need_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI and read-only uses build routers without a key: they never fingerprint."""
    store = MemoryStore()
    opened = EscalationRouter([ANYONE], store, key=KEY).open(ESCALATE_ALL.evaluate(REQUEST))
    monkeypatch.delenv(ROUTER_KEY_ENV)
    keyless = EscalationRouter([ANYONE], store)
    assert [case.id for case in keyless.list()] == [opened.id]
    _approve(keyless, opened.id)
    assert keyless.get(opened.id).allowed is True


@pytest.mark.parametrize(
    "key",
    ["x" * 31, b"\x00" * 16, SecretStr("s3cr3t-k3y"), "é" * 15],
    ids=["31", "16b", "secret", "utf8"],
)
def test_a_short_key_is_refused_without_showing_it(key: str | bytes | SecretStr) -> None:
    """Fewer than 32 bytes (counted after UTF-8) is refused; the message never holds the key."""
    with pytest.raises(ConfigurationError, match="at least 32 bytes") as refused:
        make_router(key=key)
    shown = key.get_secret_value() if isinstance(key, SecretStr) else key
    assert str(shown) not in str(refused.value)
    assert "EscalationRouter: key" in str(refused.value)


def test_a_short_key_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variable is named, its value is not."""
    monkeypatch.setenv(ROUTER_KEY_ENV, "hunter2-but-longer")
    with pytest.raises(ConfigurationError, match=rf"\${ROUTER_KEY_ENV} is too short") as refused:
        make_router(key=None)
    assert "hunter2" not in str(refused.value)


def test_a_key_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="got int"):
        make_router(key=12345678901234567890123456789012345)  # type: ignore[arg-type]


def test_the_key_is_never_shown() -> None:
    """Not in repr, not in any attribute's repr, not in an error about a case."""
    router = make_router()
    sub_key = hmac.new(KEY.encode(), b"handrail/fingerprint/v1", hashlib.sha256).digest()
    shown = repr(router) + repr(vars(router))
    for secret in (KEY, KEY.encode().hex(), repr(KEY.encode()), sub_key.hex(), repr(sub_key)):
        assert secret not in shown
    with pytest.raises(ConfigurationError) as refused:
        router.open(ESCALATE_ALL.evaluate(REQUEST.model_copy(update={"args": {"a": np.ones(2)}})))
    assert KEY not in str(refused.value)


def test_request_fingerprint_refuses_a_short_key() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        request_fingerprint(REQUEST, key=b"short")


# --- what the fingerprint covers ---------------------------------------------------------------

CHANGES: dict[str, Callable[[ActionRequest], ActionRequest]] = {}


def change(name: str) -> Callable[[Callable[[ActionRequest], ActionRequest]], Any]:
    def register(fn: Callable[[ActionRequest], ActionRequest]) -> Any:
        CHANGES[name] = fn
        return fn

    return register


def _principal(request: ActionRequest, **update: Any) -> ActionRequest:
    return request.model_copy(update={"principal": request.principal.model_copy(update=update)})


def _user(request: ActionRequest, **update: Any) -> ActionRequest:
    user = request.principal.on_behalf_of
    assert user is not None
    return _principal(request, on_behalf_of=user.model_copy(update=update))


def _resource(request: ActionRequest, **update: Any) -> ActionRequest:
    assert request.resource is not None
    return request.model_copy(update={"resource": request.resource.model_copy(update=update)})


change("action")(lambda r: r.model_copy(update={"action": "crm.deal.update"}))
change("agent")(lambda r: _principal(r, agent="other-bot"))
change("agent roles")(lambda r: _principal(r, roles=frozenset({"writer", "admin"})))
change("agent attributes")(lambda r: _principal(r, attributes={"tier": "silver"}))
change("user")(lambda r: _principal(r, on_behalf_of=None))
change("user id")(lambda r: _user(r, id="bob"))
change("user roles")(lambda r: _user(r, roles=frozenset({"sales_rep", "sales_director"})))
change("user groups")(lambda r: _user(r, groups=frozenset()))
change("user attributes")(lambda r: _user(r, attributes={"team": "apac"}))
change("resource")(lambda r: r.model_copy(update={"resource": None}))
change("resource type")(lambda r: _resource(r, type="contact"))
change("resource id")(lambda r: _resource(r, id="d-2"))
change("resource attributes")(lambda r: _resource(r, attributes={"region": "us"}))
change("args")(lambda r: r.model_copy(update={"args": {"deal": "d-1", "pct": 31}}))
change("context")(lambda r: r.model_copy(update={"context": {"environment": "production"}}))
change("new context key")(
    lambda r: r.model_copy(update={"context": {**r.context, "approved": True}})
)


@pytest.mark.parametrize("field", list(CHANGES))
def test_the_fingerprint_covers_every_field_the_policy_can_read(field: str) -> None:
    """Change any one of them and the fingerprint changes."""
    router = make_router()
    assert router.fingerprint(CHANGES[field](REQUEST)) != router.fingerprint(REQUEST)


@pytest.mark.parametrize(
    ("kind", "request_with"),
    [
        ("context key", lambda bad: REQUEST.model_copy(update={"context": {"rows": bad}})),
        ("resource attribute", lambda bad: _resource(REQUEST, attributes={"rows": bad})),
        ("user attribute", lambda bad: _user(REQUEST, attributes={"rows": bad})),
        ("agent attribute", lambda bad: _principal(REQUEST, attributes={"rows": bad})),
    ],
)
def test_a_value_it_cannot_tell_apart_anywhere_is_refused(
    kind: str, request_with: Callable[[Any], ActionRequest]
) -> None:
    """Context and attributes are refused as arguments are: no case for an unreadable value."""

    class Shown:
        def __repr__(self) -> str:
            return "<rows>"

    router = make_router()
    for bad in (np.array([1, 2]), [Shown()]):
        with pytest.raises(ConfigurationError, match=f"{kind} rows cannot be fingerprinted"):
            router.open(ESCALATE_ALL.evaluate(request_with(bad)))
    assert router.list() == []


# --- never a bare hash of secrets --------------------------------------------------------------

CODE = "482913"


def _old_fingerprint_data(request: ActionRequest) -> dict[str, Any]:
    """What handrail hashed, unkeyed, before the fingerprint was keyed (frozen here on purpose)."""
    principal, resource = request.principal, request.resource
    user = principal.on_behalf_of
    return {
        "action": request.action,
        "agent": principal.agent,
        "on_behalf_of": None if user is None else user.id,
        "resource": None if resource is None else {"type": resource.type, "id": resource.id},
        "args": request.args,
    }


def _old_fingerprint(request: ActionRequest) -> str:
    return args_digest(_old_fingerprint_data(request))


# The tenth of the code space holding the code: the attack (all 10**6 codes, 24 s
# there) a tenth as long.  Searching the rest would add nothing: without a SHA-256 collision
# only the true code can match, and it is in here.
_CANDIDATES = range(int(CODE[0]) * 10**5, (int(CODE[0]) + 1) * 10**5)


def _crack(targets: dict[str, str], template: dict[str, str]) -> dict[str, list[str]]:
    """Every candidate code whose bare SHA-256, in each scheme's encoding, is one of ``targets``.

    ``template`` maps a scheme to the encoded request with the code in it:
    what someone holding a copy of the store, but not the key, can try.
    """
    wanted = {bytes.fromhex(digest.split(":", 1)[1]): name for name, digest in targets.items()}
    found: dict[str, list[str]] = {name: [] for name in targets}
    for text in template.values():
        head, tail = (part.encode() for part in text.split(CODE))
        start = hashlib.sha256(head)
        for n in _CANDIDATES:
            guess = b"%06d" % n
            h = start.copy()
            h.update(guess)
            h.update(tail)
            name = wanted.get(h.digest())
            if name is not None:
                found[name].append(guess.decode())
    return found


def test_a_secret_in_a_request_cannot_be_recovered_from_the_stored_fingerprint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The old bare hash gave a 6-digit code away; the keyed fingerprint does not.

    The same search, over both unkeyed encodings (the old scheme's, and the
    very data the keyed fingerprint covers), finds the code from the old
    fingerprint (so the search works) and nothing from the stored one.  With
    that data and the right sub-key the stored value is recomputed (so the
    search had everything but the key); with another key it is not.
    """
    hashed: list[Any] = []
    keyed = fingerprint_module.args_digest

    def spy(data: Any, *, key: bytes | None = None) -> str:
        hashed.append(data)
        return keyed(data, key=key)

    monkeypatch.setattr(fingerprint_module, "args_digest", spy)
    request = REQUEST.model_copy(
        update={"action": "auth.mfa.confirm", "args": {"user": "alice", "otp": SecretStr(CODE)}}
    )
    router = make_router()
    case = router.open(ESCALATE_ALL.evaluate(request))
    stored = case.request["fingerprint"]
    assert CODE not in case.model_dump_json()  # masked in the arguments, not spelt out anywhere
    (data,) = hashed[-1:]

    templates = {
        "old": encode_revealing(plain(_old_fingerprint_data(request))),
        "covered": encode_revealing(plain(data)),
    }
    assert all(text.count(CODE) == 1 for text in templates.values())
    found = _crack({"old": _old_fingerprint(request), "stored": stored}, templates)
    assert found == {"old": [CODE], "stored": []}
    sub_key = hmac.new(KEY.encode(), b"handrail/fingerprint/v1", hashlib.sha256).digest()
    assert args_digest(data, key=sub_key) == stored
    assert args_digest(data, key=OTHER_KEY.encode()) != stored


# --- the guard: resuming refuses what the approval does not cover -----------------------------


class Tool:
    """A guarded write that records each run, so 'never ran' can be checked."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.ran: list[ActionRequest] = []

    def __call__(self, request: ActionRequest) -> str:
        return self.guard.call(request, lambda: self.ran.append(request) or "done", write=True)


def escalated(tool: Tool, request: ActionRequest) -> str:
    with pytest.raises(EscalationRequired) as pending:
        tool(request)
    assert pending.value.escalation_id is not None
    return pending.value.escalation_id


BY_ENVIRONMENT = Policy.from_yaml(
    """
rules:
  - {id: deals, effect: allow, actions: [crm.deal.discount]}
  - id: discount-staging
    effect: escalate
    actions: [crm.deal.discount]
    when: {context.environment: staging}
    escalate_to: sales-leads
  - id: discount-production
    effect: escalate
    actions: [crm.deal.discount]
    when: {context.environment: production}
    escalate_to: cfo
"""
)


def test_an_approval_in_staging_never_runs_the_call_in_production() -> None:
    """Sales leads approved it in staging; in production the CFO must: resuming is refused."""
    audit = AuditLog.memory()
    router = make_router()
    tool = Tool(Guard(BY_ENVIRONMENT, audit=audit, escalations=router))
    case = escalated(tool, REQUEST)
    assert router.get(case).route.name == "sales-leads"
    _approve(router, case)
    production = REQUEST.model_copy(update={"context": {"environment": "production"}})
    with resuming(case), pytest.raises(PermissionDenied) as refused:
        tool(production)
    reason = str(refused.value)
    assert "the rule" in reason
    assert "the route" in reason
    assert "the request" in reason
    assert tool.ran == []
    last = list(audit.records())[-1]
    assert (last.outcome, last.escalation_id) == ("denied", case)
    assert "does not cover this call" in (last.reason or "")
    with resuming(case):
        assert tool(REQUEST) == "done"  # the approved call itself still runs, once
    assert tool.ran == [REQUEST]


@pytest.mark.parametrize(
    "field",
    [
        "agent roles",
        "agent attributes",
        "user roles",
        "user groups",
        "user attributes",
        "resource attributes",
        "context",
        "new context key",
    ],
)
def test_an_approval_never_runs_a_call_that_differs_where_the_fingerprint_once_looked_away(
    field: str,
) -> None:
    """Same rule, same route, a different request: refused, naming the request."""
    router = make_router()
    tool = Tool(Guard(ESCALATE_ALL, escalations=router))
    case = escalated(tool, REQUEST)
    _approve(router, case)
    with resuming(case), pytest.raises(PermissionDenied, match=r"the request \(action"):
        tool(CHANGES[field](REQUEST))
    assert tool.ran == []


def _policy(rule: str, route: str) -> Policy:
    return Policy.from_yaml(
        "rules:\n  - {id: base, effect: allow, actions: ['*']}\n"
        f"  - {{id: {rule}, effect: escalate, actions: ['*'], escalate_to: {route}}}\n"
    )


@pytest.mark.parametrize(
    ("rule", "route", "differs"),
    [("renamed", "sales-leads", "the rule"), ("discounts", "cfo", "the route")],
)
def test_a_policy_that_now_decides_otherwise_refuses_the_approved_call(
    rule: str, route: str, differs: str
) -> None:
    """The same request, re-evaluated under a changed policy: another rule or route refuses."""
    router = make_router()
    case = escalated(Tool(Guard(_policy("discounts", "sales-leads"), escalations=router)), REQUEST)
    _approve(router, case)
    tool = Tool(Guard(_policy(rule, route), escalations=router))
    with resuming(case), pytest.raises(PermissionDenied, match=f"{differs} differs"):
        tool(REQUEST)
    assert tool.ran == []


def test_a_case_whose_effect_differs_is_refused() -> None:
    """A stored decision that was not an escalation never lets the call run."""
    router = make_router()
    tool = Tool(Guard(ESCALATE_ALL, escalations=router))
    case = escalated(tool, REQUEST)
    _approve(router, case)

    def tamper(current: Any) -> Any:
        decision = {**current.decision, "effect": "allow"}
        return current.model_copy(update={"decision": decision, "version": current.version + 1}), []

    router.store.update(case, tamper)
    with resuming(case), pytest.raises(PermissionDenied, match="the effect differs"):
        tool(REQUEST)
    assert tool.ran == []


def test_a_case_fingerprinted_under_another_key_or_none_fails_closed() -> None:
    """A case stored under another key, or unkeyed (before this version), never matches."""
    store = MemoryStore()
    before = EscalationRouter([ANYONE], store, key=OTHER_KEY)
    case = escalated(Tool(Guard(ESCALATE_ALL, escalations=before)), REQUEST)
    _approve(before, case)
    tool = Tool(Guard(ESCALATE_ALL, escalations=EscalationRouter([ANYONE], store, key=KEY)))
    with resuming(case), pytest.raises(PermissionDenied, match=r"the request .* differs"):
        tool(REQUEST)

    def unkeyed(current: Any) -> Any:
        request = {**current.request, "fingerprint": _old_fingerprint(REQUEST)}
        return current.model_copy(update={"request": request, "version": current.version + 1}), []

    store.update(case, unkeyed)
    tool = Tool(Guard(ESCALATE_ALL, escalations=before))
    with resuming(case), pytest.raises(PermissionDenied, match=r"the request .* differs"):
        tool(REQUEST)
    assert tool.ran == []


def test_resuming_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker without the key cannot check the binding: denied, never run."""
    store = MemoryStore()
    opener = EscalationRouter([ANYONE], store, key=KEY)
    case = escalated(Tool(Guard(ESCALATE_ALL, escalations=opener)), REQUEST)
    _approve(opener, case)
    monkeypatch.delenv(ROUTER_KEY_ENV)
    tool = Tool(Guard(ESCALATE_ALL, escalations=EscalationRouter([ANYONE], store)))
    with resuming(case), pytest.raises(PermissionDenied, match="has no key"):
        tool(REQUEST)
    assert tool.ran == []


# --- the contract: an approval of one request never runs another --------------------------------

_FIELDS = [
    "action", "agent", "agent roles", "agent attributes", "user", "user id", "user roles",
    "user groups", "user attributes", "resource", "resource type", "resource id",
    "resource attributes", "args", "context",
]  # fmt: skip
_USERS = st.none() | users(attributes=("team", "level"))
_REQUESTS = action_requests(principals=principals(users=_USERS), resources=st.none() | resources())


@st.composite
def _one_field_apart(draw: st.DrawFn) -> tuple[str, ActionRequest, ActionRequest]:
    """A field the policy reads, a request, and the request with that field from another."""
    field = draw(st.sampled_from(_FIELDS))
    return (field, *_apart(draw, field))


def _apart(draw: st.DrawFn, field: str) -> tuple[ActionRequest, ActionRequest]:
    first, donor = draw(_REQUESTS), draw(_REQUESTS)
    p, q = first.principal, donor.principal
    if field == "action":
        return first, first.model_copy(update={"action": donor.action})
    if field.startswith("agent"):
        name = {"agent": "agent", "agent roles": "roles", "agent attributes": "attributes"}[field]
        return first, _principal(first, **{name: getattr(q, name)})
    if field == "user":
        return first, _principal(first, on_behalf_of=q.on_behalf_of)
    if field.startswith("user "):
        mine = p.on_behalf_of or draw(users(attributes=("team",)))
        theirs = q.on_behalf_of or draw(users(attributes=("team",)))
        name = field.removeprefix("user ")
        changed = mine.model_copy(update={name: getattr(theirs, name)})
        return _principal(first, on_behalf_of=mine), _principal(first, on_behalf_of=changed)
    if field == "resource":
        return first, first.model_copy(update={"resource": donor.resource})
    if field.startswith("resource "):
        mine_r = first.resource or draw(resources())
        theirs_r = donor.resource or draw(resources())
        name = field.removeprefix("resource ")
        changed_r = mine_r.model_copy(update={name: getattr(theirs_r, name)})
        return (
            first.model_copy(update={"resource": mine_r}),
            first.model_copy(update={"resource": changed_r}),
        )
    return first, first.model_copy(update={field: getattr(donor, field)})


def _differs(one: ActionRequest, other: ActionRequest) -> bool:
    """Whether the two differ as the policy may see them: values and their types."""

    def typed(value: Any) -> Any:
        if isinstance(value, dict | Resource | User | Principal | ActionRequest):
            items = value.items() if isinstance(value, dict) else dict(value).items()
            return ("map", frozenset((k, typed(v)) for k, v in items))
        if isinstance(value, list | tuple):
            return ("list", tuple(typed(v) for v in value))
        if isinstance(value, frozenset | set):
            return ("set", frozenset(typed(v) for v in value))
        if isinstance(value, float):
            return (float, value.hex())  # 0.0 and -0.0 are two values to a careful policy
        return (type(value), value)

    return typed(one) != typed(other)


@settings(max_examples=150)
@given(_one_field_apart().filter(lambda pair: _differs(pair[1], pair[2])))
def test_an_approval_of_one_request_never_runs_another(
    pair: tuple[str, ActionRequest, ActionRequest],
) -> None:
    """For any two requests differing in a field the policy reads, approving one never runs the
    other through ``Guard`` + ``resuming``; the approved one itself still runs, once."""
    field, approved, other = pair
    event(f"differs in {field}")
    router = make_router(ANYONE)
    tool = Tool(Guard(ESCALATE_ALL, escalations=router))
    case = escalated(tool, approved)
    _approve(router, case)
    with resuming(case), pytest.raises(PermissionDenied):
        tool(other)
    assert tool.ran == []
    with resuming(case):
        tool(approved)
    assert tool.ran == [approved]
