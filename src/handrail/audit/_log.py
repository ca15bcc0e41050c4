"""``AuditLog``: appends hash-chained, redacted records to a sink, and reads and verifies them.

The writer it appends through (the chain's head, the batch buffer, the
flusher thread) is in ``_writer``; what reopening does about a torn last
line, in ``_reopen``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TypedDict, Unpack

from .._errors import AuditError, AuditIntegrityError, ConfigurationError
from ..clock import Clock, SystemClock
from ..redaction import Redactor
from ._entry import AuditEntry
from ._jsonl import JSONLSink
from ._line import format_timestamp
from ._memory import MemorySink
from ._outcome import Outcome
from ._record import AuditRecord, UnreadableRecord, decode, prepare, validate
from ._redact import PartRedactor
from ._reopen import last_record, recover_torn_tail
from ._sink import FSYNC_MODES, FsyncMode, Sink
from ._sqlite import SQLiteSink
from ._verify import Anchor, Checkpoint, VerifyReport, verify_lines
from ._writer import Writer

__all__ = ["AuditLog", "is_sqlite_path"]

_SQLITE_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
_SQLITE_MAGIC = b"SQLite format 3\x00"


class _Options(TypedDict, total=False):
    """The options every ``AuditLog`` constructor takes (see ``AuditLog``)."""

    redactor: Redactor | None
    clock: Clock | None
    batch_records: int
    batch_interval: dt.timedelta
    verify_on_open: bool
    digest_key: bytes | None


class AuditLog:
    """An append-only, hash-chained audit trail over a ``Sink``.

    Build one with ``AuditLog.jsonl(path)`` (the embedded default),
    ``AuditLog.sqlite(path)``, ``AuditLog.memory()``, ``AuditLog.open(path)``
    (JSONL or SQLite, by the file), or ``AuditLog(sink)``.

    Every record is redacted with ``redactor`` (default ``Redactor()``)
    before it is serialized, chained to the one before it by hash, and
    appended; its timestamp comes from ``clock`` (default ``SystemClock()``).
    With ``digest_key`` (bytes), ``args_digest`` is an HMAC rather than a
    bare SHA-256 (see ``handrail.audit.args_digest``).

    ``fsync`` says when records reach stable storage and what a crash can
    lose (see ``FsyncMode``).  In ``batch`` mode up to ``batch_records``
    records, at most ``batch_interval`` old, wait in memory, and a
    background thread writes them when they are due.

    Opening a log for writing verifies the records already there
    (``verify_on_open=False`` checks only the last one) and raises
    ``AuditIntegrityError`` if they fail: a tampered log is never extended.
    A torn last line (left by a crash mid-write) is moved to
    ``<path>.torn`` and a ``handrail.audit.recovered`` record is appended
    that names its size and SHA-256.  With ``read_only=True`` nothing is
    checked or written on opening and ``append`` refuses.

    Options that make no sense raise ``ConfigurationError``.  Thread-safe;
    one writer per log (a second is refused).  Appends are synchronous and
    short; ``aappend`` keeps fsyncs off the event loop.  After a write
    fails the log refuses every append, and ``ensure_writable`` says so
    before one is tried.  Close the log, or use it as a context manager:
    ``close`` writes what is buffered.
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_digest_key",
        "_finalizer",
        "_read_only",
        "_redaction",
        "_writer",
    )

    def __init__(
        self,
        sink: Sink,
        *,
        fsync: FsyncMode = "batch",
        read_only: bool = False,
        **options: Unpack[_Options],
    ) -> None:
        if fsync not in FSYNC_MODES:
            raise ConfigurationError(
                f"fsync must be one of {', '.join(FSYNC_MODES)}, got {fsync!r}"
            )
        batch_records = options.get("batch_records", 1000)
        batch_interval = options.get("batch_interval", dt.timedelta(milliseconds=200))
        if type(batch_records) is not int or batch_records < 1:
            raise ConfigurationError(f"batch_records must be a positive int, got {batch_records!r}")
        if not isinstance(batch_interval, dt.timedelta) or batch_interval <= dt.timedelta(0):
            raise ConfigurationError(
                f"batch_interval must be a positive timedelta, got {batch_interval!r}"
            )
        self._redaction = PartRedactor(options.get("redactor") or Redactor())
        self._clock: Clock = options.get("clock") or SystemClock()
        self._digest_key = options.get("digest_key")
        self._read_only = read_only
        self._writer = Writer(sink, fsync, batch_records, batch_interval.total_seconds())
        # Write what is buffered if the log is dropped or the interpreter exits unclosed.
        self._finalizer = weakref.finalize(self, self._writer.close)
        if not read_only:
            try:
                self._open(verify=options.get("verify_on_open", True))
            except BaseException:
                self._finalizer()
                raise

    # -- constructors ----------------------------------------------------------

    @classmethod
    def jsonl(
        cls,
        path: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "batch",
        read_only: bool = False,
        **options: Unpack[_Options],
    ) -> AuditLog:
        """A log in the JSON Lines file at ``path`` (created if missing, unless ``read_only``)."""
        return cls(
            JSONLSink(path, read_only=read_only), fsync=fsync, read_only=read_only, **options
        )

    @classmethod
    def sqlite(
        cls,
        path: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "batch",
        read_only: bool = False,
        **options: Unpack[_Options],
    ) -> AuditLog:
        """A log in the SQLite database at ``path`` (WAL mode; created if missing)."""
        sink = SQLiteSink(path, fsync=fsync, read_only=read_only)
        return cls(sink, fsync=fsync, read_only=read_only, **options)

    @classmethod
    def memory(cls, **options: Unpack[_Options]) -> AuditLog:
        """A log held in memory, for tests: records are written at once and lost at exit."""
        return cls(MemorySink(), fsync="never", **options)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "batch",
        read_only: bool = False,
        **options: Unpack[_Options],
    ) -> AuditLog:
        """A log at ``path``: SQLite if the file is an SQLite database or ends in ``.db``,
        ``.sqlite`` or ``.sqlite3``; JSON Lines otherwise."""
        make = cls.sqlite if is_sqlite_path(path) else cls.jsonl
        return make(path, fsync=fsync, read_only=read_only, **options)

    # -- appending -------------------------------------------------------------

    def append(self, entry: AuditEntry) -> AuditRecord:
        """Append the record of ``entry`` and return it.

        ``args``, ``resource``, ``context`` and ``details`` are redacted;
        ``reason`` and the error message are scrubbed of the secrets found in
        them.  Raises ``AuditError`` if the record could not be written (the
        log then refuses further appends: reopen it), ``TypeError`` /
        ``ValueError`` for a malformed entry (nothing is written).
        """
        prepared = prepare(self._redaction, entry, self._digest_key)
        if self._read_only:
            raise AuditError(f"{self._where()}the audit log is open read-only")
        return self._writer.append(prepared, self._clock)

    async def aappend(self, entry: AuditEntry) -> AuditRecord:
        """``append`` for async code: file I/O that waits for the disk runs in a thread.

        With ``fsync="always"`` the whole append runs in a thread; with
        ``"batch"`` the record is buffered on the event loop and a batch that
        fills is written and fsynced in a thread; with ``"never"`` the record
        is handed to the operating system inline (a ``write``, no fsync).
        Raises like ``append``.
        """
        prepared = prepare(self._redaction, entry, self._digest_key)
        if self._read_only:
            raise AuditError(f"{self._where()}the audit log is open read-only")
        writer = self._writer
        if writer.fsync == "never":
            return writer.append(prepared, self._clock)
        import asyncio  # only here: `import handrail.audit` stays light

        if writer.fsync == "always":
            return await asyncio.to_thread(writer.append, prepared, self._clock)
        record, due = writer.buffer(prepared, self._clock)
        if due:
            await asyncio.to_thread(writer.flush, sync=True)
        return record

    def ensure_writable(self) -> None:
        """Raise ``AuditError`` if an append would be refused now; cheap (no I/O).

        Says why: a previous write failed (with its error), the log is
        closed, or it is open read-only.  A guard calls it before running a
        write, so that a call whose record cannot be kept does not run.  It
        cannot see a failure the next write will meet (a disk that fills up
        now): the append itself raises then.
        """
        if self._read_only:
            raise AuditError(f"{self._where()}the audit log is open read-only")
        writer = self._writer
        if writer.closed or writer.failure is not None:
            writer.check()

    # -- reading ---------------------------------------------------------------

    def records(
        self,
        *,
        action: str | None = None,
        agent: str | None = None,
        outcome: Outcome | str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> Iterator[AuditRecord]:
        """The records, oldest first, that match every filter given.

        ``action`` is a shell-style pattern (``crm.*``, ``*.delete``);
        ``since`` is inclusive, ``until`` exclusive (aware datetimes).
        Records are parsed, not verified: use ``verify`` for that.  Raises
        ``AuditIntegrityError`` (kind ``corrupt``, naming the file and line)
        on a line that is not an audit record, whatever it holds (deep
        nesting, huge numbers, another file's records), and after the last
        record if the log ends in a torn line.
        """
        self._writer.flush(sync=False, strict=False)
        wanted_outcome = None if outcome is None else Outcome(outcome).value
        low = None if since is None else format_timestamp(_aware(since, "since"))
        high = None if until is None else format_timestamp(_aware(until, "until"))
        for index, raw in enumerate(self._writer.sink.read()):
            if not raw.endswith(b"\n"):
                raise AuditIntegrityError(
                    f"{self._where()}record #{index}, the last line, is torn ({len(raw)} bytes "
                    "without a newline); reopen the log for writing to set it aside",
                    path=self.path,
                    index=index,
                    kind="torn",
                )
            try:
                # Every line's shape is checked before the filters, so a file
                # that holds no records is refused rather than matching nothing.
                fields = decode(raw)
                stamp: str = fields["timestamp"]
                if (
                    (action is not None and not fnmatch.fnmatchcase(fields["action"], action))
                    or (agent is not None and fields["agent"] != agent)
                    or (wanted_outcome is not None and fields["outcome"] != wanted_outcome)
                    or (low is not None and stamp < low)
                    or (high is not None and stamp >= high)
                ):
                    continue
                yield validate(fields)
            except UnreadableRecord as exc:
                raise self._unreadable(index, str(exc)) from None

    def _unreadable(self, index: int, problem: str) -> AuditIntegrityError:
        """The error for record ``index``, which is not an audit record, naming file and line."""
        path = self.path
        jsonl = isinstance(self._writer.sink, JSONLSink)
        if index == 0:
            where = "line 1" if jsonl else "record #0"
            message = f"{path or 'the log'} is not a handrail audit log ({where}: {problem})"
        elif jsonl:
            message = f"{path}:{index + 1}: record #{index} is unreadable: {problem}"
        else:
            message = f"{self._where()}record #{index} is unreadable: {problem}"
        return AuditIntegrityError(message, path=path, index=index, kind="corrupt")

    def verify(self, *, against: Checkpoint | None = None) -> VerifyReport:
        """Check the whole hash chain; report the first record that breaks it.

        ``against``: a checkpoint taken earlier; the report then also fails
        if the records it covers changed or were cut.  On a log open for
        writing, every record this log appended must also still be there,
        unchanged (nothing cut or rewritten behind its back).  Never raises
        for a tampered log; ``report.raise_for_problem()`` does.
        """
        writer = self._writer
        anchors = []
        if not self._read_only:
            # Everything this writer appended must still be there, unchanged:
            # its own head is a checkpoint taken just now.
            count, head = writer.position()
            anchors.append(Anchor(count, head, "this writer", "this writer has appended"))
        writer.flush(sync=False, strict=False)
        return verify_lines(writer.sink.read(), against=against, path=self.path, anchors=anchors)

    def checkpoint(self) -> Checkpoint:
        """The head hash and record count now, to store elsewhere and verify against later.

        A writer flushes and syncs first, so the checkpoint covers only
        records on stable storage.  A read-only log verifies itself first and
        raises ``AuditIntegrityError`` if it fails.
        """
        if self._read_only:
            report = self.verify()
            report.raise_for_problem()
            count, head = report.count, report.head_hash
        else:
            self._writer.flush(sync=True)
            count, head = self._writer.position()
        return Checkpoint(count=count, head_hash=head, created_at=self._clock.now())

    # -- lifecycle -------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """Where the records live, or None in memory."""
        return self._writer.sink.path

    @property
    def clock(self) -> Clock:
        """The clock the records' timestamps (and ``@audited``'s durations) come from."""
        return self._clock

    @property
    def sink(self) -> Sink:
        """The sink the records go to."""
        return self._writer.sink

    @property
    def redactor(self) -> Redactor:
        """The redactor every record goes through."""
        return self._redaction.redactor

    @property
    def fsync(self) -> FsyncMode:
        """When records are forced to stable storage (see ``FsyncMode``)."""
        return self._writer.fsync

    def flush(self) -> None:
        """Write every buffered record and fsync the sink, whatever the mode."""
        self._writer.flush(sync=True)

    def close(self) -> None:
        """Write what is buffered (fsynced unless ``fsync="never"``) and close the sink.

        Safe to call twice; appending afterwards raises ``AuditError``.
        """
        self._finalizer()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditLog({self._writer.sink!r}, fsync={self._writer.fsync!r})"

    def _where(self) -> str:
        path = self.path
        return "" if path is None else f"{path}: "

    # -- opening ---------------------------------------------------------------

    def _open(self, *, verify: bool) -> None:
        """Find the chain's head; refuse a log that fails; set a torn tail aside."""
        sink = self._writer.sink
        if verify:
            report = verify_lines(sink.read(), path=sink.path)
            if not report.ok and report.kind != "torn":
                report.raise_for_problem()
            count, head, torn = report.count, report.head_hash, report.kind == "torn"
        else:
            count, head, torn = last_record(sink.read(), sink.path)
        self._writer.start(count, head)
        if torn:
            recover_torn_tail(self._writer, sink, self._redaction, self._clock)


def is_sqlite_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is (or, by its suffix, will be) an SQLite database."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            return file.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except FileNotFoundError:
        return path.suffix.lower() in _SQLITE_SUFFIXES
    except OSError:
        return path.suffix.lower() in _SQLITE_SUFFIXES


def _aware(when: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {when.isoformat()}")
    return when
