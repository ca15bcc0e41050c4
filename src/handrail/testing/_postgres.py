"""``PostgresServer``: a throwaway PostgreSQL server for tests, started in about a second.

It runs the PostgreSQL installed on the machine (``initdb`` and ``pg_ctl``)
on a fresh data directory in a temporary folder, listening on a free port
of 127.0.0.1 only, with trust authentication.  It is for tests, never for
data you keep: fsync is off, so a crash of the machine may corrupt it.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import weakref
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["PostgresServer"]

_BIN_ENV = "HANDRAIL_PG_BIN"
_USER = "postgres"
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class PostgresServer:
    """A PostgreSQL server in a temporary directory, for tests; a context manager.

    ``with PostgresServer() as server:`` starts it and ``server.url`` is a
    DSN for its ``postgres`` database (user ``postgres``, no password);
    leaving the block stops it (``pg_ctl stop -m immediate``) and deletes
    the directory.  The binaries come from ``bin_dir``, else the
    ``HANDRAIL_PG_BIN`` environment variable, else the newest
    ``/usr/lib/postgresql/*/bin``, else ``PATH``.  Run as root, the server
    runs as the ``postgres`` user through ``runuser`` (PostgreSQL refuses to
    run as root).  fsync is off: fast, and fine for data thrown away.

    Raises ``RuntimeError`` with initdb's or pg_ctl's output when the server
    cannot start; it never skips.
    """

    def __init__(
        self,
        *,
        bin_dir: str | os.PathLike[str] | None = None,
        timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._timeout = timeout
        self._root: Path | None = None
        self._port: int | None = None
        self._finalizer: weakref.finalize[[Path, list[str], Path], PostgresServer] | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on, at 127.0.0.1."""
        if self._port is None:
            raise RuntimeError("PostgresServer is not running: use it as `with PostgresServer():`")
        return self._port

    @property
    def url(self) -> str:
        """A connection URL for the ``postgres`` database, as the ``postgres`` superuser."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """A connection URL for ``database`` on this server."""
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        """The data directory (for reading the server's log, ``postgres.log`` beside it)."""
        if self._root is None:
            raise RuntimeError("PostgresServer is not running: use it as `with PostgresServer():`")
        return self._root / "data"

    def start(self) -> Self:
        """Create the data directory and start the server; returns ``self``.  Idempotent."""
        if self._root is not None:
            return self
        bin_dir = _find_bin_dir(self._bin_dir)
        as_postgres = _as_postgres_prefix()
        root = Path(tempfile.mkdtemp(prefix="handrail-pg-"))
        self._root = root
        self._finalizer = weakref.finalize(self, _stop, bin_dir, as_postgres, root)
        try:
            if as_postgres:
                _chown_to_postgres(root)
            _run(
                [
                    *as_postgres,
                    str(bin_dir / "initdb"),
                    "--pgdata", str(root / "data"),
                    "--auth", "trust",
                    "--username", _USER,
                    "--encoding", "UTF8",
                    "--no-locale",
                    "--no-sync",  # throwaway data: skip the fsyncs, ~3x faster
                ],
                root,
                self._timeout,
                "initdb",
            )  # fmt: skip
            self._port = self._start_server(bin_dir, as_postgres, root)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (immediately, no checkpoint) and delete its directory.  Idempotent."""
        finalizer, self._finalizer = self._finalizer, None
        self._root = None
        self._port = None
        if finalizer is not None:
            finalizer()

    def create_database(self, name: str) -> str:
        """Create the database ``name`` and return its URL.  Needs psycopg."""
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"database name must be a plain identifier, got {name!r}")
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - psycopg is in the dev extras
            raise RuntimeError(
                "PostgresServer.create_database needs psycopg: pip install 'handrail[postgres]'"
            ) from exc
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"127.0.0.1:{self._port}" if self._port is not None else "not running"
        return f"PostgresServer({where})"

    def _start_server(self, bin_dir: Path, as_postgres: list[str], root: Path) -> int:
        # A free port can be taken between our probe and the server's bind: try a few.
        for attempt in range(3):
            port = _free_port()
            options = " ".join(
                [
                    f"-p {port}",
                    "-h 127.0.0.1",  # TCP on loopback only
                    f"-k {shlex.quote(str(root))}",  # unix sockets in the temp dir, not /run
                    "-F",  # fsync off: throwaway data
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
            )
            command = [
                *as_postgres,
                str(bin_dir / "pg_ctl"),
                "start",
                "--pgdata", str(root / "data"),
                "--log", str(root / "postgres.log"),
                "--wait",
                "--timeout", str(max(1, round(self._timeout.total_seconds()))),
                "--silent",
                "-o", options,
            ]  # fmt: skip
            try:
                _run(command, root, self._timeout, "pg_ctl start", log=root / "postgres.log")
            except RuntimeError as exc:
                if attempt < 2 and "already in use" in str(exc):
                    continue
                raise
            return port
        raise AssertionError("unreachable")  # pragma: no cover


def _stop(bin_dir: Path, as_postgres: list[str], root: Path) -> None:
    """Stop the server if it runs, then delete its directory (also at interpreter exit)."""
    data = root / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "stop", "--pgdata", str(data),
             "--mode", "immediate", "--wait", "--silent"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def _find_bin_dir(explicit: Path | None) -> Path:
    """Where ``initdb`` and ``pg_ctl`` are; a RuntimeError saying how to point at them."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    elif os.environ.get(_BIN_ENV):
        candidates.append(Path(os.environ[_BIN_ENV]))
    else:
        installed = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda p: [int(part) for part in re.findall(r"\d+", p)],
        )
        candidates.extend(Path(p) for p in reversed(installed))
        found = shutil.which("initdb")
        if found is not None:
            candidates.append(Path(found).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates) or "PATH"
    raise RuntimeError(
        f"PostgresServer: no initdb and pg_ctl found (looked in {looked}); install PostgreSQL "
        f"(e.g. apt-get install postgresql) or set {_BIN_ENV} to its bin directory"
    )


def _as_postgres_prefix() -> list[str]:
    """``runuser -u postgres --`` when running as root (PostgreSQL refuses root), else nothing."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        raise RuntimeError(
            "PostgresServer: running as root, PostgreSQL must run as another user, and "
            "runuser was not found; run the tests as a normal user"
        )
    return [runuser, "-u", _USER, "--"]


def _chown_to_postgres(root: Path) -> None:
    import pwd

    try:
        user = pwd.getpwnam(_USER)
    except KeyError:
        raise RuntimeError(
            f"PostgresServer: running as root, the server runs as the {_USER!r} user, and "
            f"there is none; create it (useradd --system {_USER}) or run as a normal user"
        ) from None
    os.chown(root, user.pw_uid, user.pw_gid)


def _run(
    command: list[str], cwd: Path, timeout: timedelta, what: str, log: Path | None = None
) -> None:
    # Output goes to a file, not a pipe: the server pg_ctl starts must not hold our pipe open.
    with tempfile.TemporaryFile() as output:
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout.total_seconds(),
                check=False,
            )
            failed = done.returncode != 0
            detail = f"exit status {done.returncode}"
        except subprocess.TimeoutExpired:
            failed = True
            detail = f"no answer after {timeout.total_seconds():g} s"
        except OSError as exc:
            failed = True
            detail = str(exc)
        if not failed:
            return
        output.seek(0)
        text = output.read().decode(errors="replace").strip()
    if log is not None and log.is_file():
        text += "\n--- server log ---\n" + log.read_text(errors="replace").strip()
    raise RuntimeError(f"PostgresServer: {what} failed ({detail}): {shlex.join(command)}\n{text}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
