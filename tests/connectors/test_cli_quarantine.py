"""`handrail quarantine list | show`: what the agent could not read, for a human."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from handrail.cli import main
from handrail.connectors import QuarantinedRecord, open_quarantine, validate_records
from handrail.testing import FakeClock

START = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


class Contact(BaseModel):
    id: int
    email: str


class Order(BaseModel):
    number: str
    total: float


def fill(path: Path) -> list[QuarantinedRecord]:
    """Three quarantined records a minute apart: two CRM contacts, one ERP order."""
    clock = FakeClock(START)
    stored: list[QuarantinedRecord] = []

    def keep(record: QuarantinedRecord) -> None:
        stored.append(record)
        clock.advance(dt.timedelta(minutes=1))

    with open_quarantine(path) as sink:
        reads: list[tuple[str, str, type[BaseModel], list[Any]]] = [
            ("crm", "crm.contacts.list", Contact, [{"id": "seven", "email": None}]),
            (
                "erp",
                "erp.orders.list",
                Order,
                [{"number": 12, "total": "lots", "token": "tk-9999"}],
            ),
            ("crm", "crm.contacts.list", Contact, [{"id": 1, "email": "a"}, {"email": "b"}]),
        ]
        for connector, operation, model, rows in reads:
            list(
                validate_records(
                    rows,
                    model,
                    validation="quarantine",
                    sink=sink,
                    connector=connector,
                    operation=operation,
                    source=f"https://{connector}.example.com/v1/items?cursor=abc",
                    on_quarantine=keep,
                    clock=clock,
                )
            )
    return stored


@pytest.fixture(params=["jsonl", "sqlite"])
def quarantine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[Path, list[QuarantinedRecord]]:
    """A three-record quarantine in each format."""
    path = tmp_path / ("quarantine.jsonl" if request.param == "jsonl" else "quarantine.db")
    return path, fill(path)


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


def test_list_prints_a_table_oldest_first(
    quarantine: tuple[Path, list[QuarantinedRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    """list: a header and one line per record: id, when, connector, operation, source, error."""
    path, stored = quarantine
    code, out, err = run(["quarantine", "list", str(path)], capsys)
    assert (code, err) == (0, "")
    header, *lines = out.splitlines()
    assert header.split() == ["ID", "WHEN", "CONNECTOR", "OPERATION", "SOURCE", "ERROR"]
    assert [line.split()[0] for line in lines] == [r.id for r in stored]
    first = lines[0]
    assert "2025-03-01 12:00:00.000Z" in first
    assert "crm.contacts.list" in first
    assert "https://crm.example.com/v1/items?cursor=abc #0" in first
    assert first.endswith(
        "id: Input should be a valid integer, unable to parse string a… (+1 more)"
    )
    assert "erp.orders.list" in lines[1]
    assert lines[2].endswith("id: Field required")
    assert header.index("SOURCE") == first.index("https://")


def test_list_filters_and_limits(
    quarantine: tuple[Path, list[QuarantinedRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    """--connector, --operation and --since filter; --limit keeps the N most recent."""
    path, stored = quarantine

    def ids(*options: str) -> list[str]:
        code, out, _ = run(["quarantine", "list", str(path), "--json", *options], capsys)
        assert code == 0
        return [json.loads(line)["id"] for line in out.splitlines()]

    assert ids() == [r.id for r in stored]
    assert ids("--connector", "crm") == [stored[0].id, stored[2].id]
    assert ids("--operation", "erp.orders.list") == [stored[1].id]
    assert ids("--since", "2025-03-01T12:01:00Z") == [stored[1].id, stored[2].id]
    assert ids("--since", "2025-03-01T12:01:00") == [stored[1].id, stored[2].id]  # naive is UTC
    assert ids("--since", "1h") == []  # FakeClock's 2025 is long ago
    assert ids("--limit", "2") == [stored[1].id, stored[2].id]
    assert ids("--connector", "crm", "--limit", "1") == [stored[2].id]


def test_list_json_lines_are_the_records(
    quarantine: tuple[Path, list[QuarantinedRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints each record as one JSON line that reads back as the same record."""
    path, stored = quarantine
    code, out, _ = run(["quarantine", "list", "--json", str(path)], capsys)
    assert code == 0
    assert [QuarantinedRecord.model_validate_json(line) for line in out.splitlines()] == stored


