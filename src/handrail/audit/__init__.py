"""The audit trail: hash-chained, redacted records of what agents did, as whom, and why.

See ``docs/audit.md``.  ``AuditLog`` appends ``AuditRecord``\\ s to a
``Sink`` (``JSONLSink``, ``SQLiteSink``, ``MemorySink``); ``verify`` names
the first record that breaks the chain; ``checkpoint`` anchors it;
``handrail.audited`` (in ``handrail.guard``) records any function's calls.
"""

from .._errors import AuditError, AuditIntegrityError
from ._encoding import GENESIS_HASH, args_digest
from ._jsonl import JSONLSink, TornTail
from ._log import RECOVERED_ACTION, AuditLog, LogOptions, OutcomeFields, RecordFields
from ._memory import MemorySink
from ._record import AuditRecord, Outcome
from ._sink import FsyncMode, Sink
from ._sqlite import SQLiteSink
from ._verify import Checkpoint, ProblemKind, VerifyReport

__all__ = [
    "AuditError",
    "AuditIntegrityError",
    "AuditLog",
    "AuditRecord",
    "Checkpoint",
    "FsyncMode",
    "GENESIS_HASH",
    "JSONLSink",
    "LogOptions",
    "MemorySink",
    "Outcome",
    "OutcomeFields",
    "ProblemKind",
    "RECOVERED_ACTION",
    "RecordFields",
    "SQLiteSink",
    "Sink",
    "TornTail",
    "VerifyReport",
    "args_digest",
]
