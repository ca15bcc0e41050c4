"""Fixtures for the escalation stores: one contract, three backends, one PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from handrail.escalation import EscalationStore, MemoryStore
from handrail.escalation._postgres import PostgresStore
from handrail.escalation._sqlite import SQLiteStore
from handrail.testing import PostgresServer

BACKENDS = ["memory", "sqlite", "postgres"]
SHARED_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session (started on first use)."""
    with PostgresServer() as server:
        yield server


class StoreMaker:
    """Opens stores over one test's data: each call is a fresh store, as after a restart.

    ``kind`` is the backend; ``target`` the SQLite path or PostgreSQL URL, and
    ``schema`` the PostgreSQL schema, for tests that open the data elsewhere
    (another process).  Every store it opened is closed at teardown.
    """

    def __init__(self, kind: str, opener: Callable[[], EscalationStore], target: str = "",
                 schema: str | None = None) -> None:  # fmt: skip
        self.kind = kind
        self.target = target
        self.schema = schema
        self._opener = opener
        self.opened: list[EscalationStore] = []

    def __call__(self) -> EscalationStore:
        store = self._opener()
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


def _maker(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreMaker:
    if kind == "memory":
        memory = MemoryStore()
        return StoreMaker(kind, lambda: memory)
    if kind == "sqlite":
        path = tmp_path / "escalations.db"
        return StoreMaker(kind, lambda: SQLiteStore(path), str(path))
    server: PostgresServer = request.getfixturevalue("postgres_server")
    # A schema per test: isolated, and far cheaper than a database per test.
    schema = f"t_{uuid.uuid4().hex[:16]}"
    url = server.url
    return StoreMaker(kind, lambda: PostgresStore(url, schema=schema), url, schema)


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """A zero-argument callable opening a store over this test's data, for each backend."""
    maker = _maker(request.param, request, tmp_path)
    yield maker
    maker.close_all()


@pytest.fixture(params=SHARED_BACKENDS, ids=SHARED_BACKENDS)
def make_shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreMaker]:
    """``make_store`` for the backends several processes can share (SQLite, PostgreSQL)."""
    maker = _maker(request.param, request, tmp_path)
    yield maker
    maker.close_all()


@pytest.fixture
def store(make_store: StoreMaker) -> EscalationStore:
    """A store of each backend, over this test's data."""
    return make_store()