def test_list_of_nothing_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty quarantine, or no match: a line saying so, exit 0."""
    path = tmp_path / "empty.db"
    open_quarantine(path).close()
    assert run(["quarantine", "list", str(path)], capsys) == (0, "no quarantined records\n", "")
    assert run(["quarantine", "list", "--json", str(path)], capsys) == (0, "", "")


def test_show_prints_every_error_and_the_raw_payload(
    quarantine: tuple[Path, list[QuarantinedRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    """show: where it came from, every error with its type, the raw payload pretty-printed."""
    path, stored = quarantine
    code, out, err = run(["quarantine", "show", str(path), stored[1].id], capsys)
    assert (code, err) == (0, "")
    assert out == (
        f"id         {stored[1].id}\n"
        "when       2025-03-01 12:01:00.000Z\n"
        "connector  erp\n"
        "operation  erp.orders.list\n"
        "source     https://erp.example.com/v1/items?cursor=abc\n"
        "record     #0 of the read\n"
        f"model      {__name__}.Order\n"
        "errors     2\n"
        "  number: Input should be a valid string  [string_type]\n"
        "  total: Input should be a valid number, unable to parse string as a number  "
        "[float_parsing]\n"
        "raw payload (values under sensitive keys masked):\n"
        "  {\n"
        '    "number": 12,\n'
        '    "total": "lots",\n'
        '    "token": "***"\n'
        "  }\n"
    )
    assert "tk-9999" not in out


def test_show_json_is_the_record(
    quarantine: tuple[Path, list[QuarantinedRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    """show --json prints the whole record as indented JSON."""
    path, stored = quarantine
    code, out, _ = run(["quarantine", "show", "--json", str(path), stored[2].id], capsys)
    assert code == 0
    assert QuarantinedRecord.model_validate_json(out) == stored[2]


def test_show_an_unknown_id_exits_1(
    quarantine: tuple[Path, list[QuarantinedRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    """No record with that id: one error line, exit 1."""
    path, _ = quarantine
    code, out, err = run(["quarantine", "show", str(path), "01NOPE"], capsys)
    assert (code, out) == (1, "")
    assert err == f"error: {path}: no quarantined record with id '01NOPE'\n"


def test_a_torn_last_line_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A torn last line (a writer died mid-record): the whole records, a warning, exit 0."""
    path = tmp_path / "q.jsonl"
    stored = fill(path)
    with open(path, "ab") as file:
        file.write(b'{"id": "01J", "at": "2025-')
    code, out, err = run(["quarantine", "list", "--json", str(path)], capsys)
    assert code == 0
    assert len(out.splitlines()) == len(stored)
    assert err.startswith(f"warning: {path}:4: skipped a torn last line")
    code, out, err = run(["quarantine", "show", str(path), stored[0].id], capsys)
    assert code == 0  # found before reaching the torn line: no warning needed
    assert err == ""


def test_a_corrupt_quarantine_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A line that is not a record: the records before it, then an error naming the line, exit 1."""
    path = tmp_path / "q.jsonl"
    stored = fill(path)
    with open(path, "ab") as file:
        file.write(b'{"not": "a record"}\n')
    code, out, err = run(["quarantine", "list", "--json", str(path)], capsys)
    assert code == 1
    assert len(out.splitlines()) == 3  # the records before the bad line
    assert err.startswith(f"error: {path}:4: not a quarantined record")
    code, out, err = run(["quarantine", "show", str(path), "01NOPE"], capsys)
    assert code == 1
    assert "not a quarantined record" in err
    assert len(stored) == 3


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file, a bad --since or --limit, a missing id: one usage line, exit 2."""
    missing = tmp_path / "missing.jsonl"
    assert "no quarantine at" in usage_error(["quarantine", "list", str(missing)], capsys)
    assert not missing.exists()
    path = tmp_path / "q.jsonl"
    fill(path)
    assert "argument --since" in usage_error(
        ["quarantine", "list", str(path), "--since", "yesterday"], capsys
    )
    assert "expected 1 or more" in usage_error(
        ["quarantine", "list", str(path), "--limit", "0"], capsys
    )
    assert "required" in usage_error(["quarantine", "show", str(path)], capsys)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    assert "cannot read the quarantine database" in usage_error(
        ["quarantine", "list", str(other)], capsys
    )


