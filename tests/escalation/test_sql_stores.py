"""What only the SQL stores promise: durable files and schemas, clear errors, hidden passwords.

The shared behaviour is in test_store_contract.py; these are SQLite's and
PostgreSQL's own: schema versions and migrations, corrupt rows, plans that
use the next_due index, crash durability, and URLs whose password never
shows.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import traceback
from pathlib import Path

import psycopg
import pytest

from handrail import ConfigurationError, HandrailError
from handrail.approvals import Identity
from handrail.escalation import EscalationError, EscalationRouter, MemoryStore
from handrail.escalation._open import STORE_ENV, open_store, upgrade_store
from handrail.escalation._postgres import PostgresStore, upgrade_schema
from handrail.escalation._postgres_urls import redact_url
from handrail.escalation._sqlite import SQLiteStore
from handrail.testing import PostgresServer

from ._factory import NOW, fire, make_escalation
from .test_router import SALES, decision

V1_DUMP = Path(__file__).with_name("data") / "escalations-v1.sql"
"""A store written by handrail before external ids (schema version 1), as ``sqlite3 .dump``."""
V1_OPEN, V1_APPROVED = "01JGFJJZ009AX93YBQEMGNYTX2", "01JGFJMSK09AX93YBQEMGNYTX3"

PASSWORD = "hunter2-s3cret"


def new_schema() -> str:
    import uuid

    return f"t_{uuid.uuid4().hex[:16]}"


def password_url(server: PostgresServer, port: int | None = None) -> str:
    """The server's URL with a password (trust authentication accepts any)."""
    return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port or server.port}/postgres"


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- SQLite ------------------------------------------------------------------------------


def test_sqlite_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    """The file is in WAL mode, commits are fsynced (synchronous=FULL), the schema is versioned."""
    path = tmp_path / "e.db"
    with SQLiteStore(path) as store:
        assert store.path == path
        assert store._connection is not None
        assert store._connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT component, version FROM handrail_schema").fetchall() == [
            ("escalations", 2)
        ]
    raw.close()


def test_sqlite_due_query_uses_the_next_due_index(tmp_path: Path) -> None:
    """Finding due escalations searches the partial index on next_due, not the table."""
    from handrail.escalation._sqlite import _DUE

    with SQLiteStore(tmp_path / "e.db") as store:
        assert store._connection is not None
        plan = store._connection.execute(f"EXPLAIN QUERY PLAN {_DUE}", (0, 10)).fetchall()
    assert "USING INDEX escalations_next_due" in " ".join(str(row[-1]) for row in plan)


def test_sqlite_repr_close_and_context_manager(tmp_path: Path) -> None:
    """repr shows the path; close is idempotent; a closed store says so."""
    path = tmp_path / "e.db"
    with SQLiteStore(path) as store:
        assert repr(store) == f"SQLiteStore({str(path)!r})"
    store.close()
    with pytest.raises(ConfigurationError, match="closed"):
        store.get("esc-1")


def test_sqlite_corrupt_row_names_the_file_and_the_id(tmp_path: Path) -> None:
    """A row that is not an escalation raises EscalationError naming file and id, never skipped."""
    path = tmp_path / "e.db"
    with SQLiteStore(path) as store:
        store.create(make_escalation("good", next_due=NOW.replace(hour=8)))
        store.create(make_escalation("bad", next_due=NOW.replace(hour=8, minute=30)))
        with sqlite3.connect(path) as raw:
            raw.execute("UPDATE escalations SET body = '{not json' WHERE id = 'bad'")
        raw.close()
        for read in (lambda: store.get("bad"), store.list):
            with pytest.raises(EscalationError, match="corrupt") as raised:
                read()
            assert raised.value.escalation_id == "bad"
            assert str(path) in str(raised.value)
        with pytest.raises(EscalationError, match="bad"):
            store.process_due(NOW, fire)
        fired = store.get("good")  # the one before it in the batch was kept
        assert fired is not None
        assert fired.version == 1


