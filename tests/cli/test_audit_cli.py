"""The `handrail audit` commands: verify, checkpoint, tail, query; exit codes and usage errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from handrail import Principal
from handrail.audit import AuditEntry, AuditLog
from handrail.cli import main
from handrail.testing import FakeClock

BOT = Principal(agent="billing-bot", on_behalf_of="alice")
START = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def write_log(path: Path, count: int = 6) -> None:
    """A log of ``count`` records a minute apart: reads, updates and a failure."""
    clock = FakeClock(START)
    with AuditLog.open(path, clock=clock) as log:
        for i in range(count):
            failed = i == count - 1
            log.append(
                AuditEntry.of(
                    BOT if i % 2 else Principal(agent="mail-bot"),
                    ("crm.contact.read", "billing.invoice.update")[i % 2],
                    "failed" if failed else "executed",
                    effect="allow",
                    rule_id="r1",
                    args={"i": i},
                    duration=dt.timedelta(milliseconds=20),
                    error=TimeoutError("upstream timed out") if failed else None,
                )
            )
            clock.advance(dt.timedelta(minutes=1))


@pytest.fixture(params=["jsonl", "sqlite"])
def log_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A six-record log in each format."""
    path = tmp_path / ("audit.jsonl" if request.param == "jsonl" else "audit.db")
    write_log(path)
    return path


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    """A six-record JSONL log."""
    path = tmp_path / "audit.jsonl"
    write_log(path)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run a command that must fail as a usage error, and return its one line."""
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.count("\n") == 1
    return err.strip()


# -- verify --------------------------------------------------------------------


def test_verify_an_intact_log(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An intact log: exit 0 and 'PATH: ok: N records verified'."""
    assert run(["audit", "verify", str(log_path)], capsys) == (
        0,
        f"{log_path}: ok: 6 records verified\n",
        "",
    )


