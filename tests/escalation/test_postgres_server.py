"""handrail.testing.PostgresServer: a throwaway PostgreSQL server for tests."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from handrail.testing import PostgresServer


def test_the_session_server_answers_on_loopback(postgres_server: PostgresServer) -> None:
    """The URL connects as the postgres superuser on 127.0.0.1; sockets live in its temp dir."""
    assert postgres_server.url == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    with psycopg.connect(postgres_server.url) as connection:
        row = connection.execute(
            "SELECT current_user, inet_server_addr()::text, current_setting('fsync')"
        ).fetchone()
    assert row == ("postgres", "127.0.0.1/32", "off")
    socket_file = postgres_server.data_dir.parent / f".s.PGSQL.{postgres_server.port}"
    assert stat.S_ISSOCK(socket_file.stat().st_mode)
    assert repr(postgres_server) == f"PostgresServer(127.0.0.1:{postgres_server.port})"


def test_create_database_returns_its_url(postgres_server: PostgresServer) -> None:
    """create_database makes a new, empty database and returns a URL for it."""
    name = f"created_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    assert url == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/{name}"
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == (name,)
    with pytest.raises(ValueError, match="plain identifier"):
        postgres_server.create_database("no; way")


def test_a_server_starts_fast_and_leaves_nothing_behind() -> None:
    """A fresh server starts in seconds; leaving the block stops it and deletes its directory."""
    started = time.perf_counter()
    with PostgresServer() as server:
        elapsed = time.perf_counter() - started
        root = server.data_dir.parent
        port = server.port
        with psycopg.connect(server.url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    assert elapsed < 10
    assert not root.exists()
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.stop()  # idempotent


def test_a_server_that_cannot_start_raises_with_the_tools_output() -> None:
    """A failing initdb raises RuntimeError carrying what it printed; nothing is skipped."""
    bin_dir = Path(tempfile.mkdtemp(prefix="handrail-fake-pg-"))
    try:
        bin_dir.chmod(0o755)  # the postgres user runs these when the tests run as root
        for tool in ("initdb", "pg_ctl"):
            script = bin_dir / tool
            script.write_text("#!/bin/sh\necho 'initdb: the disk is on fire' >&2\nexit 3\n")
            script.chmod(0o755)
        with pytest.raises(RuntimeError, match="initdb failed") as raised:
            PostgresServer(bin_dir=bin_dir).start()
        assert "the disk is on fire" in str(raised.value)
    finally:
        shutil.rmtree(bin_dir)


def test_missing_binaries_say_how_to_point_at_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No initdb where it was told to look: RuntimeError naming HANDRAIL_PG_BIN."""
    monkeypatch.setenv("HANDRAIL_PG_BIN", os.fspath(tmp_path))
    with pytest.raises(RuntimeError, match="HANDRAIL_PG_BIN"):
        PostgresServer().start()
