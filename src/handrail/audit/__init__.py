"""The audit trail: hash-chained, redacted records of what agents did, as whom, and why.

See ``docs/audit.md``.  ``AuditLog`` appends ``AuditRecord``\\ s to a
``Sink`` (``JSONLSink``, ``SQLiteSink``, ``MemorySink``); ``verify`` names
the first record that breaks the chain; ``checkpoint`` anchors it;
``@audited`` records any function's calls.
"""

from .._encoding import args_digest
from .._errors import AuditError, AuditIntegrityError
from ._audited import audited
from ._jsonl import JSONLSink, TornTail
from ._line import GENESIS_HASH
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
    "audited",
]