def test_verify_names_the_first_problem(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tampered log: exit 1 and one line on stderr naming the record and what happened."""
    lines = jsonl.read_bytes().splitlines(keepends=True)
    jsonl.write_bytes(b"".join(lines[:2] + lines[3:]))
    code, out, err = run(["audit", "verify", str(jsonl)], capsys)
    assert (code, out) == (1, "")
    missing = "record #2 has seq 3, and seq 2 appears nowhere: 1 record is missing before it"
    assert err == f"{jsonl}: {missing}\n"


def test_verify_as_json(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the report: ok, count, head hash, first bad index, kind, message."""
    with jsonl.open("ab") as file:
        file.write(b'{"torn')
    code, out, _ = run(["audit", "verify", str(jsonl), "--json"], capsys)
    report = json.loads(out)
    assert code == 1
    assert (report["ok"], report["count"], report["kind"], report["first_bad_index"]) == (
        False,
        6,
        "torn",
        6,
    )
    assert report["path"] == str(jsonl)


def test_checkpoint_then_verify_against_it(
    log_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """checkpoint --out writes an anchor; verify --against it passes, then catches a cut."""
    anchor = tmp_path / "anchor.json"
    code, out, _ = run(["audit", "checkpoint", str(log_path), "--out", str(anchor)], capsys)
    assert code == 0
    assert out.startswith(f"{anchor}: checkpoint of 6 records, head ")
    assert json.loads(anchor.read_text())["count"] == 6
    code, out, _ = run(["audit", "verify", str(log_path), "--against", str(anchor)], capsys)
    assert (code, out) == (
        0,
        f"{log_path}: ok: 6 records verified, 6 of them matching the checkpoint\n",
    )
    if log_path.suffix == ".jsonl":
        lines = log_path.read_bytes().splitlines(keepends=True)
        log_path.write_bytes(b"".join(lines[:-1]))
        code, _, err = run(["audit", "verify", str(log_path), "--against", str(anchor)], capsys)
        assert code == 1
        assert "counts 6 records, but the log holds only 5: the last 1 were deleted" in err


def test_checkpoint_prints_json(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --out the checkpoint goes to stdout as JSON."""
    code, out, _ = run(["audit", "checkpoint", str(jsonl)], capsys)
    assert code == 0
    assert set(json.loads(out)) == {"count", "head_hash", "created_at"}


def test_no_checkpoint_of_a_tampered_log(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log that fails verification gets no checkpoint: exit 1, and why."""
    jsonl.write_bytes(jsonl.read_bytes().replace(b'"i":1', b'"i":7'))
    code, out, err = run(["audit", "checkpoint", str(jsonl)], capsys)
    assert (code, out) == (1, "")
    assert err.startswith("no checkpoint taken: ")
    assert "record #1 was edited" in err


# -- tail and query ----------------------------------------------------------------


def test_tail_prints_the_last_records(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tail -n 2: the last two records, one line each: when, seq, outcome, action, who, why."""
    code, out, err = run(["audit", "tail", str(log_path), "-n", "2"], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "2025-03-01 12:04:00.000Z  #4  executed  crm.contact.read  mail-bot  allow by rule 'r1'"
        "  20.0 ms",
        "2025-03-01 12:05:00.000Z  #5  failed  billing.invoice.update  billing-bot for alice"
        "  allow by rule 'r1'  20.0 ms  TimeoutError: upstream timed out",
    ]


def test_tail_tells_a_calls_record_from_its_cases_and_shows_what_a_read_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The case's id, real attempts, a lazy read's counts and a shadowed escalation's route."""
    path = tmp_path / "audit.jsonl"
    bot = Principal(agent="support-bot")
    with AuditLog.jsonl(path, clock=FakeClock()) as log:
        log.append(AuditEntry.of(bot, "billing.refund.create", "escalated", escalation_id="E1"))
        log.append(AuditEntry.of(bot, "billing.refund.create", "opened", escalation_id="E1"))
        log.append(
            AuditEntry.of(
                bot, "crm.contact.list", "executed", attempts=4,
                details={"records": 57, "pages": 3, "quarantined": 3},
            )
        )  # fmt: skip
        log.append(
            AuditEntry.of(
                bot, "billing.refund.create", "shadowed",
                details={"escalation": {"route": "leads", "level": 0, "deciders": ["lena"]}},
            )
        )  # fmt: skip
    code, out, _ = run(["audit", "tail", str(path)], capsys)
    lines = out.splitlines()
    assert code == 0
    assert "escalated  billing.refund.create  support-bot  case E1" in lines[0]
    assert "opened  billing.refund.create  support-bot  case E1" in lines[1]
    assert lines[2].endswith("4 attempts  pages=3 quarantined=3 records=57")  # canonical order
    assert lines[3].endswith("would escalate to leads")


def test_tail_json_prints_the_stored_lines(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints each record exactly as stored: JSON lines a machine can read."""
    code, out, _ = run(["audit", "tail", str(jsonl), "--json", "-n", "3"], capsys)
    assert code == 0
    assert out.encode() == b"".join(jsonl.read_bytes().splitlines(keepends=True)[-3:])


def test_tail_warns_of_a_torn_tail(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A torn last line is reported on stderr after the complete records: never silent."""
    with jsonl.open("ab") as file:
        file.write(b'{"act')
    code, out, err = run(["audit", "tail", str(jsonl), "-n", "1"], capsys)
    assert code == 0
    assert out.count("\n") == 1
    assert err.startswith("warning: ")
    assert "torn" in err


def test_query_filters(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """query --action, --agent, --outcome, --since and --until combine."""

    def seqs(*extra: str) -> list[str]:
        code, out, _ = run(["audit", "query", str(log_path), *extra], capsys)
        assert code == 0
        return [line.split()[2] for line in out.splitlines()]

    assert seqs("--action", "crm.*") == ["#0", "#2", "#4"]
    assert seqs("--agent", "billing-bot", "--outcome", "failed") == ["#5"]
    assert seqs("--since", "2025-03-01T12:02:00Z", "--until", "2025-03-01T12:04:00") == ["#2", "#3"]
    assert seqs("--since", "1h") == []
    assert seqs("--since", "1000w") == ["#0", "#1", "#2", "#3", "#4", "#5"]


def test_query_json_is_one_record_per_line(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json output is JSON Lines of the matching records."""
    code, out, _ = run(["audit", "query", str(jsonl), "--outcome", "failed", "--json"], capsys)
    assert code == 0
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["error_type"] == "TimeoutError"


def test_query_reports_an_unreadable_record(
    jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A complete line that is not a record: exit 1 with an error naming it."""
    with jsonl.open("ab") as file:
        file.write(b"not json\n")
    code, _, err = run(["audit", "query", str(jsonl)], capsys)
    assert code == 1
    assert err.startswith("error: ")
    assert "record #6 is unreadable" in err


# -- usage errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "verify", "{tmp}/missing.jsonl"], "argument PATH: no audit log at"),
        (["audit", "tail", "{log}", "-n", "many"], "argument -n: expected a whole number"),
        (["audit", "tail", "{log}", "-n", "-3"], "argument -n: expected 0 or more"),
        (
            ["audit", "query", "{log}", "--since", "last tuesday"],
            "argument --since: expected an ISO",
        ),
        (
            ["audit", "query", "{log}", "--outcome", "exploded"],
            "argument --outcome: invalid choice",
        ),
        (["audit", "query", "{log}", "--since", "1h", "--until", "2h"], "--until: must be later"),
        (["audit", "verify", "{log}", "--against", "{log}"], "argument --against: "),
        (["audit", "verify", "{log}", "--against", "{tmp}/none.json"], "cannot read"),
        (["audit", "checkpoint", "{log}", "--out", "{tmp}/no/such/dir.json"], "cannot write"),
        (["audit"], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(
    argv: list[str], message: str, jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every usage error is one line on stderr naming the argument, exit 2, no traceback."""
    filled = [a.format(tmp=jsonl.parent, log=jsonl) for a in argv]
    assert message in usage_error(filled, capsys)


def test_python_dash_m_verifies_in_a_fresh_process(jsonl: Path) -> None:
    """`python -m handrail audit verify` runs in a fresh process and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "handrail", "audit", "verify", str(jsonl)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{jsonl}: ok: 6 records verified\n"


# -- hostile arguments and files: one line, exit 1 or 2, never a traceback -----------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "query", "{log}", "--since", "3000000d"], "reaches back before the year 1"),
        (["audit", "query", "{log}", "--since", "9" * 30 + "s"], "reaches back before the year 1"),
        (
            ["audit", "query", "{log}", "--until", "0001-01-01T00:00:00+05:00"],
            "is out of range in UTC",
        ),
        (["shadow", "report", "{log}", "--since", "3000000d"], "reaches back before the year 1"),
        (["audit", "tail", "{log}", "-n", "9" * 5000], "expected a whole number"),
        (["audit", "verify", "{tmp}"], "is a directory; expected an audit log file"),
        (["audit", "tail", "{tmp}"], "is a directory; expected an audit log file"),
        (["shadow", "report", "{tmp}"], "is a directory; expected an audit log file"),
    ],
)
def test_out_of_range_arguments_and_directories_are_usage_errors(
    argv: list[str], message: str, jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spans past year 1, times out of range, directories: exit 2, one line, no traceback."""
    filled = [a.format(tmp=jsonl.parent, log=jsonl) for a in argv]
    assert message in usage_error(filled, capsys)


def test_tail_takes_a_count_larger_than_any_log(
    jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-n 99999999999999999999 means all of it: exit 0, every record."""
    code, out, err = run(["audit", "tail", str(jsonl), "-n", "99999999999999999999"], capsys)
    assert (code, err, out.count("\n")) == (0, "", 6)


def test_a_dropped_sqlite_table_is_an_integrity_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An SQLite log whose table was dropped: exit 1 (integrity), not 2 (usage), for all readers."""
    path = tmp_path / "audit.db"
    write_log(path)
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE audit_records")
    connection.close()
    for command in (["audit", "verify"], ["audit", "tail"], ["shadow", "report"]):
        code, out, err = run([*command, str(path)], capsys)
        assert (code, out) == (1, "")
        assert err == (
            f"error: {path}: cannot read the audit database: it has no audit_records table "
            "(not a handrail audit log, or its table was dropped)\n"
        )


def quarantine_file(path: Path) -> Path:
    """A quarantine file: JSON lines, but not audit records."""
    from pydantic import BaseModel

    from handrail.connectors import open_quarantine, validate_records

    class Contact(BaseModel):
        id: int

    with open_quarantine(path) as sink:
        rows = [{"id": "seven"}, {"id": "eight"}]
        kept = validate_records(
            rows, Contact, validation="quarantine", sink=sink, connector="crm", operation="list"
        )
        assert list(kept) == []
    return path


@pytest.mark.parametrize(
    "command",
    [["audit", "tail"], ["audit", "query"], ["audit", "query", "--outcome", "denied"]],
)
def test_a_quarantine_file_is_not_an_audit_log(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A quarantine file given to tail or query: one line saying it is no audit log, exit 1."""
    path = quarantine_file(tmp_path / "quarantine.jsonl")
    code, out, err = run([command[0], command[1], str(path), *command[2:]], capsys)
    assert (code, out) == (1, "")
    assert err == f"error: {path} is not a handrail audit log (line 1: no 'action' field)\n"


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"seq": ' + b"1" * 10_000 + b"}",
        b'{"timestamp": 1e400}',
        b"\xff\xfe\x00",
    ],
    ids=["deep nesting", "a 10000-digit number", "1e400", "broken UTF-8"],
)
def test_hostile_lines_are_one_line_errors(
    line: bytes, jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deep JSON, huge numbers, broken UTF-8 after good records: exit 1 naming file:line."""
    with jsonl.open("ab") as file:
        file.write(line + b"\n")
    for command in (["audit", "tail"], ["audit", "query"]):
        code, out, err = run([*command, str(jsonl)], capsys)
        assert code == 1
        assert out.count("\n") == 6, "the good records are printed first"
        assert err.startswith(f"error: {jsonl}:7: record #6 is unreadable: ")
        assert err.count("\n") == 1
        assert "Traceback" not in err


FORGED = "\n2025-03-01 12:09:00.000Z  #9  executed  crm.contact.read  admin"


def test_tail_and_query_show_control_characters_escaped(
    log_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ESC sequences, newlines and bidi overrides in a record are printed escaped, on one line."""
    clock = FakeClock(START + dt.timedelta(hours=1))
    with AuditLog.open(log_path, clock=clock) as log:
        log.append(
            AuditEntry.of(
                Principal.model_construct(agent="evil\x1b[2J\u202ebot", roles=frozenset()),
                "crm.contact.read",
                "failed",
                error=ValueError(f"bad{FORGED}\x9b31m\u200b"),
            )
        )
    for command in (
        ["audit", "tail", "-n", "1"],
        ["audit", "query", "--agent", "evil\x1b[2J\u202ebot"],
    ):
        code, out, err = run([command[0], command[1], str(log_path), *command[2:]], capsys)
        assert (code, err) == (0, "")
        assert out.count("\n") == 1, "the forged line stays inside its record's line"
        assert out[:-1].isprintable()
        assert "evil\\x1b[2J\\u202ebot" in out
        assert "ValueError: bad\\n2025-03-01 12:09:00.000Z  #9" in out
        assert out.rstrip("\n").endswith("admin\\x9b31m\\u200b")


def test_json_output_stays_json_with_bidi_and_c1_escaped(
    jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: valid JSON reading back to the same record; no raw C1 or bidi character."""
    with AuditLog.open(jsonl) as log:
        stored = log.append(
            AuditEntry.of(
                Principal.model_construct(agent="a\x1b\u202e\x85\U000e0041", roles=frozenset()),
                "crm.contact.read",
                "executed",
                reason=FORGED,
            )
        )
    code, out, _ = run(["audit", "tail", str(jsonl), "-n", "1", "--json"], capsys)
    assert code == 0
    assert out[:-1].isprintable()
    assert json.loads(out) == json.loads(stored.to_json())


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`handrail audit tail LOG | head -1`: exit 1 with nothing on stderr, no BrokenPipeError."""
    path = tmp_path / "big.jsonl"
    with AuditLog.jsonl(path, fsync="never") as log:
        for i in range(5000):
            log.append(AuditEntry.of(BOT, "crm.contact.read", "executed", args={"i": i}))
    process = subprocess.Popen(
        [sys.executable, "-m", "handrail", "audit", "tail", str(path), "-n", "5000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = process.stdout.readline()  # like head -1: read one line, then go away
    process.stdout.close()
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 1
    assert b"#0" in first
    assert err == b""


@pytest.mark.parametrize("command", [["audit", "verify"], ["audit", "tail"], ["shadow", "report"]])
def test_a_fifo_is_a_usage_error_not_a_missing_file(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO given as PATH: exit 2 saying it is not a regular file, never waiting on it."""
    fifo = tmp_path / "audit.jsonl"
    os.mkfifo(fifo)
    message = usage_error([*command, str(fifo)], capsys)
    assert "is not a regular file (a FIFO, device or socket)" in message
