"""What a connector adds to an HTTP request, and paging 100,000 records in constant memory.

Three measurements.  The first is in memory, the other two against the
example CRM server (``examples/crm/server.py``), which serves on 127.0.0.1
from a thread of this process:

* **A guarded read against the same read written by hand, in memory.**
  ``BenchCRM.get_contact`` over an ``httpx.MockTransport`` (policy, JSONL
  audit log with ``fsync="batch"``, the default ``RetryPolicy``, rate
  limiter, span hooks, output validation), against ``HandWritten.get_contact``:
  the same httpx call through the same kind of transport, retried by
  tenacity (three attempts, exponential backoff with jitter, on transport
  errors, 429 and 5xx), its output validated by the same pydantic model and
  one structlog JSON line written to a file.  Both contenders alternate in
  rounds; the figure is the median time per call.  Target: the guarded read
  costs at most 1.5x the hand-written one.
* **A guarded read against a bare request.**  ``BenchCRM.get_contact``, an
  ``HTTPConnector`` operation whose body is ``self.get_json(f"/contacts/{id}")``,
  runs with a real ``Policy`` that allows it, an ``AuditLog`` (JSONL with
  ``fsync="batch"``, the default), the default ``RetryPolicy`` and OAuth2
  client credentials (the token is cached), inside ``acting_as``.  It is
  compared with the same GET through a bare ``httpx.Client``: the same URL,
  connections kept alive in the same way, the same bearer token (fetched once
  before the run), ``raise_for_status`` and ``.json()``.  Each round times one
  batch of calls per contender, in a freshly shuffled order.  The figure is
  the median time per call.  For information: the overhead, in µs and as a
  share of the bare request (its old absolute targets, 15 % and 50 µs, are
  retired: they measured the machine as much as the connector).  The server's
  own cost per request is in both figures alike.  Two more rows also leave out
  the audit log, then the retries, to show where the added time goes.
  ``--profile`` runs the guarded read under cProfile.
* **Paging 100,000 records with quarantine on.**  A list operation that
  pages through ``/contacts`` by cursor, 1,000 records a page, with a JSONL
  quarantine sink.  The server has one malformed record in every 20, and
  those are quarantined.  Each read runs in a child process of its own, so
  its peak RSS (``ru_maxrss``) is that read's alone.  The same read of
  10,000 records gives the reference.  Target: the peak for 100,000 is at
  most 20 MB above the peak for 10,000 (records are validated one at a time
  and pages are fetched lazily, so memory must not grow with the count).
  Also reported: records/s, with a bare ``httpx`` read of the same pages
  (JSON only, no validation) for comparison.  The correctness check is on
  the counts: valid + quarantined equals the records served, quarantined
  equals the server's malformed count, and the quarantine file holds one
  line per quarantined record.

Run ``python benchmarks/bench_connector.py`` for a table, ``--json`` for one
JSON document, ``--quick`` for a smoke run whose figures mean nothing,
``--profile`` for a cProfile of the guarded read.  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import io
import json
import logging
import os
import platform
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import structlog
import tenacity
from _targets import all_met, ratio_target, render_targets
from pydantic import BaseModel, ConfigDict

from handrail import Policy, Principal, acting_as
from handrail.audit import AuditLog
from handrail.connectors import HTTPConnector, JSONLQuarantine, OAuth2ClientCredentials, operation
from handrail.guard import Recorded

SERVER_PY = Path(__file__).resolve().parents[1] / "examples" / "crm" / "server.py"
IN_MEMORY_OVER_HAND_WRITTEN = 1.5  # the guarded read's time over the hand-written one's
PEAK_GROWTH_TARGET_MB = 20.0  # peak RSS paging the big count over the small one's
PAGE_SIZE = 1_000
TOKEN_TTL = 3_600.0  # seconds: no token refresh lands inside a timed batch
CHILD_TIMEOUT = 900.0  # seconds for one paging child

POLICY = Policy.from_dict(
    {"rules": [{"id": "crm-reads", "effect": "allow", "actions": ["crm.contact.*"]}]}
)
PRINCIPAL = Principal(agent="crm-reader", on_behalf_of="alice")


# -- the connector -------------------------------------------------------------------


class ContactRef(BaseModel):
    """Which contact to read."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str


