"""handrail.testing's no-waits switch: retries skip their waits, and nothing else changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from handrail.resilience import AttemptDetails, RetryPolicy
from handrail.testing._resilience import is_no_waits, no_waits, set_no_waits

SLOW = RetryPolicy(attempts=4, wait_initial=timedelta(seconds=5), wait_max=timedelta(seconds=5))


@pytest.fixture
def waits_on() -> Iterator[None]:
    """Start the test with no-waits off (this package's conftest turns it on)."""
    previous = set_no_waits(False)
    yield
    set_no_waits(previous)


@pytest.mark.usefixtures("waits_on")
class TestSwitch:
    def test_set_returns_the_previous_setting(self) -> None:
        """set_no_waits returns what it replaced, so a caller can put it back."""
        assert set_no_waits(True) is False
        assert is_no_waits()
        assert set_no_waits(False) is True
        assert not is_no_waits()

    def test_the_context_manager_restores_on_the_way_out(self) -> None:
        """with no_waits(): turns it on, and restores the old value even after an error."""
        seen = []

        def fail() -> None:
            with no_waits():
                seen.append(is_no_waits())
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            fail()
        assert seen == [True]
        assert not is_no_waits()

    def test_it_nests(self) -> None:
        """An inner block leaves the outer one's setting in place."""
        with no_waits():
            with no_waits():
                pass
            assert is_no_waits()
        assert not is_no_waits()

    def test_it_decorates_a_test_function(self) -> None:
        """@no_waits() turns it on for one function's run."""

        @no_waits()
        def check() -> bool:
            return is_no_waits()

        assert check()
        assert not is_no_waits()


def test_waits_are_skipped_but_reported_and_bounds_kept() -> None:
    """Under no_waits the chosen waits still show in AttemptDetails; the attempts still stop."""
    attempts: list[AttemptDetails] = []
    with no_waits(), pytest.raises(TimeoutError):
        SLOW.call(_time_out, on_attempt=attempts.append)
    assert len(attempts) == 4
    assert all(details.elapsed < timedelta(seconds=1) for details in attempts)
    assert any(details.wait > timedelta(0) for details in attempts[1:])


def _time_out() -> None:
    raise TimeoutError("slow upstream")
