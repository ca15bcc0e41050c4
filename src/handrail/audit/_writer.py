"""The writer behind an ``AuditLog``: the chain's head, the batch buffer, the flusher thread.

Everything an append touches, kept apart from ``AuditLog`` so the log's
finalizer and the flusher thread can hold it without keeping the log alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .._errors import AuditError
from ..clock import Clock
from ._line import GENESIS_HASH
from ._record import AuditRecord, Prepared, chain
from ._sink import FsyncMode, Sink

__all__ = ["Writer", "event_logger", "where"]


class Writer:
    """The chain's head, the batch buffer and the sink: everything an append touches.

    Separate from ``AuditLog`` so the finalizer and the flusher thread can
    hold it without keeping the log alive.  ``lock`` guards the head and the
    buffer; ``io_lock`` orders batch writes.  In ``always`` and ``never``
    modes the sink is called under ``lock``; in ``batch`` mode under
    ``io_lock`` only, so appends go on while a batch is fsynced.
    """

    __slots__ = (
        "background",
        "batch_records",
        "closed",
        "failure",
        "fsync",
        "head",
        "interval",
        "io_lock",
        "lock",
        "monotonic",
        "oldest",
        "pending",
        "seq",
        "sink",
        "stop",
        "thread",
        "wakeup",
    )

    def __init__(
        self,
        sink: Sink,
        fsync: FsyncMode,
        batch_records: int,
        interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        self.sink = sink
        self.fsync = fsync
        self.batch_records = batch_records
        self.interval = interval
        # Real elapsed time, not the log's Clock: a FakeClock given for the
        # records' timestamps must not stop the flusher.
        self.monotonic = monotonic
        self.lock = threading.Lock()
        self.wakeup = threading.Condition(self.lock)  # an append or close wakes the flusher
        self.io_lock = threading.Lock()
        self.pending: list[bytes] = []
        self.oldest: float | None = None  # when the oldest pending record was appended
        self.seq = 0
        self.head = GENESIS_HASH
        self.failure: AuditError | None = None
        self.closed = False
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.background = background  # False: no flusher thread; the caller flushes (tests)

    def start(self, seq: int, head: str) -> None:
        with self.lock:
            self.seq, self.head = seq, head

    def position(self) -> tuple[int, str]:
        with self.lock:
            return self.seq, self.head

    def append(self, prepared: Prepared, clock: Clock) -> AuditRecord:
        """Chain and store one record; in batch mode, buffer it and write a batch that is full."""
        if self.fsync == "batch":
            record, due = self.buffer(prepared, clock)
            if due:
                self.flush(sync=True)
            return record
        with self.lock:
            if self.closed or self.failure is not None:
                self.check()
            line, record = chain(prepared, seq=self.seq, prev_hash=self.head, now=clock.now())
            try:
                self.sink.append((line,))
                if self.fsync == "always":
                    self.sink.sync()
            except BaseException as exc:
                failure = self._fail(exc)
                if failure is exc or not isinstance(exc, Exception):
                    raise
                raise failure from exc
            self.seq += 1
            self.head = record.hash
        return record

    def buffer(self, prepared: Prepared, clock: Clock) -> tuple[AuditRecord, bool]:
        """Batch mode: chain one record into the buffer; True if the batch is due (full).

        Writes nothing: the caller flushes a batch that is due (``aappend``
        does so in a thread, off the event loop).
        """
        with self.lock:
            if self.closed or self.failure is not None:
                self.check()
            line, record = chain(prepared, seq=self.seq, prev_hash=self.head, now=clock.now())
            if not self.pending:
                self.oldest = self.monotonic()
                self.wakeup.notify()
            self.pending.append(line)
            due = len(self.pending) >= self.batch_records
            if self.thread is None and self.background:
                self._start_flusher()
            self.seq += 1
            self.head = record.hash
        return record, due

    def flush(self, *, sync: bool, strict: bool = True) -> None:
        """Write the buffered records (fsynced); with ``sync``, fsync even if none were buffered.

        Not ``strict`` (before reading): a closed or failed log is left as it is.
        """
        batched = self.fsync == "batch"
        with self.io_lock if batched else self.lock:
            if batched:
                with self.lock:
                    if self.closed or (self.failure is not None and not strict):
                        return
                    self.check()
                    pending, self.pending = self.pending, []
                    self.oldest = None
            else:
                if self.closed or (self.failure is not None and not strict):
                    return
                self.check()
                pending = []
            try:
                if pending:
                    self.sink.append(pending)
                if pending or sync:
                    self.sink.sync()
            except BaseException as exc:
                with self.lock if batched else _NO_LOCK:
                    failure = self._fail(exc)
                if failure is exc or not isinstance(exc, Exception):
                    raise
                raise failure from exc

    def next_flush_at(self) -> float | None:
        """When (``monotonic`` seconds) the buffered records are due; None if none are.

        ``interval`` after the oldest of them was appended, however long the
        flush before took: that is what bounds how old a record lost in a
        crash can be.
        """
        with self.lock:
            return None if self.oldest is None else self.oldest + self.interval

    def wait_until_due(self) -> bool:
        """Block the flusher until buffered records are due (True) or the log closes (False)."""
        with self.lock:
            while not self.stop.is_set():
                if self.oldest is None:
                    self.wakeup.wait()
                    continue
                delay = self.oldest + self.interval - self.monotonic()
                if delay <= 0:
                    return True
                self.wakeup.wait(delay)
            return False

    def close(self) -> None:
        """Stop the flusher, write what is buffered, close the sink.  Idempotent."""
        if self.closed:
            return
        self.stop.set()
        with self.lock:
            self.wakeup.notify_all()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        try:
            if self.failure is None:
                self.flush(sync=self.fsync != "never")
        finally:
            with self.lock:
                self.closed = True
            self.sink.close()

    def check(self) -> None:
        """Raise ``AuditError`` if the log is closed or a write failed.

        Reads two attributes, each set once and never cleared: safe without ``lock``.
        """
        if self.closed:
            raise AuditError(f"{where(self.sink)}the audit log is closed")
        if self.failure is not None:
            raise AuditError(
                f"{where(self.sink)}the audit log stopped after a failed write ({self.failure}); "
                "reopen it to continue the chain"
            ) from self.failure

    def _fail(self, exc: BaseException) -> AuditError:
        """Remember that a write failed (the log refuses appends from now on); the error to raise.

        Any exception counts, not only a sink's ``AuditError``: a custom sink
        may raise ``OSError``, and an interrupted write may have left half a
        line.  Either way the chain cannot safely continue.
        """
        if isinstance(exc, AuditError):
            failure = exc
        else:
            what = "was interrupted" if not isinstance(exc, Exception) else "failed"
            failure = AuditError(
                f"{where(self.sink)}writing the audit log {what}: {type(exc).__name__}: {exc}"
            )
            failure.__cause__ = exc
        self.failure = failure
        return failure

    def _start_flusher(self) -> None:
        thread = threading.Thread(
            target=_flush_periodically, args=(self,), name="handrail-audit-flusher", daemon=True
        )
        self.thread = thread
        thread.start()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def event_logger() -> Any:
    """handrail's structlog logger, or None while structlog is unconfigured.

    Through ``handrail.telemetry`` like every other event: a library never
    prints to a stdout it does not own (structlog's default would).
    """
    from ..telemetry import default_telemetry  # here: `import handrail.audit` stays light

    return default_telemetry().logger


def where(sink: Sink) -> str:
    return "" if sink.path is None else f"{sink.path}: "


def _flush_periodically(writer: Writer) -> None:
    """The batch flusher: write each batch ``interval`` after its first record, until closed."""
    while writer.wait_until_due():
        try:
            writer.flush(sync=False)
        except AuditError as exc:
            # The failure is kept; the next append, flush or close raises it.
            logger = event_logger()
            if logger is not None:
                logger.error(
                    "handrail.audit.write_failed", path=str(writer.sink.path), error=str(exc)
                )
            return
