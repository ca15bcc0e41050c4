"""``JSONLSink``: an audit log as a JSON Lines file, the embedded default.

One record per line, appended with ``O_APPEND``.  One writer per file: the
writer holds an exclusive ``flock`` on it (on POSIX), so a second writer
fails at once instead of forking the chain.  Readers take no lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._errors import AuditError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["JSONLSink", "TornTail"]

_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class TornTail:
    """A torn final line, moved out of the log into its sidecar file.

    ``size`` bytes with SHA-256 ``sha256`` were cut from the log at
    ``log_offset`` and appended to ``sidecar`` at ``sidecar_offset``.
    """

    size: int
    sha256: str
    log_offset: int
    sidecar: Path
    sidecar_offset: int


class JSONLSink:
    """Stores records as lines of a JSON Lines file at ``path``.

    Opened for writing (the default), it creates the file (mode 0600) if
    needed and locks it: ``AuditError`` if another writer holds it.  With
    ``read_only=True`` it only reads, takes no lock, and the file must exist.
    ``append`` writes each batch with one ``write``; ``sync`` is ``fsync``.
    """

    __slots__ = ("_fd", "_path", "_read_only")

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self._path = Path(path)
        self._read_only = read_only
        self._fd: int | None = None
        if read_only:
            if not self._path.is_file():
                raise AuditError(f"{self._path}: no audit log here (no such file)")
            return
        existed = self._path.exists()
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(f"{self._path}: cannot open the audit log: {exc.strerror}") from exc
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                raise AuditError(
                    f"{self._path}: the audit log is already open for writing (by this or "
                    "another process); a log has one writer, or its chain would fork"
                ) from exc
        self._fd = fd
        if not existed:
            _sync_directory(self._path.parent)

    @property
    def path(self) -> Path:
        """The JSONL file."""
        return self._path

    def append(self, lines: Sequence[bytes]) -> None:
        """Write ``lines`` at the end of the file with one ``write`` (looping on short writes)."""
        fd = self._writable()
        data = memoryview(b"".join(lines))
        try:
            while data:
                written = os.write(fd, data)
                data = data[written:]
        except OSError as exc:
            raise AuditError(f"{self._path}: cannot write to the audit log: {exc}") from exc

    def sync(self) -> None:
        """``fsync`` the file: everything appended so far survives a power loss."""
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise AuditError(f"{self._path}: cannot fsync the audit log: {exc}") from exc

    def read(self) -> Iterator[bytes]:
        """Every line of the file, oldest first; a torn last line comes without its newline."""
        return _lines(self._path)

    def set_aside_torn_tail(self) -> TornTail | None:
        """Move a torn final line to ``<path>.torn`` and cut it from the log; None if none.

        The bytes are appended to the sidecar and fsynced before the log is
        truncated, so a crash in between loses nothing (the next open moves
        them again).
        """
        fd = self._writable()
        try:
            size = os.fstat(fd).st_size
            keep = _after_last_newline(fd, size)
            if keep == size:
                return None
            torn = os.pread(fd, size - keep, keep)
            sidecar = self._path.with_name(self._path.name + ".torn")
            existed = sidecar.exists()
            side = os.open(sidecar, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                offset = os.fstat(side).st_size
                os.write(side, torn)
                os.fsync(side)
            finally:
                os.close(side)
            if not existed:
                _sync_directory(sidecar.parent)
            os.ftruncate(fd, keep)
            os.fsync(fd)
        except OSError as exc:
            raise AuditError(f"{self._path}: cannot set aside the torn last line: {exc}") from exc
        return TornTail(
            size=len(torn),
            sha256=hashlib.sha256(torn).hexdigest(),
            log_offset=keep,
            sidecar=sidecar,
            sidecar_offset=offset,
        )

    def close(self) -> None:
        """Close the file and release the lock.  Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _writable(self) -> int:
        if self._fd is None:
            state = "opened read-only" if self._read_only else "closed"
            raise AuditError(f"{self._path}: the audit log is {state}")
        return self._fd

    def __repr__(self) -> str:
        return f"JSONLSink({str(self._path)!r}{', read_only=True' if self._read_only else ''})"


def _lines(path: Path) -> Iterator[bytes]:
    try:
        with open(path, "rb") as file:
            yield from file
    except OSError as exc:
        raise AuditError(f"{path}: cannot read the audit log: {exc.strerror}") from exc


def _after_last_newline(fd: int, size: int) -> int:
    """The offset just after the file's last newline (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        chunk = os.pread(fd, end - start, start)
        found = chunk.rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0


def _sync_directory(directory: Path) -> None:
    """fsync a directory, so a file just created in it survives a power loss."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # pragma: no cover - e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse; the data itself is synced
        pass
    finally:
        os.close(fd)
