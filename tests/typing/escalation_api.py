"""Every public call shape of the escalation router, checked by mypy --strict (never executed)."""

from datetime import timedelta
from typing import assert_type

from pydantic import SecretStr

from handrail import ActionRequest, Policy, Principal
from handrail.approvals import Identity
from handrail.escalation import (
    Escalation,
    EscalationPreview,
    EscalationRouter,
    ExternalIdConflict,
    Level,
    MemoryStore,
    OnTimeout,
    Route,
    TickReport,
    request_fingerprint,
)
from handrail.testing import FakeClock

route = Route(name="sales", levels=[Level(deciders=["maria"], resolve_within=timedelta(hours=4))])
router = EscalationRouter(
    [route], MemoryStore(), clock=FakeClock(), poll_interval=timedelta(milliseconds=200)
)
EscalationRouter([route], MemoryStore(), key=SecretStr("a key of at least thirty-two bytes"))
EscalationRouter([route], MemoryStore(), key="a key of at least thirty-two bytes")
EscalationRouter([route], MemoryStore(), key=b"a key of at least thirty-two bytes")
decision = Policy.from_file("policy.yaml").evaluate(
    ActionRequest(principal=Principal(agent="bot"), action="crm.deal.discount")
)

case = router.open(decision, external_id="call_1")
assert_type(router.fingerprint(decision.request), str)
assert_type(request_fingerprint(decision.request, key=b"k" * 32), str)
assert_type(case, Escalation)
assert_type(case.external_id, str | None)
assert_type(router.find("call_1"), Escalation | None)
preview = router.preview(decision)
assert_type(preview, EscalationPreview)
assert_type(preview.resolve_within, timedelta)
assert_type(preview.ack_within, timedelta | None)
assert_type(preview.on_timeout, OnTimeout)
assert_type(preview.deciders, tuple[str, ...])
assert_type(router.wait_decision(case.id, timeout=timedelta(minutes=30)), Escalation)
assert_type(router.wait_decision(case.id), Escalation)
assert_type(router.tick(), TickReport)
conflict = ExternalIdConflict(case.id, "call_1")
assert_type(conflict.external_id, str)
assert_type(conflict.escalation_id, str)
clock = FakeClock()
assert_type(clock.sleep(0.2), None)


async def use() -> None:
    assert_type(await router.aopen(decision, external_id="call_1"), Escalation)
    assert_type(await router.aget(case.id), Escalation)
    assert_type(await router.afind("call_1"), Escalation | None)
    assert_type(await router.alist(state="open", limit=10), list[Escalation])
    assert_type(await router.aacknowledge(case.id, by=Identity("maria", method="test")), Escalation)
    assert_type(
        await router.adecide(case.id, approve=True, by=Identity("maria", method="test")), Escalation
    )
    assert_type(
        await router.aapprove(case.id, by=Identity("maria", method="test"), reason="ok"), Escalation
    )
    assert_type(await router.areject(case.id, by=Identity("maria", method="test")), Escalation)
    assert_type(await router.acancel(case.id, reason="withdrawn"), Escalation)
    assert_type(await router.aclaim_execution(case.id), Escalation)
    assert_type(await router.await_decision(case.id, timedelta(minutes=30)), Escalation)
    assert_type(await router.atick(), TickReport)
    assert_type(await clock.asleep(0.2), None)
    await router.run(interval=timedelta(seconds=1))
