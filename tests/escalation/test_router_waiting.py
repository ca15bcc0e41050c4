"""Waiting for a decision: on the router's clock, in sync and async code, durations as timedelta."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from handrail import ConfigurationError
from handrail.approvals import Identity
from handrail.audit import AuditLog
from handrail.clock import SystemClock
from handrail.escalation import (
    Escalation,
    EscalationRouter,
    EscalationState,
    EscalationStore,
    MemoryStore,
    Notification,
)
from handrail.testing import FakeClock

from .test_router import GROUPS, SALES, T0, CountingStore, Inbox, decision

MakeStore = Callable[[], EscalationStore]

MILLISECOND = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
REAL_TIME_BUDGET = 30.0  # seconds: generous for a loaded machine, far below the real 1,800


class DecidingClock(FakeClock):
    """A fake clock on which a human decides during the first pause of a wait."""

    def __init__(self) -> None:
        super().__init__(T0)
        self.decide: Callable[[], object] = lambda: None
        self.pauses = 0

    def sleep(self, seconds: float) -> None:
        self._decide_once()
        super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self._decide_once()
        await super().asleep(seconds)

    def _decide_once(self) -> None:
        self.pauses += 1
        if self.pauses == 1:
            self.decide()


class ClockWithoutSleep:
    """A user's own Clock: ``now`` and ``monotonic`` only (real time), no ``sleep``."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class RacingStore(CountingStore):
    """When ``armed``, the next ``get`` runs ``decide`` on another thread after its read, so the
    decision lands between ``wait_decision``'s look at the case and its pause."""

    def __init__(self, inner: EscalationStore, decide: Callable[[], object]) -> None:
        super().__init__(inner)
        self.decide = decide
        self.armed = False

    def get(self, escalation_id: str) -> Escalation | None:
        found = self.inner.get(escalation_id)
        if self.armed:
            self.armed = False
            decider = threading.Thread(target=self.decide)
            decider.start()
            decider.join(timeout=1)
        return found


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    log = AuditLog.memory()
    yield log
    log.close()


@pytest.fixture
def router(make_store: MakeStore, clock: FakeClock, audit: AuditLog) -> EscalationRouter:
    """A router over a fresh store of each backend, on a fake clock."""
    return EscalationRouter([SALES], make_store(), clock=clock, audit=audit, groups=GROUPS)


# --- on a fake clock: no real waiting ---------------------------------------------------------


def test_wait_decision_returns_a_final_case_at_once(
    router: EscalationRouter, clock: FakeClock
) -> None:
    """A decided case is returned without pausing: the clock does not move."""
    e = router.reject(router.open(decision()).id, by=Identity("maria", method="test"))
    assert router.wait_decision(e.id, timeout=HOUR) == e
    assert clock.now() == T0


def test_a_thirty_minute_wait_on_a_fake_clock_returns_at_once_still_pending(
    clock: FakeClock,
) -> None:
    """The regression: a wait on a FakeClock moves the fake time, never sleeps for real. The
    30 minutes pass on the clock (exactly: the pauses end at the deadline) and the case, with
    nobody answering, is still open.  (A memory store: the store is not what is tested, and
    9,000 polls of a database would only measure the database.)"""
    router = EscalationRouter([SALES], MemoryStore(), clock=clock, groups=GROUPS)
    e = router.open(decision())
    started = time.monotonic()
    waited = router.wait_decision(e.id, timeout=30 * MINUTE)
    assert time.monotonic() - started < REAL_TIME_BUDGET
    assert waited.state is EscalationState.OPEN
    assert clock.now() == T0 + 30 * MINUTE
    assert router.wait_decision(e.id, timeout=timedelta(0)).state is EscalationState.OPEN
    assert clock.now() == T0 + 30 * MINUTE  # a zero timeout looks once and does not pause


def test_a_thirty_minute_await_on_a_fake_clock_returns_at_once_still_pending(
    clock: FakeClock,
) -> None:
    """The async regression: ``await_decision`` pauses through ``FakeClock.asleep``."""
    router = EscalationRouter([SALES], MemoryStore(), clock=clock, groups=GROUPS)
    e = router.open(decision())
    started = time.monotonic()
    waited = asyncio.run(router.await_decision(e.id, timeout=30 * MINUTE))
    assert time.monotonic() - started < REAL_TIME_BUDGET
    assert waited.state is EscalationState.OPEN
    assert clock.now() == T0 + 30 * MINUTE


def test_a_decision_made_during_a_fake_pause_ends_the_wait(make_store: MakeStore) -> None:
    """A human who decides while the agent waits (here: during its first pause) ends the wait
    with the final case, long before the timeout, in sync and async code."""
    clock = DecidingClock()
    router = EscalationRouter([SALES], make_store(), clock=clock, groups=GROUPS)
    first = router.open(decision())
    clock.decide = lambda: router.approve(first.id, by=Identity("maria", method="test"))
    final = router.wait_decision(first.id, timeout=HOUR)
    assert (final.state, final.allowed) == (EscalationState.APPROVED, True)
    assert clock.now() == T0 + router.poll_interval  # one pause, then the decision was seen

    second = router.open(decision())
    clock.pauses = 0
    clock.decide = lambda: router.reject(second.id, by=Identity("maria", method="test"))
    final = asyncio.run(router.await_decision(second.id, timeout=HOUR))
    assert final.state is EscalationState.REJECTED


