"""A writer killed with SIGKILL mid-write: what it leaves verifies, a torn tail is reported,
and reopening sets the tail aside and continues the chain.

Real processes, really killed.  A child appends records in a loop; the test
waits (polling the file's size, no sleeps) until it has written some, kills
it at a random point, and checks the file.  Each log survives several
crashes in a row, so the chain is also checked across every recovery.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handrail.audit import AuditEntry, AuditLog, FsyncMode
from handrail.audit._reopen import RECOVERED_ACTION

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

# The child: append records of mixed sizes (some large, so that writes span
# many pages and a kill can land inside one) until it is killed.
CHILD = """
import random, sys
from handrail import Principal
from handrail.audit import AuditEntry, AuditLog

path, fsync, largest = sys.argv[1], sys.argv[2], int(sys.argv[3])
sizes = (10, 2_000, largest // 4, largest)
payload = "x" * largest
rng = random.Random()
bot = Principal(agent="crash-bot", on_behalf_of="alice")
with AuditLog.open(path, fsync=fsync, batch_records=8) as log:
    i = 0
    while True:
        log.append(AuditEntry.of(bot, "crash.test.append", "executed",
                                 args={"i": i, "payload": payload[: rng.choice(sizes)]}))
        i += 1
"""
DEADLINE = 30.0  # seconds a child may take to write its first records


def start(path: Path, fsync: FsyncMode, largest: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), fsync, str(largest)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def wait_until_written(child: subprocess.Popen[bytes], path: Path, minimum: int) -> None:
    """Poll until the file holds ``minimum`` bytes (the child must still be running)."""
    deadline = time.monotonic() + DEADLINE
    while size_of(path) < minimum:
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            _, error = child.communicate()
            pytest.fail(f"the writer wrote under {minimum} bytes: {error.decode()}")


def hunt_mid_write(path: Path, budget: float) -> bool:
    """Poll until the file ends mid-line (a write in progress); False if the budget runs out."""
    deadline = time.monotonic() + budget
    with path.open("rb") as file:
        while time.monotonic() < deadline:
            size = os.fstat(file.fileno()).st_size
            if size and os.pread(file.fileno(), 1, size - 1) != b"\n":
                return True
    return False


def kill(child: subprocess.Popen[bytes]) -> None:
    child.send_signal(signal.SIGKILL)
    status = child.wait(timeout=DEADLINE)
    assert child.stderr is not None
    error = child.stderr.read().decode()
    child.stderr.close()
    assert status == -signal.SIGKILL, error


def check_and_recover(path: Path, fsync: FsyncMode, expected_before: int) -> tuple[int, bool]:
    """Check what the crash left, reopen, append, check again: (records now, was it torn)."""
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    torn = data[len(complete) :]
    lines = complete.count(b"\n")
    assert lines >= expected_before  # nothing already written was lost
    with AuditLog.open(path, read_only=True) as log:
        report = log.verify()
    if torn:
        assert (report.ok, report.kind) == (False, "torn"), report.message
        assert report.count == lines
        assert report.first_bad_index == lines
        assert f"{len(torn)} bytes without a newline" in report.message
    else:
        assert report.ok, report.message
        assert report.count == lines

    sidecar = path.with_name(path.name + ".torn")
    before = size_of(sidecar)
    with AuditLog.open(path, fsync=fsync) as log:
        appended = [
            log.append(AuditEntry.of(_BOT, "crash.test.after", "executed", args={"n": n}))
            for n in range(3)
        ]
    with AuditLog.open(path, read_only=True) as log:
        report = log.verify()
        records = list(log.records())
    assert report.ok, report.message
    recovered = 1 if torn else 0
    assert report.count == lines + recovered + 3
    assert records[-3:] == appended
    if torn:
        marker = records[lines]
        assert marker.action == RECOVERED_ACTION
        assert marker.args["torn_bytes"] == len(torn)
        assert marker.args["log_offset"] == len(complete)
        assert sidecar.read_bytes()[before:] == torn
    else:
        assert size_of(sidecar) == before
        assert all(r.action != RECOVERED_ACTION for r in records[lines:])
    return report.count, bool(torn)


from handrail import Principal  # noqa: E402 - after the helpers that read as the test's story

_BOT = Principal(agent="test")


@pytest.mark.parametrize("fsync", ["always", "batch"])
def test_killed_at_random_points_every_complete_record_verifies(
    tmp_path: Path, fsync: FsyncMode
) -> None:
    """Across several crashes of one log, the complete records always verify and chain on."""
    rng = random.Random()
    path = tmp_path / "audit.jsonl"
    records = 0
    for _ in range(4):
        child = start(path, fsync, largest=256 * 1024)
        wait_until_written(child, path, size_of(path) + rng.randrange(1, 600_000))
        if rng.random() < 0.5:
            hunt_mid_write(path, budget=0.5)  # aim for a write in progress half the time
        kill(child)
        records, _ = check_and_recover(path, fsync, records)
    assert records > 4 * 3


def test_killed_mid_write_the_torn_line_is_reported_and_set_aside(tmp_path: Path) -> None:
    """A kill inside a large write leaves a torn line: reported, moved aside, recorded."""
    path = tmp_path / "audit.jsonl"
    records = 0
    torn_seen = 0
    for _ in range(6):
        child = start(path, "batch", largest=8 * 1024 * 1024)
        wait_until_written(child, path, size_of(path) + 1)
        if hunt_mid_write(path, budget=5.0):
            kill(child)
            records, torn = check_and_recover(path, "batch", records)
            torn_seen += torn
            if torn_seen:
                break
        else:
            kill(child)
            records, _ = check_and_recover(path, "batch", records)
    assert torn_seen, "no kill landed inside a write in six tries"


def test_an_sqlite_writer_killed_at_random_loses_no_committed_record(tmp_path: Path) -> None:
    """SQLite commits whole batches: after any kill the log verifies and reopens."""
    rng = random.Random()
    path = tmp_path / "audit.db"
    records = 0
    for _ in range(3):
        child = start(path, "batch", largest=64 * 1024)
        wait_until_written(child, path, size_of(path) + rng.randrange(1, 200_000))
        kill(child)
        with AuditLog.open(path, read_only=True) as log:
            report = log.verify()
        assert report.ok, report.message
        assert report.count >= records
        with AuditLog.open(path) as log:
            log.append(AuditEntry.of(_BOT, "crash.test.after", "executed"))
        records = report.count + 1
    with AuditLog.open(path, read_only=True) as log:
        assert log.verify().count == records