class ContactQuery(BaseModel):
    """How many records a page holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    limit: int = PAGE_SIZE


class Contact(BaseModel):
    """A contact: the fields the agent relies on; every other field is kept as it came."""

    model_config = ConfigDict(extra="allow")
    id: str
    email: str


class BenchCRM(HTTPConnector):
    """The least an author writes for the example CRM: one read and one list read."""

    name = "crm"

    @operation("crm.contact.get")
    def get_contact(self, params: ContactRef) -> Contact:
        """Read one contact."""
        return self.get_json(f"/contacts/{params.id}")  # type: ignore[no-any-return]

    @operation("crm.contact.list")
    def list_contacts(self, params: ContactQuery) -> Iterator[Contact]:
        """Every contact, page by page (invalid ones quarantined)."""
        return self.paginate_cursor("/contacts", params={"limit": params.limit}, records="data")


def load_server() -> ModuleType:
    """Import examples/crm/server.py by path (``examples`` is not a package on sys.path)."""
    name = "handrail_example_crm_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SERVER_PY)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the example CRM server {SERVER_PY}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def first_valid_id(crm: Any) -> str:
    """The id of the first well-formed contact on ``crm`` (one in each 20 is malformed)."""
    malformed = set(crm.malformed_indices("contacts"))
    return str(crm.id_of("contacts", next(i for i in range(20) if i not in malformed)))


def oauth_for(crm: Any) -> OAuth2ClientCredentials:
    """OAuth2 client credentials for ``crm``'s token endpoint."""
    return OAuth2ClientCredentials(
        crm.token_url, client_id=crm.client_id, client_secret=crm.client_secret
    )


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


@dataclass(frozen=True)
class Sizes:
    """How much one run does."""

    rounds: int  # timed rounds of the read, after one warm-up round
    batch: int  # calls per contender per round
    memory_rounds: int  # timed rounds of the in-memory read
    memory_batch: int  # in-memory calls per contender per round
    paging: tuple[int, int]  # (small, big) record counts paged
    page_size: int
    paging_repetitions: int

    @classmethod
    def for_run(cls, *, quick: bool) -> Sizes:
        """The full benchmark, or a smoke run whose figures mean nothing."""
        if quick:
            return cls(
                rounds=3,
                batch=5,
                memory_rounds=3,
                memory_batch=5,
                paging=(200, 2_000),
                page_size=100,
                paging_repetitions=1,
            )
        return cls(
            rounds=25, batch=100, memory_rounds=15, memory_batch=1_000,
            paging=(10_000, 100_000), page_size=PAGE_SIZE, paging_repetitions=3,
        )  # fmt: skip


# -- part 0: in memory, a guarded read against the same read written by hand -----------

MEMORY_BASE_URL = "https://crm.internal.example"
MEMORY_CONTACT = {
    "id": "c-1042",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "company": "Analytical Engines Ltd",
    "phone": "+44 20 7946 0000",
    "title": "Head of Engineering",
    "tags": ["vip", "beta"],
    "owner": "u-7",
    "created_at": "2025-11-02T09:30:00Z",
    "updated_at": "2026-01-05T08:12:44Z",
}


def contact_api() -> httpx.MockTransport:
    """An in-memory CRM: every GET /contacts/{id} answers the same well-formed contact."""
    body = json.dumps(MEMORY_CONTACT).encode()
    headers = {"content-type": "application/json"}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers=headers)

    return httpx.MockTransport(answer)


def is_transient_http(error: BaseException) -> bool:
    """What a hand-written client retries: transport errors, 429 and 5xx."""
    if isinstance(error, httpx.TransportError):
        return True
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return status == 429 or status >= 500
    return False


