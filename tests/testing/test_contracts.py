"""The store contract users run on their stores: it passes a good store and catches broken ones.

handrail's own stores run the whole suite in tests/escalation/test_store_contract.py;
here a few deliberately broken stores show the checks can fail.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import pytest

from handrail.escalation import Delivery, Escalation, EscalationState, MemoryStore
from handrail.testing.contracts import EscalationStoreContract


class TestMemoryStoreAsAUserWould(EscalationStoreContract):
    """The way a user runs the contract: a subclass with its own make_store fixture."""

    @pytest.fixture
    def make_store(self) -> Any:
        store = MemoryStore()
        return lambda: store


class NewestFirst(MemoryStore):
    """Lists newest first: breaks the order the router relies on."""

    def list(
        self,
        *,
        state: EscalationState | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Escalation]:
        return super().list(state=state, route=route, limit=limit)[::-1]


class ForgetsDeliveries(MemoryStore):
    """Creates escalations but drops their deliveries: an outbox that loses notices."""

    def create(self, escalation: Escalation, deliveries: Sequence[Delivery] = ()) -> None:
        super().create(escalation, ())


class Amnesiac(MemoryStore):
    """Each store opened starts empty: nothing survives a restart."""


CONTRACT = EscalationStoreContract()


def test_a_store_listing_newest_first_fails_the_order_check() -> None:
    """The ordering check fails on a store that lists in the wrong order."""
    store = NewestFirst()
    with pytest.raises(AssertionError):
        CONTRACT.test_list_is_oldest_first_then_by_id(lambda: store)
    CONTRACT.test_list_is_oldest_first_then_by_id(MemoryStore)  # and a good store passes


def test_a_store_losing_deliveries_fails_the_outbox_check() -> None:
    """The outbox check fails on a store that does not keep what create was given."""
    store = ForgetsDeliveries()
    with pytest.raises(AssertionError):
        CONTRACT.test_create_writes_its_deliveries(lambda: store)


def test_a_store_that_forgets_on_reopen_fails_the_durability_check() -> None:
    """Reopening must find everything: a store that starts empty each time fails."""
    with pytest.raises(AssertionError):
        CONTRACT.test_a_reopened_store_keeps_everything(Amnesiac)
