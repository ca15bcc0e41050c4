"""Messy production data: validate records lazily, set the invalid ones aside.

A read's output is validated record by record against the operation's output
model.  ``strict`` fails the read at the first invalid record
(``InvalidRecord``); ``quarantine`` puts each invalid one, with its redacted
raw payload, the validation errors and where it came from, into a
``QuarantineSink`` (JSON Lines, SQLite or memory), counts it in the
``handrail.connector.quarantined`` metric, and lets the valid ones flow on.

Unknown extra fields are kept: a model whose ``extra`` is unset or
``"ignore"`` is validated through ``keep_extra(model)``, a cached subclass
with ``extra="allow"``; ``"allow"`` models are used as they are; ``"forbid"``
is the author's explicit choice and is respected (a record with unknown
fields is invalid).  See ``docs/quarantine.md``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import os
import sqlite3
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, Self, TypeVar, cast, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    ValidationError,
    field_validator,
)
from pydantic_core import to_jsonable_python
from pydantic_core.core_schema import ErrorType

from .._errors import ConfigurationError, HandrailError
from .._ids import new_id
from .._version import __version__
from ..clock import Clock, SystemClock
from ..guard import current_call
from ..redaction import Redactor

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, MeterProvider

    from ..telemetry import Telemetry

__all__ = [
    "InvalidRecord",
    "JSONLQuarantine",
    "MemoryQuarantine",
    "QuarantineError",
    "QuarantineSink",
    "QuarantineWarning",
    "QuarantinedRecord",
    "RecordError",
    "SQLiteQuarantine",
    "ValidatedRecords",
    "Validation",
    "keep_extra",
    "open_quarantine",
    "validate_one",
    "validate_records",
]

T = TypeVar("T", bound=BaseModel)

Validation = Literal["strict", "quarantine"]
"""What a read does with a record its output model rejects.

