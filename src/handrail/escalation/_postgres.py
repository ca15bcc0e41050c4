"""``PostgresStore``: escalations shared by many agent and router processes, in PostgreSQL.

The tables mirror ``SQLiteStore``'s (``escalations`` with the document in
``body`` and indexed copies of a few fields; ``deliveries``, the outbox),
in a schema of the caller's choice, with ``timestamptz`` times and ``jsonb``
documents an operator can query.  Concurrency comes from row locks:
``update`` takes ``SELECT ... FOR UPDATE``; ``process_due`` and
``claim_deliveries`` take ``FOR UPDATE SKIP LOCKED``, so workers polling
together split the due rows between them and never wait on, or repeat,
each other's.  Each call is one transaction.

psycopg 3 is imported when a store is opened (``pip install
'handrail[postgres]'``).  A URL's password never appears in a repr, an
error or a log line.

The tables and their migrations are in ``_postgres_schema``; the masking of
passwords in ``_postgres_urls``.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import pydantic_core
from pydantic import ValidationError

from .._errors import (
    ConfigurationError,
    EscalationError,
    HandrailError,
    NotAuthenticated,
    UnknownEscalation,
)
from ._memory import _check_version
from ._model import Delivery, Escalation, EscalationState
from ._postgres_schema import (
    DECISION_REFUSED,
    SCHEMA_VERSION,
    check_schema,
    outdated,
    read_version,
    upgrade_tables,
)
from ._postgres_urls import redact_url, scrub
from ._store import Change

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = ["ADMIN_ROLE", "PostgresStore", "upgrade_schema"]

_INSTALL = "pip install 'handrail[postgres]'"

ADMIN_ROLE = "handrail_admin"
"""The role whose members administer escalations (``PostgresStore.is_admin``), by default."""

_STATEMENTS = {
    "get": "SELECT body::text FROM {s}.escalations WHERE id = %s",
    # No row when the role does not exist: nobody is its member.
    "is_admin": "SELECT coalesce((SELECT pg_catalog.pg_has_role(current_user, oid, 'MEMBER') "
    "FROM pg_catalog.pg_roles WHERE rolname = %s), false)",
    "find": "SELECT id, body::text FROM {s}.escalations WHERE external_id = %s",
    "lock": "SELECT body::text FROM {s}.escalations WHERE id = %s FOR UPDATE",
    # No conflict target: a taken id and a taken external id both insert nothing.  A
    # concurrent insert of either makes this one wait for it to commit or roll back.
    "insert": "INSERT INTO {s}.escalations "
    "(id, state, route, opened_at, next_due, version, body, external_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT DO NOTHING",
    "taken": "SELECT id, body::text FROM {s}.escalations WHERE id = %s OR external_id = %s",
    "update": "UPDATE {s}.escalations SET id = %s, state = %s, route = %s, opened_at = %s, "
    "next_due = %s, version = %s, body = %s::jsonb, external_id = %s "
    "WHERE id = %s AND version = %s",
    "due": "SELECT id, body::text FROM {s}.escalations "
    "WHERE next_due IS NOT NULL AND next_due <= %s ORDER BY next_due LIMIT %s "
    "FOR UPDATE SKIP LOCKED",
    # Written again with the same id (a router that re-sends), a delivery is
    # replaced and pending again, as in MemoryStore; it keeps its place in the order.
    "deliver": "INSERT INTO {s}.deliveries "
    "(id, escalation_id, target, payload, not_before, attempts, last_error) "
    "VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
    "escalation_id = excluded.escalation_id, target = excluded.target, "
    "payload = excluded.payload, not_before = excluded.not_before, "
    "attempts = excluded.attempts, last_error = excluded.last_error, "
    "lease_until = NULL, status = 'pending'",
    "claim": "UPDATE {s}.deliveries AS d SET attempts = d.attempts + 1, lease_until = %s "
    "FROM (SELECT seq FROM {s}.deliveries WHERE status = 'pending' AND not_before <= %s "
    "AND (lease_until IS NULL OR lease_until <= %s) ORDER BY seq LIMIT %s "
    "FOR UPDATE SKIP LOCKED) AS due WHERE d.seq = due.seq "
    "RETURNING d.seq, d.id, d.escalation_id, d.target, d.payload::text, d.not_before, "
    "d.attempts, d.last_error",
    "complete": "UPDATE {s}.deliveries SET status = 'done', lease_until = NULL WHERE id = %s",
    "give_up": "UPDATE {s}.deliveries SET status = 'given_up', last_error = %s, "
    "lease_until = NULL WHERE id = %s AND status = 'pending'",
    "retry": "UPDATE {s}.deliveries SET last_error = %s, not_before = %s, lease_until = NULL "
    "WHERE id = %s AND status = 'pending'",
    "pending": "SELECT seq, id, escalation_id, target, payload::text, not_before, attempts, "
    "last_error FROM {s}.deliveries WHERE status = 'pending' ORDER BY seq",
    "pending_of": "SELECT seq, id, escalation_id, target, payload::text, not_before, attempts, "
    "last_error FROM {s}.deliveries WHERE status = 'pending' AND escalation_id = %s "
    "ORDER BY seq",
}


class PostgresStore:
    """An ``EscalationStore`` in PostgreSQL, for many workers; see the module docstring.

    ``url`` is a libpq connection URL or ``key=value`` string; ``schema``
    holds the tables (created if missing).  With ``create=True`` (the
    default) opening creates or migrates the tables, as ``upgrade()`` does;
    with ``create=False`` they must already be current (``handrail db
    upgrade``), for a worker whose database role may not change the schema.
    A committed change is as durable as the server makes it
    (``synchronous_commit``).

    Only a database role with the decision grant (``UPDATE`` on the
    schema's ``decision_grant`` table) may acknowledge, approve or reject:
    a trigger refuses anyone else, and the store raises ``NotAuthenticated``
    naming the missing grant (see ``docs/escalation-postgres.md``).
    Members of ``admin_role`` (default ``handrail_admin``) are
    administrators (``is_admin``).

    Thread-safe: one connection, one call at a time (open one store per
    process, or several for more parallelism); a connection the server
    dropped is replaced on the next call.  Raises ``ConfigurationError`` when
    psycopg is missing or the database cannot be reached or set up,
    ``EscalationError`` naming the id when a stored escalation cannot be read
    back, and ``HandrailError`` for any other database failure.
    """

    __slots__ = (
        "_admin_role",
        "_closed",
        "_connect_timeout",
        "_connection",
        "_lock",
        "_schema",
        "_sql",
        "_url",
    )

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        connect_timeout: timedelta = timedelta(seconds=10),
        create: bool = True,
        admin_role: str = ADMIN_ROLE,
    ) -> None:
        check_schema(schema)
        if not isinstance(admin_role, str) or not admin_role:
            raise ConfigurationError(f"admin_role must name a database role, got {admin_role!r}")
        self._admin_role = admin_role
        _psycopg()  # fail first, and clearly, without the extra
        self._url = url
        self._schema = schema
        self._connect_timeout = connect_timeout
        # Re-entrant, so a change function may read this store while it runs.
        self._lock = threading.RLock()
        self._closed = False
        self._sql = _compile(schema)
        self._connection = _connect(url, connect_timeout)
        try:
            with _translated(url, f"set up schema {schema!r}", ConfigurationError):
                if create:
                    upgrade_tables(self._connection, schema)
                else:
                    version = read_version(self._connection, schema)
                    if version != SCHEMA_VERSION:
                        raise outdated(url, schema, version)
        except BaseException:
            self._connection.close()
            raise

    @property
    def schema(self) -> str:
        """The schema the tables live in."""
        return self._schema

    def is_admin(self) -> bool:
        """Whether this connection's database role is a member of the admin role.

        A member of ``admin_role`` (``handrail_admin`` unless given) may
        decide in another decider's name from the CLI (``--as``); a
        superuser is a member of every role.  ``False`` when no such role
        exists.
        """
        with self._locked() as connection, _translated(self._url, "read the role"):
            found = connection.execute(self._sql["is_admin"], (self._admin_role,)).fetchone()
        return found is not None and found[0] is True

    def upgrade(self) -> int:
        """Create or migrate this store's tables; returns how many migration steps ran.

        Idempotent and safe to run from several processes at once (an
        advisory lock serializes them).
        """
        with self._locked() as connection, _translated(self._url, "upgrade the schema"):
            return upgrade_tables(connection, self._schema)

    # -- escalations ----------------------------------------------------------------

    def create(self, escalation: Escalation, deliveries: Sequence[Delivery] = ()) -> Escalation:
        """Insert a new escalation and its deliveries in one transaction; return what is stored.

        Under an external id another escalation has, nothing is written and
        that one is returned: the insert yields to the unique index (waiting
        for a concurrent insert to commit), then the winner is read.  Raises
        ``ConfigurationError`` if the id is already taken (nothing written).
        """
        row = _row(escalation)
        with (
            self._locked() as connection,
            _translated(self._url, f"create escalation {escalation.id}", case=escalation.id),
            connection.transaction(),
        ):
            inserted = connection.execute(self._sql["insert"], row).rowcount
            if inserted != 1:
                # Read committed: this statement sees the row the insert yielded to.
                found = connection.execute(
                    self._sql["taken"], (escalation.id, escalation.external_id)
                ).fetchall()
                if not found or any(other == escalation.id for other, _ in found):
                    raise ConfigurationError(f"escalation {escalation.id} already exists")
                (other, body), *_ = found
                return self._decode(other, body)
            self._put_deliveries(connection, deliveries)
        return escalation

    def get(self, escalation_id: str) -> Escalation | None:
        """The escalation with this id, or ``None``."""
        with self._locked() as connection, _translated(self._url, f"read {escalation_id}"):
            found = connection.execute(self._sql["get"], (escalation_id,)).fetchone()
        return None if found is None else self._decode(escalation_id, found[0])

    def find(self, external_id: str) -> Escalation | None:
        """The escalation opened under this external id, or ``None``."""
        with self._locked() as connection, _translated(self._url, "find by external id"):
            found = connection.execute(self._sql["find"], (external_id,)).fetchone()
        return None if found is None else self._decode(found[0], found[1])

    def list(
        self,
        *,
        state: EscalationState | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[Escalation]:
        """Escalations, oldest first (by ``opened_at``, then id), optionally filtered."""
        from psycopg import sql

        where: builtins.list[sql.Composable] = []
        params: builtins.list[Any] = []
        if state is not None:
            where.append(sql.SQL("state = %s"))
            params.append(EscalationState(state).value)
        if route is not None:
            where.append(sql.SQL("route = %s"))
            params.append(route)
        query = sql.SQL("SELECT id, body::text FROM {s}.escalations").format(
            s=sql.Identifier(self._schema)
        )
        if where:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
        query += sql.SQL(" ORDER BY opened_at, id")
        if limit is not None:
            query += sql.SQL(" LIMIT %s")
            params.append(max(limit, 0))
        with self._locked() as connection, _translated(self._url, "list escalations"):
            rows = connection.execute(query, params).fetchall()
        return [self._decode(escalation_id, body) for escalation_id, body in rows]

    def update(self, escalation_id: str, change: Callable[[Escalation], Change]) -> Escalation:
        """Apply ``change`` under a row lock (``FOR UPDATE``) and write the result atomically.

        Raises ``UnknownEscalation`` if there is none with this id; whatever
        ``change`` raises propagates and nothing is written.
        """
        with (
            self._locked() as connection,
            _translated(self._url, f"update escalation {escalation_id}", case=escalation_id),
            connection.transaction(),
        ):
            found = connection.execute(self._sql["lock"], (escalation_id,)).fetchone()
            if found is None:
                raise UnknownEscalation(escalation_id, f"schema {self._schema!r}")
            current = self._decode(escalation_id, found[0])
            new, deliveries = change(current)
            _check_version(current, new)
            self._write(connection, [(current, new, deliveries)])
        return new

    def process_due(
        self,
        now: datetime,
        change: Callable[[Escalation], Change | None],
        *,
        limit: int = 500,
    ) -> int:
        """Apply ``change`` to up to ``limit`` non-final escalations whose ``next_due <= now``.

        One transaction locks the batch with ``FOR UPDATE SKIP LOCKED``:
        workers polling at once take disjoint batches, so each due timer
        fires once.  If ``change`` raises, the changes made before it are
        kept, that one is not written, and the error propagates.
        """
        at = _aware(now, "now")
        handled = 0
        failure: Exception | None = None
        with (
            self._locked() as connection,
            _translated(self._url, "process due escalations"),
            connection.transaction(),
        ):
            rows = connection.execute(self._sql["due"], (at, max(limit, 0))).fetchall()
            changes: builtins.list[tuple[Escalation, Escalation, Sequence[Delivery]]] = []
            for escalation_id, body in rows:
                handled += 1
                try:
                    current = self._decode(escalation_id, body)
                    result = change(current)
                    if result is not None:
                        _check_version(current, result[0])
                        changes.append((current, *result))
                except Exception as exc:
                    failure = exc  # keep the work done so far: commit, then raise
                    break
            # Written together (two pipelined statements); a database error rolls all back.
            self._write(connection, changes)
        if failure is not None:
            raise failure
        return handled

    # -- the outbox --------------------------------------------------------------------

    def claim_deliveries(
        self, now: datetime, *, limit: int = 100, lease: timedelta = timedelta(seconds=60)
    ) -> builtins.list[Delivery]:
        """Lease up to ``limit`` pending deliveries whose ``not_before <= now`` to this caller.

        Each returned delivery has ``attempts`` already counted (+1) and is
        invisible to other callers until ``now + lease``; rows another worker
        is claiming at this moment are skipped, not waited for.
        """
        at = _aware(now, "now")
        with (
            self._locked() as connection,
            _translated(self._url, "claim deliveries"),
            connection.transaction(),
        ):
            rows = connection.execute(
                self._sql["claim"], (at + lease, at, at, max(limit, 0))
            ).fetchall()
        return [self._delivery(row) for row in sorted(rows)]

    def complete_delivery(self, delivery_id: str) -> None:
        """Mark a delivery done: it is never handed out again."""
        with self._locked() as connection, _translated(self._url, f"complete {delivery_id}"):
            connection.execute(self._sql["complete"], (delivery_id,))

    def fail_delivery(self, delivery_id: str, *, error: str, retry_at: datetime | None) -> None:
        """Record a failed try: pending again from ``retry_at``, or given up when ``None``."""
        with self._locked() as connection, _translated(self._url, f"fail {delivery_id}"):
            if retry_at is None:
                connection.execute(self._sql["give_up"], (error, delivery_id))
            else:
                retry = _aware(retry_at, "retry_at")
                connection.execute(self._sql["retry"], (error, retry, delivery_id))

    def pending_deliveries(self, escalation_id: str | None = None) -> builtins.list[Delivery]:
        """Deliveries not yet done nor given up (all, or one escalation's), oldest first."""
        with self._locked() as connection, _translated(self._url, "read pending deliveries"):
            if escalation_id is None:
                rows = connection.execute(self._sql["pending"]).fetchall()
            else:
                rows = connection.execute(self._sql["pending_of"], (escalation_id,)).fetchall()
        return [self._delivery(row) for row in rows]

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection.  Idempotent."""
        with self._lock:
            self._closed = True
            self._connection.close()

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
        return f"PostgresStore({redact_url(self._url)!r}, schema={self._schema!r})"

    # -- helpers -----------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            if self._closed:
                raise ConfigurationError(f"{self!r}: the escalation store is closed")
            if self._connection.broken:  # the server went away: try a fresh connection
                self._connection.close()
                self._connection = _connect(self._url, self._connect_timeout)
            yield self._connection

    def _write(
        self,
        connection: psycopg.Connection[Any],
        changes: Sequence[tuple[Escalation, Escalation, Sequence[Delivery]]],
    ) -> None:
        """Write each ``(current, new, deliveries)``; every current must still be as read."""
        if not changes:
            return
        with connection.cursor() as cursor:
            cursor.executemany(
                self._sql["update"],
                [(*_row(new), current.id, current.version) for current, new, _ in changes],
            )
            if cursor.rowcount != len(changes):  # cannot happen under the row locks
                raise EscalationError(
                    changes[0][0].id, "changed by someone else while it was locked"
                )
        self._put_deliveries(connection, [d for _, _, deliveries in changes for d in deliveries])

    def _put_deliveries(
        self, connection: psycopg.Connection[Any], deliveries: Sequence[Delivery]
    ) -> None:
        if not deliveries:
            return
        with connection.cursor() as cursor:
            cursor.executemany(
                self._sql["deliver"],
                [
                    (
                        d.id,
                        d.escalation_id,
                        d.target,
                        pydantic_core.to_json(d.payload).decode(),
                        _aware(d.not_before, "not_before"),
                        d.attempts,
                        d.last_error,
                    )
                    for d in deliveries
                ],
            )

    def _decode(self, escalation_id: str, body: str) -> Escalation:
        try:
            return Escalation.model_validate_json(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise EscalationError(
                escalation_id,
                f"{redact_url(self._url)} (schema {self._schema!r}): the stored escalation "
                f"is corrupt and cannot be read ({where}: {error['msg']})",
            ) from exc

    def _delivery(self, row: tuple[Any, ...]) -> Delivery:
        _, delivery_id, escalation_id, target, payload, not_before, attempts, last_error = row
        return Delivery(
            id=delivery_id,
            escalation_id=escalation_id,
            target=target,
            payload=pydantic_core.from_json(payload),
            not_before=not_before,
            attempts=attempts,
            last_error=last_error,
        )


def upgrade_schema(
    url: str, schema: str = "public", *, connect_timeout: timedelta = timedelta(seconds=10)
) -> int:
    """Create or migrate the escalation tables in ``schema``; returns how many steps ran.

    Idempotent (0 when already current) and safe to run from several
    processes at once: a transaction-scoped advisory lock serializes them,
    and each upgrade is all or nothing.  Raises ``ConfigurationError``
    (without the URL's password) when the database cannot be reached or the
    schema is newer than this handrail.
    """
    check_schema(schema)
    connection = _connect(url, connect_timeout)
    try:
        with _translated(url, f"upgrade schema {schema!r}", ConfigurationError):
            return upgrade_tables(connection, schema)
    finally:
        connection.close()


# -- connections and errors --------------------------------------------------------------


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(f"PostgresStore needs psycopg: {_INSTALL}") from exc
    return psycopg


def _connect(url: str, timeout: timedelta) -> psycopg.Connection[Any]:
    psycopg_module = _psycopg()
    try:
        connection: psycopg.Connection[Any] = psycopg_module.connect(
            url, autocommit=True, connect_timeout=max(1, round(timeout.total_seconds()))
        )
    except psycopg_module.Error as exc:
        # ``from None``: libpq's message may quote a malformed URL, password included;
        # what it says, scrubbed, is in ours.
        raise ConfigurationError(
            f"{redact_url(url)}: cannot connect to PostgreSQL: {scrub(str(exc), url)}"
        ) from None
    try:
        # Times come back in UTC, whatever the server's or role's default zone.
        connection.execute("SET TIME ZONE 'UTC'")
    except psycopg_module.Error as exc:
        connection.close()
        raise ConfigurationError(
            f"{redact_url(url)}: cannot set up the connection: {scrub(str(exc), url)}"
        ) from None
    return connection


@contextmanager
def _translated(
    url: str, doing: str, kind: type[HandrailError] = HandrailError, *, case: str = ""
) -> Iterator[None]:
    """psycopg's errors become ``kind`` (handrail's own pass through), password scrubbed.

    The decision-grant trigger's refusal becomes ``NotAuthenticated`` for ``case``.
    """
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        if exc.sqlstate == DECISION_REFUSED:
            raise _no_decision_grant(exc, url, case) from exc
        raise kind(f"{redact_url(url)}: cannot {doing}: {scrub(str(exc).strip(), url)}") from exc


def _no_decision_grant(exc: psycopg.Error, url: str, case: str) -> NotAuthenticated:
    """The trigger's refusal: which role may not do what, and the GRANT that would let it."""
    diag = exc.diag
    why = scrub(f"the database {diag.message_primary or 'role lacks the decision grant'}", url)
    if diag.message_hint:
        why += f" (an owner of the schema can run: {scrub(diag.message_hint, url)})"
    return NotAuthenticated(case or diag.message_detail or "?", why)


def _compile(schema: str) -> dict[str, sql.Composed]:
    from psycopg import sql

    name = sql.Identifier(schema)
    return {key: sql.SQL(text).format(s=name) for key, text in _STATEMENTS.items()}


# -- values ------------------------------------------------------------------------------


def _row(escalation: Escalation) -> tuple[Any, ...]:
    """The column values: ``next_due`` only while a timer can still fire."""
    due = None if escalation.is_terminal or escalation.next_due is None else escalation.next_due
    return (
        escalation.id,
        EscalationState(escalation.state).value,
        escalation.route.name,
        _aware(escalation.opened_at, "opened_at"),
        None if due is None else _aware(due, "next_due"),
        escalation.version,
        escalation.model_dump_json(),
        escalation.external_id,
    )


def _aware(when: datetime, name: str) -> datetime:
    """``when`` in UTC; naive datetimes are refused, not read in the server's zone."""
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ConfigurationError(
            f"{name} must be a timezone-aware datetime, got naive {when.isoformat()}"
        )
    return when.astimezone(UTC)
