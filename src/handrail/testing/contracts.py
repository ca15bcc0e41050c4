"""Contract suites users run on their own implementations, and handrail runs on its own.

``EscalationStoreContract`` holds what every ``EscalationStore`` must do
(see ``handrail.escalation.EscalationStore``): atomic changes under a lock,
due work found by index and handed out once, an outbox delivered at least
once, and everything kept across a reopen.  Subclass it in a test module and
give it a ``make_store`` fixture: a zero-argument callable that opens a
store over *this test's* data (a fresh database per test), each call a new
store over the same data, as after a restart.  pytest collects the checks::

    class TestMyStore(EscalationStoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            opened = []

            def make():
                opened.append(MyStore(tmp_path / "escalations.db"))
                return opened[-1]

            yield make
            for store in opened:
                store.close()

handrail's memory, SQLite and PostgreSQL stores pass the same suite.  The
connector kit is ``handrail.testing.conformance.ConnectorConformance``.
This module needs pytest.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from .._errors import ConfigurationError
from ..escalation import (
    Change,
    Escalation,
    EscalationState,
    EscalationStore,
    UnknownEscalation,
)
from ._escalation_data import HOUR, NOW, approve, fire, make_delivery, make_escalation

__all__ = ["EscalationStoreContract", "StoreFactory"]

StoreFactory = Callable[[], EscalationStore]
"""Opens a store over one test's data; each call a new store over the same data."""

MINUTE = timedelta(minutes=1)


def due(escalation_id: str, minutes_ago: int = 1) -> Escalation:
    """An open escalation whose timer passed ``minutes_ago`` before NOW."""
    return make_escalation(escalation_id, next_due=NOW - minutes_ago * MINUTE)


class Recorder:
    """A change function for ``process_due`` that fires each timer and remembers the ids."""

    def __init__(self, by: str = "worker-1") -> None:
        self.by = by
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, escalation: Escalation) -> Change:
        with self._lock:
            self.seen.append(escalation.id)
        return fire(escalation, by=self.by)