def test_sqlite_create_false_needs_an_existing_current_file(tmp_path: Path) -> None:
    """create=False never creates: a missing file or schema says to run `handrail db upgrade`."""
    missing = tmp_path / "missing.db"
    with pytest.raises(ConfigurationError, match="handrail db upgrade"):
        SQLiteStore(missing, create=False)
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(ConfigurationError, match="version 0"):
        SQLiteStore(empty, create=False)
    assert upgrade_store(empty) == 2
    assert upgrade_store(empty) == 0
    SQLiteStore(empty, create=False).close()


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    """A file written by a newer handrail is refused, not misread."""
    path = tmp_path / "e.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE handrail_schema SET version = 99")
    raw.close()
    with pytest.raises(ConfigurationError, match="newer than this handrail"):
        SQLiteStore(path)


def test_sqlite_unopenable_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A file that is not a database, or a path in no directory, is named in the error."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigurationError, match=r"junk\.db"):
        SQLiteStore(junk)
    with pytest.raises(ConfigurationError, match="nowhere"):
        SQLiteStore(tmp_path / "nowhere" / "e.db")


def test_sqlite_refuses_naive_times(tmp_path: Path) -> None:
    """A naive datetime is refused rather than guessed to be UTC."""
    with SQLiteStore(tmp_path / "e.db") as store, pytest.raises(ConfigurationError, match="naive"):
        store.process_due(NOW.replace(tzinfo=None), fire)


def test_sqlite_changes_survive_kill_9(tmp_path: Path) -> None:
    """Every create that returned before the process was SIGKILLed is in the file."""
    path = tmp_path / "e.db"
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]);"
        "from _factory import make_escalation;"
        "from handrail.escalation._sqlite import SQLiteStore;"
        "store = SQLiteStore(sys.argv[1]);"
        "[(store.create(make_escalation(f'esc-{n}')), print(n, flush=True)) "
        "for n in range(100000)]"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(path), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    confirmed = [int(process.stdout.readline()) for _ in range(30)]
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    with SQLiteStore(path) as store:
        assert all(store.get(f"esc-{n}") is not None for n in confirmed)


# --- PostgreSQL ----------------------------------------------------------------------------


def test_postgres_repr_and_errors_never_show_the_password(postgres_server: PostgresServer) -> None:
    """The password is masked in repr, in connection errors and in query errors, causes included."""
    schema = new_schema()
    with PostgresStore(password_url(postgres_server), schema=schema) as store:
        assert PASSWORD not in repr(store)
        assert repr(store) == (
            f"PostgresStore('postgresql://postgres:***@127.0.0.1:{postgres_server.port}"
            f"/postgres', schema='{schema}')"
        )
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
        with pytest.raises(HandrailError) as raised:
            store.get("esc-1")
    problems = [raised.value]

    unreachable = password_url(postgres_server, closed_port())
    malformed = f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/postgres"
    for url in (unreachable, malformed):
        with pytest.raises(ConfigurationError, match="cannot connect") as refused:
            PostgresStore(url)
        problems.append(refused.value)
    for problem in problems:
        text = "".join(traceback.format_exception(problem))
        assert PASSWORD not in text
        assert "postgres:***@127.0.0.1" in str(problem)
        assert "\n" not in str(problem)


def test_redact_url_masks_every_form_of_password() -> None:
    """user:password@, ?password= and key=value connection strings are all masked."""
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgres://u:p@ss@h/db") == "postgres://u:***@h/db"
    assert (
        redact_url("postgresql://h/db?sslmode=require&password=pw&x=1")
        == "postgresql://h/db?sslmode=require&password=***&x=1"
    )
    assert redact_url("host=h password='a b' user=u") == "host=h password=*** user=u"
    assert redact_url("host=h password=pw") == "host=h password=***"


def test_postgres_corrupt_row_names_the_id(postgres_server: PostgresServer) -> None:
    """A row whose body is not an escalation raises EscalationError naming it."""
    schema = new_schema()
    with PostgresStore(postgres_server.url, schema=schema) as store:
        store.create(make_escalation("bad"))
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            admin.execute(f"UPDATE {schema}.escalations SET body = '{{\"id\": 1}}'")
        with pytest.raises(EscalationError, match="corrupt") as raised:
            store.get("bad")
        assert raised.value.escalation_id == "bad"
        assert schema in str(raised.value)


