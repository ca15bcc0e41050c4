"""CircuitBreaker: open after repeated transient failures, fail fast, probe after the cool-down."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import httpx
import pytest

from handrail import CircuitOpen, ConfigurationError
from handrail.resilience import CircuitBreaker, CircuitBreakers, CircuitState, RetryPolicy
from handrail.testing import FakeClock

from .conftest import Recorded, Reply, Server

COOLDOWN = timedelta(seconds=30)


def down() -> None:
    raise httpx.ConnectError("connection refused")


def bad_request() -> None:
    raise ValueError("invalid contact id")


def ok() -> str:
    return "ok"


def breaker(clock: FakeClock, **kwargs: object) -> CircuitBreaker:
    settings: dict[str, object] = {"failure_threshold": 3, "cooldown": COOLDOWN, **kwargs}
    return CircuitBreaker("crm", clock=clock, **settings)  # type: ignore[arg-type]


def trip(circuit: CircuitBreaker, times: int = 3) -> None:
    for _ in range(times):
        with pytest.raises(httpx.ConnectError):
            circuit.call(down)


class TestClosed:
    def test_calls_go_through(self) -> None:
        """A closed breaker passes calls and their results through."""
        circuit = breaker(FakeClock())
        assert circuit.call(ok) == "ok"
        assert circuit.state is CircuitState.CLOSED

    def test_opens_after_the_threshold_of_transient_failures(self) -> None:
        """failure_threshold transient failures in a row open the circuit."""
        circuit = breaker(FakeClock())
        trip(circuit, 2)
        assert circuit.state is CircuitState.CLOSED
        trip(circuit, 1)
        assert circuit.state is CircuitState.OPEN

    def test_permanent_errors_do_not_count(self) -> None:
        """An error the caller caused shows the system is answering: it does not count."""
        circuit = breaker(FakeClock())
        for _ in range(5):
            with pytest.raises(ValueError, match="invalid"):
                circuit.call(bad_request)
        assert circuit.state is CircuitState.CLOSED
        trip(circuit, 2)
        with pytest.raises(ValueError, match="invalid"):
            circuit.call(bad_request)
        trip(circuit, 2)
        assert circuit.state is CircuitState.CLOSED

    def test_a_success_resets_the_streak(self) -> None:
        """Only failures in a row count."""
        circuit = breaker(FakeClock())
        trip(circuit, 2)
        circuit.call(ok)
        trip(circuit, 2)
        assert circuit.state is CircuitState.CLOSED


class TestOpen:
    def test_fails_fast_without_calling(self) -> None:
        """An open circuit raises CircuitOpen (its name, when to try again) and calls nothing."""
        clock = FakeClock()
        circuit = breaker(clock)
        trip(circuit)
        calls: list[int] = []
        clock.advance(timedelta(seconds=10))
        with pytest.raises(CircuitOpen) as caught:
            circuit.call(lambda: calls.append(1))
        assert calls == []
        assert caught.value.name == "crm"
        assert caught.value.retry_at == clock.now() + timedelta(seconds=20)
        assert "circuit 'crm' is open until" in str(caught.value)

    def test_stays_open_until_the_next_call_after_the_cooldown(self) -> None:
        """Time alone changes nothing: the state moves on the first call after the cool-down."""
        clock = FakeClock()
        circuit = breaker(clock)
        trip(circuit)
        clock.advance(COOLDOWN * 10)
        assert circuit.state is CircuitState.OPEN


class TestHalfOpen:
    def test_a_successful_probe_closes_it(self) -> None:
        """After the cool-down one call probes; if it succeeds the circuit closes."""
        clock = FakeClock()
        circuit = breaker(clock)
        trip(circuit)
        clock.advance(COOLDOWN)
        assert circuit.call(ok) == "ok"
        assert circuit.state is CircuitState.CLOSED

    def test_a_failed_probe_opens_it_again_for_a_full_cooldown(self) -> None:
        """A probe that fails re-opens the circuit, and the cool-down starts over."""
        clock = FakeClock()
        circuit = breaker(clock)
        trip(circuit)
        clock.advance(COOLDOWN)
        trip(circuit, 1)
        assert circuit.state is CircuitState.OPEN
        with pytest.raises(CircuitOpen) as caught:
            circuit.call(ok)
        assert caught.value.retry_at == clock.now() + COOLDOWN

    def test_only_so_many_probes_at_once(self) -> None:
        """While a probe is out, further calls fail fast (half_open_max_calls=1)."""
        clock = FakeClock()
        circuit = breaker(clock)
        trip(circuit)
        clock.advance(COOLDOWN)
        circuit.before_call()
        assert circuit.state is CircuitState.HALF_OPEN
        with pytest.raises(CircuitOpen):
            circuit.before_call()
        circuit.record_success()
        assert circuit.state is CircuitState.CLOSED

    def test_more_probes_when_allowed(self) -> None:
        """half_open_max_calls=2 lets two probes out together."""
        clock = FakeClock()
        circuit = breaker(clock, half_open_max_calls=2)
        trip(circuit)
        clock.advance(COOLDOWN)
        circuit.before_call()
        circuit.before_call()
        with pytest.raises(CircuitOpen):
            circuit.before_call()

    def test_a_lost_probe_does_not_wedge_the_circuit(self) -> None:
        """A probe that never reports is given up on after a cool-down; another call may probe."""
        clock = FakeClock()
        circuit = breaker(clock)
        trip(circuit)
        clock.advance(COOLDOWN)
        circuit.before_call()  # ...and its caller vanishes
        clock.advance(COOLDOWN)
        assert circuit.call(ok) == "ok"
        assert circuit.state is CircuitState.CLOSED

    def test_an_interrupted_probe_frees_its_place(self) -> None:
        """A probe ended by an interrupt counts as nothing and lets the next call probe."""
        clock = FakeClock()
        circuit = breaker(clock)
        trip(circuit)
        clock.advance(COOLDOWN)

        def interrupted() -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            circuit.call(interrupted)
        assert circuit.state is CircuitState.HALF_OPEN
        assert circuit.call(ok) == "ok"

    def test_a_probe_answered_with_a_client_error_closes_it(self) -> None:
        """A permanent error is still an answer: the system is back."""
        clock = FakeClock()
        circuit = breaker(clock)
        trip(circuit)
        clock.advance(COOLDOWN)
        with pytest.raises(ValueError, match="invalid"):
            circuit.call(bad_request)
        assert circuit.state is CircuitState.CLOSED


class TestDrivers:
    def test_async_calls(self) -> None:
        """acall awaits through the breaker and fails fast when open."""
        circuit = breaker(FakeClock(), failure_threshold=1)

        async def aok() -> str:
            return "ok"

        async def adown() -> None:
            down()

        async def main() -> None:
            assert await circuit.acall(aok) == "ok"
            with pytest.raises(httpx.ConnectError):
                await circuit.acall(adown)
            with pytest.raises(CircuitOpen):
                await circuit.acall(aok)

        asyncio.run(main())

    def test_a_cancelled_async_probe_frees_its_place(self) -> None:
        """Cancellation is neither success nor failure: the next call may probe."""
        clock = FakeClock()
        circuit = breaker(clock, failure_threshold=1)
        trip(circuit, 1)
        clock.advance(COOLDOWN)

        async def main() -> str:
            never = asyncio.Event()
            probe = asyncio.ensure_future(circuit.acall(never.wait))
            await asyncio.sleep(0)
            probe.cancel()
            with pytest.raises(asyncio.CancelledError):
                await probe

            async def aok() -> str:
                return "ok"

            return await circuit.acall(aok)

        assert asyncio.run(main()) == "ok"

    def test_sync_call_refuses_async_functions(self) -> None:
        """call() on an async function says to use acall."""

        async def aok() -> None:
            return None

        with pytest.raises(TypeError, match="acall"):
            breaker(FakeClock()).call(aok)

    def test_manual_use(self) -> None:
        """before_call / record_failure / record_success drive it around code it cannot wrap."""
        circuit = breaker(FakeClock(), failure_threshold=2)
        for _ in range(2):
            circuit.before_call()
            circuit.record_failure(httpx.ReadTimeout("slow"))
        assert circuit.state is CircuitState.OPEN
        with pytest.raises(CircuitOpen):
            circuit.before_call()

    def test_concurrent_failures_open_it_once(self, recorded: Recorded) -> None:
        """Many threads failing at once produce exactly one closed-to-open transition."""
        circuit = CircuitBreaker(
            "crm", failure_threshold=5, clock=FakeClock(), telemetry=recorded.telemetry
        )
        start = threading.Barrier(16)

        def fail_many() -> None:
            start.wait()
            for _ in range(50):
                circuit.record_failure(httpx.ConnectError("refused"))

        threads = [threading.Thread(target=fail_many) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert recorded.events("handrail.circuit_breaker") == [
            {"name": "crm", "old": "closed", "new": "open"}
        ]

    def test_the_retry_policy_stops_when_the_circuit_opens(
        self, client: httpx.Client, server: Server
    ) -> None:
        """Retrying through a breaker: once it opens, CircuitOpen ends the retries at once."""
        server.script(*[Reply(503)] * 5)
        circuit = CircuitBreaker("crm", failure_threshold=2, clock=FakeClock())
        policy = RetryPolicy(attempts=5)
        with pytest.raises(CircuitOpen):
            policy.call(circuit.call, lambda: client.get(server.url).raise_for_status())
        assert len(server.seen) == 2


class TestTelemetry:
    def test_transitions_are_counted_and_logged(self, recorded: Recorded) -> None:
        """Each state change is logged and counted with the breaker's name and both states."""
        clock = FakeClock()
        circuit = CircuitBreaker(
            "crm", failure_threshold=1, cooldown=COOLDOWN, clock=clock, telemetry=recorded.telemetry
        )
        trip(circuit, 1)
        clock.advance(COOLDOWN)
        circuit.call(ok)
        assert [(e["old"], e["new"]) for e in recorded.events("handrail.circuit_breaker")] == [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
        ]
        points = recorded.counter("handrail.circuit_breaker.transitions")
        assert sorted(
            (p["handrail.circuit_breaker.from"], p["handrail.circuit_breaker.to"], n)
            for p, n in points
        ) == [("closed", "open", 1), ("half_open", "closed", 1), ("open", "half_open", 1)]


