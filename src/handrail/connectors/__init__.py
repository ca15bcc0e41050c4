"""Connectors: typed, permissioned access to real systems, under the guard.

A connector declares its operations (``@operation`` methods with pydantic
input and output models); each call is validated against the input model,
turned into an ``ActionRequest`` and run by the ``Guard`` the connector
holds — policy, escalation, shadow mode, retries, one audit record — with
its output validated and invalid records quarantined.  ``HTTPConnector``
adds what is left of an HTTP API: auth, rate limits and breakers per host,
lazy pagination and the shadow-mode stop.  See ``docs/connectors.md``.
"""

from .._errors import ConnectorError, InvalidInput
from ._connector import BaseConnector, Connector, ConnectorDescription
from ._credentials import Credential, CredentialProvider, credential_auth
from ._fake import FakeConnector, fake_connector
from ._http import HTTPConnector
from ._oauth2 import OAuth2ClientCredentials
from ._operation import Operation, operation
from ._providers import CallableCredentials, EnvCredentials, FileCredentials
from ._quarantine import (
    JSONLQuarantine,
    MemoryQuarantine,
    QuarantineError,
    QuarantineSink,
    QuarantineWarning,
    SQLiteQuarantine,
    open_quarantine,
)
from ._quarantined import InvalidRecord, QuarantinedRecord
from ._ratelimit import RateLimits, TokenBucket, default_rate_limits
from ._validation import validate_one, validate_records

__all__ = [
    "BaseConnector",
    "CallableCredentials",
    "Connector",
    "ConnectorDescription",
    "ConnectorError",
    "Credential",
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
    "QuarantineError",
    "QuarantineSink",
    "QuarantineWarning",
    "QuarantinedRecord",
    "RateLimits",
    "SQLiteQuarantine",
    "TokenBucket",
    "credential_auth",
    "default_rate_limits",
    "fake_connector",
    "open_quarantine",
    "operation",
    "validate_one",
    "validate_records",
]
