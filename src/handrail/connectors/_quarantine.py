"""Quarantine sinks: where the records a read set aside are kept for a human.

``QuarantineSink`` is the protocol; ``JSONLQuarantine`` (an append-only JSON
Lines file), ``SQLiteQuarantine`` (indexed rows) and ``MemoryQuarantine``
implement it, and ``open_quarantine`` picks one by the file's name.  A record
is never dropped silently: a sink that cannot store one raises
``QuarantineError``.  See ``docs/quarantine.md``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import os
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from pydantic import ValidationError

from .._errors import ConfigurationError, HandrailError
from ._quarantined import QuarantinedRecord, RecordError

__all__ = [
    "JSONLQuarantine",
    "MemoryQuarantine",
    "QuarantineError",
    "QuarantineSink",
    "QuarantineWarning",
    "SQLiteQuarantine",
    "open_quarantine",
]

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_SQLITE_HEADER = b"SQLite format 3\x00"


# -- errors ------------------------------------------------------------------------


class QuarantineError(HandrailError):
    """A quarantine could not be written or read.  ``.path`` and ``.line`` say where."""

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        super().__init__(message)


class QuarantineWarning(UserWarning):
    """A quarantine file held a torn line (a writer stopped mid-write); it was skipped."""


# -- sinks -------------------------------------------------------------------------------


class QuarantineSink(Protocol):
    """Where quarantined records are kept for a human to read.

    Implementations: ``JSONLQuarantine``, ``SQLiteQuarantine``,
    ``MemoryQuarantine``.  ``put`` raises ``QuarantineError`` if the record
    could not be stored: a record is never dropped silently.
    """

    def put(self, record: QuarantinedRecord) -> None:
        """Store ``record``."""
        ...

    def records(
        self,
        *,
        connector: str | None = None,
        operation: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[QuarantinedRecord]:
        """The stored records matching every filter given, oldest first, at most ``limit``.

        ``since`` keeps records at or after it and must be timezone-aware.
        """
        ...

    def get(self, id: str) -> QuarantinedRecord | None:
        """The record with this id, or None."""
        ...

    def count(
        self,
        *,
        connector: str | None = None,
        operation: str | None = None,
        since: dt.datetime | None = None,
    ) -> int:
        """How many stored records match every filter given."""
        ...

    def close(self) -> None:
        """Release the storage; ``put`` afterwards is an error.  Idempotent."""
        ...


def _check_filters(since: dt.datetime | None, limit: int | None) -> None:
    if since is not None and since.utcoffset() is None:
        raise ConfigurationError(
            f"since must be timezone-aware (e.g. datetime(..., tzinfo=UTC)), got {since!r}"
        )
    if limit is not None and limit < 0:
        raise ConfigurationError(f"limit must be 0 or more, got {limit}")


def _matches(
    record: QuarantinedRecord,
    connector: str | None,
    operation: str | None,
    since: dt.datetime | None,
) -> bool:
    return (
        (connector is None or record.connector == connector)
        and (operation is None or record.operation == operation)
        and (since is None or record.at >= since)
    )


def _limited(
    records: Iterator[QuarantinedRecord], limit: int | None
) -> Iterator[QuarantinedRecord]:
    if limit is None:
        yield from records
        return
    if limit == 0:
        return
    for n, record in enumerate(records, 1):
        yield record
        if n >= limit:
            return


class _Closable:
    """What the sinks share: context-manager support, and ``get``/``count`` by scanning."""

    def records(
        self,
        *,
        connector: str | None = None,
        operation: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[QuarantinedRecord]:  # pragma: no cover - overridden
        raise NotImplementedError

    def get(self, id: str) -> QuarantinedRecord | None:
        """The record with this id, or None (a scan; SQLite overrides it with a lookup)."""
        return next((r for r in self.records() if r.id == id), None)

    def count(
        self,
        *,
        connector: str | None = None,
        operation: str | None = None,
        since: dt.datetime | None = None,
    ) -> int:
        """How many records match every filter given."""
        return sum(1 for _ in self.records(connector=connector, operation=operation, since=since))

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class MemoryQuarantine(_Closable):
    """Quarantined records in a list: for tests, and for short scripts.  Thread-safe."""

    def __init__(self) -> None:
        self._records: builtins.list[QuarantinedRecord] = []
        self._lock = threading.Lock()
        self._closed = False

    def put(self, record: QuarantinedRecord) -> None:
        """Keep ``record``."""
        with self._lock:
            if self._closed:
                raise QuarantineError("the in-memory quarantine is closed")
            self._records.append(record)

    def records(
        self,
        *,
        connector: str | None = None,
        operation: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[QuarantinedRecord]:
        """The kept records matching every filter given, oldest first (a snapshot)."""
        _check_filters(since, limit)
        with self._lock:
            snapshot = builtins.list(self._records)
        found = (r for r in snapshot if _matches(r, connector, operation, since))
        return _limited(found, limit)

    def close(self) -> None:
        """Refuse further puts; the records stay readable.  Idempotent."""
        self._closed = True

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"MemoryQuarantine({len(self._records)} records)"


class JSONLQuarantine(_Closable):
    """Quarantined records as lines of a JSON Lines file at ``path``: append-only.

    The file is created with mode 0600 (it holds production data).  Each
    ``put`` is one ``write`` of one line with ``O_APPEND``, so it reaches
    the operating system before ``put`` returns (a process crash loses
    nothing; it is not fsynced).  Several writers, threads or processes, may
    append to one file.  Reading skips a torn line (a writer stopped
    mid-line) with a ``QuarantineWarning``; any other unreadable line raises
    ``QuarantineError`` naming it.  With ``read_only=True`` the file must
    exist and is never written.  ``get`` and ``count`` scan the file: use
    ``SQLiteQuarantine`` for large quarantines.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self._path = Path(path)
        self._read_only = read_only
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._needs_newline = False
        if read_only:
            if not self._path.is_file():
                raise QuarantineError(f"{self._path}: no quarantine file here (no such file)",
                                      path=self._path)  # fmt: skip
            return
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            size = os.fstat(fd).st_size
            # A torn last line (a writer died mid-write) is ended before the
            # first new record, or that record would be glued onto it.
            self._needs_newline = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        except OSError as exc:
            raise QuarantineError(
                f"{self._path}: cannot open the quarantine file: {exc.strerror or exc}",
                path=self._path,
            ) from exc
        self._fd = fd

    @property
    def path(self) -> Path:
        """The JSON Lines file."""
        return self._path

    def put(self, record: QuarantinedRecord) -> None:
        """Append ``record`` as one line, written before this returns.  Thread-safe."""
        line = record.model_dump_json().encode("utf-8") + b"\n"
        with self._lock:
            fd = self._fd
            if fd is None:
                state = "opened read-only" if self._read_only else "closed"
                raise QuarantineError(f"{self._path}: the quarantine is {state}", path=self._path)
            if self._needs_newline:
                line = b"\n" + line
            data = memoryview(line)
            try:
                while data:
                    data = data[os.write(fd, data) :]
            except OSError as exc:
                raise QuarantineError(
                    f"{self._path}: cannot write to the quarantine file: {exc.strerror or exc}",
                    path=self._path,
                ) from exc
            self._needs_newline = False

    def records(
        self,
        *,
        connector: str | None = None,
        operation: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[QuarantinedRecord]:
        """The records matching every filter given, in file order (oldest first).

        Lazy: the file is read line by line as the iterator is consumed.
        """
        _check_filters(since, limit)
        found = (r for r in self._read() if _matches(r, connector, operation, since))
        return _limited(found, limit)

    def close(self) -> None:
        """Close the file.  Idempotent."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _read(self) -> Iterator[QuarantinedRecord]:
        try:
            file = open(self._path, "rb")  # noqa: SIM115 - closed by the generator below
        except OSError as exc:
            raise QuarantineError(
                f"{self._path}: cannot read the quarantine file: {exc.strerror or exc}",
                path=self._path,
            ) from exc
        with file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    # Without its newline: a torn line ended by a later writer's
                    # newline then reads as cut short, not as a broken string.
                    yield QuarantinedRecord.model_validate_json(line.rstrip(b"\r\n"))
                except ValidationError as exc:
                    if _is_torn(exc):
                        where = "last line" if not line.endswith(b"\n") else f"line {number}"
                        warnings.warn(
                            f"{self._path}:{number}: skipped a torn {where} ({len(line)} bytes): "
                            "a writer stopped mid-record; the records around it are whole",
                            QuarantineWarning,
                            stacklevel=2,
                        )
                        continue
                    raise QuarantineError(
                        f"{self._path}:{number}: not a quarantined record ({_first_problem(exc)})",
                        path=self._path,
                        line=number,
                    ) from None

    def __repr__(self) -> str:
        return (
            f"JSONLQuarantine({str(self._path)!r}{', read_only=True' if self._read_only else ''})"
        )


def _first_problem(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    return str(RecordError(loc=tuple(first["loc"]), msg=first["msg"], type=first["type"]))


def _is_torn(error: ValidationError) -> bool:
    """True when the line is the start of a JSON document cut short: a torn write."""
    errors = error.errors(include_url=False, include_input=False)
    return (
        len(errors) == 1
        and errors[0]["type"] == "json_invalid"
        and "EOF while parsing" in errors[0]["msg"]
    )


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS quarantined_records (
        id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        connector TEXT NOT NULL,
        operation TEXT NOT NULL,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS quarantined_records_by_connector "
    "ON quarantined_records (connector, operation, at)",
    "CREATE INDEX IF NOT EXISTS quarantined_records_by_operation "
    "ON quarantined_records (operation, at)",
    "CREATE INDEX IF NOT EXISTS quarantined_records_by_at ON quarantined_records (at)",
)


def _sortable(at: dt.datetime) -> str:
    """A fixed-width UTC timestamp: text order is time order."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SQLiteQuarantine(_Closable):
    """Quarantined records as rows of an SQLite database at ``path`` (WAL mode).

    Rows are indexed by connector, operation and time, so filtered reads,
    ``get`` and ``count`` stay fast on large quarantines; ``record`` holds
    the record's JSON (query it with SQLite's JSON functions).  Each ``put``
    is its own committed transaction.  Several writers (threads or
    processes) may share a database.  A new database file is created with
    mode 0600.  With ``read_only=True`` it must exist and is never written.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self._path = Path(path)
        self._read_only = read_only
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        if read_only:
            self._connect_read_only().close()  # fail now, with a clear message
            return
        try:
            if not self._path.exists():
                os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                connection.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise QuarantineError(
                f"{self._path}: cannot open the quarantine database: {exc}", path=self._path
            ) from exc
        self._connection = connection

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def put(self, record: QuarantinedRecord) -> None:
        """Insert ``record`` and commit.  Thread-safe."""
        row = (
            record.id,
            _sortable(record.at),
            record.connector,
            record.operation,
            record.model_dump_json(),
        )
        with self._lock:
            connection = self._connection
            if connection is None:
                state = "opened read-only" if self._read_only else "closed"
                raise QuarantineError(f"{self._path}: the quarantine is {state}", path=self._path)
            try:
                connection.execute(
                    "INSERT INTO quarantined_records (id, at, connector, operation, record) "
                    "VALUES (?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.Error as exc:
                raise QuarantineError(
                    f"{self._path}: cannot write to the quarantine database: {exc}",
                    path=self._path,
                ) from exc

    def records(
        self,
        *,
        connector: str | None = None,
        operation: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[QuarantinedRecord]:
        """The records matching every filter given, oldest first, from a snapshot taken now."""
        _check_filters(since, limit)
        where, parameters = _where(connector, operation, since)
        sql = f"SELECT record FROM quarantined_records{where} ORDER BY at, id"
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(limit)
        return self._select(sql, parameters)

    def get(self, id: str) -> QuarantinedRecord | None:
        """The record with this id, or None."""
        sql = "SELECT record FROM quarantined_records WHERE id = ?"
        return next(self._select(sql, [id]), None)

    def count(
        self,
        *,
        connector: str | None = None,
        operation: str | None = None,
        since: dt.datetime | None = None,
    ) -> int:
        """How many records match every filter given."""
        _check_filters(since, None)
        where, parameters = _where(connector, operation, since)
        connection = self._connect_read_only()
        try:
            (count,) = connection.execute(
                f"SELECT count(*) FROM quarantined_records{where}", parameters
            ).fetchone()
        except sqlite3.Error as exc:
            raise QuarantineError(
                f"{self._path}: cannot read the quarantine database: {exc}", path=self._path
            ) from exc
        finally:
            connection.close()
        return int(count)

    def close(self) -> None:
        """Close the connection.  Idempotent."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _select(self, sql: str, parameters: builtins.list[Any]) -> Iterator[QuarantinedRecord]:
        connection = self._connect_read_only()
        return _rows(connection, sql, parameters, self._path)

    def _connect_read_only(self) -> sqlite3.Connection:
        if not self._path.is_file():
            raise QuarantineError(
                f"{self._path}: no quarantine database here (no such file)", path=self._path
            )
        try:
            connection = sqlite3.connect(
                f"{self._path.resolve().as_uri()}?mode=ro",
                uri=True,
                check_same_thread=False,
                timeout=10.0,
            )
            connection.execute("SELECT 1 FROM quarantined_records LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise QuarantineError(
                f"{self._path}: cannot read the quarantine database: {exc}", path=self._path
            ) from exc
        return connection

    def __repr__(self) -> str:
        return (
            f"SQLiteQuarantine({str(self._path)!r}{', read_only=True' if self._read_only else ''})"
        )


def _where(
    connector: str | None, operation: str | None, since: dt.datetime | None
) -> tuple[str, builtins.list[Any]]:
    clauses: builtins.list[str] = []
    parameters: builtins.list[Any] = []
    if connector is not None:
        clauses.append("connector = ?")
        parameters.append(connector)
    if operation is not None:
        clauses.append("operation = ?")
        parameters.append(operation)
    if since is not None:
        clauses.append("at >= ?")
        parameters.append(_sortable(since))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), parameters


