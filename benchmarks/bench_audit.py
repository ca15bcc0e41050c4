"""How fast the audit trail appends, side by side with what teams use without one.

One run measures, interleaved so that machine noise falls on every contender
alike, records appended per second by:

* ``handrail``: ``AuditLog.append`` for each sink (JSONL, SQLite) and fsync
  mode (``always``, ``batch``, ``never``), with the defaults (batches of
  1,000 records or 200 ms), plus the in-memory sink as a CPU-only reference.
  Each record is redacted, gets an id, a timestamp and a digest of its
  arguments, is chained by SHA-256 and written.
* ``baseline``: the same records' JSON (``json.dumps`` of the fields of the
  records handrail wrote, without ``hash``) appended to a plain file with the
  same fsync policy: ``always`` writes, flushes and fsyncs each line;
  ``batch`` buffers and fsyncs every 1,000 lines; ``never`` writes each line
  to the OS and never fsyncs.  No redaction, no ids, no hashing.
* ``structlog JSONRenderer``: the same fields logged through a structlog
  logger built here (never configured globally) that adds the level and an
  ISO timestamp, renders with ``JSONRenderer`` and writes each line to a
  file (``WriteLogger``: write and flush, no fsync).  What a team logs when
  it has no audit trail.

Targets, as ratios of the same run: batched JSONL at least 1.5x the
structlog logger's records/s and at least 0.5x the batched plain file's;
every other handrail row at least 0.30x its baseline.  The per-append cost
of batched JSONL is broken down into its stages, each timed on its own
(redaction, encoding, hashing, ids and the record object, write; the rest is
the call, the lock and the batch buffer).  Afterwards every handrail log must verify,
holding every record appended: that is the correctness check.

Run ``python benchmarks/bench_audit.py`` for a table, ``--json`` for one JSON
document, ``--quick`` for a smoke run whose figures mean nothing, ``--dir`` to
put the files on another filesystem (an fsync's cost depends on it).  How
to read the figures: ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import structlog
from _targets import all_met, ratio_target, render_targets
from pydantic import SecretStr

from handrail import ActionRequest, Decision, Effect, Policy, Principal, Rule
from handrail.audit import AuditEntry, AuditLog, FsyncMode, JSONLSink
from handrail.clock import SystemClock

MODES: tuple[FsyncMode, ...] = ("always", "batch", "never")
SINKS = ("jsonl", "sqlite")
BATCH_RECORDS = 1_000  # AuditLog's default, and the baseline's batch
RATIO_TARGET = 0.30  # every other row: "within 70 % of the baseline's throughput"
OVER_STRUCTLOG = 1.5  # batched JSONL >= 1.5x structlog's records/s
OVER_PLAIN_FILE = 0.5  # batched JSONL >= 0.5x the batched plain file's
STRUCTLOG = "structlog JSONRenderer"
STAGES = ("redaction", "encoding", "hashing", "ids", "write")

# (principal, action, outcome, the other fields): one record to append.
Item = tuple[Principal, str, str, dict[str, Any]]


def append_record(
    log: AuditLog, principal: Principal, action: str, outcome: str, fields: Mapping[str, Any]
) -> object:
    """The one audit-append call of this file: a change of the append API is made here."""
    return log.append(AuditEntry.of(principal, action, outcome, **fields))


# -- the records -------------------------------------------------------------------


def build_decisions() -> list[Decision]:
    """A realistic mix: allowed, audited, escalated and denied calls, one carrying a token."""
    policy = Policy(
        [
            Rule(id="invoices.edit", effect="allow", actions=["billing.invoice.update"],
                 principals={"roles": ["billing"]}),
            Rule(id="refunds.large", effect="escalate", actions=["billing.refund.create"],
                 when={"args.amount": {"gt": 1_000}}, escalate_to="finance-approvers"),
            Rule(id="refunds.small", effect="audit", actions=["billing.refund.create"],
                 principals={"roles": ["billing"]}),
            Rule(id="contacts.read", effect="allow", actions=["crm.contact.read"]),
            Rule(id="mail.send", effect="allow", actions=["email.message.create"],
                 principals={"roles": ["support"]}),
        ]
    )  # fmt: skip
    alice = {"id": "alice", "roles": ["billing"]}
    bot = Principal(agent="billing-bot", roles=frozenset({"billing"}), on_behalf_of=alice)
    mailer = Principal(agent="mail-bot", roles=frozenset({"support"}))
    requests = [
        ActionRequest(
            principal=bot,
            action="billing.invoice.update",
            resource={"type": "invoice", "id": "inv-1042", "attributes": {"customer": "c-77"}},
            args={"invoice_id": "inv-1042", "amount": 800, "currency": "EUR", "note": "late fee"},
            context={"channel": "slack", "environment": "production"},
        ),
        ActionRequest(
            principal=bot,
            action="billing.refund.create",
            resource={"type": "refund"},
            args={"order_id": "o-5531", "amount": 150, "reason": "damaged in transit"},
            context={"channel": "slack"},
        ),
        ActionRequest(
            principal=bot,
            action="billing.refund.create",
            args={"order_id": "o-5532", "amount": 4_000, "reason": "duplicate charge"},
        ),
        ActionRequest(
            principal=mailer,
            action="email.message.create",
            args={"to": "jo@example.com", "subject": "Your ticket", "api_key": SecretStr("sk-1")},
        ),
        ActionRequest(
            principal=mailer,
            action="crm.contact.read",
            resource={"type": "contact", "id": "c-42"},
            args={"contact_id": "c-42"},
        ),
        ActionRequest(principal=mailer, action="billing.invoice.update", args={"amount": 1}),
    ]
    return [policy.evaluate(request) for request in requests]


def build_items(decisions: Sequence[Decision]) -> list[Item]:
    """What to append for each decision: its request's parts, the decision and the outcome."""
    items: list[Item] = []
    for decision in decisions:
        request = decision.request
        resource = request.resource
        outcome = {Effect.DENY: "denied", Effect.ESCALATE: "escalated"}.get(
            decision.effect, "executed"
        )
        plain_resource = None
        if resource is not None:
            attributes = dict(resource.attributes)
            plain_resource = {"type": resource.type, "id": resource.id, "attributes": attributes}
        fields = {
            "resource": plain_resource,
            "args": dict(request.args),
            "context": dict(request.context),
            "effect": decision.effect.value,
            "rule_id": decision.rule_id,
            "reason": decision.reason,
        }
        items.append((request.principal, request.action, outcome, fields))
    return items


