"""How escalation timers scale: a tick's cost against open cases, case throughput, many workers.

Three measurements, each on the real stores:

* **Tick cost against open cases** (SQLite).  A tick that fires 1,000 due
  ack deadlines (each case moves from the team lead to the director and a
  notice is queued) in a store holding 100,000 open escalations, against the
  same tick in a store holding only those 1,000.  The due cases are created
  fresh before each round (at the round's instant, the rest of the big store
  is hours away from due) and cancelled after it, untimed, so every round
  starts from the same state: exactly 100,000, or exactly 1,000, open.
  The rounds alternate between the stores in a shuffled order.  Target: the
  big store's median tick at most 2x the small one's, because the stores
  find due work through an index on ``next_due`` (the cost grows with the
  number due, not the number open).
* **Open and decide throughput** (SQLite and PostgreSQL).  ``router.open``
  for N escalating decisions, then ``router.approve`` for each: cases per
  second, and each half on its own.  For information: no target.
* **Four workers on one PostgreSQL store.**  Four processes each run
  ``router.tick()`` in a loop over 10,000 due escalations.  Each worker
  writes its name into the events it fires (the ``by`` of ``breached`` and
  ``escalated``), so the histories show who moved each case.  Afterwards,
  *double fires* (a case breached twice at one level, moved by two workers,
  or a version past the one move) and *lost* cases (still at the first
  level) must both be 0, and every notice must be sent exactly once: that is
  the correctness check.  The figure is escalations fired per second.

The stores carry no audit log and the channel does nothing, so the figures
are the router's and the store's own cost.  Creating the 100,000 cases is
not measured: they are written in one transaction through ``SQLiteStore``'s
own row encoding (``create`` would fsync once per case).  PostgreSQL is a
throwaway ``handrail.testing.PostgresServer`` (fsync off), started here.

Run ``python benchmarks/bench_escalation.py`` for a table, ``--json`` for one
JSON document, ``--quick`` for a smoke run whose figures mean nothing,
``--scale`` to shrink or grow every size (0.1: 10,000 open, 100 due).  See
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import builtins
import gc
import json
import multiprocessing
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from handrail import ActionRequest, Decision, Policy, Principal
from handrail.approvals import Identity
from handrail.escalation import (
    Delivery,
    Escalation,
    EscalationRouter,
    EscalationState,
    EscalationStore,
    Level,
    MemoryStore,
    Notification,
    Route,
    _machine,
)
from handrail.escalation._sqlite import SQLiteStore
from handrail.escalation._store import Change
from handrail.testing import FakeClock

# Binds an approval to its request (a keyed fingerprint); a fixed one, as it is no secret here.
ROUTER_KEY = b"handrail-benchmarks-router-key-not-a-secret"
TICK_RATIO_TARGET = 2.0  # the big store's tick over the small one's
QUICK_SCALE = 0.02
BASE_OPEN = 100_000
BASE_DUE = 1_000
BASE_CASES = 1_000
BASE_WORKER_DUE = 10_000
WORKERS = 4
WORKER_TIME_LIMIT = 600.0  # seconds; a worker stops here whatever is left

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
ACK_WITHIN = timedelta(minutes=30)

ROUTE = Route(
    name="sales-discounts",
    levels=(
        Level(
            name="team-lead",
            notify=("#sales-leads",),
            deciders=("group:sales-leads",),
            ack_within=ACK_WITHIN,
            resolve_within=timedelta(hours=4),
        ),
        Level(
            name="director",
            notify=("dana@example.com",),
            deciders=("dana",),
            resolve_within=timedelta(hours=8),
        ),
    ),
    on_timeout="deny",
)
GROUPS = {"sales-leads": ["lena", "leo"]}


# -- the cases ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much of everything one run makes; ``scale`` 1 is the full benchmark."""

    scale: float
    open: int  # open escalations in the big store while its tick runs
    due: int  # of which due at that tick; the small store holds only these
    rounds: int  # timed rounds per store, after one warm-up round
    cases: int  # opened then decided, per repetition and store
    case_repetitions: int
    worker_due: int  # due escalations the workers share
    workers: int
    worker_batch: int  # the routers' batch_size in the worker run

    @classmethod
    def for_scale(cls, scale: float, *, quick: bool, workers: int = WORKERS) -> Sizes:
        """Every size multiplied by ``scale`` (with floors that keep each part meaningful)."""
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        due = max(10, round(BASE_DUE * scale))
        worker_due = max(40, round(BASE_WORKER_DUE * scale))
        return cls(
            scale=scale,
            open=max(2 * due, round(BASE_OPEN * scale)),
            due=due,
            rounds=2 if quick else 9,
            cases=max(10, round(BASE_CASES * scale)),
            case_repetitions=1 if quick else 3,
            worker_due=worker_due,
            workers=workers,
            # Small batches on small runs, so every worker gets some of the work.
            worker_batch=min(500, max(10, worker_due // 20)),
        )


def escalating_decision() -> Decision:
    """A discount of 25 % asked for by the sales assistant: the policy escalates it."""
    policy = Policy.from_dict(
        {
            "rules": [
                {"id": "sales-deals", "effect": "allow", "actions": ["crm.deal.*"]},
                {
                    "id": "big-discount",
                    "effect": "escalate",
                    "actions": ["crm.deal.discount"],
                    "when": {"args.discount_pct": {"gt": 15}},
                    "escalate_to": ROUTE.name,
                },
            ]
        }
    )
    request = ActionRequest(
        principal=Principal(agent="sales-assistant", on_behalf_of="alice"),
        action="crm.deal.discount",
        resource={"type": "deal", "id": "d-1042"},
        args={"deal_id": "d-1042", "discount_pct": 25, "note": "multi-year renewal"},
    )
    decision = policy.evaluate(request)
    if decision.escalate_to != ROUTE.name:
        raise AssertionError(f"the benchmark's decision does not escalate: {decision}")
    return decision


def template() -> Escalation:
    """One escalation as the router opens it, to copy under other ids and times."""
    clock = FakeClock(START)
    with EscalationRouter(
        [ROUTE], MemoryStore(), clock=clock, groups=GROUPS, key=ROUTER_KEY
    ) as router:
        return router.open(escalating_decision())


def opened_at(base: Escalation, escalation_id: str, when: datetime) -> Escalation:
    """``base`` as if opened at ``when`` under ``escalation_id``: its timers run from then."""
    timers = _machine.level_timers(base.route, 0, when)
    return base.model_copy(
        update={
            "id": escalation_id,
            "opened_at": when,
            "level_started_at": when,
            "history": (base.history[0].model_copy(update={"at": when}),),
            "next_due": min(t for t in timers.values() if t is not None),
            **timers,
        }
    )


def insert_sqlite(path: Path, escalations: Sequence[Escalation]) -> str:
    """Write ``escalations`` into the SQLite store at ``path`` fast; returns how.

    One transaction through the store module's own row encoding, on a second
    connection: what ``create`` writes, without an fsync per case.  If that
    encoding is not there (the store changed), ``create`` one by one.
    """
    try:
        from handrail.escalation._sqlite import _INSERT, _row
    except ImportError:
        with SQLiteStore(path) as store:
            for escalation in escalations:
                store.create(escalation)
        return "SQLiteStore.create, one by one"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(_INSERT, [_row(e) for e in escalations])
        connection.execute("COMMIT")
    finally:
        connection.close()
    return "one transaction, SQLiteStore's row encoding"


class NullChannel:
    """A channel that accepts every notice and keeps only its id."""

    name = "null"

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification.id)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The garbage collector off for a timed section (the previous garbage collected first)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- a: a tick's cost against the number open ----------------------------------------


@dataclass
class TickStore:
    """One store of part (a), its router and clock, and the tick times measured on it."""

    name: str
    store: SQLiteStore
    path: Path
    router: EscalationRouter
    clock: FakeClock
    background: int
    samples: list[float]
    fired: list[int]


def measure_ticks(sizes: Sizes, root: Path, seed: int = 0) -> dict[str, Any]:
    """Part (a): median tick time firing ``due`` cases with ``open`` vs ``due`` open."""
    base = template()
    stores: list[TickStore] = []
    populated = ""
    for name, background in (("big", sizes.open - sizes.due), ("small", 0)):
        path = root / f"ticks-{name}.db"
        SQLiteStore(path).close()  # creates the tables
        # At least half an hour from due: one case every half second from START + 30 min on.
        populated = insert_sqlite(
            path,
            [
                opened_at(base, f"open-{i:07d}", START + timedelta(seconds=i / 2))
                for i in range(background)
            ],
        )
        store = SQLiteStore(path)
        clock = FakeClock(START)
        router = EscalationRouter(
            [ROUTE], store, channels=[NullChannel()], clock=clock, groups=GROUPS, key=ROUTER_KEY
        )
        stores.append(TickStore(name, store, path, router, clock, background, [], []))
    order = list(stores)
    shuffle = random.Random(seed).shuffle
    try:
        for number in range(sizes.rounds + 1):  # round 0 warms up
            shuffle(order)
            for entry in order:
                elapsed, fired = _tick_round(entry, base, sizes.due, number)
                if number > 0:
                    entry.samples.append(elapsed)
                    entry.fired.append(fired)
    finally:
        for entry in stores:
            entry.router.close()
            entry.store.close()
    big, small = stores
    return {
        "open": {"big": big.background + sizes.due, "small": small.background + sizes.due},
        "due": sizes.due,
        "rounds": sizes.rounds,
        "populated_by": populated,
        "big_ms": round(statistics.median(big.samples) * 1000, 2),
        "small_ms": round(statistics.median(small.samples) * 1000, 2),
        "ratio": round(statistics.median(big.samples) / statistics.median(small.samples), 3),
        "samples_ms": {e.name: [round(s * 1000, 2) for s in e.samples] for e in (big, small)},
        # Each timed tick fired exactly the cases due, no more and no fewer.
        "fired_all_due": all(f == sizes.due for e in stores for f in e.fired),
    }


def _tick_round(entry: TickStore, base: Escalation, due: int, number: int) -> tuple[float, int]:
    """Create ``due`` cases due now, time one tick, then drain and cancel them (untimed)."""
    now = START + timedelta(seconds=number + 1)
    ids = [f"due-{number:03d}-{i:06d}" for i in range(due)]
    insert_sqlite(entry.path, [opened_at(base, i, now - ACK_WITHIN) for i in ids])
    entry.clock.set(now)
    with gc_paused():
        start = time.perf_counter()
        report = entry.router.tick()
        elapsed = time.perf_counter() - start
    while entry.router.tick().delivered:  # the notices the tick left: same instant, no timers
        pass

    def cancel(current: Escalation) -> Change:
        return _machine.cancel(current, by="benchmark", reason="reset", now=now), ()

    for escalation_id in ids:  # back to the same open count for the next round
        entry.store.update(escalation_id, cancel)
    return elapsed, report.fired


# -- b: open and decide throughput -----------------------------------------------------


def measure_cases(make_store: Callable[[int], EscalationStore], sizes: Sizes) -> dict[str, float]:
    """Part (b): ``open`` N cases then ``approve`` each; median rates over the repetitions."""
    decision = escalating_decision()
    opens: list[float] = []
    decides: list[float] = []
    cases: list[float] = []
    for repetition in range(sizes.case_repetitions):
        store = make_store(repetition)
        with EscalationRouter([ROUTE], store, groups=GROUPS, key=ROUTER_KEY) as router:
            router.open(decision)  # warm up: connections, caches, imports
            with gc_paused():
                start = time.perf_counter()
                ids = [router.open(decision).id for _ in range(sizes.cases)]
                opened = time.perf_counter()
                for escalation_id in ids:
                    router.approve(
                        escalation_id,
                        by=Identity("lena", method="test"),
                        reason="within the quarter's budget",
                    )
                done = time.perf_counter()
            approved = router.list(state=EscalationState.APPROVED)
        store.close()
        if len(approved) != sizes.cases:
            raise AssertionError(f"{len(approved)} of {sizes.cases} cases approved")
        opens.append(sizes.cases / (opened - start))
        decides.append(sizes.cases / (done - opened))
        cases.append(sizes.cases / (done - start))
    return {
        "cases_per_s": round(statistics.median(cases)),
        "opens_per_s": round(statistics.median(opens)),
        "decides_per_s": round(statistics.median(decides)),
    }


# -- c: many workers on one PostgreSQL store --------------------------------------------


class WorkerTaggingStore:
    """An ``EscalationStore`` that writes the worker's name into the timer events it fires.

    Only ``process_due`` differs from the store it wraps: the ``breached`` and
    ``escalated`` events a change adds get ``by=<worker>``, stored with the
    change, so the histories say which worker moved each case.
    """

    def __init__(self, inner: EscalationStore, worker: str) -> None:
        self.inner = inner
        self.worker = worker

    def create(self, escalation: Escalation, deliveries: Sequence[Delivery] = ()) -> Escalation:
        return self.inner.create(escalation, deliveries)

    def get(self, escalation_id: str) -> Escalation | None:
        return self.inner.get(escalation_id)

    def find(self, external_id: str) -> Escalation | None:
        return self.inner.find(external_id)

    def list(
        self,
        *,
        state: EscalationState | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> list[Escalation]:
        return self.inner.list(state=state, route=route, limit=limit)

    def update(self, escalation_id: str, change: Callable[[Escalation], Change]) -> Escalation:
        return self.inner.update(escalation_id, change)

    def process_due(
        self, now: datetime, change: Callable[[Escalation], Change | None], *, limit: int = 500
    ) -> int:
        def tagged(current: Escalation) -> Change | None:
            result = change(current)
            if result is None:
                return None
            new, deliveries = result
            seen = len(current.history)
            history = tuple(
                event.model_copy(update={"by": self.worker})
                if index >= seen and event.by is None
                else event
                for index, event in enumerate(new.history)
            )
            return new.model_copy(update={"history": history}), deliveries

        return self.inner.process_due(now, tagged, limit=limit)

    def claim_deliveries(
        self, now: datetime, *, limit: int = 100, lease: timedelta = timedelta(seconds=60)
    ) -> builtins.list[Delivery]:
        return self.inner.claim_deliveries(now, limit=limit, lease=lease)

    def complete_delivery(self, delivery_id: str) -> None:
        self.inner.complete_delivery(delivery_id)

    def fail_delivery(self, delivery_id: str, *, error: str, retry_at: datetime | None) -> None:
        self.inner.fail_delivery(delivery_id, error=error, retry_at=retry_at)

    def pending_deliveries(self, escalation_id: str | None = None) -> builtins.list[Delivery]:
        return self.inner.pending_deliveries(escalation_id)

    def is_admin(self) -> bool:
        return self.inner.is_admin()

    def close(self) -> None:
        self.inner.close()


def tick_worker(
    url: str,
    schema: str,
    name: str,
    now: datetime,
    batch_size: int,
    barrier: Any,
    results: Any,
) -> None:
    """One worker process of part (c): tick until two ticks in a row find nothing to do."""
    from handrail.escalation._postgres import PostgresStore

    channel = NullChannel()
    outcome: dict[str, Any] = {"worker": name, "errors": []}
    try:
        store = WorkerTaggingStore(PostgresStore(url, schema=schema, create=False), name)
        router = EscalationRouter(
            [ROUTE],
            store,
            channels=[channel],
            clock=FakeClock(now),
            groups=GROUPS,
            worker=name,
            batch_size=batch_size,
            key=ROUTER_KEY,
        )
    except Exception as exc:
        outcome["errors"].append(f"{type(exc).__name__}: {exc}")
        results.put(outcome)
        barrier.abort()
        return
    try:
        barrier.wait(timeout=120)
    except threading.BrokenBarrierError:
        outcome["errors"].append("another worker failed to start")
        results.put(outcome)
        store.close()
        return
    start = time.monotonic()
    fired = delivered = failed = ticks = idle = 0
    last_fire = start
    while (
        idle < 2 and len(outcome["errors"]) < 100 and time.monotonic() - start < WORKER_TIME_LIMIT
    ):
        try:
            report = router.tick()
        except Exception as exc:  # counted and reported; the run fails on any
            outcome["errors"].append(f"{type(exc).__name__}: {exc}")
            continue
        ticks += 1
        fired += report.fired
        delivered += report.delivered
        failed += report.failed
        if report.fired:
            last_fire = time.monotonic()
        idle = idle + 1 if not (report.fired or report.delivered or report.failed) else 0
    outcome.update(
        fired=fired,
        delivered=delivered,
        failed=failed,
        ticks=ticks,
        start=start,
        last_fire=last_fire,
        sent=channel.sent,
    )
    store.close()
    results.put(outcome)


def measure_workers(url: str, sizes: Sizes) -> dict[str, Any]:
    """Part (c): ``workers`` processes tick one store holding ``worker_due`` due cases."""
    from handrail.escalation._postgres import PostgresStore

    schema = "bench_workers"
    base = template()
    fire_at = START + timedelta(hours=1)
    with PostgresStore(url, schema=schema) as store:
        for i in range(sizes.worker_due):  # due at fire_at minus up to a minute
            when = fire_at - ACK_WITHIN - timedelta(seconds=60 * i / sizes.worker_due)
            store.create(opened_at(base, f"due-{i:06d}", when))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(sizes.workers + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=tick_worker,
            args=(url, schema, f"worker-{n}", fire_at, sizes.worker_batch, barrier, results),
        )
        for n in range(1, sizes.workers + 1)
    ]
    for process in processes:
        process.start()
    outcomes: list[dict[str, Any]] = []
    try:
        with suppress(threading.BrokenBarrierError):  # a worker failed: it says why
            barrier.wait(timeout=120)  # every worker connected: go
        for _ in processes:
            outcomes.append(results.get(timeout=WORKER_TIME_LIMIT + 120))
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    with PostgresStore(url, schema=schema, create=False) as store:
        cases = store.list(route=ROUTE.name)
        pending = len(store.pending_deliveries())
    return _judge_workers(sizes, cases, outcomes, pending)


def _name(outcome: Mapping[str, Any]) -> str:
    return str(outcome["worker"])


def _judge_workers(
    sizes: Sizes,
    cases: Sequence[Escalation],
    outcomes: Sequence[Mapping[str, Any]],
    pending: int,
) -> dict[str, Any]:
    """Read every history: double fires, lost cases, who fired what, notices sent twice."""
    double: list[str] = []
    lost: list[str] = []
    moved_by: dict[str, int] = {}
    for case in cases:
        breaches = [e for e in case.history if e.kind == "breached"]
        moves = [e for e in case.history if e.kind == "escalated"]
        workers = {e.by for e in (*breaches, *moves)}
        if len(breaches) > 1 or len(moves) > 1 or len(workers) > 1 or case.version > 1:
            double.append(case.id)
        if case.level == 0 and not case.is_terminal:
            lost.append(case.id)
        for worker in workers:
            moved_by[str(worker)] = moved_by.get(str(worker), 0) + 1
    sent = [notice for o in outcomes for notice in o.get("sent", [])]
    errors = {o["worker"]: len(o["errors"]) for o in outcomes if o["errors"]}
    error_examples = [f"{o['worker']}: {e}" for o in outcomes for e in o["errors"][:2]]
    started = [o["start"] for o in outcomes if "start" in o]
    finished = [o["last_fire"] for o in outcomes if "last_fire" in o]
    elapsed = max(finished) - min(started) if started and finished else 0.0
    fired = sum(o.get("fired", 0) for o in outcomes)
    return {
        "workers": sizes.workers,
        "due": sizes.worker_due,
        "batch_size": sizes.worker_batch,
        "cases": len(cases),
        "fired": fired,
        "fired_per_s": round(fired / elapsed) if elapsed > 0 else 0,
        "seconds": round(elapsed, 3),
        "double_fires": len(double),
        "lost": len(lost),
        "notices_sent": len(sent),
        "notices_sent_twice": len(sent) - len(set(sent)),
        "notices_pending": pending,
        "fired_by_worker": {o["worker"]: o.get("fired", 0) for o in sorted(outcomes, key=_name)},
        "moved_by_worker_in_histories": dict(sorted(moved_by.items())),
        "errors": errors,
        "error_examples": error_examples[:8],
        "examples": {"double": double[:5], "lost": lost[:5]},
    }


# -- the run ---------------------------------------------------------------------------


def run(
    *,
    quick: bool = False,
    scale: float | None = None,
    workers: int = WORKERS,
    directory: str | None = None,
) -> dict[str, Any]:
    """Run every measurement and return the figures as JSON-ready data.

    ``quick`` runs tiny sizes (``scale`` 0.02) and two rounds: it proves the
    benchmark works, and its figures mean nothing.  ``scale`` multiplies every
    size.  ``directory`` is where the SQLite files go (a temporary one by default).
    """
    sizes = Sizes.for_scale(
        scale if scale is not None else (QUICK_SCALE if quick else 1.0),
        quick=quick,
        workers=workers,
    )
    with tempfile.TemporaryDirectory(dir=directory, prefix="handrail-bench-") as tmp:
        root = Path(tmp)
        ticks = measure_ticks(sizes, root)
        sqlite_cases = measure_cases(lambda n: SQLiteStore(root / f"cases-{n}.db"), sizes)
    postgres_cases: dict[str, float] | None = None
    workers_result: dict[str, Any] | None = None
    postgres_error: str | None = None
    try:
        from handrail.escalation._postgres import PostgresStore
        from handrail.testing import PostgresServer

        with PostgresServer() as server:
            postgres_cases = measure_cases(
                lambda n: PostgresStore(server.url, schema=f"bench_cases_{n}"), sizes
            )
            workers_result = measure_workers(server.url, sizes)
    except (ImportError, RuntimeError) as exc:  # no PostgreSQL here: say so, judge the rest
        postgres_error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return report(sizes, ticks, sqlite_cases, postgres_cases, workers_result, postgres_error,
                  quick=quick)  # fmt: skip


def report(
    sizes: Sizes,
    ticks: Mapping[str, Any],
    sqlite_cases: Mapping[str, float],
    postgres_cases: Mapping[str, float] | None,
    workers: Mapping[str, Any] | None,
    postgres_error: str | None,
    *,
    quick: bool,
) -> dict[str, Any]:
    """Rows with targets and verdicts (none when ``quick``); correctness in ``agreed``."""
    big, small = ticks["open"]["big"], ticks["open"]["small"]
    due = ticks["due"]

    def row(name: str, value: float | None, unit: str, target: str | None = None,
            met: bool | None = None) -> dict[str, Any]:  # fmt: skip
        return {
            "measurement": name,
            "value": value,
            "unit": unit,
            "target": target,
            "passed": None if quick or target is None else met,
        }

    rows = [
        row(f"sqlite tick, {due:,} due of {big:,} open", ticks["big_ms"], "ms"),
        row(f"sqlite tick, {due:,} due of {small:,} open", ticks["small_ms"], "ms"),
        row(
            f"{big:,} open over {small:,} open",
            ticks["ratio"],
            "x",
            f"<= {TICK_RATIO_TARGET:g}x",
            ticks["ratio"] <= TICK_RATIO_TARGET,
        ),
        row("sqlite open + approve", sqlite_cases["cases_per_s"], "cases/s"),
        row(
            "postgres open + approve",
            None if postgres_cases is None else postgres_cases["cases_per_s"],
            "cases/s",
        ),
    ]
    worker_ok: bool | None = None
    if workers is not None:
        worker_ok = (
            workers["double_fires"] == 0
            and workers["lost"] == 0
            and workers["notices_sent_twice"] == 0
            and workers["notices_pending"] == 0
            and workers["fired"] == workers["due"] == workers["cases"]
            and not workers["errors"]
            # The histories and the workers' own counts tell the same story.
            and workers["moved_by_worker_in_histories"]
            == {w: n for w, n in workers["fired_by_worker"].items() if n}
        )
    rows.append(
        row(
            f"postgres, {sizes.workers} workers, {sizes.worker_due:,} due",
            None if workers is None else workers["fired_per_s"],
            "fired/s",
            "0 double, 0 lost",
            worker_ok,
        )
    )
    agreed = bool(ticks["fired_all_due"]) and worker_ok is not False
    met_all = all(r["passed"] is not False for r in rows)
    judged = postgres_error is None
    return {
        "benchmark": "escalation",
        "quick": quick,
        "python": platform.python_version(),
        "sizes": {
            "scale": sizes.scale,
            "open": sizes.open,
            "due": sizes.due,
            "rounds": sizes.rounds,
            "cases": sizes.cases,
            "case_repetitions": sizes.case_repetitions,
            "worker_due": sizes.worker_due,
            "workers": sizes.workers,
            "worker_batch": sizes.worker_batch,
        },
        "rows": rows,
        "figures": {
            "ticks": dict(ticks),
            "sqlite_cases": dict(sqlite_cases),
            "postgres_cases": None if postgres_cases is None else dict(postgres_cases),
            "workers": None if workers is None else dict(workers),
        },
        "postgres": "ran" if postgres_error is None else f"not run: {postgres_error}",
        "agreed": agreed,
        # A target that could not be measured (no PostgreSQL) is not a pass.
        "passed": None if quick else agreed and met_all and judged,
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table for humans."""
    headers = ("measurement", "median", "unit", "target", "result")
    lines = [
        (
            r["measurement"],
            "not run" if r["value"] is None else f"{r['value']:,}",
            r["unit"],
            r["target"] or "",
            {True: "pass", False: "FAIL", None: ""}[r["passed"]],
        )
        for r in result["rows"]
    ]
    widths = [max(map(len, column)) for column in zip(headers, *lines, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i == 1 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    figures = result["figures"]
    ticks = figures["ticks"]
    sizes = result["sizes"]
    notes = [
        f"ticks: median of {ticks['rounds']} rounds per store, alternating; every timed tick "
        f"fired exactly the {ticks['due']:,} due: {'yes' if ticks['fired_all_due'] else 'NO'}; "
        f"cases written by {ticks['populated_by']}",
    ]
    for name in ("sqlite", "postgres"):
        cases = figures[f"{name}_cases"]
        if cases is not None:
            notes.append(
                f"{name}: {cases['opens_per_s']:,} opens/s, {cases['decides_per_s']:,} "
                f"approvals/s ({sizes['cases']:,} cases, median of "
                f"{sizes['case_repetitions']})"
            )
    workers = figures["workers"]
    if workers is not None:
        notes.append(
            f"workers: {workers['fired']:,} fired in {workers['seconds']:,} s "
            f"(batches of {workers['batch_size']}); double fires {workers['double_fires']}, "
            f"lost {workers['lost']}, notices sent twice {workers['notices_sent_twice']}, "
            f"notices pending {workers['notices_pending']}; fired per worker "
            + ", ".join(f"{w} {n:,}" for w, n in workers["fired_by_worker"].items())
        )
        if workers["errors"]:
            notes.append(
                "worker errors (ticks that raised): "
                + ", ".join(f"{w} {n:,}" for w, n in workers["errors"].items())
            )
        notes.extend(f"  {example}" for example in workers["error_examples"])
    if result["postgres"] != "ran":
        notes.append(f"postgres: {result['postgres']}")
    verdict = {True: "pass", False: "FAIL", None: "not judged (--quick)"}[result["passed"]]
    return "\n".join(
        [
            f"escalation timers and stores: Python {result['python']}, scale {sizes['scale']:g}"
            + ("  [--quick: the figures mean nothing]" if result["quick"] else ""),
            "",
            fmt(headers),
            fmt(["-" * width for width in widths]),
            *(fmt(line) for line in lines),
            "",
            *notes,
            f"overall: {verdict}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or ``--json``; exit 1 if a check fails or a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run with tiny sizes; judges no target"
    )
    parser.add_argument(
        "--scale", type=float, help="multiply every size (default 1; --quick: 0.02)"
    )
    parser.add_argument(
        "--workers", type=int, default=WORKERS, help=f"worker processes (default {WORKERS})"
    )
    parser.add_argument(
        "--dir", metavar="DIRECTORY", help="where to write the SQLite files (default: temporary)"
    )
    args = parser.parse_args(argv)
    result = run(quick=args.quick, scale=args.scale, workers=args.workers, directory=args.dir)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agreed"] and result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