class TestRegistry:
    def test_one_breaker_per_key(self) -> None:
        """for_key returns the same breaker for a key, another for another key, named after it."""
        breakers = CircuitBreakers(failure_threshold=1, clock=FakeClock())
        crm = breakers.for_key("crm.example.com")
        assert breakers.for_key("crm.example.com") is crm
        erp = breakers.for_key("erp.example.com")
        assert erp is not crm
        assert crm.name == "crm.example.com"
        trip(crm, 1)
        assert crm.state is CircuitState.OPEN
        assert erp.state is CircuitState.CLOSED

    def test_concurrent_first_use_makes_one_breaker(self) -> None:
        """Threads asking for a new key at once all get the same breaker."""
        breakers = CircuitBreakers()
        start = threading.Barrier(8)
        got: list[CircuitBreaker] = []

        def ask() -> None:
            start.wait()
            got.append(breakers.for_key("crm"))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(b) for b in got}) == 1

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"failure_threshold": 0}, "failure_threshold=0"),
            ({"half_open_max_calls": 0}, "half_open_max_calls=0"),
            ({"cooldown": 30}, "cooldown=30"),
            ({"cooldown": timedelta(seconds=-1)}, "non-negative"),
        ],
    )
    def test_settings_are_checked_up_front(self, kwargs: dict[str, object], message: str) -> None:
        """Bad settings raise ConfigurationError when the registry or breaker is made."""
        with pytest.raises(ConfigurationError, match=message):
            CircuitBreakers(**kwargs)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=message):
            CircuitBreaker("crm", **kwargs)  # type: ignore[arg-type]

    def test_repr(self) -> None:
        """A breaker's repr shows its name and state."""
        assert repr(breaker(FakeClock())) == "CircuitBreaker('crm', state=closed)"
