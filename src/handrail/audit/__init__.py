"""The audit trail: hash-chained, redacted records of what agents did, as whom, and why.

See ``docs/audit.md``.  ``AuditLog.append`` takes an ``AuditEntry`` (built
with ``AuditEntry.of`` or ``AuditEntry.for_decision``) and returns the
``AuditRecord`` it stored in a ``Sink`` (``JSONLSink``, ``SQLiteSink``,
``MemorySink``); ``AuditLog.verify`` names the first record that breaks the
chain; ``AuditLog.checkpoint`` anchors it.
"""

from .._encoding import args_digest
from .._errors import AuditError, AuditIntegrityError
from ._entry import AuditEntry
from ._jsonl import JSONLSink
from ._log import AuditLog
from ._memory import MemorySink
from ._outcome import Outcome
from ._record import AuditRecord
from ._sink import FsyncMode, Sink
from ._sqlite import SQLiteSink
from ._verify import Checkpoint, ProblemKind, VerifyReport

__all__ = [
    "AuditEntry",
    "AuditError",
    "AuditIntegrityError",
    "AuditLog",
    "AuditRecord",
    "Checkpoint",
    "FsyncMode",
    "JSONLSink",
    "MemorySink",
    "Outcome",
    "ProblemKind",
    "SQLiteSink",
    "Sink",
    "VerifyReport",
    "args_digest",
]
