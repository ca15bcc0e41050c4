"""Checking a log's hash chain: ``VerifyReport``, ``Checkpoint`` and the pure verifier.

No I/O: ``verify_lines`` reads an iterable of stored lines.  Records are
numbered by position from 0 (``record #0`` is the first line of a JSONL file).

How the first problem is named:

* ``torn``: the last line has no newline: a write was cut short (a crash).
* ``corrupt``: a complete line that is not a record (not UTF-8, not JSON, no
  ``hash``, ``seq`` or ``prev_hash``).
* ``edited``: a record whose ``hash`` does not match its content, or whose
  bytes are not the canonical encoding of it; or a record that does not
  follow the one before it (its ``prev_hash`` differs from that record's
  hash) although both are intact, meaning one was rewritten and re-hashed.
* ``deleted``: the record at position *i* has a ``seq`` above *i*, and no
  record anywhere later has seq *i*: records are missing.  Against a
  checkpoint, a log with fewer records than the checkpoint counts was cut.
* ``reordered``: the record at *i* has a ``seq`` above *i*, seq *i* turns up
  later, and no other record claims the same seq: records were moved.
* ``inserted``: the record at *i* has a ``seq`` below *i* (its seq is taken),
  or one that another record further on also claims.

A chain alone cannot show that records were removed from, or rewritten at,
its end: anyone who can write the file can recompute the hashes from any
point onwards.  A ``Checkpoint`` kept elsewhere closes that gap for
everything before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from .._errors import AuditIntegrityError
from ._line import GENESIS_HASH, check_line

__all__ = ["Anchor", "Checkpoint", "ProblemKind", "VerifyReport", "verify_lines"]

ProblemKind = Literal["edited", "deleted", "inserted", "reordered", "torn", "corrupt"]
"""What ``verify`` found wrong with a record (``VerifyReport.problem.kind``)."""


class Checkpoint(BaseModel):
    """An anchor: the log had ``count`` records, the last with hash ``head_hash``.

    Store it somewhere the log's writer cannot change (another system, a
    ticket, a signed email): verifying against it later proves that none of
    those ``count`` records changed.  ``model_dump_json()`` and
    ``Checkpoint.model_validate_json(text)`` write and read it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    count: int = Field(ge=0)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of verifying a log: ``ok``, or the first problem and where it is.

    ``count`` records verified, in order from the first; ``head_hash`` is the
    hash of the last of them.  When not ``ok``: ``first_bad_index`` is the
    position of the first record that breaks the chain, ``kind`` says what
    was found (``edited``, ``deleted``, ``inserted``, ``reordered``, ``torn``
    or ``corrupt``), ``message`` explains, and ``record`` is that record as
    parsed (None if unreadable).
    """

    ok: bool
    count: int
    head_hash: str
    message: str
    first_bad_index: int | None = None
    kind: ProblemKind | None = None
    record: Mapping[str, Any] | None = None
    path: Path | None = None

    def raise_for_problem(self) -> None:
        """Raise ``AuditIntegrityError`` (with ``.path``, ``.index``, ``.kind``) unless ``ok``."""
        if not self.ok:
            raise AuditIntegrityError(
                str(self), path=self.path, index=self.first_bad_index, kind=self.kind or ""
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the bad record itself left out: it may be large)."""
        return {
            "path": None if self.path is None else str(self.path),
            "ok": self.ok,
            "count": self.count,
            "head_hash": self.head_hash,
            "first_bad_index": self.first_bad_index,
            "kind": self.kind,
            "message": self.message,
        }

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        return f"{where}{self.message}"


class Anchor(NamedTuple):
    """A known head: the log's first ``records`` records end in ``head_hash``, says ``owner``.

    ``owner`` names whoever knows, for messages: "the checkpoint of ...",
    "this writer".  ``holds`` is how ``owner`` says it holds records.
    """

    records: int
    head_hash: str
    owner: str
    holds: str

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> Anchor:
        """The anchor a checkpoint sets."""
        owner = f"the checkpoint of {checkpoint.created_at.isoformat()}"
        return cls(checkpoint.count, checkpoint.head_hash, owner, f"{owner} counts")