class HandWritten:
    """The read a team writes without handrail: httpx, tenacity, pydantic, a structlog line.

    The structlog logger is built here (structlog's global configuration is
    never touched) and writes one JSON line per call to ``log_path``.
    """

    def __init__(self, transport: httpx.BaseTransport, log_path: Path) -> None:
        self.client = httpx.Client(base_url=MEMORY_BASE_URL, transport=transport)
        self.file = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.logger = structlog.wrap_logger(
            structlog.WriteLogger(self.file),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            context_class=dict,
            cache_logger_on_first_use=True,
        )
        self.retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_random_exponential(multiplier=0.1, max=10),
            retry=tenacity.retry_if_exception(is_transient_http),
            reraise=True,
        )

    def _fetch(self, contact_id: str) -> Any:
        response = self.client.get(f"/contacts/{contact_id}")
        response.raise_for_status()
        return response.json()

    def get_contact(self, contact_id: str, principal: Principal) -> Contact:
        """Read, retry, validate, log one line."""
        contact = Contact.model_validate(self.retrying(self._fetch, contact_id))
        user = principal.on_behalf_of
        self.logger.info(
            "crm.contact.get",
            agent=principal.agent,
            on_behalf_of=None if user is None else user.id,
            contact_id=contact_id,
            outcome="executed",
        )
        return contact

    def close(self) -> None:
        self.client.close()
        self.file.close()


def measure_in_memory(sizes: Sizes, root: Path, seed: int = 0) -> dict[str, Any]:
    """Part 0: median seconds per call of the guarded read and the hand-written one, in memory."""
    ref = ContactRef(id=str(MEMORY_CONTACT["id"]))
    contact_id = ref.id
    audit = AuditLog.open(root / "memory-audit.jsonl", fsync="batch")
    by_hand = HandWritten(contact_api(), root / "hand-written.log")
    with BenchCRM(MEMORY_BASE_URL, transport=contact_api(), policy=POLICY, audit=audit) as crm:
        contenders = [
            Contender("hand-written", lambda: by_hand.get_contact(contact_id, PRINCIPAL)),
            Contender("connector", lambda: crm.get_contact(ref)),
        ]
        with acting_as(PRINCIPAL):
            results = {c.name: c.call() for c in contenders}
            for contender in contenders:
                contender.calls += 1
            _interleave(contenders, sizes.memory_rounds, sizes.memory_batch, seed)
    audit.close()
    by_hand.close()
    with AuditLog.open(root / "memory-audit.jsonl", read_only=True) as reopened:
        report = reopened.verify()
    with open(root / "hand-written.log", "rb") as logged:
        lines = sum(1 for _ in logged)
    calls = {c.name: c.calls for c in contenders}
    medians = {c.name: statistics.median(c.samples) for c in contenders}
    return {
        "rounds": sizes.memory_rounds,
        "batch": sizes.memory_batch,
        "median_us": {name: round(s * 1e6, 1) for name, s in medians.items()},
        "ratio": round(medians["connector"] / medians["hand-written"], 3),
        "samples_us": {c.name: [round(s * 1e6, 1) for s in c.samples] for c in contenders},
        "same_record": results["connector"].model_dump()
        == results["hand-written"].model_dump()
        == MEMORY_CONTACT,
        "audit_verified": report.ok and report.count == calls["connector"],
        "logged_every_call": lines == calls["hand-written"],
    }


# -- part 1: a guarded read against a bare request -------------------------------------


@dataclass
class Contender:
    """One way of reading the contact: ``call`` once per call; per-call seconds in ``samples``."""

    name: str
    call: Callable[[], Any]
    samples: list[float] = field(default_factory=list)
    calls: int = 0


