"""``SQLiteSink``: an audit log in an SQLite database (WAL mode).

Records are rows of ``audit_records(position INTEGER PRIMARY KEY, record TEXT)``,
``record`` being the same canonical JSON a JSONL file holds, so SQLite's JSON
functions can query it (``json_extract(record, '$.action')``).  Each batch is
one transaction.  One writer per database: rows go to explicit positions, so
a second writer collides with the first on its next append and fails.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._errors import AuditError, AuditIntegrityError, ConfigurationError
from ._sink import FSYNC_MODES, FsyncMode

__all__ = ["SQLiteSink"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    position INTEGER PRIMARY KEY,
    record TEXT NOT NULL
)"""

_INSERT = "INSERT INTO audit_records (position, record) VALUES (?, ?)"

# always and batch commit with synchronous=FULL: each transaction (a record,
# or a batch) is on disk when COMMIT returns.  never uses NORMAL: in WAL mode
# commits are not fsynced, but a power loss cannot corrupt the database (OFF
# could), it only loses the latest commits.
_SYNCHRONOUS: dict[FsyncMode, str] = {"always": "FULL", "batch": "FULL", "never": "NORMAL"}


class SQLiteSink:
    """Stores records as rows of an SQLite database at ``path``, in WAL mode.

    ``fsync`` sets ``PRAGMA synchronous`` (see ``AuditLog``); pass the same
    mode to the ``AuditLog``, or use ``AuditLog.sqlite``.  With
    ``read_only=True`` the database must exist and is never written.
    """

    __slots__ = ("_connection", "_fsync", "_next", "_path", "_read_only")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "batch",
        read_only: bool = False,
    ) -> None:
        if fsync not in FSYNC_MODES:
            raise ConfigurationError(
                f"fsync must be one of {', '.join(FSYNC_MODES)}, got {fsync!r}"
            )
        self._path = Path(path)
        self._fsync = fsync
        self._read_only = read_only
        self._connection: sqlite3.Connection | None = None
        self._next = 1
        if read_only:
            # Fail now, with a clear message, rather than on the first read.
            self._connect_read_only().close()
            return
        _create_private(self._path)
        try:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={_SYNCHRONOUS[fsync]}")
            connection.execute(_SCHEMA)
            (last,) = connection.execute("SELECT max(position) FROM audit_records").fetchone()
        except sqlite3.Error as exc:
            raise AuditError(f"{self._path}: cannot open the audit database: {exc}") from exc
        self._connection = connection
        self._next = (last or 0) + 1

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def append(self, lines: Sequence[bytes]) -> None:
        """Insert ``lines`` in one transaction; ``AuditError`` if another writer got there first."""
        connection = self._connection
        if connection is None:
            state = "opened read-only" if self._read_only else "closed"
            raise AuditError(f"{self._path}: the audit database is {state}")
        first = self._next
        rows = [(first + i, line[:-1].decode("utf-8")) for i, line in enumerate(lines)]
        try:
            if len(rows) == 1:  # autocommit: one statement is its own transaction
                connection.execute(_INSERT, rows[0])
            else:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.executemany(_INSERT, rows)
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            raise AuditError(
                f"{self._path}: another writer appended to the audit database; a log has one "
                "writer, or its chain would fork"
            ) from exc
        except sqlite3.Error as exc:
            raise AuditError(f"{self._path}: cannot write to the audit database: {exc}") from exc
        self._next = first + len(rows)

    def sync(self) -> None:
        """Make every committed record durable.

        With ``synchronous=FULL`` each commit already was; with ``NORMAL``
        (``fsync="never"``) this checkpoints the WAL, which fsyncs it.
        """
        if self._connection is None or _SYNCHRONOUS[self._fsync] == "FULL":
            return
        try:
            self._connection.execute("PRAGMA wal_checkpoint(FULL)")
        except sqlite3.Error as exc:
            raise AuditError(f"{self._path}: cannot sync the audit database: {exc}") from exc

    def read(self) -> Iterator[bytes]:
        """Every record, oldest first, from a read-only snapshot taken now."""
        connection = self._connect_read_only()
        return _rows(connection, self._path)

    def close(self) -> None:
        """Close the connection.  Idempotent."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _connect_read_only(self) -> sqlite3.Connection:
        if not self._path.is_file():
            raise AuditError(f"{self._path}: no audit database here (no such file)")
        try:
            connection = sqlite3.connect(
                f"{self._path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise AuditError(f"{self._path}: cannot read the audit database: {exc}") from exc
        try:
            connection.execute("SELECT 1 FROM audit_records LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            connection.close()
            if "no such table" in str(exc):
                raise AuditIntegrityError(
                    f"{self._path}: cannot read the audit database: it has no audit_records "
                    "table (not a handrail audit log, or its table was dropped)",
                    path=self._path,
                    kind="corrupt",
                ) from exc
            raise AuditError(f"{self._path}: cannot read the audit database: {exc}") from exc
        return connection

    def __repr__(self) -> str:
        extra = ", read_only=True" if self._read_only else ""
        return f"SQLiteSink({str(self._path)!r}, fsync={self._fsync!r}{extra})"


def _create_private(path: Path) -> None:
    """Create the database file with mode 0600 if missing, before SQLite opens it.

    SQLite would create it with 0644 (less the umask); it gives the ``-wal`` and
    ``-shm`` files the main file's mode, so all three are private, as a JSONL
    log is.  An existing file keeps the mode its owner gave it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise AuditError(f"{path}: cannot create the audit database: {exc.strerror}") from exc
    os.close(fd)


def _rows(connection: sqlite3.Connection, path: Path) -> Iterator[bytes]:
    try:
        cursor = connection.execute("SELECT record FROM audit_records ORDER BY position")
        for (record,) in cursor:
            if isinstance(record, bytes):  # stored as a BLOB by someone else
                yield record + b"\n"
            else:
                yield str(record).encode("utf-8", "surrogatepass") + b"\n"
    except sqlite3.Error as exc:
        raise AuditError(f"{path}: cannot read the audit database: {exc}") from exc
    finally:
        connection.close()
