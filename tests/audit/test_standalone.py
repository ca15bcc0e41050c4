"""The audit package stands alone: it records decisions without importing policy or permissions."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import handrail.audit

# In a fresh interpreter, with handrail's and handrail.audit's __init__ left out
# (they re-export the rest of the library, and @audited, which the guard is taking
# over), import every module of the audit package and list what came with it.
PROBE = """
import importlib, json, sys, types
for name, path in (("handrail", {root!r}), ("handrail.audit", {package!r})):
    stub = types.ModuleType(name)
    stub.__path__ = [path]
    sys.modules[name] = stub
for module in {modules!r}:
    importlib.import_module("handrail.audit." + module)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("handrail."))))
"""


def test_no_audit_module_imports_policy_or_permissions() -> None:
    """Importing every audit module (but _audited) loads neither handrail.policy nor
    handrail.permissions."""
    package = Path(handrail.audit.__file__).parent
    modules = sorted(m.name for m in pkgutil.iter_modules([str(package)]) if m.name != "_audited")
    assert {"_entry", "_log", "_record", "_verify"} <= set(modules)
    code = PROBE.format(root=str(package.parent), package=str(package), modules=modules)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert "handrail.audit._log" in loaded  # the probe did import the modules
    assert not [m for m in loaded if m.startswith(("handrail.policy", "handrail.permissions"))]
