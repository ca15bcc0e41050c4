"""`handrail db upgrade`: create or migrate an escalation store, SQLite or PostgreSQL."""

from __future__ import annotations

import socket
import sys
import uuid
from pathlib import Path

import pytest

from handrail.cli import main
from handrail.escalation._postgres import PostgresStore
from handrail.escalation._sqlite import SQLiteStore
from handrail.testing import PostgresServer

PASSWORD = "hunter2-s3cret"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_upgrade_creates_an_sqlite_file_then_finds_it_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first run creates the file and its tables; the second changes nothing; both exit 0."""
    path = tmp_path / "escalations.db"
    assert run(["db", "upgrade", str(path)], capsys) == (
        0,
        f"{path}: upgraded to version 2 (2 step(s) applied)\n",
        "",
    )
    assert run(["db", "upgrade", str(path)], capsys) == (0, f"{path}: already at version 2\n", "")
    SQLiteStore(path, create=False).close()  # current: opens without migrating


def test_upgrade_a_postgres_schema_twice(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new schema is created and migrated, then found current; the password is masked."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres_server.url.replace("postgres@", f"postgres:{PASSWORD}@")
    shown = f"{url.replace(PASSWORD, '***')} (schema '{schema}')"
    assert run(["db", "upgrade", url, "--schema", schema], capsys) == (
        0,
        f"{shown}: upgraded to version 3 (3 step(s) applied)\n",
        "",
    )
    assert run(["db", "upgrade", url, "--schema", schema], capsys) == (
        0,
        f"{shown}: already at version 3\n",
        "",
    )
    PostgresStore(postgres_server.url, schema=schema, create=False).close()


def test_an_unreachable_database_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server that is not there: exit 1, one line on stderr, the password masked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://alice:{PASSWORD}@127.0.0.1:{port}/app"
    code, out, err = run(["db", "upgrade", url], capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: postgresql://alice:***@127.0.0.1:{port}/app: cannot connect")
    assert err.count("\n") == 1
    assert PASSWORD not in err


def test_bad_targets_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unwritable paths exit 1; unknown URL schemes and --schema with SQLite are usage errors."""
    code, _, err = run(["db", "upgrade", "mysql://db/app"], capsys)
    assert code == 2
    assert "unknown escalation store URL scheme 'mysql'" in err
    code, _, err = run(["db", "upgrade", str(tmp_path / "missing-dir" / "e.db")], capsys)
    assert code == 1
    assert "cannot open the escalation store" in err
    code, out, err = run(["db", "upgrade", str(tmp_path / "e.db"), "--schema", "x"], capsys)
    assert (code, out) == (2, "")
    assert "--schema: applies to PostgreSQL URLs only" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "e.db").exists()
    code, _, err = run(["db"], capsys)
    assert code == 2


def test_a_key_value_string_is_postgres_and_its_password_never_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The docs' `host=... password=... dbname=...` form: PostgreSQL, not an SQLite file name."""
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dsn = f"host=127.0.0.1 port={port} user=app password={PASSWORD} dbname=app"
    code, out, err = run(["db", "upgrade", dsn], capsys)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: host=127.0.0.1 port={port} user=app password=*** dbname=app: ")
    assert "cannot connect to PostgreSQL" in err
    assert PASSWORD not in err
    assert list(tmp_path.iterdir()) == [], "no SQLite file named after the string"


@pytest.mark.parametrize(
    ("target", "says"),
    [
        (f"postgresql:/app:{PASSWORD}@db/app", "starting 'postgresql:/' looks like a mistyped"),
        (f"postgres:{PASSWORD}", "starting 'postgres:' looks like a mistyped"),
        (f"foo://app:{PASSWORD}@db/app", "unknown escalation store URL scheme 'foo'"),
        (f"host=db password={PASSWORD} dbname", "not a PostgreSQL connection URL or key=value"),
    ],
)
def test_mistyped_locations_are_usage_errors_without_the_password(
    target: str,
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A mistyped URL or malformed key=value string: exit 2, one line, no password, no file."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["db", "upgrade", target], capsys)
    assert (code, out) == (2, "")
    assert says in err
    assert err.count("\n") == 1
    assert PASSWORD not in err
    assert list(tmp_path.iterdir()) == []


def test_a_key_value_string_upgrades_a_real_server(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key=value string with a password reaches the server; the output masks the password."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    schema = f"t_{uuid.uuid4().hex[:16]}"
    dsn = make_conninfo(**{**conninfo_to_dict(postgres_server.url), "password": PASSWORD})
    code, out, err = run(["db", "upgrade", dsn, "--schema", schema], capsys)
    assert (code, err) == (0, "")
    assert "password=***" in out
    assert out.endswith(f"(schema '{schema}'): upgraded to version 3 (3 step(s) applied)\n")
    assert PASSWORD not in out
    PostgresStore(postgres_server.url, schema=schema, create=False).close()


def test_without_psycopg_the_error_names_the_postgres_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No psycopg installed: exit 1 naming `handrail[postgres]`; no password, no file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` raises ImportError
    code, out, err = run(["db", "upgrade", f"host=db password={PASSWORD} dbname=app"], capsys)
    assert (code, out) == (1, "")
    assert "pip install 'handrail[postgres]'" in err
    assert PASSWORD not in err
    assert list(tmp_path.iterdir()) == []