def test_the_worker_loop_pauses_on_the_clock(make_store: MakeStore, clock: FakeClock) -> None:
    """``run()`` pauses between ticks through the clock: on a FakeClock an hour of ticks every
    minute passes at once, and the ack deadline fires at its fake time."""
    inbox = Inbox()
    router = EscalationRouter([SALES], make_store(), channels=[inbox], clock=clock, groups=GROUPS)
    router.open(decision())

    async def scenario() -> None:
        stop = asyncio.Event()
        original = inbox.send

        async def send(notification: Notification) -> None:
            await original(notification)
            if notification.kind == "escalated":
                stop.set()

        inbox.send = send  # type: ignore[method-assign]
        await asyncio.wait_for(router.run(interval=MINUTE, stop=stop), timeout=30)

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < REAL_TIME_BUDGET
    assert inbox.kinds() == [("opened", 0), ("escalated", 1)]
    assert clock.now() == T0 + HOUR  # the manager's ack_within, to the minute


# --- on the real clock: woken by changes ------------------------------------------------------


def test_wait_decision_returns_when_another_thread_decides(make_store: MakeStore) -> None:
    """On the real clock, a decision made on another thread ends the wait with the final case."""
    router = EscalationRouter([SALES], make_store(), groups=GROUPS)
    e = router.open(decision())
    decider = threading.Thread(
        target=lambda: router.approve(e.id, by=Identity("maria", method="test"))
    )
    decider.start()
    final = router.wait_decision(e.id, timeout=30 * SECOND)
    decider.join()
    assert (final.state, final.allowed) == (EscalationState.APPROVED, True)


def test_wait_wakes_at_once_even_when_the_decision_lands_just_before_it_pauses(
    make_store: MakeStore,
) -> None:
    """A change by this router wakes ``wait_decision`` at once, however the threads interleave:
    the notification sent between its read and its pause is not lost (no ``poll_interval``
    delay: the poll is 30 s, the wait returns well before)."""
    holder: list[EscalationRouter] = []
    store = RacingStore(
        make_store(), lambda: holder[0].approve(e.id, by=Identity("maria", method="test"))
    )
    router = EscalationRouter([SALES], store, clock=SystemClock(), poll_interval=30 * SECOND)
    holder.append(router)
    e = router.open(decision())
    store.armed = True
    started = time.monotonic()
    final = router.wait_decision(e.id, timeout=60 * SECOND)
    assert final.state is EscalationState.APPROVED
    assert time.monotonic() - started < 20


def test_wait_sees_a_decision_made_by_another_router(
    make_store: MakeStore, audit: AuditLog
) -> None:
    """A decision made elsewhere (another router on the same store) is seen by polling."""
    mine, theirs = make_store(), make_store()
    waiting = EscalationRouter([SALES], mine, audit=audit, poll_interval=10 * MILLISECOND)
    deciding = EscalationRouter([SALES], theirs, audit=audit)
    e = waiting.open(decision())
    decider = threading.Thread(
        target=lambda: deciding.reject(e.id, by=Identity("maria", method="test"))
    )
    decider.start()
    final = waiting.wait_decision(e.id, timeout=30 * SECOND)
    decider.join()
    assert final.state is EscalationState.REJECTED


def test_await_decision_on_the_real_clock(make_store: MakeStore) -> None:
    """``await_decision`` returns the open case after its timeout, the final one once decided."""
    router = EscalationRouter([SALES], make_store(), poll_interval=10 * MILLISECOND)
    e = router.open(decision())

    async def scenario() -> tuple[Escalation, Escalation]:
        still_open = await router.await_decision(e.id, timeout=10 * MILLISECOND)
        waiter = asyncio.create_task(router.await_decision(e.id, timeout=30 * SECOND))
        await router.aapprove(e.id, by=Identity("maria", method="test"))
        return still_open, await waiter

    still_open, final = asyncio.run(scenario())
    assert still_open.state is EscalationState.OPEN
    assert final.state is EscalationState.APPROVED


def test_a_clock_without_sleep_is_waited_on_in_real_time(make_store: MakeStore) -> None:
    """A user's Clock with only ``now`` and ``monotonic`` still works: the wait pauses in real
    time until that clock's ``monotonic()`` passes the deadline, in sync and async code."""
    clock = ClockWithoutSleep()
    router = EscalationRouter([SALES], make_store(), clock=clock, poll_interval=10 * MILLISECOND)
    e = router.open(decision())
    for wait in (
        lambda: router.wait_decision(e.id, timeout=50 * MILLISECOND),
        lambda: asyncio.run(router.await_decision(e.id, timeout=50 * MILLISECOND)),
    ):
        started = clock.monotonic()
        assert wait().state is EscalationState.OPEN
        assert clock.monotonic() - started >= 0.05


# --- durations are timedelta --------------------------------------------------------------------


def test_durations_given_as_numbers_are_refused_naming_the_parameter(
    router: EscalationRouter,
) -> None:
    """``timeout``, ``poll_interval``, ``delivery_backoff`` and ``run(interval=)`` take a
    timedelta; a number of seconds is refused, the parameter named, and nothing waits."""
    e = router.open(decision())
    with pytest.raises(ConfigurationError, match=r"timeout must be a datetime\.timedelta.*30"):
        router.wait_decision(e.id, timeout=30)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"timeout must be a datetime\.timedelta"):
        asyncio.run(router.await_decision(e.id, timeout=0.5))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout must not be negative"):
        router.wait_decision(e.id, timeout=-SECOND)
    for name, value in (("poll_interval", 0.2), ("delivery_backoff", 5)):
        with pytest.raises(ConfigurationError, match=rf"{name} must be a datetime\.timedelta"):
            EscalationRouter([SALES], router.store, **{name: value})  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=f"{name} must be positive"):
            EscalationRouter([SALES], router.store, **{name: timedelta(0)})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"interval must be a datetime\.timedelta"):
        asyncio.run(router.run(interval=1.0))  # type: ignore[arg-type]