def measure_read(crm: Any, sizes: Sizes, root: Path, seed: int = 0) -> dict[str, Any]:
    """Part 1: median seconds per call of the guarded read and of the bare request."""
    contact_id = first_valid_id(crm)
    path = f"/contacts/{contact_id}"
    oauth = oauth_for(crm)
    token = oauth.get().secret.get_secret_value()
    with ExitStack() as stack:
        audit = AuditLog.open(root / "read-audit.jsonl", fsync="batch")
        stack.callback(audit.close)
        full = stack.enter_context(
            BenchCRM(crm.base_url, credentials=oauth, policy=POLICY, audit=audit)
        )
        no_audit = stack.enter_context(BenchCRM(crm.base_url, credentials=oauth, policy=POLICY))
        bare_minimum = stack.enter_context(
            BenchCRM(crm.base_url, credentials=oauth, policy=POLICY, retry=None)
        )
        bare = stack.enter_context(
            httpx.Client(base_url=crm.base_url, headers={"Authorization": f"Bearer {token}"})
        )
        stack.callback(oauth.close)

        def bare_get() -> Any:
            response = bare.get(path)
            response.raise_for_status()
            return response.json()

        ref = ContactRef(id=contact_id)  # built once, as the bare request's path is
        contenders = [
            Contender("bare", bare_get),
            Contender("connector", lambda: full.get_contact(ref)),
            Contender("no audit", lambda: no_audit.get_contact(ref)),
            Contender("no audit, no retries", lambda: bare_minimum.get_contact(ref)),
        ]
        with acting_as(PRINCIPAL):
            results = {c.name: c.call() for c in contenders}
            for contender in contenders:
                contender.calls += 1
            _interleave(contenders, sizes.rounds, sizes.batch, seed)
        full_calls = contenders[1].calls
    with AuditLog.open(root / "read-audit.jsonl", read_only=True) as reopened:
        report = reopened.verify()
    expected = results["bare"]
    medians = {c.name: statistics.median(c.samples) for c in contenders}
    return {
        "rounds": sizes.rounds,
        "batch": sizes.batch,
        "median_us": {name: round(s * 1e6, 1) for name, s in medians.items()},
        "overhead_us": round((medians["connector"] - medians["bare"]) * 1e6, 1),
        "overhead_pct": round((medians["connector"] / medians["bare"] - 1) * 100, 1),
        "samples_us": {c.name: [round(s * 1e6, 1) for s in c.samples] for c in contenders},
        # Every contender read the same record; the connector kept its unknown fields.
        "same_record": all(
            (r if isinstance(r, dict) else r.model_dump()) == expected for r in results.values()
        ),
        "audited_calls": full_calls,
        "audit_verified": report.ok and report.count == full_calls,
    }


def _interleave(contenders: Sequence[Contender], rounds: int, batch: int, seed: int) -> None:
    """One warm-up round, then ``rounds`` timed ones; each a batch per contender, shuffled."""
    order = list(contenders)
    shuffle = random.Random(seed).shuffle
    for number in range(rounds + 1):
        shuffle(order)
        for contender in order:
            call = contender.call
            with gc_paused():
                start = time.perf_counter()
                for _ in range(batch):
                    call()
                elapsed = time.perf_counter() - start
            contender.calls += batch
            if number > 0:
                contender.samples.append(elapsed / batch)


# -- part 2: paging in constant memory ---------------------------------------------------


