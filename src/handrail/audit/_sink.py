"""``Sink``: where an audit log's records are stored, and the durability modes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol

__all__ = ["FSYNC_MODES", "FsyncMode", "Sink"]

FsyncMode = Literal["always", "batch", "never"]
"""When appended records are forced to stable storage; see ``docs/audit.md``.

* ``always``: every append is written and fsynced before it returns.  A crash
  or a power loss loses nothing that ``append`` returned.
* ``batch``: appends are buffered and written with one fsync when
  ``batch_records`` records are buffered, ``batch_interval`` after the oldest
  buffered record was appended, on ``flush()`` and on ``close()``.  A crash or
  power loss loses the buffered batch (at most one batch, appended at most
  one interval plus the time of one fsync before the crash).
* ``never``: every append is written to the operating system before it
  returns, never fsynced.  A process crash loses nothing; a power loss or a
  kernel crash loses what the OS had not yet written back (typically up to
  30 seconds).
"""

FSYNC_MODES: tuple[FsyncMode, ...] = ("always", "batch", "never")


class Sink(Protocol):
    """Storage for serialized audit records, in order.  ``AuditLog`` does the chaining.

    Each record is one line: canonical JSON ending in ``b"\\n"``.  A sink
    stores lines and gives them back byte for byte; it need not understand
    them.  ``AuditLog`` calls it under its own lock, from one thread at a time.
    """

    @property
    def path(self) -> Path | None:
        """Where the records live (named in error messages), or None in memory."""
        ...

    def append(self, lines: Sequence[bytes]) -> None:
        """Store ``lines`` after the ones already stored, as one write.

        Raises ``AuditError`` if they could not be stored.  Durability is up
        to the sink until ``sync``.
        """
        ...

    def sync(self) -> None:
        """Make every line appended so far durable (fsync, or the sink's equivalent)."""
        ...

    def read(self) -> Iterator[bytes]:
        """Every stored line, oldest first, each with its ``b"\\n"``.

        A final line without one is a torn write (the writer died mid-write)
        and is yielded as it is, for ``verify`` to report.
        """
        ...

    def close(self) -> None:
        """Release the storage; appending afterwards is an error.  Idempotent."""
        ...
