"""Property: any hostile audit or quarantine file ends every reading command in 0, 1 or 2.

The files mix real records with deep nesting, huge numbers, ``1e400``,
control characters, broken UTF-8, lines of the other kind of file and
truncated lines.  Every command that reads them (``audit tail | query |
verify``, ``shadow report``, ``quarantine list | show``) must end with a
typed message, never a traceback, and print nothing raw that a terminal
would act on.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handrail import Principal
from handrail.audit import AuditEntry, AuditLog
from handrail.cli import main

NASTY = (
    "\x00\x07\x1b[2J\x1b]0;x\x07\n\r\t\x7f\x85\x9b"
    "\u200b\u200d\u202a\u202e\u2066\u2028\ufeff\udc80é東"
)
TEXT = st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=12)


def seed_lines(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """One real audit record and one real quarantined record, as parsed JSON."""
    from pydantic import BaseModel

    from handrail.connectors import open_quarantine, validate_records

    class Contact(BaseModel):
        id: int

    audit = directory / "seed.jsonl"
    with AuditLog.jsonl(audit) as log:
        log.append(AuditEntry.of(Principal(agent="bot"), "crm.contact.update", "shadowed"))
    quarantine = directory / "seed-quarantine.jsonl"
    with open_quarantine(quarantine) as sink:
        list(
            validate_records(
                [{"id": "x"}], Contact, validation="quarantine", sink=sink, connector="crm",
                operation="crm.list",
            )
        )  # fmt: skip
    return json.loads(audit.read_bytes()), json.loads(quarantine.read_bytes())


@st.composite
def hostile_line(draw: st.DrawFn, seeds: tuple[dict[str, Any], dict[str, Any]]) -> bytes:
    """One line: a real record, or one changed in a hostile way, or hostile bytes."""
    record = dict(draw(st.sampled_from(seeds)))
    kind = draw(
        st.sampled_from(["record", "field", "deep", "digits", "float", "bytes", "truncated"])
    )
    if kind == "field":  # one field replaced by hostile text or a number out of range
        name = draw(st.sampled_from(sorted(record)) | TEXT)
        record[name] = draw(
            TEXT
            | st.sampled_from([1e308, -1e308, 10**4000, -(10**300), None, [], {}])
            | st.fixed_dictionaries({"note": TEXT, "type": TEXT, "id": TEXT})
        )
    line = json.dumps(record, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == "deep":
        depth = draw(st.integers(1, 3000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + b"0" + closer * depth
        line = line[:-1] + b',"args":' + inner + b"}" if draw(st.booleans()) else inner
    elif kind == "digits":
        line = line[:-1] + b',"n":' + b"9" * draw(st.integers(4000, 6000)) + b"}"
    elif kind == "float":
        value = draw(st.sampled_from([b"1e400", b"-1e400", b"NaN", b"Infinity", b"1e-400"]))
        name = draw(st.sampled_from([b"seq", b"timestamp", b"duration", b"attempts", b"at"]))
        line = line.replace(b'"' + name + b'":', b'"' + name + b'":' + value + b',"_x":', 1)
    elif kind == "bytes":
        line = draw(st.binary(max_size=40))
    elif kind == "truncated":
        line = line[: draw(st.integers(0, len(line)))]
    return line.replace(b"\n", b"")


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def commands(path: Path) -> list[list[str]]:
    file = str(path)
    return [
        ["audit", "tail", file],
        ["audit", "tail", file, "--json"],
        ["audit", "query", file, "--outcome", "shadowed", "--since", "5000w"],
        ["audit", "verify", file],
        ["shadow", "report", file],
        ["shadow", "report", file, "--json"],
        ["quarantine", "list", file],
        ["quarantine", "list", file, "--json"],
        ["quarantine", "show", file, "01M8T5A2405N7NYZK80HNWK4J8"],
    ]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    directory = tmp_path_factory.mktemp("hostile")
    return directory, seed_lines(directory)


def test_every_reading_command_ends_in_a_typed_exit(workspace: tuple[Path, Any]) -> None:
    """For any hostile file: exit 0, 1 or 2, no traceback, nothing raw a terminal would act on."""
    directory, seeds = workspace
    path = directory / "hostile.jsonl"

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(lines=st.lists(hostile_line(seeds), min_size=1, max_size=4), newline=st.booleans())
    def check(lines: list[bytes], newline: bool) -> None:
        path.write_bytes(b"\n".join(lines) + (b"\n" if newline else b""))
        for argv in commands(path):
            code, out, err = run(argv)
            assert code in (0, 1, 2), argv
            assert "Traceback" not in err, argv
            for line in (out + err).split("\n"):
                assert line.isprintable(), (argv, line)

    check()


def test_a_hostile_file_takes_time_linear_in_its_size(workspace: tuple[Path, Any]) -> None:
    """Deep nesting and long numbers are refused in time near that of a benign file's size."""
    directory, (record, _) = workspace
    benign = json.dumps(record).encode() + b"\n"
    size = 2_000_000
    files = {
        "benign": benign * (size // len(benign)),
        "deep": (b"[" * 200_000 + b"]" * 200_000 + b"\n") * (size // 400_001),
        "digits": (b'{"seq":' + b"9" * 4299 + b"}\n") * (size // 4308),
    }
    timings = {}
    for name, data in files.items():
        path = directory / f"{name}.jsonl"
        path.write_bytes(data)
        start = time.perf_counter()
        # A hostile file stops at its first bad line: measured is reading that line.
        run(["audit", "verify", str(path)])
        run(["audit", "tail", str(path)])
        timings[name] = time.perf_counter() - start
    assert timings["deep"] < 50 * timings["benign"] + 0.5
    assert timings["digits"] < 50 * timings["benign"] + 0.5