def _rss_bytes() -> int | None:
    """The resident set size now, from /proc (None where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``ru_maxrss``: KiB on Linux, bytes on Mac)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def page_child(config: Mapping[str, Any]) -> dict[str, Any]:
    """In a child process: page through every contact once; counts, time and memory.

    ``contender`` is ``connector`` (the list operation, quarantine on) or
    ``bare`` (httpx, JSON only).  RSS is sampled at five points of the read.
    """
    total = int(config["records"])
    checkpoints = [max(1, total * k // 5) for k in range(1, 6)]
    oauth = OAuth2ClientCredentials(
        config["token_url"], client_id=config["client_id"], client_secret=config["client_secret"]
    )
    directory = Path(config["directory"])
    seen = valid = quarantined = 0
    rss_at: list[tuple[int, float | None]] = []

    def note(count: int) -> None:
        if checkpoints and count >= checkpoints[0]:
            checkpoints.pop(0)
            rss = _rss_bytes()
            rss_at.append((count, None if rss is None else round(rss / 2**20, 1)))

    if config["contender"] == "bare":
        token = oauth.get().secret.get_secret_value()
        with httpx.Client(
            base_url=config["base_url"], headers={"Authorization": f"Bearer {token}"}
        ) as client:
            client.get("/contacts", params={"limit": 1}).raise_for_status()  # connect
            before = _peak_rss_bytes()
            start = time.perf_counter()
            query: dict[str, Any] = {"limit": config["page_size"]}
            while True:
                response = client.get("/contacts", params=query)
                response.raise_for_status()
                body = response.json()
                for _record in body["data"]:
                    seen += 1
                    note(seen)
                if body["next_cursor"] is None:
                    break
                query["cursor"] = body["next_cursor"]
            elapsed = time.perf_counter() - start
        valid = seen
        lines = 0
    else:
        sink = JSONLQuarantine(directory / "quarantine.jsonl")
        audit = AuditLog.open(directory / "audit.jsonl", fsync="batch")
        with (
            BenchCRM(
                config["base_url"], credentials=oauth, policy=POLICY, audit=audit, quarantine=sink
            ) as crm,
            acting_as(PRINCIPAL),
        ):
            crm.get_contact(ContactRef(id=config["warm_up_id"]))  # connect, fetch the token
            before = _peak_rss_bytes()
            start = time.perf_counter()
            records = crm.list_contacts(ContactQuery(limit=config["page_size"]))
            if not isinstance(records, Recorded):
                raise TypeError(f"a list read returned {type(records).__name__}")
            for _record in records:
                seen += 1
                note(records.seen)
            elapsed = time.perf_counter() - start
            valid, quarantined = records.valid, records.quarantined
        audit.close()
        sink.close()
        with open(directory / "quarantine.jsonl", "rb") as file:
            lines = sum(1 for _ in file)
    oauth.close()
    peak = _peak_rss_bytes()
    return {
        "contender": config["contender"],
        "records": total,
        "yielded": seen,
        "valid": valid,
        "quarantined": quarantined,
        "quarantine_lines": lines,
        "seconds": round(elapsed, 3),
        "records_per_s": round((valid + quarantined) / elapsed),
        "peak_rss_mb": round(peak / 2**20, 1),
        "peak_before_mb": round(before / 2**20, 1),
        "rss_mb_at": rss_at,
    }


def run_child(config: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``page_child`` in a fresh interpreter (this file, ``--page-child``); its result.

    The configuration, client secret included, goes in on stdin, never on
    the command line.
    """
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--page-child"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"the paging child ({config['contender']}, {config['records']:,} records) failed:\n"
            + completed.stderr[-4000:]
        )
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def measure_paging(
    servers: Mapping[int, Any], sizes: Sizes, root: Path, seed: int = 0
) -> dict[str, Any]:
    """Part 2: each read in its own child process, repeated, in a shuffled order."""
    small, big = sizes.paging
    contenders = [("connector", small), ("connector", big), ("bare", big)]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {c: [] for c in contenders}
    order = list(contenders)
    shuffle = random.Random(seed).shuffle
    malformed = {n: len(crm.malformed("contacts")) for n, crm in servers.items()}
    warm_up_ids = {n: first_valid_id(crm) for n, crm in servers.items()}
    for repetition in range(sizes.paging_repetitions):
        shuffle(order)
        for contender, records in order:
            crm = servers[records]
            directory = root / f"paging-{contender}-{records}-{repetition}"
            directory.mkdir()
            runs[contender, records].append(
                run_child(
                    {
                        "contender": contender,
                        "records": records,
                        "page_size": sizes.page_size,
                        "base_url": crm.base_url,
                        "token_url": crm.token_url,
                        "client_id": crm.client_id,
                        "client_secret": crm.client_secret,
                        "directory": str(directory),
                        "warm_up_id": warm_up_ids[records],
                    }
                )
            )

    def counted(contender: str, records: int, run: Mapping[str, Any]) -> bool:
        if contender == "bare":
            return bool(run["yielded"] == records)
        return bool(
            run["yielded"] == run["valid"]
            and run["valid"] + run["quarantined"] == records
            and run["quarantined"] == malformed[records]
            and run["quarantine_lines"] == run["quarantined"]
        )

    figures: dict[str, Any] = {}
    for (contender, records), found in runs.items():
        figures[f"{contender} {records}"] = {
            "records": records,
            "malformed": malformed[records] if contender == "connector" else None,
            "records_per_s": round(statistics.median(r["records_per_s"] for r in found)),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in found),
            "peak_before_mb": statistics.median(r["peak_before_mb"] for r in found),
            "counts_ok": all(counted(contender, records, r) for r in found),
            "runs": found,
        }
    growth = (
        figures[f"connector {big}"]["peak_rss_mb"] - figures[f"connector {small}"]["peak_rss_mb"]
    )
    return {
        "small": small,
        "big": big,
        "page_size": sizes.page_size,
        "repetitions": sizes.paging_repetitions,
        "peak_growth_mb": round(growth, 1),
        "contenders": figures,
        "counts_ok": all(f["counts_ok"] for f in figures.values()),
    }