def baseline_records(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The fields of the records handrail writes for ``items``, without ``hash``."""
    log = AuditLog.memory()
    for item in items:
        append_record(log, *item)
    records = []
    for line in log.sink.read():
        fields = json.loads(line)
        del fields["hash"]
        records.append(fields)
    return records


# -- the contenders ----------------------------------------------------------------


class PlainFile:
    """The baseline: JSON lines appended to a plain file, with a handrail fsync mode's policy."""

    def __init__(self, path: Path, fsync: FsyncMode) -> None:
        self.fsync = fsync
        self.file: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed by close()
        self.fd = self.file.fileno()
        self.unsynced = 0
        self.count = 0

    def append(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record) + "\n").encode()
        self.count += 1
        if self.fsync == "never":
            os.write(self.fd, line)  # to the OS at once, as AuditLog's never mode
            return
        self.file.write(line)
        if self.fsync == "always":
            self.file.flush()
            os.fsync(self.fd)
            return
        self.unsynced += 1
        if self.unsynced >= BATCH_RECORDS:
            self.file.flush()
            os.fsync(self.fd)
            self.unsynced = 0

    def close(self) -> None:
        self.file.flush()
        if self.fsync != "never":
            os.fsync(self.fd)
        self.file.close()


class StructlogFile:
    """What teams log without an audit trail: structlog's JSONRenderer, a line to a file.

    The logger is built here with ``wrap_logger``; structlog's global
    configuration is never touched.  ``WriteLogger`` writes and flushes each
    line (to the OS; no fsync).
    """

    def __init__(self, path: Path) -> None:
        self.file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
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
        self.count = 0

    def append(self, item: tuple[str, dict[str, Any]]) -> None:
        event, fields = item
        self.logger.info(event, **fields)
        self.count += 1

    def close(self) -> None:
        self.file.close()


