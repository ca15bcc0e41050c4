"""The EscalationStore contract, run over every store: memory, SQLite and PostgreSQL.

The checks are ``handrail.testing.contracts.EscalationStoreContract``, the
suite users run on their own stores; conftest's ``make_store`` gives it each
backend.  Sharing a store between processes needs a worker script, so that
check stays here.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

from handrail.testing.contracts import EscalationStoreContract, due

from .conftest import StoreMaker


class TestEveryStore(EscalationStoreContract):
    """Memory, SQLite and PostgreSQL pass the contract users run on theirs."""


def test_processes_sharing_a_store_fire_each_timer_exactly_once(
    make_shared_store: StoreMaker,
) -> None:
    """Four worker processes on one SQLite file or PostgreSQL schema, 300 due timers: each
    is handed to exactly one worker, and exactly one delivery records who fired it."""
    setup = make_shared_store()
    ids = [f"esc-{n:03}" for n in range(300)]
    for n, escalation_id in enumerate(ids):
        setup.create(due(escalation_id, minutes_ago=n % 50 + 1))

    worker = Path(__file__).with_name("_due_worker.py")
    kind, target, schema = (
        make_shared_store.kind,
        make_shared_store.target,
        make_shared_store.schema,
    )
    processes = [
        subprocess.Popen(
            [sys.executable, str(worker), kind, target, schema or "", f"proc-{n}", "5"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outputs: list[tuple[str, str]] = []
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr
        for process in processes:  # all at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            outputs.append(process.communicate(timeout=60))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err

    handed = collections.Counter(i for out, _ in outputs for i in json.loads(out))
    assert sorted(handed) == ids
    assert set(handed.values()) == {1}, [i for i, n in handed.items() if n > 1]
    # The database agrees: one delivery per escalation, from the worker that fired it.
    pending = setup.pending_deliveries()
    assert sorted(d.escalation_id for d in pending) == ids
    by_worker = {i: f"proc-{n}" for n, (out, _) in enumerate(outputs) for i in json.loads(out)}
    assert all(d.target == by_worker[d.escalation_id] for d in pending)
    assert all(e.version == 1 and e.next_due is None for e in setup.list())