def _rows(
    connection: sqlite3.Connection, sql: str, parameters: builtins.list[Any], path: Path
) -> Iterator[QuarantinedRecord]:
    try:
        for (text,) in connection.execute(sql, parameters):
            try:
                yield QuarantinedRecord.model_validate_json(text)
            except ValidationError as exc:
                raise QuarantineError(
                    f"{path}: a row is not a quarantined record ({_first_problem(exc)})", path=path
                ) from None
    except sqlite3.Error as exc:
        raise QuarantineError(
            f"{path}: cannot read the quarantine database: {exc}", path=path
        ) from exc
    finally:
        connection.close()


def open_quarantine(
    path: str | os.PathLike[str], *, read_only: bool = False
) -> JSONLQuarantine | SQLiteQuarantine:
    """A quarantine at ``path``: SQLite for a ``.db``, ``.sqlite`` or ``.sqlite3`` name (or an
    existing SQLite file), JSON Lines otherwise.

    Raises ``QuarantineError`` if it cannot be opened.
    """
    path = Path(path)
    if path.suffix.lower() in _SQLITE_SUFFIXES or _is_sqlite_file(path):
        return SQLiteQuarantine(path, read_only=read_only)
    return JSONLQuarantine(path, read_only=read_only)


def _is_sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False
