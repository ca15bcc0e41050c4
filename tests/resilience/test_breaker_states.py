"""The breaker's contract under Hypothesis: only legal transitions, each for the right reason."""

from __future__ import annotations

from datetime import timedelta

import httpx
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from structlog.testing import CapturingLogger

from handrail import CircuitOpen
from handrail.resilience import CircuitBreaker, CircuitState
from handrail.resilience._breaker import LEGAL_TRANSITIONS, _Event, _Settings, _Snapshot, _step
from handrail.telemetry import Telemetry
from handrail.testing import FakeClock

OUTCOMES = st.sampled_from(["ok", "transient", "permanent", "interrupt"])
ERRORS = {
    "transient": httpx.ConnectError("connection refused"),
    "permanent": ValueError("invalid contact id"),
    "interrupt": KeyboardInterrupt(),
}


class BreakerMachine(RuleBasedStateMachine):
    """Drives one breaker with calls, manual calls, their late outcomes and the passing of time.

    A small model alongside predicts each state from the outcomes; every
    transition the breaker announces must be legal, chained, and predicted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.logger = CapturingLogger()
        self.pending: list[int] = []  # calls admitted by before_call, outcome not yet reported
        self.streak = 0  # transient failures in a row while closed
        self.opened_at = 0.0
        self.seen = 0  # transitions announced before the current step

    @initialize(threshold=st.integers(1, 4), cooldown=st.integers(0, 60), probes=st.integers(1, 3))
    def make(self, threshold: int, cooldown: int, probes: int) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.breaker = CircuitBreaker(
            "crm",
            failure_threshold=threshold,
            cooldown=timedelta(seconds=cooldown),
            half_open_max_calls=probes,
            clock=self.clock,
            telemetry=Telemetry(logger=self.logger),
        )

    # -- the model -----------------------------------------------------------------------

    def expect_after(self, state: CircuitState, outcome: str) -> CircuitState:
        """The state the model predicts once ``outcome`` is recorded in ``state``."""
        if outcome == "interrupt" or state is CircuitState.OPEN:
            return state
        if state is CircuitState.HALF_OPEN:
            return CircuitState.OPEN if outcome == "transient" else CircuitState.CLOSED
        if outcome != "transient":
            self.streak = 0
            return CircuitState.CLOSED
        self.streak += 1
        if self.streak >= self.threshold:
            self.streak = 0
            return CircuitState.OPEN
        return CircuitState.CLOSED

    def note(self, expected: CircuitState) -> None:
        """Check the breaker is where the model expects; remember when it last opened."""
        actual = self.breaker.state
        assert actual is expected, f"expected {expected}, breaker is {actual}"
        transitions = self.transitions()
        if len(transitions) > self.seen and transitions[-1][1] == "open":
            self.opened_at = self.clock.monotonic()

    # -- rules ---------------------------------------------------------------------------

    @rule(outcome=OUTCOMES)
    def call(self, outcome: str) -> None:
        before = self.breaker.state
        self.begin()
        ran: list[CircuitState] = []

        def work() -> str:
            ran.append(self.breaker.state)
            if outcome == "ok":
                return "ok"
            raise ERRORS[outcome]

        waited = self.clock.monotonic() - self.opened_at
        try:
            self.breaker.call(work)
        except CircuitOpen as refusal:
            retry_at = refusal.retry_at
            assert not ran
            assert before is not CircuitState.CLOSED
            assert retry_at is not None
            assert retry_at > self.clock.now()
            if before is CircuitState.OPEN:
                assert waited < self.cooldown
            self.note(before)
            return
        except (httpx.ConnectError, ValueError, KeyboardInterrupt):
            assert outcome != "ok"
        assert ran, "an admitted call must run"
        if before is CircuitState.OPEN:
            assert waited >= self.cooldown
            assert ran[0] is CircuitState.HALF_OPEN
        self.note(self.expect_after(ran[0], outcome))

    @rule()
    def admit(self) -> None:
        before = self.breaker.state
        self.begin()
        try:
            self.breaker.before_call()
        except CircuitOpen:
            assert before is not CircuitState.CLOSED
            self.note(before)
            return
        self.pending.append(1)
        self.note(CircuitState.HALF_OPEN if before is CircuitState.OPEN else before)

    @precondition(lambda self: self.pending)
    @rule(outcome=OUTCOMES)
    def finish(self, outcome: str) -> None:
        self.pending.pop()
        state = self.breaker.state
        self.begin()
        if outcome == "ok":
            self.breaker.record_success()
        else:
            self.breaker.record_failure(ERRORS[outcome])
        self.note(self.expect_after(state, outcome))

    @rule(seconds=st.integers(0, 90))
    def wait(self, seconds: int) -> None:
        before = self.breaker.state
        self.clock.advance(timedelta(seconds=seconds))
        assert self.breaker.state is before, "time alone never changes the state"

    # -- bookkeeping and invariants -------------------------------------------------------

    def begin(self) -> None:
        self.seen = len(self.transitions())

    def transitions(self) -> list[tuple[str, str]]:
        return [
            (call.kwargs["old"], call.kwargs["new"])
            for call in self.logger.calls
            if call.args == ("handrail.circuit_breaker",)
        ]

    @invariant()
    def only_legal_transitions_chained_from_closed(self) -> None:
        state = "closed"
        for old, new in self.transitions():
            assert (CircuitState(old), CircuitState(new)) in LEGAL_TRANSITIONS, (old, new)
            assert old == state, f"transition from {old} while {state}"
            state = new
        assert state == self.breaker.state.value


TestBreakerStates = BreakerMachine.TestCase
TestBreakerStates.__doc__ = "Random calls, outcomes and waits never make an illegal transition."


EVENTS = st.lists(
    st.tuples(st.sampled_from(list(_Event)), st.floats(0, 100, allow_nan=False)), max_size=60
)


@given(
    EVENTS,
    st.integers(1, 5),
    st.floats(0, 60, allow_nan=False),
    st.integers(1, 3),
)
def test_the_pure_core_keeps_its_bounds(
    events: list[tuple[_Event, float]], threshold: int, cooldown: float, probes: int
) -> None:
    """For any events at any times: legal transitions, bounded probes, refusals only to calls."""
    settings = _Settings(threshold, cooldown, probes)
    snapshot = _Snapshot()
    now = 0.0
    for event, step in events:
        now += step
        new, refusal = _step(snapshot, event, now, settings)
        if new.state is not snapshot.state:
            assert (snapshot.state, new.state) in LEGAL_TRANSITIONS
        if refusal is not None:
            assert event is _Event.CALL
            assert snapshot.state is not CircuitState.CLOSED
            assert 0 < refusal <= cooldown
            assert new == snapshot
        assert 0 <= new.probes <= probes
        assert 0 <= new.failures < threshold
        snapshot = new