class EscalationStoreContract:
    """The checks every ``EscalationStore`` passes.  Subclass it (see the module docstring).

    Each check takes the ``make_store`` fixture the subclass (or a
    conftest) provides.  Outside pytest, call a check with a fresh
    ``make_store`` yourself: ``TestMyStore().test_create_writes_its_deliveries(make)``.
    """

    # -- create, get, list -------------------------------------------------------------------

    def test_create_then_get_returns_the_same_escalation(self, make_store: StoreFactory) -> None:
        """An escalation reads back equal to what was stored, history and route included."""
        store = make_store()
        escalation, _ = approve(make_escalation("esc-1"))
        store.create(escalation)
        assert store.get("esc-1") == escalation
        assert store.get("nope") is None

    def test_create_writes_its_deliveries(self, make_store: StoreFactory) -> None:
        """The deliveries passed to create are pending, in the order given."""
        store = make_store()
        first, second = make_delivery("esc-1", 1), make_delivery("esc-1", 2, target="email")
        store.create(make_escalation("esc-1"), [first, second])
        assert store.pending_deliveries() == [first, second]

    def test_create_refuses_a_taken_id_and_writes_nothing(self, make_store: StoreFactory) -> None:
        """A second create with the same id raises ConfigurationError; the first stays as it was."""
        store = make_store()
        original = make_escalation("esc-1")
        store.create(original)
        impostor = make_escalation("esc-1", next_due=NOW - HOUR)
        with pytest.raises(ConfigurationError, match="esc-1 already exists"):
            store.create(impostor, [make_delivery("esc-1", 9)])
        assert store.get("esc-1") == original
        assert store.pending_deliveries() == []

    def test_list_is_oldest_first_then_by_id(self, make_store: StoreFactory) -> None:
        """list() orders by opened_at, ties broken by id, whatever the insertion order."""
        store = make_store()
        for escalation_id, opened in [("c", NOW), ("b", NOW - HOUR), ("a", NOW), ("d", NOW + HOUR)]:
            store.create(make_escalation(escalation_id, opened_at=opened))
        assert [e.id for e in store.list()] == ["b", "a", "c", "d"]

    def test_list_filters_by_state_and_route_and_limits(self, make_store: StoreFactory) -> None:
        """state, route and limit filter the oldest-first list; they combine."""
        store = make_store()
        other_route = make_escalation().route.model_copy(update={"name": "finance"})
        store.create(make_escalation("a", opened_at=NOW - 3 * HOUR))
        store.create(approve(make_escalation("b", opened_at=NOW - 2 * HOUR))[0])
        store.create(make_escalation("c", opened_at=NOW - HOUR, route=other_route))
        store.create(make_escalation("d", opened_at=NOW))

        assert [e.id for e in store.list(state=EscalationState.OPEN)] == ["a", "c", "d"]
        assert [e.id for e in store.list(state=EscalationState.APPROVED)] == ["b"]
        assert [e.id for e in store.list(route="finance")] == ["c"]
        assert [e.id for e in store.list(route="ops", state=EscalationState.OPEN)] == ["a", "d"]
        assert [e.id for e in store.list(limit=2)] == ["a", "b"]
        assert store.list(limit=0) == []
        assert store.list(route="nowhere") == []

    # -- update --------------------------------------------------------------------------------

    def test_update_writes_the_new_version_and_its_deliveries(
        self, make_store: StoreFactory
    ) -> None:
        """update() stores what the change returns, with its deliveries, and returns it."""
        store = make_store()
        store.create(make_escalation("esc-1"))
        new = store.update("esc-1", approve)
        assert new.version == 1
        assert new.state is EscalationState.APPROVED
        assert store.get("esc-1") == new
        assert [d.id for d in store.pending_deliveries("esc-1")] == ["esc-1:approved-v1"]

    def test_update_of_an_unknown_id_raises_unknown_escalation(
        self, make_store: StoreFactory
    ) -> None:
        """UnknownEscalation (a LookupError) names the id; the change never runs."""
        store = make_store()
        called: list[Escalation] = []

        def change(escalation: Escalation) -> Change:
            called.append(escalation)
            return approve(escalation)

        with pytest.raises(UnknownEscalation) as raised:
            store.update("ghost", change)
        assert isinstance(raised.value, LookupError)
        assert raised.value.escalation_id == "ghost"
        assert called == []

    def test_a_change_that_raises_writes_nothing(self, make_store: StoreFactory) -> None:
        """The change's own exception propagates unchanged and nothing is written."""
        store = make_store()
        original = make_escalation("esc-1")
        store.create(original)

        class Refused(Exception):
            pass

        def change(escalation: Escalation) -> Change:
            approve(escalation)
            raise Refused("no")

        with pytest.raises(Refused):
            store.update("esc-1", change)
        assert store.get("esc-1") == original
        assert store.pending_deliveries() == []

    def test_update_refuses_a_change_that_skips_a_version(self, make_store: StoreFactory) -> None:
        """A result whose version is not the old + 1, or with another id, is refused unwritten."""
        store = make_store()
        original = make_escalation("esc-1")
        store.create(original)

        def skips(escalation: Escalation) -> Change:
            new, deliveries = approve(escalation)
            return new.model_copy(update={"version": 5}), deliveries

        def renames(escalation: Escalation) -> Change:
            new, deliveries = approve(escalation)
            return new.model_copy(update={"id": "other"}), deliveries

        for change in (skips, renames):
            with pytest.raises(ConfigurationError, match="version by one"):
                store.update("esc-1", change)
        assert store.get("esc-1") == original
        assert store.get("other") is None
        assert store.pending_deliveries() == []

    def test_updates_in_a_row_each_see_the_last(self, make_store: StoreFactory) -> None:
        """Each update starts from the stored result of the one before."""
        store = make_store()
        store.create(make_escalation("esc-1"))
        for _ in range(3):
            store.update("esc-1", fire)
        current = store.get("esc-1")
        assert current is not None
        assert current.version == 3
        assert len(current.history) == 3

    # -- process_due ---------------------------------------------------------------------------

    def test_process_due_hands_over_only_due_non_final_escalations(
        self, make_store: StoreFactory
    ) -> None:
        """Due means next_due <= now (equal counts); final and timer-less escalations never are."""
        store = make_store()
        store.create(due("past"))
        store.create(make_escalation("exactly-now", next_due=NOW))
        store.create(make_escalation("future", next_due=NOW + MINUTE))
        store.create(make_escalation("no-timer", next_due=None))
        # A final escalation whose timer field was left set: still never due.
        final = approve(make_escalation("final"))[0].model_copy(update={"next_due": NOW - HOUR})
        store.create(final)

        recorder = Recorder()
        assert store.process_due(NOW, recorder) == 2
        assert sorted(recorder.seen) == ["exactly-now", "past"]
        fired = store.get("past")
        assert fired is not None
        assert fired.version == 1
        assert fired.next_due is None
        assert store.process_due(NOW, recorder) == 0

    def test_process_due_takes_the_earliest_first_and_respects_limit(
        self, make_store: StoreFactory
    ) -> None:
        """A batch holds at most ``limit`` escalations, earliest next_due first."""
        store = make_store()
        for minutes in (5, 1, 4, 2, 3):
            store.create(due(f"late-{minutes}", minutes_ago=minutes))
        recorder = Recorder()
        assert store.process_due(NOW, recorder, limit=2) == 2
        assert recorder.seen == ["late-5", "late-4"]
        assert store.process_due(NOW, recorder, limit=2) == 2
        assert store.process_due(NOW, recorder, limit=2) == 1
        assert recorder.seen == ["late-5", "late-4", "late-3", "late-2", "late-1"]

    def test_process_due_leaves_an_escalation_alone_when_the_change_returns_none(
        self, make_store: StoreFactory
    ) -> None:
        """None means "not now": nothing is written and it is handed over again next time."""
        store = make_store()
        original = due("esc-1")
        store.create(original)
        seen: list[str] = []

        def not_yet(escalation: Escalation) -> Change | None:
            seen.append(escalation.id)
            return None

        assert store.process_due(NOW, not_yet) == 1
        assert store.get("esc-1") == original
        assert store.pending_deliveries() == []
        assert store.process_due(NOW, not_yet) == 1
        assert seen == ["esc-1", "esc-1"]

    def test_process_due_writes_changes_and_deliveries_together(
        self, make_store: StoreFactory
    ) -> None:
        """Every fired escalation has its delivery pending, and nothing else is written."""
        store = make_store()
        for n in range(3):
            store.create(due(f"esc-{n}"))
        assert store.process_due(NOW, Recorder(by="w")) == 3
        pending = store.pending_deliveries()
        assert sorted(d.escalation_id for d in pending) == ["esc-0", "esc-1", "esc-2"]
        assert {d.target for d in pending} == {"w"}
        for n in range(3):
            escalation = store.get(f"esc-{n}")
            assert escalation is not None
            assert escalation.version == 1
            assert [d.id for d in store.pending_deliveries(f"esc-{n}")] == [f"esc-{n}:w-v1"]

    def test_process_due_stops_at_a_change_that_raises(self, make_store: StoreFactory) -> None:
        """The error propagates; that escalation is not written, and the ones before it are."""
        store = make_store()
        store.create(due("first", minutes_ago=3))
        store.create(due("broken", minutes_ago=2))
        store.create(due("last", minutes_ago=1))

        def change(escalation: Escalation) -> Change:
            if escalation.id == "broken":
                raise RuntimeError("bad case")
            return fire(escalation)

        with pytest.raises(RuntimeError, match="bad case"):
            store.process_due(NOW, change)
        first, broken, last = (store.get(i) for i in ("first", "broken", "last"))
        assert first is not None
        assert first.version == 1
        assert broken == due("broken", minutes_ago=2)
        assert last == due("last", minutes_ago=1)
        assert [d.escalation_id for d in store.pending_deliveries()] == ["first"]

    def test_process_due_costs_what_is_due_not_what_is_open(self, make_store: StoreFactory) -> None:
        """With many open escalations and none due, a tick is far cheaper than reading them all."""
        store = make_store()
        for n in range(400):
            store.create(make_escalation(f"esc-{n:04}", next_due=NOW + (n + 1) * MINUTE))

        def never(escalation: Escalation) -> Change:
            raise AssertionError(f"{escalation.id} is not due")

        def best_of(runs: int, call: Callable[[], object]) -> float:
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
            return min(times)

        tick = best_of(5, lambda: store.process_due(NOW, never))
        read_all = best_of(3, store.list)
        assert store.process_due(NOW, never) == 0
        assert tick * 5 < read_all, f"a tick took {tick:.6f}s, reading everything {read_all:.6f}s"

    # -- the outbox ----------------------------------------------------------------------------

    def test_claim_leases_due_deliveries_oldest_first(self, make_store: StoreFactory) -> None:
        """Claimed deliveries come oldest first, attempts counted, future ones left for later."""
        store = make_store()
        store.create(
            make_escalation("esc-1"),
            [
                make_delivery("esc-1", 1),
                make_delivery("esc-1", 2, not_before=NOW + HOUR),
                make_delivery("esc-1", 3, not_before=NOW - HOUR),
            ],
        )
        claimed = store.claim_deliveries(NOW)
        assert [(d.id, d.attempts) for d in claimed] == [("esc-1:1", 1), ("esc-1:3", 1)]
        assert claimed[0].payload == {"kind": "opened", "escalation_id": "esc-1", "n": 1}
        assert claimed[0].not_before == NOW

    def test_claim_respects_limit(self, make_store: StoreFactory) -> None:
        """At most ``limit`` deliveries per claim; the rest stay for the next one."""
        store = make_store()
        store.create(make_escalation("esc-1"), [make_delivery("esc-1", n) for n in range(1, 6)])
        assert [d.id for d in store.claim_deliveries(NOW, limit=2)] == ["esc-1:1", "esc-1:2"]
        assert [d.id for d in store.claim_deliveries(NOW, limit=2)] == ["esc-1:3", "esc-1:4"]
        assert [d.id for d in store.claim_deliveries(NOW, limit=2)] == ["esc-1:5"]

    def test_a_lease_hides_a_delivery_until_it_runs_out(self, make_store: StoreFactory) -> None:
        """A claimed delivery is hidden until now + lease, then claimable again (worker died)."""
        store = make_store()
        store.create(make_escalation("esc-1"), [make_delivery("esc-1", 1)])
        lease = timedelta(seconds=30)
        assert [d.attempts for d in store.claim_deliveries(NOW, lease=lease)] == [1]
        assert store.claim_deliveries(NOW + timedelta(seconds=29), lease=lease) == []
        again = store.claim_deliveries(NOW + lease, lease=lease)
        assert [(d.id, d.attempts) for d in again] == [("esc-1:1", 2)]
        # Leased or not, it is still pending until completed.
        assert [d.id for d in store.pending_deliveries()] == ["esc-1:1"]

    def test_a_completed_delivery_is_never_handed_out_again(self, make_store: StoreFactory) -> None:
        """complete_delivery removes it from pending and from every later claim."""
        store = make_store()
        store.create(
            make_escalation("esc-1"), [make_delivery("esc-1", 1), make_delivery("esc-1", 2)]
        )
        store.claim_deliveries(NOW)
        store.complete_delivery("esc-1:1")
        assert [d.id for d in store.pending_deliveries()] == ["esc-1:2"]
        assert [d.id for d in store.claim_deliveries(NOW + HOUR)] == ["esc-1:2"]
        store.complete_delivery("esc-1:1")  # again: no effect
        store.complete_delivery("unknown")
        assert [d.id for d in store.pending_deliveries()] == ["esc-1:2"]

    def test_a_failed_delivery_waits_until_retry_at(self, make_store: StoreFactory) -> None:
        """fail_delivery with retry_at: pending, claimable only from retry_at on, error kept."""
        store = make_store()
        store.create(make_escalation("esc-1"), [make_delivery("esc-1", 1)])
        store.claim_deliveries(NOW)
        retry_at = NOW + timedelta(seconds=5)
        store.fail_delivery("esc-1:1", error="HTTP 503", retry_at=retry_at)
        [pending] = store.pending_deliveries()
        assert (pending.last_error, pending.not_before, pending.attempts) == (
            "HTTP 503",
            retry_at,
            1,
        )
        assert store.claim_deliveries(retry_at - timedelta(microseconds=1)) == []
        [again] = store.claim_deliveries(retry_at)
        assert (again.attempts, again.last_error) == (2, "HTTP 503")

    def test_a_delivery_given_up_is_gone(self, make_store: StoreFactory) -> None:
        """fail_delivery with retry_at=None gives up: never pending or claimed again."""
        store = make_store()
        store.create(
            make_escalation("esc-1"), [make_delivery("esc-1", 1), make_delivery("esc-1", 2)]
        )
        store.claim_deliveries(NOW)
        store.fail_delivery("esc-1:1", error="410 Gone", retry_at=None)
        assert [d.id for d in store.pending_deliveries()] == ["esc-1:2"]
        assert [d.id for d in store.claim_deliveries(NOW + HOUR)] == ["esc-1:2"]
        store.fail_delivery("unknown", error="x", retry_at=None)  # no such delivery: no effect

    def test_pending_deliveries_filters_by_escalation(self, make_store: StoreFactory) -> None:
        """pending_deliveries(id) lists that escalation's deliveries only, oldest first."""
        store = make_store()
        store.create(make_escalation("a"), [make_delivery("a", 1)])
        store.create(make_escalation("b"), [make_delivery("b", 1)])
        store.update("a", approve)
        assert [d.id for d in store.pending_deliveries("a")] == ["a:1", "a:approved-v1"]
        assert [d.id for d in store.pending_deliveries("b")] == ["b:1"]
        assert store.pending_deliveries("nobody") == []
        assert [d.id for d in store.pending_deliveries()] == ["a:1", "b:1", "a:approved-v1"]

    # -- durability ----------------------------------------------------------------------------

    def test_a_reopened_store_keeps_everything(self, make_store: StoreFactory) -> None:
        """Escalations, versions, deliveries, leases and outcomes survive closing and reopening."""
        first = make_store()
        first.create(make_escalation("open", external_id="call_1"), [make_delivery("open", 1)])
        first.create(due("due"))
        first.update("open", approve)
        first.process_due(NOW, Recorder())
        assert [d.id for d in first.claim_deliveries(NOW, limit=1)] == ["open:1"]  # leased 60 s
        first.complete_delivery("due:worker-1-v1")
        before = (first.list(), first.pending_deliveries())
        first.close()
        first.close()  # idempotent

        second = make_store()
        assert (second.list(), second.pending_deliveries()) == before
        assert [(e.id, e.version) for e in second.list()] == [("due", 1), ("open", 1)]
        found = second.find("call_1")
        assert found is not None
        assert (found.id, found.external_id) == ("open", "call_1")
        assert [d.id for d in second.claim_deliveries(NOW)] == ["open:approved-v1"]
        later = second.claim_deliveries(NOW + HOUR)
        assert [(d.id, d.attempts) for d in later] == [("open:1", 2), ("open:approved-v1", 2)]

    # -- concurrency ---------------------------------------------------------------------------

    def test_threads_never_get_the_same_escalation(self, make_store: StoreFactory) -> None:
        """Four threads, each with its own store on the same data, fire 120 timers once each."""
        setup = make_store()
        ids = [f"esc-{n:03}" for n in range(120)]
        for n, escalation_id in enumerate(ids):
            setup.create(due(escalation_id, minutes_ago=n + 1))
        stores = [make_store() for _ in range(4)]
        recorders = [Recorder(by=f"thread-{n}") for n in range(4)]
        start = threading.Barrier(4)
        errors: list[BaseException] = []

        def work(store: EscalationStore, recorder: Recorder) -> None:
            try:
                start.wait()
                while store.process_due(NOW, recorder, limit=5) == 5:
                    pass
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [
            threading.Thread(target=work, args=(s, r))
            for s, r in zip(stores, recorders, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        handed = collections.Counter(i for r in recorders for i in r.seen)
        assert sorted(handed) == ids
        assert set(handed.values()) == {1}
        pending = setup.pending_deliveries()
        assert sorted(d.escalation_id for d in pending) == ids

    # -- external ids --------------------------------------------------------------

    def test_find_returns_the_escalation_opened_under_an_external_id(
        self, make_store: StoreFactory
    ) -> None:
        """find() looks an escalation up by its external id; it stays with it through changes."""
        store = make_store()
        created = make_escalation("esc-1", external_id="call_1")
        assert store.create(created) == created
        store.create(make_escalation("esc-2"))
        assert store.find("call_1") == created
        assert store.find("call_2") is None
        approved = store.update("esc-1", approve)
        assert approved.external_id == "call_1"
        assert store.find("call_1") == approved

    def test_create_under_a_taken_external_id_returns_the_holder_and_writes_nothing(
        self, make_store: StoreFactory
    ) -> None:
        """One escalation per external id: a second create under it writes nothing (no row, no
        delivery) and returns the escalation that holds the id; a taken id is still an error."""
        store = make_store()
        holder = make_escalation("esc-1", external_id="call_1")
        store.create(holder, [make_delivery("esc-1", 1)])
        second = make_escalation("esc-2", external_id="call_1", next_due=NOW - HOUR)
        assert store.create(second, [make_delivery("esc-2", 1)]) == holder
        assert [e.id for e in store.list()] == ["esc-1"]
        assert [d.id for d in store.pending_deliveries()] == ["esc-1:1"]
        assert store.process_due(NOW, Recorder()) == 0  # the refused one's timer was never stored
        with pytest.raises(ConfigurationError, match="esc-1 already exists"):
            store.create(make_escalation("esc-1", external_id="call_2"))
        assert store.find("call_2") is None
        # Escalations without an external id never clash on it.
        store.create(make_escalation("esc-3"))
        store.create(make_escalation("esc-4"))
        assert [e.id for e in store.list()] == ["esc-1", "esc-3", "esc-4"]

    def test_update_refuses_a_change_to_the_external_id(self, make_store: StoreFactory) -> None:
        """A change may not give an escalation another external id (nor take it away)."""
        store = make_store()
        store.create(make_escalation("esc-1", external_id="call_1"))

        def renames(escalation: Escalation) -> Change:
            new, deliveries = approve(escalation)
            return new.model_copy(update={"external_id": "call_2"}), deliveries

        with pytest.raises(ConfigurationError, match="external id"):
            store.update("esc-1", renames)
        assert store.find("call_2") is None
        found = store.find("call_1")
        assert found is not None
        assert found.version == 0

    def test_threads_creating_one_external_id_store_it_once(self, make_store: StoreFactory) -> None:
        """Four threads, a store each on the same data, create 20 external ids at once (each under
        its own escalation id): each external id is stored once, and every thread gets the same
        escalation back for it."""
        stores = [make_store() for _ in range(4)]
        start = threading.Barrier(4)
        got: list[list[str]] = [[] for _ in stores]
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                start.wait()
                for k in range(20):
                    mine = make_escalation(f"esc-{k}-{n}", external_id=f"call_{k}")
                    got[n].append(stores[n].create(mine).id)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert got[0] == got[1] == got[2] == got[3]
        stored = stores[0].list()
        assert sorted(e.external_id or "" for e in stored) == sorted(f"call_{k}" for k in range(20))
        assert sorted(e.id for e in stored) == sorted(got[0])
