"""examples/demo.py runs from the repository root and prints the tour it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_and_prints_the_tour() -> None:
    """The demo exits 0 and prints the table, one explanation, full rule coverage, and an
    escalation approved through a signed link on the approval page."""
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
    # The escalation: opened, breached on the accelerated clock, moved up to the director.
    assert "[notify opened · level team-lead" in out
    escalated = next(line for line in lines if "[notify escalated · level sales-director" in line)
    assert escalated.endswith("; links for dana, li, maria]")  # who got a link, never a link
    assert "/link/" not in escalated
    # Dana's own link, from her mailbox, opened on the approval page: the real arguments.
    assert "  dana's mailbox: her signed link https://approvals.acme.com/link/" in out
    opened = lines.index(
        "  she opens it: HTTP 200, crm.opportunity.update for alice by sales-assistant, state open"
    )
    assert lines[opened + 1] == "    arguments: opportunity_id = opp-9; discount_pct = 35"
    assert lines[opened + 2] == (
        "  she approves with a reason: HTTP 200, Approved by dana. This link is now used."
    )
    # Spent and forged links are refused, and nothing more is decided.
    assert lines[opened + 3] == (
        "  the same link again: HTTP 403, link already used"
    )
    forged = lines[opened + 4]
    assert forged.startswith("  a forged link (one character changed): HTTP 403, bad signature")
    # The approval went through the link: the history says how dana was verified.
    approved = next(line for line in lines if " approved " in line and "(sales-director)" in line)
    assert re.search(r" dana \(signed-link token [0-9a-f]{32}\)  multi-year renewal", approved)
    assert "outcome:        approved by dana at " in out
    # The retried call runs once, after the approval.
    assert out.count("CRM PATCH /opportunities/opp-9") == 1
    assert out.index("CRM PATCH /opportunities/opp-9") > out.index("  she approves with")
    assert "a second resume: AlreadyExecuted" in out
    assert any(
        line.endswith("opened@L0 → breached@L0 → escalated@L1 → approved@L1 → executed@L1")
        for line in lines
    )
    # The connector: messy contacts quarantined, one write shadowed, one applied.
    assert "read 57 contacts in pages of 25; 3 malformed set aside in quarantine" in out
    assert "— recorded, not sent" in out
    assert "the CRM applied 1 write" in out