* ``strict``: the read fails with ``InvalidRecord`` at the first invalid record.
* ``quarantine``: the record goes to a ``QuarantineSink`` and the read goes on.
"""

_VALIDATIONS: tuple[Validation, ...] = get_args(Validation)

# pydantic's own error types have messages built from the schema, never from
# the input; a validator's ``value_error`` or ``assertion_error`` (or a custom
# type) may quote the value, so only its type goes into an exception message.
_SCHEMA_MESSAGES = frozenset(get_args(ErrorType)) - {"value_error", "assertion_error"}

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


class RecordError(BaseModel):
    """One validation error of a record: where (``loc``), what (``msg``) and its ``type``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    loc: tuple[str | int, ...]
    msg: str
    type: str

    @property
    def where(self) -> str:
        """``loc`` as a dotted path (``address.zip``, ``tags[2]``); ``<record>`` for the whole."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "<record>"

    def __str__(self) -> str:
        return f"{self.where}: {self.msg}"


class InvalidRecord(HandrailError, ValueError):
    """A read in ``strict`` mode met a record its output model rejects; the read stopped.

    ``.connector``, ``.operation``, ``.index`` (0-based position in the read) and
    ``.errors`` (``RecordError``s) say which and why.  The message names the
    failing fields, never their values.
    """

    def __init__(
        self,
        *,
        connector: str,
        operation: str,
        index: int,
        model: str,
        errors: tuple[RecordError, ...],
    ) -> None:
        self.connector = connector
        self.operation = operation
        self.index = index
        self.model = model
        self.errors = errors
        fields = "; ".join(
            f"{e.where}: {e.msg}" if e.type in _SCHEMA_MESSAGES else f"{e.where}: {e.type}"
            for e in errors
        )
        short = model.rpartition(".")[2]
        super().__init__(
            f"{operation}: record {index} is not a valid {short}: {fields} "
            "(use validation='quarantine' to set invalid records aside and read on)"
        )


# -- the record -----------------------------------------------------------------------


class QuarantinedRecord(BaseModel):
    """A record a read could not validate, set aside for a human.

    ``raw`` is the payload as received, with values under sensitive keys
    masked; ``source`` says where it came from (URL credentials and query
    strings masked); ``index`` is its 0-based position in the read;
    ``errors`` are pydantic's, without the input; ``model`` is the output
    model's qualified name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    at: AwareDatetime
    connector: str
    operation: str
    source: str | None = None
    index: int | None = None
    raw: JsonValue
    errors: tuple[RecordError, ...] = Field(min_length=1)
    model: str

    @field_validator("at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)

    @classmethod
    def from_error(
        cls,
        raw: Any,
        error: ValidationError,
        *,
        connector: str,
        operation: str,
        model: type[BaseModel] | str,
        source: str | None = None,
        index: int | None = None,
        at: dt.datetime | None = None,
        redactor: Redactor | None = None,
    ) -> QuarantinedRecord:
        """The record for ``raw``, which failed validation with ``error``; secrets masked.

        Values under sensitive keys are masked in ``raw``; those secrets, URL
        credentials and query strings are scrubbed from ``source`` and from the
        error messages.
        """
        redactor = redactor or Redactor()
        at = at or dt.datetime.now(dt.UTC)
        secrets = redactor.secrets_in(raw)
        errors = tuple(
            RecordError(
                loc=tuple(e["loc"]),
                msg=redactor.scrub(e["msg"], secrets),
                type=e["type"],
            )
            for e in error.errors(include_url=False, include_input=False, include_context=False)
        )
        if not errors:  # pragma: no cover - pydantic never raises an empty ValidationError
            errors = (RecordError(loc=(), msg=str(error), type="invalid"),)
        return cls(
            id=new_id(int(at.timestamp() * 1000)),
            at=at,
            connector=connector,
            operation=operation,
            source=None if source is None else _shown_source(source, secrets, redactor),
            index=index,
            raw=_jsonable(redactor.scrub_strings(redactor.redact(raw), secrets)),
            errors=errors,
            model=model if isinstance(model, str) else _qualified_name(model),
        )


def _shown_source(source: str, secrets: Iterable[str], redactor: Redactor) -> str:
    """``source`` without the record's secrets, URL credentials or secret-looking parameters.

    Page parameters (``page=2``, ``cursor=...``) stay: they say where to look.
    ``Redactor.mask_urls`` finds the URLs in linear time (a regular expression
    retrying a scheme from every letter of a long run was quadratic).
    """
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            source = source.replace(secret, redactor.mask)
    return redactor.mask_urls(source)


def _jsonable(value: Any) -> JsonValue:
    try:
        return cast(JsonValue, to_jsonable_python(value, fallback=repr))
    except ValueError:  # e.g. bytes that are not UTF-8
        return repr(value)


def _qualified_name(model: type[BaseModel]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


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


# -- keeping extra fields ---------------------------------------------------------------

_KEEP_EXTRA: dict[type[BaseModel], type[BaseModel]] = {}
_KEEP_EXTRA_LOCK = threading.Lock()


def keep_extra(model: type[T]) -> type[T]:
    """``model``, or a subclass of it that keeps unknown fields (``extra="allow"``).

    A model whose ``extra`` is unset or ``"ignore"`` would drop fields the
    upstream system added; the subclass keeps them (``instance.model_extra``,
    and in ``model_dump()``).  It is made once per model, has the same name,
    is an ``isinstance`` of ``model``, compares equal to a ``model`` instance
    with the same fields and no extras, and pickles.  Only ``type(x) is
    model`` tells them apart.  ``"allow"`` models, ``"forbid"`` models (the
    author's explicit choice: unknown fields are an error) and ``RootModel``s
    are returned unchanged.  Only the top level is changed: nested models
    follow their own ``extra``.
    """
    if model.model_config.get("extra") in ("allow", "forbid") or issubclass(model, RootModel):
        return model
    cached = _KEEP_EXTRA.get(model)
    if cached is None:
        with _KEEP_EXTRA_LOCK:
            cached = _KEEP_EXTRA.get(model)
            if cached is None:
                cached = _KEEP_EXTRA[model] = _extra_keeping(model)
    return cast(type[T], cached)


def _extra_keeping(model: type[BaseModel]) -> type[BaseModel]:
    fields = tuple(model.model_fields)
    parent_eq = model.__eq__

    def __eq__(self: BaseModel, other: object) -> bool:
        # pydantic compares exact types; this subclass stands in for ``model``.
        # Python asks the subclass first, so ``model(...) == kept`` lands here too.
        if type(other) is not model and type(other) is not kept:
            return parent_eq(self, other)
        assert isinstance(other, BaseModel)
        mine, theirs = self.__dict__, other.__dict__
        return (
            all(mine.get(name, _MISSING) == theirs.get(name, _MISSING) for name in fields)
            and (self.__pydantic_extra__ or {}) == (other.__pydantic_extra__ or {})
            and self.__pydantic_private__ == other.__pydantic_private__
        )

    def __reduce__(self: BaseModel) -> tuple[Any, ...]:
        # By name, pickle would find ``model``, not this subclass.
        return (_restore_kept, (model, self.__getstate__()))

    namespace = {
        "__module__": model.__module__,
        "__qualname__": model.__qualname__,
        "__doc__": model.__doc__,
        "model_config": ConfigDict(extra="allow"),
        "__eq__": __eq__,
        "__hash__": model.__hash__,  # defining __eq__ would otherwise unset it
        "__reduce__": __reduce__,
    }
    metaclass: Any = type(model)  # pydantic's ModelMetaclass builds the subclass
    kept: type[BaseModel] = metaclass(model.__name__, (model,), namespace)
    return kept


_MISSING = object()


def _restore_kept(model: type[BaseModel], state: Any) -> BaseModel:
    """Unpickle an instance of ``keep_extra(model)``."""
    kept = keep_extra(model)
    instance = kept.__new__(kept)
    instance.__setstate__(state)
    return instance


# -- the metric --------------------------------------------------------------------------

_COUNTERS: weakref.WeakKeyDictionary[MeterProvider, Counter] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def _quarantined_counter(telemetry: Telemetry | None) -> Counter | None:
    """The ``handrail.connector.quarantined`` counter, or None when no SDK listens."""
    from ..telemetry import default_telemetry

    instruments = (telemetry or default_telemetry())._metrics()
    if instruments is None:
        return None
    provider = instruments.provider
    counter = _COUNTERS.get(provider)
    if counter is None:
        with _COUNTERS_LOCK:
            counter = _COUNTERS.get(provider)
            if counter is None:
                counter = provider.get_meter("handrail", __version__).create_counter(
                    "handrail.connector.quarantined",
                    unit="{record}",
                    description="Records a connector read set aside as invalid",
                )
                _COUNTERS[provider] = counter
    return counter


# -- validation ---------------------------------------------------------------------------


class ValidatedRecords(Iterator[T], Generic[T]):
    """The valid records of a read, validated lazily as it is iterated.

    ``valid`` and ``quarantined`` count what has been seen so far: read them
    during or after iteration.  Holds one record at a time, so memory stays
    constant however long the read.  Not thread-safe (it is an iterator).
    """

    __slots__ = (
        "_clock",
        "_connector",
        "_index",
        "_model",
        "_on_quarantine",
        "_operation",
        "_records",
        "_redactor",
        "_sink",
        "_source",
        "_telemetry",
        "_validate",
        "_validation",
        "quarantined",
        "valid",
    )

    def __init__(
        self,
        records: Iterable[Any],
        model: type[T],
        *,
        validation: Validation,
        sink: QuarantineSink | None,
        connector: str,
        operation: str,
        source: str | Callable[[int], str] | None,
        on_quarantine: Callable[[QuarantinedRecord], None] | None,
        clock: Clock,
        redactor: Redactor,
        telemetry: Telemetry | None,
    ) -> None:
        self._records = iter(records)
        self._model = model
        self._validate = keep_extra(model).model_validate
        self._validation = validation
        self._sink = sink
        self._connector = connector
        self._operation = operation
        self._source = source
        self._on_quarantine = on_quarantine
        self._clock = clock
        self._redactor = redactor
        self._telemetry = telemetry
        self._index = 0
        self.valid = 0
        self.quarantined = 0

    @property
    def seen(self) -> int:
        """How many input records have been read so far (``valid + quarantined``)."""
        return self._index

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        for item in self._records:
            index = self._index
            self._index = index + 1
            if isinstance(item, self._model):  # built by the connector: already valid
                self.valid += 1
                return item
            try:
                value = self._validate(item)
            except ValidationError as exc:
                self._reject(item, index, exc)
                continue
            self.valid += 1
            return value
        raise StopIteration

    def _reject(self, item: Any, index: int, error: ValidationError) -> None:
        if self._validation == "strict":
            errors = tuple(
                RecordError(loc=tuple(e["loc"]), msg=e["msg"], type=e["type"])
                for e in error.errors(include_url=False, include_input=False, include_context=False)
            )
            raise InvalidRecord(
                connector=self._connector,
                operation=self._operation,
                index=index,
                model=_qualified_name(self._model),
                errors=errors,
            ) from None  # the ValidationError would repeat the values
        source = self._source(index) if callable(self._source) else self._source
        record = QuarantinedRecord.from_error(
            item,
            error,
            connector=self._connector,
            operation=self._operation,
            model=self._model,
            source=source,
            index=index,
            at=self._clock.now(),
            redactor=self._redactor,
        )
        assert self._sink is not None  # checked when the reader was made
        self._sink.put(record)
        self.quarantined += 1
        progress = current_call()
        if progress is not None:  # a guarded read: its audit record counts what was set aside
            progress.count(quarantined=1)
        counter = _quarantined_counter(self._telemetry)
        if counter is not None:
            counter.add(
                1, {"handrail.connector": self._connector, "handrail.operation": self._operation}
            )
        if self._on_quarantine is not None:
            self._on_quarantine(record)

    def close(self) -> None:
        """Close the input if it is a generator (e.g. stop fetching pages)."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return (
            f"<ValidatedRecords {self._operation} {_qualified_name(self._model)}: "
            f"{self.valid} valid, {self.quarantined} quarantined>"
        )


_SYSTEM_CLOCK = SystemClock()
_REDACTOR = Redactor()  # immutable: shared by every reader without one of its own


def validate_records(
    records: Iterable[Any],
    model: type[T],
    *,
    validation: Validation,
    sink: QuarantineSink | None,
    connector: str,
    operation: str,
    source: str | Callable[[int], str] | None = None,
    on_quarantine: Callable[[QuarantinedRecord], None] | None = None,
    clock: Clock | None = None,
    redactor: Redactor | None = None,
    telemetry: Telemetry | None = None,
) -> ValidatedRecords[T]:
    """Validate ``records`` against ``model`` lazily: an iterator of the valid ones, in order.

    Each record is a payload (a dict, usually) or an instance of ``model``,
    which passes as it is.

    ``strict``: the first invalid record raises ``InvalidRecord``.
    ``quarantine``: each invalid record is put in ``sink`` (redacted),
    counted in ``handrail.connector.quarantined`` and passed to
    ``on_quarantine``; iteration goes on.  ``source`` (a string, or a
    function of the record's 0-based index) says where records came from.
    Unknown fields are kept (see ``keep_extra``).  Raises
    ``ConfigurationError`` now, before reading anything, if ``validation`` is
    unknown or ``quarantine`` has no sink; ``QuarantineError`` while
    iterating if the sink cannot store a record.
    """
    _check_setup(model, validation, sink)
    return ValidatedRecords(
        records,
        model,
        validation=validation,
        sink=sink,
        connector=connector,
        operation=operation,
        source=source,
        on_quarantine=on_quarantine,
        clock=clock or _SYSTEM_CLOCK,
        redactor=redactor or _REDACTOR,
        telemetry=telemetry,
    )


def validate_one(
    data: Any,
    model: type[T],
    *,
    validation: Validation = "strict",
    sink: QuarantineSink | None = None,
    connector: str,
    operation: str,
    source: str | None = None,
    on_quarantine: Callable[[QuarantinedRecord], None] | None = None,
    clock: Clock | None = None,
    redactor: Redactor | None = None,
    telemetry: Telemetry | None = None,
) -> T | None:
    """Validate one record (a single-record read): the model instance, or None if quarantined.

    ``strict`` (the default) raises ``InvalidRecord`` for an invalid record;
    ``quarantine`` puts it in ``sink`` and returns None.
    """
    # The common case first: a valid record costs one validation, nothing else.
    if isinstance(data, model):
        return data
    _check_setup(model, validation, sink)
    try:
        return keep_extra(model).model_validate(data)
    except ValidationError:
        pass  # the reader below rejects it: raises (strict) or quarantines it
    reader = validate_records(
        (data,),
        model,
        validation=validation,
        sink=sink,
        connector=connector,
        operation=operation,
        source=source,
        on_quarantine=on_quarantine,
        clock=clock,
        redactor=redactor,
        telemetry=telemetry,
    )
    return next(reader, None)


def _check_setup(model: type[BaseModel], validation: str, sink: QuarantineSink | None) -> None:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigurationError(f"model must be a pydantic BaseModel subclass, got {model!r}")
    if validation not in _VALIDATIONS:
        raise ConfigurationError(
            f"validation must be one of {', '.join(_VALIDATIONS)}, got {validation!r}"
        )
    if validation == "quarantine" and sink is None:
        raise ConfigurationError(
            "validation='quarantine' needs a sink for the invalid records: pass "
            "sink=open_quarantine('quarantine.jsonl') (or a SQLiteQuarantine, MemoryQuarantine)"
        )
