"""``SQLiteStore``: escalations and their outbox in one SQLite file, the embedded default.

Each escalation is a row whose ``body`` is its JSON document; ``state``,
``route``, ``opened_at``, ``next_due``, ``version`` and ``external_id`` are
copies kept as columns so lookups go through indexes (a unique one for
``external_id``).  Times are integer microseconds since
the epoch (UTC): they sort as numbers and compare exactly.  ``next_due`` is
NULL for final escalations, so the partial index on it holds only the ones a
timer can still fire for, and a tick costs what is due, not what is open.

Writes run in ``BEGIN IMMEDIATE`` transactions, which take SQLite's single
write lock up front: several processes may share one file, and an
escalation is never changed by two of them at once.  The file is in WAL mode
with ``synchronous=FULL``, so a change is on disk when the call returns and
survives ``kill -9`` and power loss.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pydantic_core
from pydantic import ValidationError

from .._errors import ConfigurationError, EscalationError, HandrailError, UnknownEscalation
from ._memory import _check_version
from ._model import Delivery, Escalation, EscalationState
from ._store import Change

__all__ = ["SQLiteStore"]

_COMPONENT = "escalations"

# Each step moves the schema up one version; a step, once released, never
# changes (add a new one instead).  Run in one transaction with the version bump.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE escalations (
            id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            route TEXT NOT NULL,
            opened_at INTEGER NOT NULL,
            next_due INTEGER,
            version INTEGER NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX escalations_next_due ON escalations (next_due) WHERE next_due IS NOT NULL",
        "CREATE INDEX escalations_opened ON escalations (opened_at, id)",
        "CREATE INDEX escalations_state ON escalations (state, opened_at, id)",
        # seq is the rowid: the order deliveries were written in, stable under VACUUM.
        """CREATE TABLE deliveries (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            escalation_id TEXT NOT NULL,
            target TEXT NOT NULL,
            payload TEXT NOT NULL,
            not_before INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            lease_until INTEGER,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'done', 'given_up'))
        )""",
        "CREATE INDEX deliveries_pending ON deliveries (seq) WHERE status = 'pending'",
        "CREATE INDEX deliveries_escalation ON deliveries (escalation_id, seq)",
    ),
    # 2: external ids (a framework's tool-call id), one case each.  Cases stored
    # before keep NULL: they were opened without one.
    (
        "ALTER TABLE escalations ADD COLUMN external_id TEXT",
        "CREATE UNIQUE INDEX escalations_external_id ON escalations (external_id) "
        "WHERE external_id IS NOT NULL",
    ),
)

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this release of handrail reads and writes."""

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS handrail_schema (
    component TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""

_COLUMNS = "id, state, route, opened_at, next_due, version, body, external_id"
_INSERT = f"INSERT INTO escalations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_UPDATE = (
    "UPDATE escalations SET id = ?, state = ?, route = ?, opened_at = ?, next_due = ?, "
    "version = ?, body = ?, external_id = ? WHERE id = ? AND version = ?"
)
_TAKEN = "SELECT id, body FROM escalations WHERE id = ? OR external_id = ?"
# Written again with the same id (a router that re-sends), a delivery is replaced
# and pending again, as in MemoryStore; it keeps its place in the order.
_UPSERT_DELIVERY = """
INSERT INTO deliveries (id, escalation_id, target, payload, not_before, attempts, last_error)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    escalation_id = excluded.escalation_id, target = excluded.target,
    payload = excluded.payload, not_before = excluded.not_before,
    attempts = excluded.attempts, last_error = excluded.last_error,
    lease_until = NULL, status = 'pending'
"""
_DELIVERY_COLUMNS = "id, escalation_id, target, payload, not_before, attempts, last_error"
_DUE = (
    "SELECT id, body FROM escalations WHERE next_due IS NOT NULL AND next_due <= ? "
    "ORDER BY next_due LIMIT ?"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class SQLiteStore:
    """An ``EscalationStore`` in the SQLite file at ``path``; see the module docstring.

    Creates the file and its tables, or migrates older ones, when opened
    (``create=False``: the file must already be current, as after ``handrail
    db upgrade PATH``).  ``busy_timeout`` is how long a call waits for another
    process's write transaction before failing.  Thread-safe: one connection,
    one call at a time.  Use as a context manager, or call ``close()``.

    Raises ``ConfigurationError`` when the file cannot be opened or its schema
    is missing, too old (``create=False``) or newer than this handrail;
    ``EscalationError`` naming the file and the id when a stored escalation
    cannot be read back; ``HandrailError`` for any other database failure.
    """

    __slots__ = ("_connection", "_lock", "_path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: timedelta = timedelta(seconds=5),
        create: bool = True,
    ) -> None:
        self._path = Path(path)
        # Re-entrant, so a change function may read this store while it runs.
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None
        self._connection, _ = _connect(self._path, busy_timeout, create=create)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # -- escalations ----------------------------------------------------------------

    def create(self, escalation: Escalation, deliveries: Sequence[Delivery] = ()) -> Escalation:
        """Insert a new escalation and its deliveries in one transaction; return what is stored.

        Under an external id another escalation has, nothing is written and
        that one is returned: the write lock makes the look and the insert
        one step, and the unique index stands behind it.  Raises
        ``ConfigurationError`` if the id is already taken (nothing written).
        """
        row = _row(escalation)
        try:
            with self._write() as connection:
                taken = connection.execute(_TAKEN, (escalation.id, escalation.external_id))
                found = taken.fetchall()
                if any(escalation_id == escalation.id for escalation_id, _ in found):
                    raise ConfigurationError(f"escalation {escalation.id} already exists")
                if found:
                    (escalation_id, body), *_ = found
                    return self._decode(escalation_id, body)
                connection.execute(_INSERT, row)
                _put_deliveries(connection, deliveries)
        except sqlite3.Error as exc:
            raise self._failed(f"create escalation {escalation.id}", exc) from exc
        return escalation

    def get(self, escalation_id: str) -> Escalation | None:
        """The escalation with this id, or ``None``."""
        try:
            with self._read() as connection:
                found = connection.execute(
                    "SELECT body FROM escalations WHERE id = ?", (escalation_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise self._failed(f"read escalation {escalation_id}", exc) from exc
        return None if found is None else self._decode(escalation_id, found[0])

    def find(self, external_id: str) -> Escalation | None:
        """The escalation opened under this external id, or ``None``."""
        try:
            with self._read() as connection:
                found = connection.execute(
                    "SELECT id, body FROM escalations WHERE external_id = ?", (external_id,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise self._failed("find an escalation by external id", exc) from exc
        return None if found is None else self._decode(found[0], found[1])

    def list(
        self,
        *,
        state: EscalationState | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> list[Escalation]:
        """Escalations, oldest first (by ``opened_at``, then id), optionally filtered."""
        where: list[str] = []
        params: list[Any] = []
        if state is not None:
            where.append("state = ?")
            params.append(EscalationState(state).value)
        if route is not None:
            where.append("route = ?")
            params.append(route)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        params.append(-1 if limit is None else max(limit, 0))
        query = f"SELECT id, body FROM escalations {clause}ORDER BY opened_at, id LIMIT ?"
        try:
            with self._read() as connection:
                rows = connection.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise self._failed("list escalations", exc) from exc
        return [self._decode(escalation_id, body) for escalation_id, body in rows]

    def update(self, escalation_id: str, change: Callable[[Escalation], Change]) -> Escalation:
        """Apply ``change`` under the database's write lock and write the result atomically.

        Raises ``UnknownEscalation`` if there is none with this id; whatever
        ``change`` raises propagates and nothing is written.
        """
        try:
            with self._write() as connection:
                found = connection.execute(
                    "SELECT body FROM escalations WHERE id = ?", (escalation_id,)
                ).fetchone()
                if found is None:
                    raise UnknownEscalation(escalation_id, str(self._path))
                current = self._decode(escalation_id, found[0])
                new, deliveries = change(current)
                self._replace(connection, current, new, deliveries)
        except sqlite3.Error as exc:
            raise self._failed(f"update escalation {escalation_id}", exc) from exc
        return new

    def process_due(
        self,
        now: datetime,
        change: Callable[[Escalation], Change | None],
        *,
        limit: int = 500,
    ) -> int:
        """Apply ``change`` to up to ``limit`` non-final escalations whose ``next_due <= now``.

        One write transaction for the batch: no other process changes these
        escalations meanwhile, and none of them is handed out twice.  If
        ``change`` raises, the changes made before it are kept, that one is
        not written, and the error propagates.
        """
        due = _micros(now, "now")
        handled = 0
        failure: Exception | None = None
        try:
            with self._write() as connection:
                rows = connection.execute(_DUE, (due, max(limit, 0))).fetchall()
                for escalation_id, body in rows:
                    handled += 1
                    try:
                        current = self._decode(escalation_id, body)
                        result = change(current)
                        if result is not None:
                            _check_version(current, result[0])
                    except Exception as exc:
                        failure = exc  # keep the work done so far: commit, then raise
                        break
                    if result is not None:  # a database error here rolls the batch back
                        self._replace(connection, current, *result)
        except sqlite3.Error as exc:
            raise self._failed("process due escalations", exc) from exc
        if failure is not None:
            raise failure
        return handled

    # -- the outbox --------------------------------------------------------------------

    def claim_deliveries(
        self, now: datetime, *, limit: int = 100, lease: timedelta = timedelta(seconds=60)
    ) -> builtins.list[Delivery]:
        """Lease up to ``limit`` pending deliveries whose ``not_before <= now`` to this caller.

        Each returned delivery has ``attempts`` already counted (+1) and is
        invisible to other callers until ``now + lease``.
        """
        at = _micros(now, "now")
        until = _micros(now + lease, "now")
        try:
            with self._write() as connection:
                rows = connection.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM deliveries "
                    "WHERE status = 'pending' AND not_before <= ? "
                    "AND (lease_until IS NULL OR lease_until <= ?) ORDER BY seq LIMIT ?",
                    (at, at, max(limit, 0)),
                ).fetchall()
                connection.executemany(
                    "UPDATE deliveries SET attempts = attempts + 1, lease_until = ? WHERE id = ?",
                    [(until, row[0]) for row in rows],
                )
        except sqlite3.Error as exc:
            raise self._failed("claim deliveries", exc) from exc
        return [self._delivery(row, claimed=True) for row in rows]

    def complete_delivery(self, delivery_id: str) -> None:
        """Mark a delivery done: it is never handed out again."""
        self._change_delivery(
            "UPDATE deliveries SET status = 'done', lease_until = NULL WHERE id = ?",
            (delivery_id,),
            f"complete delivery {delivery_id}",
        )

    def fail_delivery(self, delivery_id: str, *, error: str, retry_at: datetime | None) -> None:
        """Record a failed try: pending again from ``retry_at``, or given up when ``None``."""
        if retry_at is None:
            query = (
                "UPDATE deliveries SET status = 'given_up', last_error = ?, lease_until = NULL "
                "WHERE id = ? AND status = 'pending'"
            )
            params: tuple[Any, ...] = (error, delivery_id)
        else:
            query = (
                "UPDATE deliveries SET last_error = ?, not_before = ?, lease_until = NULL "
                "WHERE id = ? AND status = 'pending'"
            )
            params = (error, _micros(retry_at, "retry_at"), delivery_id)
        self._change_delivery(query, params, f"fail delivery {delivery_id}")

    def pending_deliveries(self, escalation_id: str | None = None) -> builtins.list[Delivery]:
        """Deliveries not yet done nor given up (all, or one escalation's), oldest first."""
        query = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE status = 'pending'"
        params: tuple[str, ...] = ()
        if escalation_id is not None:
            query += " AND escalation_id = ?"
            params = (escalation_id,)
        try:
            with self._read() as connection:
                rows = connection.execute(query + " ORDER BY seq", params).fetchall()
        except sqlite3.Error as exc:
            raise self._failed("read pending deliveries", exc) from exc
        return [self._delivery(row) for row in rows]

    def is_admin(self) -> bool:
        """``False``: an SQLite file has no roles; whoever may write it may write anything.

        So nobody may decide in another's name through it (``--as``); guard
        the file with its permissions.
        """
        return False

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection.  Idempotent."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"

    # -- helpers -----------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._open()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error."""
        with self._lock:
            connection = self._open()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:  # also when COMMIT itself failed
                    connection.execute("ROLLBACK")
                raise

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ConfigurationError(f"{self._path}: the escalation store is closed")
        return self._connection

    def _replace(
        self,
        connection: sqlite3.Connection,
        current: Escalation,
        new: Escalation,
        deliveries: Sequence[Delivery],
    ) -> None:
        _check_version(current, new)
        cursor = connection.execute(_UPDATE, (*_row(new), current.id, current.version))
        if cursor.rowcount != 1:  # cannot happen under the write lock; never write blind
            raise EscalationError(
                current.id, f"{self._path}: changed by someone else while it was locked"
            )
        _put_deliveries(connection, deliveries)

    def _change_delivery(self, query: str, params: tuple[Any, ...], doing: str) -> None:
        try:
            with self._write() as connection:
                connection.execute(query, params)
        except sqlite3.Error as exc:
            raise self._failed(doing, exc) from exc

    def _decode(self, escalation_id: str, body: str | bytes) -> Escalation:
        try:
            return Escalation.model_validate_json(body)
        except ValidationError as exc:
            raise EscalationError(
                escalation_id,
                f"{self._path}: the stored escalation is corrupt and cannot be read "
                f"({_first_problem(exc)})",
            ) from exc

    def _delivery(self, row: tuple[Any, ...], *, claimed: bool = False) -> Delivery:
        delivery_id, escalation_id, target, payload, not_before, attempts, last_error = row
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise EscalationError(
                escalation_id,
                f"{self._path}: delivery {delivery_id}: the stored payload is not valid JSON "
                f"({exc})",
            ) from exc
        return Delivery(
            id=delivery_id,
            escalation_id=escalation_id,
            target=target,
            payload=data,
            not_before=_datetime(not_before),
            attempts=attempts + 1 if claimed else attempts,
            last_error=last_error,
        )

    def _failed(self, doing: str, exc: sqlite3.Error) -> HandrailError:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return HandrailError(
                f"{self._path}: cannot {doing}: the database is locked (another process "
                "held its write lock longer than busy_timeout)"
            )
        return HandrailError(f"{self._path}: cannot {doing}: {exc}")


# -- schema ----------------------------------------------------------------------------


def _read_version(connection: sqlite3.Connection) -> int:
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'handrail_schema'"
    ).fetchone()
    if exists is None:
        return 0
    found = connection.execute(
        "SELECT version FROM handrail_schema WHERE component = ?", (_COMPONENT,)
    ).fetchone()
    return 0 if found is None else int(found[0])


def _migrate(connection: sqlite3.Connection, path: Path) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; returns how many steps it applied.

    Under the write lock, so processes opening one new file at once create it once.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(_VERSION_TABLE)
        version = _read_version(connection)
        if version > SCHEMA_VERSION:
            raise _outdated(path, version)
        for steps in _MIGRATIONS[version:]:
            for statement in steps:
                connection.execute(statement)
        connection.execute(
            "INSERT INTO handrail_schema (component, version) VALUES (?, ?) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (_COMPONENT, SCHEMA_VERSION),
        )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return SCHEMA_VERSION - version


def upgrade_sqlite(path: str | os.PathLike[str], *, busy_timeout: timedelta) -> int:
    """Create or migrate the escalation tables in the file at ``path``; returns steps applied."""
    connection, applied = _connect(Path(path), busy_timeout, create=True)
    connection.close()
    return applied


def _connect(
    path: Path, busy_timeout: timedelta, *, create: bool
) -> tuple[sqlite3.Connection, int]:
    """A connection to a current schema, and how many migration steps that took."""
    if busy_timeout < timedelta(0):
        raise ConfigurationError(f"busy_timeout must not be negative, got {busy_timeout}")
    memory = str(path) == ":memory:"
    if not create and not memory and not path.is_file():
        raise ConfigurationError(
            f"{path}: no escalation store here (no such file); create it with "
            f"`handrail db upgrade {path}`"
        )
    try:
        connection = sqlite3.connect(
            path if create or memory else f"{path.resolve().as_uri()}?mode=rw",
            timeout=busy_timeout.total_seconds(),
            isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
            check_same_thread=False,
            uri=not (create or memory),
        )
    except sqlite3.Error as exc:
        raise ConfigurationError(f"{path}: cannot open the escalation store: {exc}") from exc
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        # FULL: in WAL mode every commit is fsynced before it returns.
        connection.execute("PRAGMA synchronous=FULL")
        applied = 0
        version = _read_version(connection)
        if version != SCHEMA_VERSION:
            if not create:
                raise _outdated(path, version)
            applied = _migrate(connection, path)
    except sqlite3.Error as exc:
        connection.close()
        raise ConfigurationError(f"{path}: cannot open the escalation store: {exc}") from exc
    except BaseException:
        connection.close()
        raise
    return connection, applied


def _outdated(path: Path, version: int) -> ConfigurationError:
    if version > SCHEMA_VERSION:
        return ConfigurationError(
            f"{path}: the escalation store's schema is at version {version}, newer than this "
            f"handrail supports ({SCHEMA_VERSION}); upgrade handrail"
        )
    return ConfigurationError(
        f"{path}: the escalation store's schema is at version {version}, this handrail "
        f"needs {SCHEMA_VERSION}; run `handrail db upgrade {path}`"
    )


# -- rows ------------------------------------------------------------------------------


def _row(escalation: Escalation) -> tuple[Any, ...]:
    """The column values: ``next_due`` only while a timer can still fire."""
    due = None if escalation.is_terminal or escalation.next_due is None else escalation.next_due
    return (
        escalation.id,
        EscalationState(escalation.state).value,
        escalation.route.name,
        _micros(escalation.opened_at, "opened_at"),
        None if due is None else _micros(due, "next_due"),
        escalation.version,
        escalation.model_dump_json(),
        escalation.external_id,
    )


def _put_deliveries(connection: sqlite3.Connection, deliveries: Sequence[Delivery]) -> None:
    connection.executemany(
        _UPSERT_DELIVERY,
        [
            (
                d.id,
                d.escalation_id,
                d.target,
                pydantic_core.to_json(d.payload).decode(),
                _micros(d.not_before, "not_before"),
                d.attempts,
                d.last_error,
            )
            for d in deliveries
        ],
    )


def _micros(when: datetime, name: str) -> int:
    """Microseconds since the epoch; naive datetimes are refused, not guessed at."""
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ConfigurationError(
            f"{name} must be a timezone-aware datetime, got naive {when.isoformat()}"
        )
    return (when - _EPOCH) // _MICROSECOND


def _datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
