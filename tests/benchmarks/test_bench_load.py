"""bench_load.py runs and reports; --quick figures mean nothing, so no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_load_quick_reports_every_row_and_judges_nothing() -> None:
    """--quick --json: every contender's median, the loaders agree, the bomb is refused."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_load.py"), "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    names = {row["contender"] for row in result["rows"]}
    assert names >= {
        "handrail Policy.from_yaml",
        "handrail Policy.from_dict (parsed data)",
        "handrail Policy.from_toml",
    }
    assert all(row["median_s"] > 0 for row in result["rows"])
    assert result["agreed"] is True
    assert result["passed"] is None
    assert result["figures"]["billion_laughs_refused_s"] > 0