# -- the run -----------------------------------------------------------------------------


@contextmanager
def crm_servers(counts: Sequence[int]) -> Iterator[dict[int, Any]]:
    """One example CRM server per record count, serving contacts only, until the block ends."""
    module = load_server()
    with ExitStack() as stack:
        yield {
            n: stack.enter_context(
                module.CRMServer(
                    records={"contacts": n}, record_requests=False, token_ttl=TOKEN_TTL
                )
            )
            for n in counts
        }


def run(*, quick: bool = False, directory: str | None = None) -> dict[str, Any]:
    """Run both parts and return the figures as JSON-ready data.

    ``quick`` runs tiny batches and small reads: it proves the benchmark
    works, and its figures mean nothing.  ``directory`` is where the audit
    and quarantine files go; a temporary directory by default.
    """
    sizes = Sizes.for_run(quick=quick)
    small = sizes.paging[0]
    with (
        tempfile.TemporaryDirectory(dir=directory, prefix="handrail-bench-") as tmp,
        crm_servers(sizes.paging) as servers,
    ):
        memory = measure_in_memory(sizes, Path(tmp))
        read = measure_read(servers[small], sizes, Path(tmp))
        paging = measure_paging(servers, sizes, Path(tmp))
    return report(memory, read, paging, sizes, quick=quick)


