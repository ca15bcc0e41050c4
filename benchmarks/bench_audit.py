"""How fast the audit trail appends: handrail against a plain file with the same fsync policy.

One run measures, interleaved so that machine noise falls on every contender
alike, records appended per second by:

* ``handrail``: ``AuditLog.append(AuditEntry.for_decision(...))`` for each sink (JSONL, SQLite)
  and fsync mode (``always``, ``batch``, ``never``), with the defaults
  (batches of 1,000 records or 200 ms), plus the in-memory sink as a CPU-only
  reference.  Each record is redacted, gets an id, a timestamp and a
  digest of its arguments, is chained by SHA-256 and written.
* ``baseline``: the same records' JSON (``json.dumps`` of the fields of the
  records handrail wrote, without ``hash``) appended to a plain file with the
  same fsync policy: ``always`` writes, flushes and fsyncs each line;
  ``batch`` buffers and fsyncs every 1,000 lines; ``never`` writes each line
  to the OS and never fsyncs.  No redaction, no ids, no hashing.

Targets: every handrail row within 70 % of its baseline's throughput (read as
at least 0.30x the baseline's records/s), and batched JSONL at least
50,000 records/s.  Afterwards every handrail log must verify, holding every
record appended: that is the correctness check.

Run ``python benchmarks/bench_audit.py`` for a table, ``--json`` for one JSON
document, ``--quick`` for a smoke run whose figures mean nothing, ``--dir`` to
put the files on another filesystem (an fsync's cost depends on it).  How
to read the figures: ``docs/audit.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
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
from typing import Any, BinaryIO

from pydantic import SecretStr

from handrail import ActionRequest, Decision, Policy, Principal, Rule
from handrail.audit import AuditEntry, AuditLog, FsyncMode

MODES: tuple[FsyncMode, ...] = ("always", "batch", "never")
SINKS = ("jsonl", "sqlite")
BATCH_RECORDS = 1_000  # AuditLog's default, and the baseline's batch
RATIO_TARGET = 0.30  # "within 70 % of the baseline's throughput"
BATCHED_JSONL_TARGET = 50_000.0  # records/s

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


def baseline_records(decisions: Sequence[Decision]) -> list[dict[str, Any]]:
    """The fields of the records handrail writes for ``decisions``, without ``hash``."""
    log = AuditLog.memory()
    for decision in decisions:
        log.append(AuditEntry.for_decision(decision))
    records = []
    for line in log.sink.read():
        fields = json.loads(line)
        del fields["hash"]
        records.append(fields)
    return records


# -- the contenders ----------------------------------------------------------------


def _appender(log: AuditLog) -> Callable[[Decision], object]:
    """What a guard does per call: build the decision's entry and append it."""
    append, entry_for = log.append, AuditEntry.for_decision

    def append_decision(decision: Decision) -> object:
        return append(entry_for(decision))

    return append_decision


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
    decisions = build_decisions()
    records = baseline_records(decisions)
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
                    Contender(f"handrail {sink} {mode}", sink, mode, _appender(log),
                              decisions, log.close)
                )  # fmt: skip
        memory = AuditLog.memory()
        logs["memory"] = memory
        contenders.append(
            Contender("handrail memory", "memory", None, _appender(memory), decisions,
                      memory.close)
        )  # fmt: skip
        plain_files: dict[FsyncMode, PlainFile] = {}
        for mode in MODES:
            plain = PlainFile(root / f"plain-{mode}.jsonl", mode)
            plain_files[mode] = plain
            contenders.append(
                Contender(f"baseline {mode}", "plain file", mode, plain.append, records,
                          plain.close)
            )  # fmt: skip
        try:
            measure(contenders, repetitions=reps, quick=quick)
        finally:
            for contender in contenders:
                contender.close()
        checks = _check(logs, contenders, plain_files, root)
    medians = {c.name: statistics.median(c.samples) for c in contenders}
    return report(medians, contenders, checks, reps, quick=quick)


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
    return {
        "verified": verified,
        "baselines_complete": baselines_complete,
        "verify_records_per_s": round(verify_rate),
    }


def report(
    medians: Mapping[str, float],
    contenders: Sequence[Contender],
    checks: Mapping[str, Any],
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
            met = ratio >= RATIO_TARGET
            target = f">= {RATIO_TARGET:.2f}x baseline"
            if c.sink == "jsonl" and c.fsync == "batch":
                target += f", >= {BATCHED_JSONL_TARGET:,.0f}/s"
                met = met and rate >= BATCHED_JSONL_TARGET
            row.update(
                baseline_records_per_s=round(baseline),
                ratio_vs_baseline=round(ratio, 3),
                target=target,
                passed=None if quick else met,
            )
        rows.append(row)
    agreed = all(checks["verified"].values()) and bool(checks["baselines_complete"])
    met_all = all(row["passed"] is not False for row in rows)
    rates = {row["contender"]: row["records_per_s"] for row in rows}
    return {
        "benchmark": "audit",
        "quick": quick,
        "repetitions": repetitions,
        "python": platform.python_version(),
        "rows": rows,
        "figures": {
            "batched_jsonl_records_per_s": rates["handrail jsonl batch"],
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
