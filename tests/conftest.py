"""Shared fixtures: process-wide switches are reset around every test."""

from collections.abc import Iterator

import pytest

from handrail.permissions import set_default_policy


@pytest.fixture(autouse=True)
def _no_default_policy() -> Iterator[None]:
    """Every test starts and ends without a process-wide default policy."""
    previous = set_default_policy(None)
    yield
    set_default_policy(previous)
