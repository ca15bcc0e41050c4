"""examples/demo.py runs from the repository root and prints the tour it promises."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_and_prints_the_tour() -> None:
    """The demo exits 0 and prints the table, one explanation and full rule coverage."""
    result = subprocess.run(
        [sys.executable, "examples/demo.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    lines = out.splitlines()
    assert len(lines) < 100
    assert "\x1b" not in out  # no colour codes
    assert lines[0].startswith("policy 'crm-agent': 12 rules")
    assert lines[2].split() == ["who", "action", "details", "effect", "deciding", "rule"]
    row = next(line for line in lines if "discount_pct=35" in line)
    assert row.split()[-2:] == ["ESCALATE", "big-discount"]
    row = next(line for line in lines if "to_domain=mailinator.com" in line)
    assert row.split()[-2:] == ["DENY", "no-disposable-email"]
    assert "email.send by agent:sales-assistant for user:ivan: DENY" in out
    assert "policy tests: 23 cases, 0 failed; rule coverage 12/12 (100%)" in lines
    assert "  escalated to sales-managers: big-discount" in lines
    assert "  denied: no-deletes" in lines
    assert "attempts=2" in out  # the first CRM write failed with 503 and was retried
    assert "  audit log audit.jsonl: ok: 3 records verified" in lines
    # The escalation: opened, breached on the accelerated clock, approved from the CLI, run once.
    assert "[notify opened · level team-lead" in out
    assert "[notify escalated · level sales-director" in out
    you = pwd.getpwuid(os.geteuid()).pw_name  # the CLI decides as the OS user running it
    assert f"approved by {you} at level 1 (sales-director)" in out
    assert out.count("CRM PATCH /opportunities/opp-9") == 1
    assert "a second resume: AlreadyExecuted" in out
    assert any(
        line.endswith("opened@L0 → breached@L0 → escalated@L1 → approved@L1 → executed@L1")
        for line in lines
    )
    # The connector: messy contacts quarantined, one write shadowed, one applied.
    assert "read 57 contacts in pages of 25; 3 malformed set aside in quarantine" in out
    assert "— recorded, not sent" in out
    assert "the CRM applied 1 write" in out
