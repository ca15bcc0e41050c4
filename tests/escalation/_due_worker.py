"""A worker process for the multi-process tests: fires every due timer in a shared store.

Usage: ``python _due_worker.py KIND TARGET SCHEMA NAME LIMIT``.  Prints ``ready``,
waits for a line on stdin (so all workers start together), loops
``process_due`` until a batch comes back short, then prints the ids it was
handed as one JSON list.
"""

from __future__ import annotations

import json
import sys

from _factory import HOUR, NOW, fire

from handrail.escalation import Escalation, EscalationStore
from handrail.escalation._postgres import PostgresStore
from handrail.escalation._sqlite import SQLiteStore
from handrail.escalation._store import Change


def main(kind: str, target: str, schema: str, name: str, limit: str) -> None:
    store: EscalationStore = (
        SQLiteStore(target) if kind == "sqlite" else PostgresStore(target, schema=schema)
    )
    batch = int(limit)
    handed: list[str] = []

    def change(escalation: Escalation) -> Change:
        handed.append(escalation.id)
        return fire(escalation, by=name, at=NOW)

    print("ready", flush=True)
    sys.stdin.readline()
    try:
        while store.process_due(NOW + 2 * HOUR, change, limit=batch) == batch:
            pass
    finally:
        store.close()
    print(json.dumps(handed), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
