"""The public surface: exactly what __all__ promises, and nothing heavy at import."""

import subprocess
import sys
import types

import handrail
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


def test_all_names_are_exported() -> None:
    """Every name in each public module's __all__ exists, and __all__ is sorted."""
    for module in (
        handrail,
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
    escalation router or connectors until they are used."""
    code = (
        "import sys, handrail; "
        "print(sorted(m for m in ('yaml', 'hypothesis', 'httpx', 'opentelemetry.sdk', 'casbin',"
        " 'handrail.escalation', 'handrail.connectors')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
