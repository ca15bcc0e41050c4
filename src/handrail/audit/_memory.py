"""``MemorySink``: an audit log held in memory, for tests and examples."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._errors import AuditError

__all__ = ["MemorySink"]


class MemorySink:
    """Keeps the log's bytes in memory: nothing survives the process.

    ``MemorySink(data)`` starts from existing log bytes (a test can tamper with
    ``getvalue()`` and verify the result); ``getvalue()`` returns them all.
    """

    __slots__ = ("_closed", "_data")

    def __init__(self, data: bytes = b"") -> None:
        self._data = bytearray(data)
        self._closed = False

    @property
    def path(self) -> Path | None:
        """None: a memory sink has no path."""
        return None

    def append(self, lines: Sequence[bytes]) -> None:
        """Store ``lines`` after the others."""
        if self._closed:
            raise AuditError("the in-memory audit log is closed")
        for line in lines:
            self._data += line

    def sync(self) -> None:
        """Nothing to do: memory is as durable as it gets."""

    def read(self) -> Iterator[bytes]:
        """Every stored line, oldest first (a snapshot taken now)."""
        return iter(io.BytesIO(bytes(self._data)))

    def getvalue(self) -> bytes:
        """The whole log as bytes, as a JSONL file would hold it."""
        return bytes(self._data)

    def close(self) -> None:
        """Refuse further appends; the records stay readable."""
        self._closed = True

    def __repr__(self) -> str:
        return f"MemorySink({len(self._data)} bytes)"
