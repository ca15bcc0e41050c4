"""What guarding a call costs, as ratios to the parts it is made of, measured in one run.

Two targets, each contender timed side by side with what it is compared to:

* **A guarded call costs at most 1.5x one audit append.**  A trivial
  function guarded by ``Guard(policy, audit=AuditLog.jsonl(..., fsync="batch"))``
  (the policy allows it; no OpenTelemetry SDK, structlog unconfigured) against
  ``AuditLog.append`` of the very record the guard writes for it, into a log
  of its own with the same fsync mode.  The guard decides, times the call,
  builds the record and appends it: all but the append is what it adds.
* **``@requires_permission`` adds at most 3x one policy decision.**  The same
  function bare and decorated (the decorator binds the arguments, builds the
  ``ActionRequest`` and decides), against ``policy.evaluate`` of the request
  the decorator builds.  Measured: (decorated - bare) / evaluate.

Contenders run in windows (2,000 calls for the two that append, so each
fsyncs twice a window; 5,000 for the others), one window each per round, in
a freshly shuffled order every round, the garbage collector off during a
window; each figure is the median ns per call.  The correctness check: the
guarded call and the decorated one return the function's result, and both
audit logs verify, holding one record per call.

Run ``python benchmarks/bench_guard.py`` for a table, ``--json`` for one JSON
document, ``--quick`` for a smoke run whose figures mean nothing, ``--profile``
for a cProfile of the guarded call.  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from _targets import all_met, ratio_target, render_targets

from handrail import ActionRequest, Policy, Principal, acting_as, requires_permission
from handrail.audit import AuditEntry, AuditLog, AuditRecord
from handrail.guard import Guard
from handrail.telemetry import Telemetry

GUARD_OVER_APPEND = 1.5
DECORATOR_OVER_DECISION = 3.0
ACTION = "crm.contact.read"
POLICY = Policy.from_dict(
    {
        "rules": [
            {"id": "contacts.read", "effect": "allow", "actions": [ACTION]},
            {"id": "contacts.delete", "effect": "deny", "actions": ["crm.contact.delete"]},
            {"id": "exports", "effect": "audit", "actions": ["crm.*.export"]},
        ]
    }
)
PRINCIPAL = Principal(agent="crm-reader", on_behalf_of="alice")
CONTACT_ID = "c-1042"


def append_record(
    log: AuditLog, principal: Principal, action: str, outcome: str, fields: Mapping[str, Any]
) -> object:
    """The one audit-append call of this file: a change of the append API is made here."""
    return log.append(AuditEntry.of(principal, action, outcome, **fields))


def guarded(guard: Guard, fn: Callable[[str], str]) -> Callable[[str], str]:
    """``fn`` guarded by ``guard`` as ``ACTION``: the one front-end call of this file."""
    return guard.protect(ACTION)(fn)


def read_contact(contact_id: str) -> str:
    """The guarded function: as cheap as a function can be, so the guard is what is timed."""
    return contact_id


def same_fields(record: AuditRecord) -> tuple[Principal, str, str, dict[str, Any]]:
    """What to append to write the same record as ``record`` (but for ids, time and chain)."""
    fields = {
        "resource": record.resource,
        "args": record.args,
        "context": record.context,
        "effect": record.effect,
        "rule_id": record.rule_id,
        "reason": record.reason,
        "duration": record.duration,
        "attempts": record.attempts,
        "idempotency_key": record.idempotency_key,
    }
    return PRINCIPAL, record.action, record.outcome.value, fields


def interleave(
    contenders: Mapping[str, tuple[Callable[[], object], int]], *, repetitions: int, seed: int = 0
) -> dict[str, list[float]]:
    """ns per call of each contender, one sample per round: ``{name: (one call, window)}``."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    shuffle = random.Random(seed).shuffle
    for call, window in contenders.values():  # warm up: caches filled, files open
        for _ in range(max(1, window // 10)):
            call()
    try:
        for _ in range(repetitions):
            shuffle(order)
            for name in order:
                call, window = contenders[name]
                gc.collect()
                gc.disable()
                start = time.perf_counter_ns()
                for _ in range(window):
                    call()
                elapsed = time.perf_counter_ns() - start
                gc.enable()
                samples[name].append(elapsed / window)
    finally:
        gc.enable()
    return samples


def run(
    *, quick: bool = False, repetitions: int | None = None, directory: str | None = None
) -> dict[str, Any]:
    """Time every contender, interleaved; return the figures as JSON-ready data."""
    reps = repetitions or (3 if quick else 15)
    appending = 60 if quick else 2_000
    deciding = 100 if quick else 5_000
    request = ActionRequest(principal=PRINCIPAL, action=ACTION, args={"contact_id": CONTACT_ID})
    sdk = Telemetry().tracer() is not None
    with tempfile.TemporaryDirectory(dir=directory, prefix="handrail-bench-") as tmp:
        root = Path(tmp)
        guard_log = AuditLog.jsonl(root / "guard.jsonl", fsync="batch")
        alone_log = AuditLog.jsonl(root / "alone.jsonl", fsync="batch")
        guard = Guard(POLICY, audit=guard_log, telemetry=Telemetry())
        guarded_read = guarded(guard, read_contact)
        decorated = requires_permission(ACTION, policy=POLICY)(read_contact)
        with acting_as(PRINCIPAL):
            results = {
                "guarded": guarded_read(CONTACT_ID),
                "decorated": decorated(CONTACT_ID),
            }
            first = next(iter(guard_log.records()))
            item = same_fields(first)
            contenders: dict[str, tuple[Callable[[], object], int]] = {
                "guarded call": (lambda: guarded_read(CONTACT_ID), appending),
                "audit append alone": (lambda: append_record(alone_log, *item), appending),
                "bare function": (lambda: read_contact(CONTACT_ID), deciding),
                "@requires_permission": (lambda: decorated(CONTACT_ID), deciding),
                "policy.evaluate": (lambda: POLICY.evaluate(request), deciding),
            }
            samples = interleave(contenders, repetitions=reps)
        guard_log.close()
        alone_log.close()
        calls = {
            name: 1 + max(1, window // 10) + reps * window
            for name, (_, window) in contenders.items()
        }
        verified = {}
        for name, path, expected in (
            ("guarded call", root / "guard.jsonl", calls["guarded call"]),
            ("audit append alone", root / "alone.jsonl", calls["audit append alone"] - 1),
        ):
            with AuditLog.jsonl(path, read_only=True) as reopened:
                report = reopened.verify()
            verified[name] = report.ok and report.count == expected
    medians = {name: statistics.median(values) for name, values in samples.items()}
    added = medians["@requires_permission"] - medians["bare function"]
    targets = [
        ratio_target(
            "guarded call over one audit append",
            medians["guarded call"] / medians["audit append alone"],
            at_most=GUARD_OVER_APPEND,
            quick=quick,
            detail=f"{medians['guarded call']:,.0f} vs {medians['audit append alone']:,.0f} ns",
        ),
        ratio_target(
            "@requires_permission added over one policy.evaluate",
            added / medians["policy.evaluate"],
            at_most=DECORATOR_OVER_DECISION,
            quick=quick,
            detail=f"{added:,.0f} ns added vs {medians['policy.evaluate']:,.0f} ns",
        ),
    ]
    agreed = (
        results == {"guarded": CONTACT_ID, "decorated": CONTACT_ID}
        and all(verified.values())
        and first.outcome.value == "executed"
    )
    return {
        "benchmark": "guard",
        "quick": quick,
        "repetitions": reps,
        "python": platform.python_version(),
        "opentelemetry_sdk": sdk,
        "rows": [
            {"contender": name, "median_ns": round(value), "window": contenders[name][1]}
            for name, value in medians.items()
        ],
        "targets": targets,
        "figures": {
            "samples_ns": {name: [round(v) for v in values] for name, values in samples.items()},
            "decorator_added_ns": round(added),
        },
        "verified": verified,
        "agreed": agreed,
        "passed": None if quick else agreed and all_met(targets),
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table for humans."""
    width = max(len(row["contender"]) for row in result["rows"])
    verdict = {True: "pass", False: "FAIL", None: "not judged (--quick)"}[result["passed"]]
    return "\n".join(
        [
            f"guarded calls: median of {result['repetitions']} interleaved rounds, "
            f"Python {result['python']}, OpenTelemetry SDK: "
            + ("configured" if result["opentelemetry_sdk"] else "none")
            + ("  [--quick: the figures mean nothing]" if result["quick"] else ""),
            "",
            f"{'contender'.ljust(width)}  {'median ns':>10}",
            f"{'-' * width}  {'-' * 10}",
            *(
                f"{row['contender'].ljust(width)}  {row['median_ns']:>10,}"
                for row in result["rows"]
            ),
            "",
            *render_targets(result["targets"]),
            "",
            "both audit logs verified with one record per call: "
            + ("yes" if all(result["verified"].values()) else "NO"),
            f"overall: {verdict}",
        ]
    )


def profile_guarded_call(calls: int = 20_000, top: int = 25) -> str:
    """cProfile the guarded call: the functions with the most own time, per call."""
    with tempfile.TemporaryDirectory(prefix="handrail-bench-") as tmp:
        log = AuditLog.jsonl(Path(tmp) / "guard.jsonl", fsync="batch")
        guarded_read = guarded(Guard(POLICY, audit=log, telemetry=Telemetry()), read_contact)
        with acting_as(PRINCIPAL):
            for _ in range(1_000):
                guarded_read(CONTACT_ID)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(calls):
                guarded_read(CONTACT_ID)
            profiler.disable()
        log.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or ``--json``; exit 1 if a check fails or a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="tiny windows; judges no target")
    parser.add_argument("--repetitions", type=int, help="timed rounds (default 15)")
    parser.add_argument(
        "--dir", metavar="DIRECTORY", help="where to write the files (default: a temporary one)"
    )
    parser.add_argument("--profile", action="store_true", help="only cProfile the guarded call")
    args = parser.parse_args(argv)
    if args.profile:
        print(profile_guarded_call())
        return 0
    result = run(quick=args.quick, repetitions=args.repetitions, directory=args.dir)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agreed"] and result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