def test_postgres_due_query_can_use_the_next_due_index(postgres_server: PostgresServer) -> None:
    """The due query matches the partial index on next_due (the planner may pick it)."""
    schema = new_schema()
    with (
        PostgresStore(postgres_server.url, schema=schema) as store,
        psycopg.connect(postgres_server.url) as connection,
    ):
        connection.execute("SET enable_seqscan = off")
        plan = connection.execute(
            psycopg.sql.SQL("EXPLAIN ") + store._sql["due"], (NOW, 10)
        ).fetchall()
    assert "escalations_next_due" in " ".join(row[0] for row in plan)


def test_postgres_upgrade_is_idempotent_and_safe_in_parallel(
    postgres_server: PostgresServer,
) -> None:
    """Six upgrades of one new schema at once: one applies the steps, the others find it done."""
    schema = new_schema()
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def upgrade() -> None:
        try:
            start.wait()
            results.append(upgrade_schema(postgres_server.url, schema))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [0, 0, 0, 0, 0, 3]
    with PostgresStore(postgres_server.url, schema=schema, create=False) as store:
        assert store.upgrade() == 0


def test_postgres_create_false_says_how_to_upgrade(postgres_server: PostgresServer) -> None:
    """Without tables, create=False refuses and names `handrail db upgrade`; nothing is created."""
    schema = new_schema()
    with pytest.raises(ConfigurationError, match="handrail db upgrade"):
        PostgresStore(postgres_server.url, schema=schema, create=False)
    with psycopg.connect(postgres_server.url) as admin:
        found = admin.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    assert found is None


def test_postgres_refuses_a_newer_schema(postgres_server: PostgresServer) -> None:
    """Tables written by a newer handrail are refused, not misread."""
    schema = new_schema()
    PostgresStore(postgres_server.url, schema=schema).close()
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"UPDATE {schema}.handrail_schema SET version = 99")
    with pytest.raises(ConfigurationError, match="newer than this handrail"):
        PostgresStore(postgres_server.url, schema=schema)


def test_postgres_schema_must_be_a_plain_name(postgres_server: PostgresServer) -> None:
    """A schema name that would need quoting (or smuggle SQL) is refused up front."""
    with pytest.raises(ConfigurationError, match="plain PostgreSQL name"):
        PostgresStore(postgres_server.url, schema="x; DROP TABLE y")


def test_postgres_reconnects_after_the_server_drops_it(postgres_server: PostgresServer) -> None:
    """A connection the server closed fails one call, and the next call reconnects."""
    with PostgresStore(postgres_server.url, schema=new_schema()) as store:
        store.create(make_escalation("esc-1"))
        pid = store._connection.info.backend_pid
        with psycopg.connect(postgres_server.url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(HandrailError):
            store.get("esc-1")
        assert store.get("esc-1") is not None


def test_postgres_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed, opening a store says which extra to install."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'handrail\[postgres\]'"):
        PostgresStore("postgresql://localhost/db")


# --- open_store ----------------------------------------------------------------------------


def test_open_store_picks_the_backend_from_the_target(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """postgresql:// and postgres:// URLs open PostgresStore; anything else is an SQLite path."""
    schema = new_schema()
    with open_store(postgres_server.url, schema=schema) as store:
        assert isinstance(store, PostgresStore)
        assert store.schema == schema
    alias = postgres_server.url.replace("postgresql://", "postgres://")
    with open_store(alias) as store:
        assert isinstance(store, PostgresStore)
    with open_store(tmp_path / "e.db") as store:
        assert isinstance(store, SQLiteStore)
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "env.db"))
    with open_store(None) as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == tmp_path / "env.db"
    assert not isinstance(store, MemoryStore)


