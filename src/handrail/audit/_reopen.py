"""Reopening a log for writing: its head, and a torn last line set aside and recorded.

A crash mid-write can leave a torn last line.  Reopening moves it to
``<path>.torn`` and appends a ``handrail.audit.recovered`` record
(``RECOVERED_ACTION``) naming its size and SHA-256, so the chain goes on
from the last whole record and the loss is on the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from .._errors import AuditIntegrityError
from ..clock import Clock
from ._entry import AuditEntry
from ._jsonl import TornTail
from ._line import GENESIS_HASH, check_line
from ._outcome import Outcome
from ._record import prepare
from ._redact import PartRedactor
from ._sink import Sink
from ._writer import Writer, event_logger, where

__all__ = ["RECOVERED_ACTION", "last_record", "recover_torn_tail"]

RECOVERED_ACTION = "handrail.audit.recovered"
"""The action of the record a log appends when it reopens after a torn write."""


@runtime_checkable
class _SetsAsideTornTails(Protocol):
    def set_aside_torn_tail(self) -> TornTail | None: ...


def recover_torn_tail(writer: Writer, sink: Sink, redaction: PartRedactor, clock: Clock) -> None:
    """Move the torn last line of ``sink`` aside and append a record naming its size and hash."""
    if not isinstance(sink, _SetsAsideTornTails):
        raise AuditIntegrityError(
            f"{where(sink)}the last record is torn and this sink cannot set it aside",
            path=sink.path,
            kind="torn",
        )
    tail = sink.set_aside_torn_tail()
    if tail is None:  # pragma: no cover - it was there a moment ago
        return
    logger = event_logger()
    if logger is not None:
        logger.warning(
            "handrail.audit.torn_tail",
            path=str(sink.path),
            bytes=tail.size,
            sha256=tail.sha256,
            sidecar=str(tail.sidecar),
        )
    message = (
        f"the last write before this reopening was cut short: {tail.size} bytes "
        f"(SHA-256 {tail.sha256}) moved to {tail.sidecar}"
    )
    recovered = AuditEntry(
        action=RECOVERED_ACTION,
        agent="handrail",
        outcome=Outcome.FAILED,
        args={
            "torn_bytes": tail.size,
            "torn_sha256": tail.sha256,
            "log_offset": tail.log_offset,
            "sidecar": str(tail.sidecar),
            "sidecar_offset": tail.sidecar_offset,
        },
        error_type="handrail.audit.TornWrite",
        error_message=message,
    )
    writer.append(prepare(redaction, recovered), clock)
    writer.flush(sync=True)


def last_record(lines: Iterator[bytes], path: Path | None) -> tuple[int, str, bool]:
    """(next seq, head hash, torn?) from the last complete line, checking only that line."""
    last: bytes | None = None
    index = -1
    torn = False
    for raw in lines:
        if not raw.endswith(b"\n"):
            torn = True
            break
        last = raw
        index += 1
    if last is None:
        return 0, GENESIS_HASH, torn
    fields, problem = check_line(last[:-1])
    seq = None if fields is None else fields.get("seq")
    if problem is not None or fields is None or type(seq) is not int:
        raise AuditIntegrityError(
            f"{'' if path is None else f'{path}: '}record #{index}, the last, fails verification: "
            "a log is never extended from a record that does not verify",
            path=path,
            index=index,
            kind="edited" if problem in ("hash", "form") else "corrupt",
        )
    return seq + 1, str(fields["hash"]), torn
