"""Shared fixtures: process-wide switches are reset around every test."""

from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, settings

from handrail.permissions import set_default_policy
from handrail.testing import set_no_waits

# CI machines are small and shared: time limits per example would only make
# property tests flaky.  Example counts stay as each test sets them.
settings.register_profile("handrail", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("handrail")


TEST_ROUTER_KEY = "handrail-tests-router-key-0123456789abcdef"
"""The router key every test process has (see ``_router_key``); 42 bytes, never a real one."""


@pytest.fixture(autouse=True)
def _router_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test has a router key in ``HANDRAIL_ROUTER_KEY``, restored afterwards.

    Opening a case needs a key (an approval is bound to the request by a keyed
    fingerprint), and most tests build routers without one, as an application
    reading its key from the environment does.  Set here, not in each test:
    the worker subprocesses of the crash tests inherit it too, so they compute
    the same fingerprints.  Tests of a missing or bad key ``delenv`` it.
    """
    monkeypatch.setenv("HANDRAIL_ROUTER_KEY", TEST_ROUTER_KEY)


@pytest.fixture(autouse=True)
def _no_default_policy() -> Iterator[None]:
    """Every test starts and ends without a process-wide default policy."""
    previous = set_default_policy(None)
    yield
    set_default_policy(previous)


@pytest.fixture(autouse=True)
def _waits_restored() -> Iterator[None]:
    """Every test starts with real retry waits (tests opt in to no_waits) and restores them."""
    previous = set_no_waits(False)
    yield
    set_no_waits(previous)


@pytest.fixture(autouse=True)
def _structlog_unconfigured() -> Iterator[None]:
    """Every test ends with structlog unconfigured again.

    ``structlog.testing.capture_logs`` restores the processors but leaves
    structlog marked as configured, which makes handrail log to stdout in the
    tests that follow.
    """
    yield
    structlog.reset_defaults()
