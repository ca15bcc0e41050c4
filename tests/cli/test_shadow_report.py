"""``handrail shadow report``: what an agent in shadow mode would have written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from handrail import Policy, Principal, acting_as
from handrail.audit import AuditEntry, AuditLog
from handrail.cli import main
from handrail.guard import Guard
from handrail.shadow import ShadowIntercepted, ShadowRequest, in_shadow

POLICY = Policy.from_yaml("rules:\n  - {id: crm, effect: allow, actions: ['crm.*.*']}\n")


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path) as log:
        guard = Guard(POLICY, audit=log, shadow=True)

        @guard.protect(
            "crm.contact.update",
            resource=lambda contact_id, **_: {"type": "contact", "id": contact_id},
            is_write=True,
            shadow_aware=True,
        )
        def update(contact_id: str, email: str, token: SecretStr) -> None:
            if in_shadow():
                raise ShadowIntercepted(
                    ShadowRequest(
                        method="PATCH", url=f"https://crm/c/{contact_id}", body={"email": email}
                    )
                )

        @guard.protect("crm.note.create", is_write=True)
        def note(text: str) -> None:
            raise AssertionError("never runs in shadow mode")

        @guard.protect("crm.contact.read")
        def read(contact_id: str) -> str:
            return contact_id

        with acting_as(Principal(agent="sales-bot", on_behalf_of="alice")):
            update("c-1", "a@acme.com", SecretStr("sek-99887766"))
            update("c-2", "b@acme.com", SecretStr("sek-99887766"))
            update("c-1", "c@acme.com", SecretStr("sek-99887766"))
            note("called back")
            read("c-1")
    return path


def test_the_report_summarises_per_action_and_lists_each_intent(
    log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["shadow", "report", str(log_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"4 shadowed writes in {log_path}"
    assert lines[1].split() == ["ACTION", "WRITES", "RESOURCES", "AGENTS", "FIRST", "LAST"]
    assert lines[2].split()[:3] == ["crm.contact.update", "3", "2"]
    assert lines[3].split()[:3] == ["crm.note.create", "1", "0"]
    assert "PATCH https://crm/c/c-1  body={'email': 'a@acme.com'}" in out
    assert "args={'text': 'called back'}" in out
    assert "crm.contact.read" not in out
    assert "sek-99887766" not in out


def test_json_and_filters(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shadow", "report", str(log_path), "--json", "--action", "crm.contact.*"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [a["action"] for a in data["actions"]] == ["crm.contact.update"]
    assert data["actions"][0]["agents"] == ["sales-bot for alice"]
    assert data["intents"][0]["request"]["method"] == "PATCH"
    assert data["intents"][0]["args"]["token"] == "***"
    assert main(["shadow", "report", str(log_path), "--summary"]) == 0
    assert "PATCH" not in capsys.readouterr().out


def test_no_shadowed_writes_and_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    AuditLog.jsonl(empty).close()
    assert main(["shadow", "report", str(empty)]) == 0
    assert capsys.readouterr().out == "no shadowed writes\n"
    assert main(["shadow", "report", str(tmp_path / "missing.jsonl")]) == 2
    assert "no audit log" in capsys.readouterr().err
    assert main(["shadow", "report", str(empty), "--since", "yesterday-ish"]) == 2


def test_a_quarantine_file_is_an_error_not_an_empty_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file of other records: exit 1 saying it is no audit log, not 'no shadowed writes'."""
    path = tmp_path / "quarantine.jsonl"
    path.write_text('{"id": "q1", "connector": "crm", "operation": "list", "raw": {}}\n')
    assert main(["shadow", "report", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"error: {path} is not a handrail audit log (line 1: no 'action' field)\n"


def test_deep_json_is_an_error_not_a_traceback(
    log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line nested 100,000 deep after the records: exit 1 naming it, no RecursionError."""
    with log_path.open("ab") as file:
        file.write(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    assert main(["shadow", "report", str(log_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err == f"error: {log_path}:6: record #5 is unreadable: its JSON nests too deeply to read\n"
    )


def test_what_the_agent_wrote_is_printed_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Control, C1, bidi and zero-width characters in intents show escaped, in table and list."""
    path = tmp_path / "audit.jsonl"
    with AuditLog.jsonl(path) as log:
        log.append(
            AuditEntry.of(
                Principal.model_construct(agent="bot\x1b[2J", roles=frozenset()),
                "crm.contact.update",
                "shadowed",
                resource={"type": "contact", "id": "c\u202e1"},
                args={"note": "hi\n2025-01-01 00:00:00Z  crm.contact.delete  admin\x9b\u200d"},
            )
        )
    assert main(["shadow", "report", str(path)]) == 0
    out = capsys.readouterr().out
    assert all(line.isprintable() for line in out.splitlines())
    assert out.count("\n") == 5  # title, header, one action, blank, one intent
    assert "bot\\x1b[2J" in out
    assert "contact:c\\u202e1" in out
    assert "hi\\n2025-01-01" in out
    assert "admin\\x9b\\u200d" in out
