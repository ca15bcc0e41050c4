"""The public surface: exactly what __all__ promises, and nothing heavy at import."""

import subprocess
import sys
import types

import handrail
import handrail.approvals
import handrail.audit
import handrail.clock
import handrail.connectors
import handrail.escalation
import handrail.guard
import handrail.identity
import handrail.permissions
import handrail.policy
import handrail.redaction
import handrail.resilience
import handrail.shadow
import handrail.telemetry
import handrail.testing
import handrail.testing.conformance
import handrail.testing.contracts
import handrail.web


def test_all_names_are_exported() -> None:
    """Every name in each public module's __all__ exists, and __all__ is sorted."""
    for module in (
        handrail,
        handrail.approvals,
        handrail.audit,
        handrail.clock,
        handrail.connectors,
        handrail.escalation,
        handrail.guard,
        handrail.identity,
        handrail.permissions,
        handrail.policy,
        handrail.redaction,
        handrail.resilience,
        handrail.shadow,
        handrail.telemetry,
        handrail.testing,
        handrail.testing.conformance,
        handrail.testing.contracts,
        handrail.web,
    ):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
        assert list(module.__all__) == sorted(module.__all__, key=lambda n: (n.islower(), n))


def test_top_level_public_names() -> None:
    """handrail's top level exports exactly __all__ (subpackages aside)."""
    public = {
        name
        for name, value in vars(handrail).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(handrail.__all__) - {"__version__"}


def test_import_is_light() -> None:
    """Importing handrail loads no YAML, Hypothesis, HTTP client or OpenTelemetry SDK, nor the
    escalation router, connectors, policy tests, the email package or the Unicode tables
    until they are used.

    Counted over what handrail's own dependencies load: an older structlog or tenacity (the
    minimum versions CI tests) may load the email package itself.
    """
    code = (
        "import sys; import pydantic, structlog, tenacity, opentelemetry.trace, "
        "opentelemetry.metrics; before = set(sys.modules); import handrail; "
        "print(sorted(m for m in ('yaml', 'hypothesis', 'httpx', 'opentelemetry.sdk', 'casbin',"
        " 'handrail.escalation', 'handrail.connectors', 'handrail.policy._cases',"
        " 'email.utils', 'difflib', 'unicodedata')"
        " if m in sys.modules and m not in before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


_BUILT_AT_IMPORT = """\
import sys
import pydantic
import handrail

built = sorted(
    f"{cls.__module__}.{cls.__qualname__}"
    for module in list(sys.modules.values())
    if module is not None and module.__name__.startswith("handrail")
    for cls in vars(module).values()
    if isinstance(cls, type)
    and issubclass(cls, pydantic.BaseModel)
    and cls.__module__ == module.__name__
    and cls.__pydantic_complete__
)
print(built)
"""


def test_import_builds_no_validator() -> None:
    """Importing handrail builds no pydantic validator: each model builds on its first use."""
    out = subprocess.run(
        [sys.executable, "-c", _BUILT_AT_IMPORT], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


_FIRST_USE = """\
from handrail import ActionRequest, Principal, Rule
from handrail.policy import AllOf, Compare, Not, Predicate

request = ActionRequest(principal=Principal(agent="bot"), action="refund.create")
predicate = Predicate(fn=lambda r: r.action == "refund.create", name="is_refund")
when = AllOf(conditions=[Not(condition=Compare(path="args.x", op="eq", value=1)), predicate])
rule = Rule(id="r", effect="allow", actions="refund.*", when=when)
print(rule.when.compile()(request), rule.principals.is_anyone)
"""


def test_deferred_models_resolve_their_forward_references() -> None:
    """In a fresh interpreter, the condition nodes build on first use and find ActionRequest."""
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_USE], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["None", "True"]


def test_connectors_public_names() -> None:
    """handrail.connectors offers what connector authors and users need: 31 names, no internals."""
    assert set(handrail.connectors.__all__) == {
        # writing a connector
        "BaseConnector",
        "Connector",
        "ConnectorDescription",
        "HTTPConnector",
        "Operation",
        "operation",
        # its errors
        "ConnectorError",
        "InvalidInput",
        "InvalidRecord",
        # credentials
        "CallableCredentials",
        "Credential",
        "CredentialProvider",
        "EnvCredentials",
        "FileCredentials",
        "OAuth2ClientCredentials",
        "credential_auth",
        # rate limits shared between connectors
        "RateLimits",
        "TokenBucket",
        "default_rate_limits",
        # the quarantine
        "JSONLQuarantine",
        "MemoryQuarantine",
        "QuarantineError",
        "QuarantineSink",
        "QuarantineWarning",
        "QuarantinedRecord",
        "SQLiteQuarantine",
        "open_quarantine",
        "validate_one",
        "validate_records",
        # testing agent code
        "FakeConnector",
        "fake_connector",
    }
    assert len(handrail.connectors.__all__) == 31
    public = {
        name
        for name, value in vars(handrail.connectors).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(handrail.connectors.__all__)


def test_audit_public_names() -> None:
    """handrail.audit exports what users of the audit trail need, and none of its internals."""
    assert set(handrail.audit.__all__) == {
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
    }
    internals = ("GENESIS_HASH", "LogOptions", "OutcomeFields", "RecordFields", "RECOVERED_ACTION")
    for internal in internals:
        assert not hasattr(handrail.audit, internal), internal


def test_effect_is_one_class() -> None:
    """handrail.Effect and handrail.policy.Effect are the same class, whichever module holds it."""
    assert handrail.Effect is handrail.policy.Effect
    assert handrail.audit.AuditRecord.model_fields["effect"].annotation == handrail.Effect | None
