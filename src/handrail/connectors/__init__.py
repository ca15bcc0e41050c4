"""Connectors: typed, permissioned access to real systems.

A connector declares its operations (``@operation`` methods with pydantic
input and output models); ``BaseConnector`` guards every call — policy,
audit, retries, circuit breaker, shadow mode, output validation with
quarantine — so the author writes only the part that talks to the system.
See ``docs/connectors.md``.
"""

from .._errors import CredentialError, InvalidInput
from ..shadow import ShadowResult
from ._connector import AsyncRecords, BaseConnector, Connector, ConnectorDescription
from ._credentials import (
    CallableCredentials,
    Credential,
    CredentialKind,
    CredentialProvider,
    EnvCredentials,
    FileCredentials,
    OAuth2ClientCredentials,
    credential_auth,
)
from ._fake import FakeConnector, fake_connector
from ._operation import Operation, OperationKind, OperationMethod, Validation, operation
from ._quarantine import (
    InvalidRecord,
    JSONLQuarantine,
    MemoryQuarantine,
    QuarantinedRecord,
    QuarantineError,
    QuarantineSink,
    QuarantineWarning,
    RecordError,
    SQLiteQuarantine,
    ValidatedRecords,
    keep_extra,
    open_quarantine,
    validate_one,
    validate_records,
)

__all__ = [
    "AsyncRecords",
    "BaseConnector",
    "CallableCredentials",
    "Connector",
    "ConnectorDescription",
    "Credential",
    "CredentialError",
    "CredentialKind",
    "CredentialProvider",
    "EnvCredentials",
    "FakeConnector",
    "FileCredentials",
    "InvalidInput",
    "InvalidRecord",
    "JSONLQuarantine",
    "MemoryQuarantine",
    "OAuth2ClientCredentials",
    "Operation",
    "OperationKind",
    "OperationMethod",
    "QuarantineError",
    "QuarantineSink",
    "QuarantineWarning",
    "QuarantinedRecord",
    "RecordError",
    "SQLiteQuarantine",
    "ShadowResult",
    "ValidatedRecords",
    "Validation",
    "credential_auth",
    "fake_connector",
    "keep_extra",
    "open_quarantine",
    "operation",
    "validate_one",
    "validate_records",
]