def structlog_items(items: Sequence[Item]) -> list[tuple[str, dict[str, Any]]]:
    """The same fields as ``items``, as a structlog call takes them (the principal as names)."""
    logged = []
    for principal, action, outcome, fields in items:
        user = principal.on_behalf_of
        logged.append(
            (
                "audit",
                {
                    "agent": principal.agent,
                    "on_behalf_of": None if user is None else user.id,
                    "action": action,
                    "outcome": outcome,
                    **fields,
                },
            )
        )
    return logged


@dataclass
class Contender:
    """Something to time: ``append`` called once per item; its mode decides the batch size."""

    name: str
    sink: str
    fsync: FsyncMode | None
    append: Callable[[Any], object]
    items: Sequence[Any]
    close: Callable[[], object]
    samples: list[float] = field(default_factory=list)
    appended: int = 0


def _batch_size(fsync: FsyncMode | None, quick: bool) -> int:
    if quick:
        return 12 if fsync == "always" else 60
    # Two whole batches in batch mode, so both sides fsync as often per window.
    return 100 if fsync == "always" else 2 * BATCH_RECORDS


def measure(
    contenders: Sequence[Contender], *, repetitions: int, quick: bool, seed: int = 0
) -> None:
    """Fill each contender's ``samples`` with records/s, one per repetition, interleaved.

    One repetition times one window of every contender, in a freshly
    shuffled order.  The garbage collector is off while a window runs.
    """
    windows = {c.name: _window(c, _batch_size(c.fsync, quick)) for c in contenders}
    for contender in contenders:  # warm up: files exist, caches are filled
        contender.appended += windows[contender.name](warm=True)
    order = list(contenders)
    shuffle = random.Random(seed).shuffle
    was_enabled = gc.isenabled()
    try:
        for _ in range(repetitions):
            shuffle(order)
            for contender in order:
                gc.collect()
                gc.disable()
                start = time.perf_counter()
                contender.appended += windows[contender.name](warm=False)
                elapsed = time.perf_counter() - start
                gc.enable()
                contender.samples.append(_batch_size(contender.fsync, quick) / elapsed)
    finally:
        if was_enabled:
            gc.enable()


