"""Connectors: typed, permissioned access to real systems.

A connector declares its operations (``@operation`` methods with pydantic
input and output models); ``BaseConnector`` guards every call — policy,
audit, retries, circuit breaker, shadow mode, output validation with
quarantine — so the author writes only the part that talks to the system.
See ``docs/connectors.md``.
"""

from .._errors import ConnectorError, CredentialError, InvalidInput
from ..shadow import ShadowResult
from ._connector import AsyncRecords, BaseConnector, Connector, ConnectorDescription
from ._credentials import Credential, CredentialKind, CredentialProvider, credential_auth
from ._fake import FakeConnector, fake_connector
from ._http import HTTPConnector
from ._oauth2 import OAuth2ClientCredentials
from ._operation import Operation, OperationKind, OperationMethod, Validation, operation
from ._pagination import (
    AsyncPages,
    Page,
    Pages,
    acursor_pages,
    alink_pages,
    aoffset_pages,
    current_page_source,
    cursor_pages,
    link_pages,
    offset_pages,
    shown_url,
)
from ._providers import CallableCredentials, EnvCredentials, FileCredentials
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
from ._ratelimit import RateLimits, TokenBucket, default_rate_limits

__all__ = [
    "AsyncPages",
    "AsyncRecords",
    "BaseConnector",
    "CallableCredentials",
    "Connector",
    "ConnectorDescription",
    "ConnectorError",
    "Credential",
    "CredentialError",
    "CredentialKind",
    "CredentialProvider",
    "EnvCredentials",
    "FakeConnector",
    "FileCredentials",
    "HTTPConnector",
    "InvalidInput",
    "InvalidRecord",
    "JSONLQuarantine",
    "MemoryQuarantine",
    "OAuth2ClientCredentials",
    "Operation",
    "OperationKind",
    "OperationMethod",
    "Page",
    "Pages",
    "QuarantineError",
    "QuarantineSink",
    "QuarantineWarning",
    "QuarantinedRecord",
    "RateLimits",
    "RecordError",
    "SQLiteQuarantine",
    "ShadowResult",
    "TokenBucket",
    "ValidatedRecords",
    "Validation",
    "acursor_pages",
    "alink_pages",
    "aoffset_pages",
    "credential_auth",
    "current_page_source",
    "cursor_pages",
    "default_rate_limits",
    "fake_connector",
    "keep_extra",
    "link_pages",
    "offset_pages",
    "open_quarantine",
    "operation",
    "shown_url",
    "validate_one",
    "validate_records",
]