def verify_lines(
    lines: Iterable[bytes],
    *,
    against: Checkpoint | None = None,
    path: Path | None = None,
    anchors: Sequence[Anchor] = (),
) -> VerifyReport:
    """Verify stored lines (each ending in ``b"\\n"``); report the first problem.

    With ``against`` (and any other ``anchors``), also check that the log
    still holds the records each anchor covers, ending in its head hash.
    Reads ``lines`` once; after a problem it reads on only as far as needed
    to name it.
    """
    known = [Anchor.of(against)] if against is not None else []
    known += anchors
    # Several anchors may stand at the same count (a checkpoint taken at the
    # writer's current head): every one of them is checked, none replaces another.
    heads: dict[int, list[Anchor]] = {}
    for known_anchor in known:
        heads.setdefault(known_anchor.records, []).append(known_anchor)
    rest = iter(lines)
    head = GENESIS_HASH
    count = 0
    for zero in heads.get(0, ()):
        if zero.head_hash != GENESIS_HASH:
            return _bad(path, 0, head, 0, "edited", None, _anchor_message(zero, 0, head))

    for raw in rest:
        index = count
        if not raw.endswith(b"\n"):
            return _bad(
                path, count, head, index, "torn", None,
                f"record #{index}, the last line, is torn: {len(raw)} bytes without a newline, "
                "as a crash mid-write leaves them; the records before it verify, and reopening "
                "the log moves the torn bytes to a .torn file and records that it did",
            )  # fmt: skip
        fields, problem = check_line(raw[:-1])
        if fields is None:
            return _bad(
                path, count, head, index, "corrupt", None,
                f"record #{index} is unreadable: not a JSON object with a hash",
            )  # fmt: skip
        if problem is not None:
            why = (
                "its content does not match its hash"
                if problem == "hash"
                else "its bytes are not the canonical encoding of its content"
            )
            return _bad(
                path, count, head, index, "edited", fields, f"record #{index} was edited: {why}"
            )
        seq, prev = fields.get("seq"), fields.get("prev_hash")
        if type(seq) is not int or type(prev) is not str:
            return _bad(
                path, count, head, index, "corrupt", fields,
                f"record #{index} is not an audit record: it has no integer seq and prev_hash",
            )  # fmt: skip
        if seq == index and prev == head:
            digest: str = fields["hash"]
            for anchor in heads.get(index + 1, ()):
                if digest != anchor.head_hash:
                    message = _anchor_message(anchor, index, digest)
                    return _bad(path, count, head, index, "edited", fields, message)
            head = digest
            count += 1
            continue
        kind, message = _classify(index, seq, prev, head, rest)
        return _bad(path, count, head, index, kind, fields, message)

    for anchor in sorted(known):
        if count < anchor.records:
            return _bad(
                path, count, head, count, "deleted", None,
                f"{anchor.holds} {anchor.records} records, but the log holds only {count}: "
                f"the last {anchor.records - count} were deleted",
            )  # fmt: skip
    anchored = f", {against.count} of them matching the checkpoint" if against is not None else ""
    noun = "record" if count == 1 else "records"
    return VerifyReport(
        ok=True,
        count=count,
        head_hash=head,
        message=f"ok: {count} {noun} verified{anchored}",
        path=path,
    )


def _classify(
    index: int, seq: int, prev: str, head: str, rest: Iterator[bytes]
) -> tuple[ProblemKind, str]:
    """Name a chain break at ``index`` (seq ``seq``), reading the rest of the log if needed."""
    if seq < index:
        return "inserted", (
            f"record #{index} has seq {seq}, which record #{seq} already has: "
            "a record was inserted (or copied) here"
        )
    if seq == index:
        if _later_seqs(rest, {index})[index]:
            return "inserted", (
                f"record #{index} does not follow record #{index - 1}, and a later record also "
                f"has seq {index}: a record was inserted here"
            )
        return "edited", (
            f"record #{index} does not follow record #{index - 1} (its prev_hash is "
            f"{prev[:12]}..., the hash of record #{index - 1} is {head[:12]}...): one of them "
            "was rewritten and re-hashed"
        )
    later = _later_seqs(rest, {index, seq})
    if not later[index]:
        missing = seq - index
        noun = "record is" if missing == 1 else "records are"
        return "deleted", (
            f"record #{index} has seq {seq}, and seq {index} appears nowhere: "
            f"{missing} {noun} missing before it"
        )
    if later[seq]:
        return "inserted", (
            f"record #{index} has seq {seq}, which a later record also has: "
            "a record was inserted here"
        )
    return "reordered", (
        f"record #{index} has seq {seq}, but seq {index} comes later: records were reordered"
    )


def _later_seqs(rest: Iterator[bytes], wanted: set[int]) -> dict[int, bool]:
    """For each seq in ``wanted``: whether a later line carries it (unreadable lines ignored)."""
    found = dict.fromkeys(wanted, False)
    for raw in rest:
        try:
            seq = json.loads(raw).get("seq")
        except (ValueError, AttributeError, RecursionError):
            continue
        if type(seq) is int and seq in found:
            found[seq] = True
            if all(found.values()):
                break
    return found


def _anchor_message(anchor: Anchor, index: int, head: str) -> str:
    return (
        f"record #{index} has hash {head[:12]}..., but {anchor.owner} has "
        f"{anchor.head_hash[:12]}... there: records up to #{index} were rewritten and "
        "re-hashed since"
    )


def _bad(
    path: Path | None,
    count: int,
    head: str,
    index: int,
    kind: ProblemKind,
    record: Mapping[str, Any] | None,
    message: str,
) -> VerifyReport:
    return VerifyReport(
        ok=False,
        count=count,
        head_hash=head,
        message=message,
        first_bad_index=index,
        kind=kind,
        record=record,
        path=path,
    )