def _window(contender: Contender, size: int) -> Callable[..., int]:
    items = contender.items
    batch = [items[i % len(items)] for i in range(size)]
    append = contender.append

    def run(*, warm: bool) -> int:
        for item in batch[: max(1, size // 10)] if warm else batch:
            append(item)
        return max(1, size // 10) if warm else size

    return run


def _appender(log: AuditLog) -> Callable[[Item], object]:
    def append(item: Item) -> object:
        return append_record(log, *item)

    return append


# -- the per-append breakdown ------------------------------------------------------


def breakdown(
    items: Sequence[Item], root: Path, *, repetitions: int, quick: bool
) -> dict[str, Any]:
    """Nanoseconds per batched JSONL append, and per stage of it, each stage timed on its own.

    The stages are the functions ``AuditLog.append`` runs, called directly on
    the same records:

    * ``redaction``: what preparing the record (``entry``) costs with the
      log's redactor over what it costs with redaction passed through:
      masking the args, context and resource, and scrubbing the secrets found
      from the record's other strings and its reason;
    * ``encoding``: the record's checks and JSON, all but the chain's gaps
      (``entry`` with redaction passed through), less its args digest's hash;
    * ``hashing``: the SHA-256 of the arguments' text (``args_digest``) and of
      the body (the chain's ``hash``);
    * ``ids``: sealing the record into the chain (``chain``: the ULID, the
      timestamp, the body's text and UTF-8, the record object), less its hash;
    * ``write``: the stored lines through ``JSONLSink``, 1,000 at a time, one
      fsync per 1,000, as the batch mode's flush writes them;
    * ``total``: ``AuditLog.append`` itself; ``rest`` is total minus the
      stages: the call, the lock, the batch buffer, the chain's head.

    Stages are interleaved with the full append in shuffled rounds; each
    figure is a median.
    """
    # Audit internals, on purpose: these are the stages append runs.  They
    # live in this one function; update it with the audit package.
    from handrail._encoding import canonical
    from handrail.audit._record import chain, prepare
    from handrail.audit._redact import PartRedactor
    from handrail.redaction import Redactor

    class PassedThrough(PartRedactor):
        """Redacts nothing: ``entry`` then costs its checks and encoding alone.

        Through the same path as the log's own redactor (``fast``, which
        ``prepare`` calls for each part), so the difference is redaction alone.
        """

        def __init__(self, redactor: Redactor) -> None:
            super().__init__(redactor)
            self.fast = lambda value, found: value

        def redact(self, value: Any, path: str) -> tuple[Any, Any, list[str], bool]:
            return value, value, [], True

    parts = PartRedactor(Redactor())
    passed = PassedThrough(Redactor())
    memory = AuditLog.memory()
    for item in items:
        append_record(memory, *item)
    lines = list(memory.sink.read())
    bodies = []
    for line in lines:
        body = json.loads(line)
        del body["hash"]
        bodies.append(body)
    encoded = [
        (canonical(body["args"]).encode("utf-8"), canonical(body).encode("utf-8"))
        for body in bodies
    ]

    def entry_of(item: Item, redaction: PartRedactor = passed) -> Any:
        principal, action, outcome, fields = item
        return prepare(redaction, AuditEntry.of(principal, action, outcome, **fields))

    size = 60 if quick else 2 * BATCH_RECORDS

    def cycle(values: Sequence[Any]) -> list[Any]:
        return [values[i % len(values)] for i in range(size)]

    to_encode = cycle(items)

    def redacted() -> None:
        for item in to_encode:
            entry_of(item, parts)

    def encoding() -> None:
        for item in to_encode:
            entry_of(item)

    def hashing() -> None:
        sha256 = hashlib.sha256
        for args_text, body_text in cycle(encoded):
            sha256(args_text).hexdigest()
            sha256(body_text).hexdigest()

    def args_hashing() -> None:
        sha256 = hashlib.sha256
        for args_text, _body_text in cycle(encoded):
            sha256(args_text).hexdigest()

    def body_hashing() -> None:
        sha256 = hashlib.sha256
        for _args_text, body_text in cycle(encoded):
            sha256(body_text).hexdigest()

    prepared = cycle([entry_of(item) for item in items])
    clock = SystemClock()

    def ids() -> None:
        head = "0" * 64
        for seq, one in enumerate(prepared):
            chain(one, seq=seq, prev_hash=head, now=clock.now())

    sink = JSONLSink(root / "breakdown-sink.jsonl")
    stored = cycle(lines)
    chunk = min(size, BATCH_RECORDS)
    unsynced = [0]

    def write() -> None:
        # One fsync per BATCH_RECORDS lines written, whatever the window's size.
        for start in range(0, size, chunk):
            sink.append(stored[start : start + chunk])
            unsynced[0] += chunk
            if unsynced[0] >= BATCH_RECORDS:
                sink.sync()
                unsynced[0] = 0

    log = AuditLog.jsonl(root / "breakdown.jsonl", fsync="batch")
    to_append = cycle(items)

    def total() -> None:
        for item in to_append:
            append_record(log, *item)

    timed: dict[str, Callable[[], None]] = {
        "entry, redacted": redacted,
        "entry": encoding,
        "hashing": hashing,
        "args hashing": args_hashing,
        "body hashing": body_hashing,
        "chain": ids,
        "write": write,
        "total": total,
    }
    samples: dict[str, list[float]] = {name: [] for name in timed}
    order = list(timed)
    shuffle = random.Random(1).shuffle
    try:
        for name in order:  # warm up
            timed[name]()
        for _ in range(repetitions):
            shuffle(order)
            for name in order:
                gc.collect()
                gc.disable()
                start = time.perf_counter_ns()
                timed[name]()
                elapsed = time.perf_counter_ns() - start
                gc.enable()
                samples[name].append(elapsed / size)
    finally:
        gc.enable()
        sink.close()
        log.close()
    ns = {name: statistics.median(values) for name, values in samples.items()}
    stages = {
        "redaction": ns["entry, redacted"] - ns["entry"],
        "encoding": ns["entry"] - ns["args hashing"],
        "hashing": ns["hashing"],
        "ids": ns["chain"] - ns["body hashing"],
        "write": ns["write"],
    }
    stages["rest"] = ns["total"] - sum(stages.values())
    stages["total"] = ns["total"]
    return {name: round(value) for name, value in stages.items()}


# -- the run -----------------------------------------------------------------------


def run(
    *, quick: bool = False, repetitions: int | None = None, directory: str | None = None
) -> dict[str, Any]:
    """Run every measurement and return the figures as JSON-ready data.

    ``quick`` runs a few tiny windows: it proves the benchmark works, and its
    figures mean nothing.  ``directory`` is where the files go (its
    filesystem decides what an fsync costs); a temporary directory by default.
    """
    reps = repetitions or (3 if quick else 15)
    items = build_items(build_decisions())
    records = baseline_records(items)
    with tempfile.TemporaryDirectory(dir=directory, prefix="handrail-bench-") as tmp:
        root = Path(tmp)
        logs: dict[str, AuditLog] = {}
        contenders: list[Contender] = []
        for sink in SINKS:
            for mode in MODES:
                path = root / f"{sink}-{mode}.{'jsonl' if sink == 'jsonl' else 'db'}"
                log = AuditLog.open(path, fsync=mode)
                logs[f"{sink} {mode}"] = log
                contenders.append(
                    Contender(f"handrail {sink} {mode}", sink, mode, _appender(log), items,
                              log.close)
                )  # fmt: skip
        memory = AuditLog.memory()
        logs["memory"] = memory
        contenders.append(
            Contender("handrail memory", "memory", None, _appender(memory), items, memory.close)
        )
        plain_files: dict[FsyncMode, PlainFile] = {}
        for mode in MODES:
            plain = PlainFile(root / f"plain-{mode}.jsonl", mode)
            plain_files[mode] = plain
            contenders.append(
                Contender(f"baseline {mode}", "plain file", mode, plain.append, records,
                          plain.close)
            )  # fmt: skip
        logger = StructlogFile(root / "structlog.log")
        contenders.append(
            Contender(STRUCTLOG, "structlog file", None, logger.append, structlog_items(items),
                      logger.close)
        )  # fmt: skip
        try:
            measure(contenders, repetitions=reps, quick=quick)
        finally:
            for contender in contenders:
                contender.close()
        checks = _check(logs, contenders, plain_files, root)
        stages = breakdown(items, root, repetitions=reps, quick=quick)
    medians = {c.name: statistics.median(c.samples) for c in contenders}
    return report(medians, contenders, checks, stages, reps, quick=quick)


def _check(
    logs: Mapping[str, AuditLog],
    contenders: Sequence[Contender],
    plain_files: Mapping[FsyncMode, PlainFile],
    root: Path,
) -> dict[str, Any]:
    """Every handrail log verifies and holds every record appended; time verifying one."""
    appended = {c.name: c.appended for c in contenders}
    verified: dict[str, bool] = {}
    verify_rate = 0.0
    for name, log in logs.items():
        if log.path is None:
            report = log.verify()
        else:
            reopened = AuditLog.open(log.path, read_only=True)
            start = time.perf_counter()
            report = reopened.verify()
            elapsed = time.perf_counter() - start
            reopened.close()
            if name == "jsonl batch":
                verify_rate = report.count / elapsed
        verified[name] = report.ok and report.count == appended[f"handrail {name}"]
    lines = {
        mode: sum(1 for _ in open(root / f"plain-{mode}.jsonl", "rb"))  # noqa: SIM115
        for mode in plain_files
    }
    baselines_complete = all(lines[m] == appended[f"baseline {m}"] for m in plain_files)
    with open(root / "structlog.log", "rb") as logged:
        structlog_complete = sum(1 for _ in logged) == appended[STRUCTLOG]
    return {
        "verified": verified,
        "baselines_complete": baselines_complete and structlog_complete,
        "verify_records_per_s": round(verify_rate),
    }


def report(
    medians: Mapping[str, float],
    contenders: Sequence[Contender],
    checks: Mapping[str, Any],
    stages: Mapping[str, int],
    repetitions: int,
    *,
    quick: bool,
) -> dict[str, Any]:
    """Turn medians into rows with ratios, targets and verdicts (none when ``quick``)."""
    rows = []
    for c in contenders:
        rate = medians[c.name]
        row: dict[str, Any] = {
            "contender": c.name,
            "sink": c.sink,
            "fsync": c.fsync,
            "records_per_s": round(rate),
            "baseline_records_per_s": None,
            "ratio_vs_baseline": None,
            "target": None,
            "passed": None,
        }
        if c.name.startswith("handrail ") and c.fsync is not None:
            baseline = medians[f"baseline {c.fsync}"]
            ratio = rate / baseline
            row.update(baseline_records_per_s=round(baseline), ratio_vs_baseline=round(ratio, 3))
            if c.name != "handrail jsonl batch":  # judged by the targets below
                row.update(
                    target=f">= {RATIO_TARGET:.2f}x baseline",
                    passed=None if quick else ratio >= RATIO_TARGET,
                )
        rows.append(row)
    batched = medians["handrail jsonl batch"]
    targets = [
        ratio_target(
            "batched JSONL over structlog JSONRenderer (records/s)",
            batched / medians[STRUCTLOG],
            at_least=OVER_STRUCTLOG,
            quick=quick,
            detail=f"{batched:,.0f} vs {medians[STRUCTLOG]:,.0f} records/s",
        ),
        ratio_target(
            "batched JSONL over a batched plain file (records/s)",
            batched / medians["baseline batch"],
            at_least=OVER_PLAIN_FILE,
            quick=quick,
            detail=f"{batched:,.0f} vs {medians['baseline batch']:,.0f} records/s",
        ),
    ]
    agreed = all(checks["verified"].values()) and bool(checks["baselines_complete"])
    met_all = all(row["passed"] is not False for row in rows) and all_met(targets)
    rates = {row["contender"]: row["records_per_s"] for row in rows}
    return {
        "benchmark": "audit",
        "quick": quick,
        "repetitions": repetitions,
        "python": platform.python_version(),
        "rows": rows,
        "targets": targets,
        "breakdown_ns": dict(stages),
        "figures": {
            "batched_jsonl_records_per_s": rates["handrail jsonl batch"],
            "structlog_records_per_s": rates[STRUCTLOG],
            "memory_records_per_s": rates["handrail memory"],
            "verify_records_per_s": checks["verify_records_per_s"],
            "ratios": {
                row["contender"]: row["ratio_vs_baseline"]
                for row in rows
                if row["ratio_vs_baseline"] is not None
            },
        },
        "verified": dict(checks["verified"]),
        "agreed": agreed,
        "passed": None if quick else agreed and met_all,
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table for humans."""
    headers = ("contender", "records/s", "baseline/s", "x baseline", "target", "result")
    lines = [
        (
            row["contender"],
            f"{row['records_per_s']:,}",
            "" if row["baseline_records_per_s"] is None else f"{row['baseline_records_per_s']:,}",
            "" if row["ratio_vs_baseline"] is None else f"{row['ratio_vs_baseline']:.2f}x",
            row["target"] or "",
            {True: "pass", False: "FAIL", None: ""}[row["passed"]],
        )
        for row in result["rows"]
    ]
    widths = [max(map(len, column)) for column in zip(headers, *lines, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i in (0, 4) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    stages = result["breakdown_ns"]
    total = stages["total"] or 1
    shares = ", ".join(
        f"{name} {stages[name]:,} ({stages[name] / total:.0%})" for name in (*STAGES, "rest")
    )
    failed = [name for name, ok in result["verified"].items() if not ok]
    verdict = {True: "pass", False: "FAIL", None: "not judged (--quick)"}[result["passed"]]
    return "\n".join(
        [
            f"audit appends: median of {result['repetitions']} interleaved repetitions, "
            f"Python {result['python']}"
            + ("  [--quick: the figures mean nothing]" if result["quick"] else ""),
            "",
            fmt(headers),
            fmt(["-" * width for width in widths]),
            *(fmt(line) for line in lines),
            "",
            *render_targets(result["targets"]),
            "",
            f"per batched JSONL append, ns (each stage timed on its own): total {total:,} = "
            + shares,
            f"verify (JSONL): {result['figures']['verify_records_per_s']:,} records/s; "
            "every log verified with every record: "
            + ("yes" if not failed else "NO: " + ", ".join(failed)),
            f"overall: {verdict}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or ``--json``; exit 1 if a log fails to verify or a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run with tiny windows; judges no target"
    )
    parser.add_argument("--repetitions", type=int, help="timed repetitions (default 15)")
    parser.add_argument(
        "--dir", metavar="DIRECTORY", help="where to write the files (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    result = run(quick=args.quick, repetitions=args.repetitions, directory=args.dir)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agreed"] and result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