def test_open_store_refuses_what_it_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown URL schemes, a schema for SQLite, and no target at all are refused clearly."""
    with pytest.raises(ConfigurationError, match="unknown escalation store URL scheme 'mysql'"):
        open_store("mysql://localhost/db")
    with pytest.raises(ConfigurationError, match="PostgreSQL stores only"):
        open_store(tmp_path / "e.db", schema="x")
    monkeypatch.delenv(STORE_ENV, raising=False)
    with pytest.raises(ConfigurationError, match=STORE_ENV):
        open_store(None)


# --- migrating stores written before external ids ------------------------------------------


def v1_rows() -> list[tuple[object, ...]]:
    """The escalation rows of the version 1 dump, as handrail wrote them."""
    with sqlite3.connect(":memory:") as raw:
        raw.executescript(V1_DUMP.read_text())
        return raw.execute(
            "SELECT id, state, route, opened_at, next_due, version, body FROM escalations "
            "ORDER BY opened_at"
        ).fetchall()


def check_migrated(store: SQLiteStore | PostgresStore) -> None:
    """The cases written before are all there, as they were, and external ids now work."""
    cases = store.list()
    assert [(e.id, e.state.value, e.external_id) for e in cases] == [
        (V1_OPEN, "open", None),
        (V1_APPROVED, "approved", None),
    ]
    assert cases[1].decided_by == "maria"
    assert [d.escalation_id for d in store.pending_deliveries()] == [
        V1_OPEN,
        V1_APPROVED,
        V1_APPROVED,
    ]
    router = EscalationRouter([SALES], store)
    first = router.open(decision(), external_id="call_1")
    assert router.open(decision(), external_id="call_1") == first
    assert router.find("call_1") == first
    assert (
        router.approve(V1_OPEN, by=Identity("maria", method="test")).state.value == "approved"
    )  # old cases still move
    assert len(store.list()) == 3


def test_a_sqlite_store_written_before_external_ids_is_migrated_on_open(tmp_path: Path) -> None:
    """A file from before external ids (schema 1) opens: the column and its unique index are
    added, every case and delivery is kept, and external ids work; create=False asks for
    `handrail db upgrade` first, which applies the one step."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:
        raw.executescript(V1_DUMP.read_text())
    raw.close()
    with pytest.raises(ConfigurationError, match="version 1, this handrail needs 2"):
        SQLiteStore(path, create=False)
    copy = tmp_path / "copy.db"
    with sqlite3.connect(copy) as raw:
        raw.executescript(V1_DUMP.read_text())
    raw.close()
    assert upgrade_store(copy) == 1

    with SQLiteStore(path) as store:
        check_migrated(store)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version FROM handrail_schema").fetchall() == [(2,)]
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            raw.execute(f"UPDATE escalations SET external_id = 'call_1' WHERE id = '{V1_OPEN}'")
    raw.close()


def test_a_postgres_schema_written_before_external_ids_is_migrated_on_open(
    postgres_server: PostgresServer,
) -> None:
    """Tables of schema version 1 (the released first step, holding the cases of the version 1
    dump) are migrated when a store opens them: cases and deliveries kept, external ids unique."""
    from handrail.escalation._postgres_schema import _MIGRATIONS

    schema = new_schema()
    with sqlite3.connect(":memory:") as raw:
        raw.executescript(V1_DUMP.read_text())
        deliveries = raw.execute(
            "SELECT id, escalation_id, target, payload FROM deliveries ORDER BY seq"
        ).fetchall()
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        for statement in _MIGRATIONS[0]:
            admin.execute(statement.format(s=schema))
        admin.execute(
            f"CREATE TABLE {schema}.handrail_schema (component text PRIMARY KEY, "
            "version integer NOT NULL, upgraded_at timestamptz NOT NULL DEFAULT now())"
        )
        admin.execute(f"INSERT INTO {schema}.handrail_schema VALUES ('escalations', 1)")
        for escalation_id, state, route, opened, due, version, body in v1_rows():
            admin.execute(
                f"INSERT INTO {schema}.escalations VALUES (%s, %s, %s, "
                "to_timestamp(%s / 1e6), to_timestamp(%s / 1e6), %s, %s::jsonb)",
                (escalation_id, state, route, opened, due, version, body),
            )
        for delivery_id, escalation_id, target, payload in deliveries:
            admin.execute(
                f"INSERT INTO {schema}.deliveries (id, escalation_id, target, payload, "
                "not_before) VALUES (%s, %s, %s, %s::jsonb, now())",
                (delivery_id, escalation_id, target, payload),
            )
    with pytest.raises(ConfigurationError, match="version 1, this handrail needs 3"):
        PostgresStore(postgres_server.url, schema=schema, create=False)

    with PostgresStore(postgres_server.url, schema=schema) as store:
        check_migrated(store)
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        assert admin.execute(f"SELECT version FROM {schema}.handrail_schema").fetchall() == [(3,)]
        with pytest.raises(psycopg.errors.UniqueViolation):
            admin.execute(
                f"UPDATE {schema}.escalations SET external_id = 'call_1' WHERE id = %s",
                (V1_OPEN,),
            )