def test_help_describes_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """`handrail quarantine --help` names list and show."""
    code, out, _ = run(["quarantine", "--help"], capsys)
    assert code == 0
    assert "list" in out
    assert "show" in out


HOSTILE = "x\x1b[2J\n2025-03-01 12:09:00.000Z  forged line\u202e\x9b\u200b"


def hostile_quarantine(path: Path) -> QuarantinedRecord:
    """One quarantined record whose connector, source and payload carry control characters."""
    stored: list[QuarantinedRecord] = []
    with open_quarantine(path) as sink:
        list(
            validate_records(
                [{"id": HOSTILE, "email": HOSTILE}],
                Contact,
                validation="quarantine",
                sink=sink,
                connector="crm\x1b[31m",
                operation="crm.contacts.list\n",
                source=f"https://crm.example.com/{HOSTILE}",
                on_quarantine=stored.append,
            )
        )
    return stored[0]


@pytest.mark.parametrize("kind", ["jsonl", "sqlite"])
def test_list_and_show_print_control_characters_escaped(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ESC, newlines, C1, bidi and zero-width characters show escaped: no forged lines, no ESC."""
    path = tmp_path / ("q.jsonl" if kind == "jsonl" else "q.db")
    record = hostile_quarantine(path)
    code, out, err = run(["quarantine", "list", str(path)], capsys)
    assert (code, err) == (0, "")
    assert out.count("\n") == 2  # the header and the one record
    assert all(line.isprintable() for line in out.splitlines())
    assert "crm\\x1b[31m" in out
    assert "crm.contacts.list\\n" in out
    code, out, err = run(["quarantine", "show", str(path), record.id], capsys)
    assert (code, err) == (0, "")
    assert all(line.isprintable() for line in out.splitlines())
    assert "connector  crm\\x1b[31m" in out
    assert "source     https://crm.example.com/x\\x1b[2J\\n2025-03-01" in out
    assert '"id": "x\\u001b[2J\\n2025-03-01 12:09:00.000Z  forged line\\u202e\\x9b\\u200b"' in out


def test_json_output_stays_json_with_bidi_and_c1_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """list --json and show --json: valid JSON of the same record, no raw C1 or bidi character."""
    path = tmp_path / "q.jsonl"
    record = hostile_quarantine(path)
    code, out, _ = run(["quarantine", "list", str(path), "--json"], capsys)
    assert code == 0
    assert out[:-1].isprintable()
    assert QuarantinedRecord.model_validate_json(out) == record
    code, out, _ = run(["quarantine", "show", str(path), record.id, "--json"], capsys)
    assert code == 0
    assert all(line.isprintable() for line in out.splitlines())
    assert json.loads(out)["raw"]["id"] == HOSTILE


def test_a_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory given as PATH: exit 2 saying it is a directory, not 'no such file'."""
    message = usage_error(["quarantine", "list", str(tmp_path)], capsys)
    assert "is a directory; expected a quarantine file" in message


def test_a_fifo_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A FIFO given as PATH: exit 2 saying it is not a regular file, not 'no such file'."""
    fifo = tmp_path / "quarantine.jsonl"
    os.mkfifo(fifo)
    message = usage_error(["quarantine", "list", str(fifo)], capsys)
    assert "is not a regular file (a FIFO, device or socket)" in message