def report(
    memory: Mapping[str, Any],
    read: Mapping[str, Any],
    paging: Mapping[str, Any],
    sizes: Sizes,
    *,
    quick: bool,
) -> dict[str, Any]:
    """Rows with targets and verdicts (none when ``quick``) from the three parts' figures."""

    def row(
        measurement: str, value: float, unit: str, target: str | None = None, met: bool = True
    ) -> dict[str, Any]:
        judged = target is not None and not quick
        return {
            "measurement": measurement,
            "value": value,
            "unit": unit,
            "target": target,
            "passed": met if judged else None,
        }

    us = read["median_us"]
    in_memory = memory["median_us"]
    small, big = paging["small"], paging["big"]
    pages = paging["contenders"]
    targets = [
        ratio_target(
            "in memory: guarded read over the hand-written one",
            memory["ratio"],
            at_most=IN_MEMORY_OVER_HAND_WRITTEN,
            quick=quick,
            detail=f"{in_memory['connector']:,} vs {in_memory['hand-written']:,} µs/call",
        )
    ]
    rows = [
        row("in memory: hand-written (httpx, tenacity, pydantic, structlog)",
            in_memory["hand-written"], "µs/call"),
        row("in memory: HTTPConnector read, guarded, audited, retried", in_memory["connector"],
            "µs/call"),
        row("bare httpx.Client GET", us["bare"], "µs/call"),
        row("HTTPConnector read: guarded, audited, retried", us["connector"], "µs/call"),
        row("  the same without the audit log", us["no audit"], "µs/call"),
        row("  the same without audit log and retries", us["no audit, no retries"], "µs/call"),
        row("connector overhead", read["overhead_pct"], "% of bare"),
        row("connector overhead", read["overhead_us"], "µs/call"),
        row(f"page {small:,} contacts, quarantine on: peak RSS",
            pages[f"connector {small}"]["peak_rss_mb"], "MB"),
        row(f"page {big:,} contacts, quarantine on: peak RSS",
            pages[f"connector {big}"]["peak_rss_mb"], "MB"),
        row(
            f"peak RSS, {big:,} over {small:,}", paging["peak_growth_mb"], "MB more",
            f"<= {PEAK_GROWTH_TARGET_MB:g} MB", paging["peak_growth_mb"] <= PEAK_GROWTH_TARGET_MB,
        ),
        row(f"page {big:,} contacts, quarantine on",
            pages[f"connector {big}"]["records_per_s"], "records/s"),
        row(f"page {big:,} contacts, bare httpx (JSON only)",
            pages[f"bare {big}"]["records_per_s"], "records/s"),
    ]  # fmt: skip
    agreed = bool(
        memory["same_record"]
        and memory["audit_verified"]
        and memory["logged_every_call"]
        and read["same_record"]
        and read["audit_verified"]
        and paging["counts_ok"]
    )
    met_all = all(r["passed"] is not False for r in rows) and all_met(targets)
    return {
        "benchmark": "connector",
        "quick": quick,
        "python": platform.python_version(),
        "sizes": {
            "rounds": sizes.rounds,
            "batch": sizes.batch,
            "memory_rounds": sizes.memory_rounds,
            "memory_batch": sizes.memory_batch,
            "paging": list(sizes.paging),
            "page_size": sizes.page_size,
            "paging_repetitions": sizes.paging_repetitions,
        },
        "rows": rows,
        "targets": targets,
        "figures": {"in_memory": dict(memory), "read": dict(read), "paging": dict(paging)},
        "agreed": agreed,
        "passed": None if quick else agreed and met_all,
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table for humans."""
    headers = ("measurement", "median", "unit", "target", "result")
    lines = [
        (
            r["measurement"],
            f"{r['value']:,}",
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

    read = result["figures"]["read"]
    paging = result["figures"]["paging"]
    big = paging["contenders"][f"connector {paging['big']}"]
    small = paging["contenders"][f"connector {paging['small']}"]
    bare = paging["contenders"][f"bare {paging['big']}"]

    def during(contender: Mapping[str, Any]) -> str:
        return ", ".join(
            f"{n:,}: {mb}" for n, mb in contender["runs"][0]["rss_mb_at"] if mb is not None
        )

    memory = result["figures"]["in_memory"]
    notes = [
        f"in memory: median of {memory['rounds']} rounds of {memory['batch']} calls per "
        f"contender, alternating; same record from both: "
        f"{'yes' if memory['same_record'] else 'NO'}; audit log verified with every guarded "
        f"call: {'yes' if memory['audit_verified'] else 'NO'}; one structlog line per "
        f"hand-written call: {'yes' if memory['logged_every_call'] else 'NO'}",
        f"read: median of {read['rounds']} rounds of {read['batch']} calls per contender, "
        f"shuffled; same record from every contender: {'yes' if read['same_record'] else 'NO'}; "
        f"audit log verified with all {read['audited_calls']:,} connector calls: "
        + ("yes" if read["audit_verified"] else "NO"),
        f"paging: {paging['repetitions']} run(s) per read, each in its own process, pages of "
        f"{paging['page_size']:,}; {paging['big']:,} records: {big['malformed']:,} quarantined "
        f"(server's malformed count), counts check: {'yes' if big['counts_ok'] else 'NO'}; "
        f"{paging['small']:,} records: counts check: {'yes' if small['counts_ok'] else 'NO'}",
        f"paging: peak RSS before the read {small['peak_before_mb']} MB ({paging['small']:,}) "
        f"and {big['peak_before_mb']} MB ({paging['big']:,}); bare httpx peak "
        f"{bare['peak_rss_mb']} MB",
    ]
    if during(big):
        notes.append(
            f"paging: RSS in MB after so many records of the first {paging['big']:,}-record "
            f"read: connector {during(big)}; bare httpx {during(bare)}"
        )
    verdict = {True: "pass", False: "FAIL", None: "not judged (--quick)"}[result["passed"]]
    return "\n".join(
        [
            f"connectors: HTTPConnector against the example CRM on 127.0.0.1, "
            f"Python {result['python']}"
            + ("  [--quick: the figures mean nothing]" if result["quick"] else ""),
            "",
            fmt(headers),
            fmt(["-" * width for width in widths]),
            *(fmt(line) for line in lines),
            "",
            *render_targets(result["targets"]),
            "",
            *notes,
            f"overall: {verdict}",
        ]
    )


# -- where the time goes -----------------------------------------------------------------


def profile_read(calls: int = 2_000, top: int = 25) -> str:
    """cProfile the guarded read and the bare request; the functions that differ most.

    Each function's own time per read, connector minus bare, in µs as the
    profiler inflates them: read them as shares, not as absolute costs.
    """
    with (
        tempfile.TemporaryDirectory(prefix="handrail-bench-") as tmp,
        crm_servers([100]) as servers,
    ):
        crm = servers[100]
        contact_id = first_valid_id(crm)
        oauth = oauth_for(crm)
        token = oauth.get().secret.get_secret_value()
        audit = AuditLog.open(Path(tmp) / "audit.jsonl", fsync="batch")
        with (
            BenchCRM(crm.base_url, credentials=oauth, policy=POLICY, audit=audit) as connector,
            httpx.Client(
                base_url=crm.base_url, headers={"Authorization": f"Bearer {token}"}
            ) as bare,
            acting_as(PRINCIPAL),
        ):
            ref = ContactRef(id=contact_id)

            def bare_get() -> Any:
                response = bare.get(f"/contacts/{contact_id}")
                response.raise_for_status()
                return response.json()

            profiles = {}
            for name, call in (
                ("bare", bare_get),
                ("connector", lambda: connector.get_contact(ref)),
            ):
                for _ in range(100):
                    call()
                profiler = cProfile.Profile()
                with gc_paused():
                    profiler.enable()
                    for _ in range(calls):
                        call()
                    profiler.disable()
                profiles[name] = pstats.Stats(profiler, stream=io.StringIO()).stats  # type: ignore[attr-defined]
        audit.close()
        oauth.close()
    own: dict[tuple[str, int, str], list[float]] = {}
    for index, name in enumerate(("bare", "connector")):
        for key, (_cc, _nc, tottime, _ct, _callers) in profiles[name].items():
            own.setdefault(key, [0.0, 0.0])[index] = tottime / calls * 1e6
    added = sorted(own.items(), key=lambda item: item[1][1] - item[1][0], reverse=True)
    by_package: dict[str, float] = {}
    for key, (bare_us, connector_us) in own.items():
        package = _package(key[0])
        by_package[package] = by_package.get(package, 0.0) + connector_us - bare_us
    total = {name: sum(v[i] for v in own.values()) for i, name in enumerate(("bare", "connector"))}
    lines = [
        f"cProfile of {calls:,} reads each (own time per read, µs, inflated by the profiler): "
        f"bare {total['bare']:.0f}, connector {total['connector']:.0f}",
        "added, by package: "
        + ", ".join(
            f"{p} {us:+.0f}"
            for p, us in sorted(by_package.items(), key=lambda i: i[1], reverse=True)
            if abs(us) >= 0.5
        ),
        "",
        f"{'added':>7}  {'connector':>9}  {'bare':>6}  function",
    ]
    for (file, line, function), (bare_us, connector_us) in added[:top]:
        lines.append(
            f"{connector_us - bare_us:7.1f}  {connector_us:9.1f}  {bare_us:6.1f}  "
            f"{_short(file)}:{line}({function})"
        )
    return "\n".join(lines)


def _package(file: str) -> str:
    for package in ("handrail", "tenacity", "pydantic_core", "pydantic", "httpx", "httpcore",
                    "h11", "opentelemetry", "structlog"):  # fmt: skip
        if f"/{package}/" in file:
            return package
    return "builtins" if file == "~" else "stdlib/other"


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or ``--json``; exit 1 if a check fails or a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run with tiny sizes; judges no target"
    )
    parser.add_argument(
        "--dir", metavar="DIRECTORY", help="where to write the files (default: a temporary one)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="only profile the guarded read (cProfile)"
    )
    parser.add_argument("--page-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.page_child:
        print(json.dumps(page_child(json.load(sys.stdin))))
        return 0
    if args.profile:
        print(profile_read())
        return 0
    result = run(quick=args.quick, directory=args.dir)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agreed"] and result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
