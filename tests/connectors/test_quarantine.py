"""Output validation of reads: strict fails, quarantine sets invalid records aside and reads on."""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import pickle
import sqlite3
import stat
import threading
import time
import tracemalloc
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, RootModel, ValidationError, field_validator

from handrail._errors import ConfigurationError, HandrailError
from handrail.connectors import (
    InvalidRecord,
    JSONLQuarantine,
    MemoryQuarantine,
    QuarantinedRecord,
    QuarantineError,
    QuarantineSink,
    QuarantineWarning,
    SQLiteQuarantine,
    open_quarantine,
    validate_one,
    validate_records,
)
from handrail.connectors._validation import _quarantined_counter, keep_extra
from handrail.testing import FakeClock, capture_telemetry

START = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
LIST = "crm.contacts.list"


class Contact(BaseModel):
    """A CRM contact as the agent reads it (extra unset: pydantic's default, "ignore")."""

    model_config = ConfigDict(frozen=True)

    id: int
    email: str


class OpenContact(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int


class ClosedContact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int


def read(
    records: Any,
    sink: QuarantineSink | None = None,
    *,
    validation: Any = "quarantine",
    model: type[BaseModel] = Contact,
    **kwargs: Any,
) -> Any:
    return validate_records(
        records,
        model,
        validation=validation,
        sink=sink,
        connector="crm",
        operation=LIST,
        clock=kwargs.pop("clock", FakeClock(START)),
        **kwargs,
    )


# -- quarantine and strict ---------------------------------------------------------------


def test_quarantine_yields_the_valid_records_and_sets_the_invalid_aside() -> None:
    """Valid records flow on in order; the invalid one is stored with its errors and source."""
    sink = MemoryQuarantine()
    rows = [
        {"id": 1, "email": "a@example.com"},
        {"id": "seven", "email": None},
        {"id": 3, "email": "c@example.com"},
    ]
    reader = read(rows, sink, source="https://crm.example.com/contacts?page=2")
    assert [c.id for c in reader] == [1, 3]
    assert (reader.valid, reader.quarantined, reader.seen) == (2, 1, 3)
    (record,) = sink.records()
    assert record.connector == "crm"
    assert record.operation == LIST
    assert record.at == START
    assert record.index == 1
    assert record.raw == {"id": "seven", "email": None}
    assert record.model == f"{__name__}.Contact"
    assert [(e.loc, e.type) for e in record.errors] == [
        (("id",), "int_parsing"),
        (("email",), "string_type"),
    ]
    assert record.source == "https://crm.example.com/contacts?page=2"  # where to look
    assert len(record.id) == 26


def test_strict_fails_at_the_first_invalid_record_and_reads_no_further() -> None:
    """Strict: InvalidRecord names operation, index and fields; later records are not pulled."""
    pulled: list[int] = []

    payloads: list[dict[str, Any]] = [
        {"id": 1, "email": "a@x"},
        {"id": 2, "email": ["secret-list"]},
        {"id": 3},
    ]

    def rows() -> Iterator[dict[str, Any]]:
        for i, row in enumerate(payloads):
            pulled.append(i)
            yield row

    reader = read(rows(), validation="strict")
    assert next(reader).id == 1
    with pytest.raises(InvalidRecord) as caught:
        next(reader)
    error = caught.value
    assert isinstance(error, HandrailError)
    assert isinstance(error, ValueError)
    assert (error.connector, error.operation, error.index) == ("crm", LIST, 1)
    assert [e.loc for e in error.errors] == [("email",)]
    assert str(error).startswith(f"{LIST}: record 1 is not a valid Contact: email: Input should")
    assert "secret-list" not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__
    assert pulled == [0, 1]


def test_strict_messages_never_quote_a_validators_message() -> None:
    """A validator's own message may quote the value: the exception gives only its type."""

    class Account(BaseModel):
        iban: str

        @field_validator("iban")
        @classmethod
        def _check(cls, value: str) -> str:
            raise ValueError(f"{value} is not an IBAN")

    with pytest.raises(InvalidRecord) as caught:
        list(read([{"iban": "DE-PRIVATE-NUMBER"}], validation="strict", model=Account))
    assert "DE-PRIVATE-NUMBER" not in str(caught.value)
    assert "iban: value_error" in str(caught.value)
    assert "DE-PRIVATE-NUMBER" in caught.value.errors[0].msg  # still there for code to inspect


def test_quarantine_without_a_sink_fails_before_reading() -> None:
    """validation='quarantine' with no sink is a ConfigurationError at call time."""
    pulled: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        pulled.append(1)
        yield {"id": 1}

    with pytest.raises(ConfigurationError, match="needs a sink"):
        read(rows(), None)
    with pytest.raises(ConfigurationError, match="strict, quarantine"):
        read(rows(), MemoryQuarantine(), validation="lenient")
    with pytest.raises(ConfigurationError, match="BaseModel subclass"):
        read(rows(), MemoryQuarantine(), model=dict)  # type: ignore[arg-type]
    assert pulled == []


def test_reading_is_lazy_and_counters_move_during_iteration() -> None:
    """Nothing is pulled until iterated; valid and quarantined count as records go by."""
    pulled: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(4):
            pulled.append(i)
            yield {"id": i if i != 1 else "x", "email": "e"}

    sink = MemoryQuarantine()
    reader = read(rows(), sink)
    assert pulled == []
    assert next(reader).id == 0
    assert (reader.valid, reader.quarantined) == (1, 0)
    assert next(reader).id == 2
    assert (reader.valid, reader.quarantined) == (2, 1)
    assert pulled == [0, 1, 2]
    assert "2 valid, 1 quarantined" in repr(reader)
    reader.close()  # closes the generator: no more pages fetched
    assert list(reader) == []


def test_instances_of_the_model_pass_as_they_are() -> None:
    """A connector that builds model instances itself: they are valid records, unchanged."""
    built = Contact(id=1, email="a")
    sink = MemoryQuarantine()
    reader = read([built, {"id": "x"}, {"id": 2, "email": "b"}], sink)
    first, second = reader
    assert first is built
    assert second == Contact(id=2, email="b")
    assert (reader.valid, reader.quarantined) == (2, 1)


def test_source_can_be_a_function_of_the_index_and_on_quarantine_sees_each_record() -> None:
    """source(index) names each record's origin; on_quarantine gets every stored record."""
    sink = MemoryQuarantine()
    seen: list[QuarantinedRecord] = []
    rows = [{"id": "a"}, {"id": 1, "email": "ok"}, {"id": "b"}]
    list(read(rows, sink, source=lambda i: f"page {i // 2} offset {i}", on_quarantine=seen.append))
    assert [r.source for r in sink.records()] == ["page 0 offset 0", "page 1 offset 2"]
    assert seen == list(sink.records())


def test_source_loses_url_credentials_and_query_secrets() -> None:
    """A source URL's user:password@ and secret-looking parameters are masked; the page stays."""
    sink = MemoryQuarantine()
    source = "https://bot:hunter2@crm.example.com/c?api_key=k123&cursor=abc"
    list(read([{"id": "x"}], sink, source=source))
    (record,) = sink.records()
    assert record.source == "https://***@crm.example.com/c?api_key=***&cursor=abc"


def test_a_secret_repeated_under_a_plain_key_is_masked_in_raw() -> None:
    """A token masked under ``api_key`` is masked where a note repeats it too, as in the audit."""
    sink = MemoryQuarantine()
    token = "tok-5ecret-123"
    list(read([{"id": "x", "api_key": token, "note": f"uses {token}"}], sink))
    (record,) = sink.records()
    assert record.raw == {"id": "x", "api_key": "***", "note": "uses ***"}


def test_a_source_with_a_long_run_of_letters_is_shown_in_linear_time() -> None:
    """30,000 letters before a URL cost at most 50x ordinary text (the old regex: quadratic)."""
    size = 30_000
    hostile = "a" * size + " https://bot:pw-123@h/c?token=t"
    benign = ("page https://crm.example.com/c?page=2 offset " * (size // 44))[:size]

    def stored_source(source: str) -> tuple[float, str | None]:
        sink = MemoryQuarantine()
        start = time.perf_counter()
        list(read([{"id": "x"}], sink, source=source))
        return time.perf_counter() - start, next(iter(sink.records())).source

    benign_time = min(stored_source(benign)[0] for _ in range(3))
    hostile_time, shown = min(stored_source(hostile) for _ in range(3))
    assert shown is not None
    assert shown.endswith(" https://***@h/c?token=***")
    assert hostile_time <= 50 * benign_time + 0.05


def test_raw_payload_masks_sensitive_keys_and_error_messages_lose_them() -> None:
    """Values under password/token/api_key keys are masked in raw and scrubbed from messages."""

    class Login(BaseModel):
        user: str
        password: str

        @field_validator("password")
        @classmethod
        def _check(cls, value: str) -> str:
            raise ValueError(f"password {value} is too weak")

    sink = MemoryQuarantine()
    list(
        read(
            [{"user": "alice", "password": "hunter2-secret", "nested": {"api_key": "k-123456"}}],
            sink,
            model=Login,
        )
    )
    (record,) = sink.records()
    assert record.raw == {"user": "alice", "password": "***", "nested": {"api_key": "***"}}
    assert "hunter2-secret" not in record.model_dump_json()
    assert record.errors[0].msg == "Value error, password *** is too weak"


def test_payloads_that_are_not_json_are_stored_as_json() -> None:
    """Strings, bytes, tuples, datetimes and odd objects become JSON values in raw."""
    sink = MemoryQuarantine()
    rows = ["not a record", b"\xff\xfe", {"when": START, "tags": ("a", "b"), 3: object()}]
    assert list(read(rows, sink)) == []
    raws = [r.raw for r in sink.records()]
    assert raws[0] == "not a record"
    assert raws[1] == repr(b"\xff\xfe")
    assert isinstance(raws[2], dict)
    assert raws[2]["when"] == "2025-03-01T12:00:00Z"
    assert raws[2]["tags"] == ["a", "b"]
    assert str(raws[2]["3"]).startswith("<object object")


def test_validate_one_is_strict_by_default() -> None:
    """A single-record read fails on an invalid record unless asked to quarantine it."""
    common: dict[str, Any] = {"connector": "crm", "operation": "crm.contact.get"}
    assert validate_one({"id": 1, "email": "a"}, Contact, **common) == Contact(id=1, email="a")
    with pytest.raises(InvalidRecord, match=r"crm.contact.get: record 0 is not a valid Contact"):
        validate_one({"id": "x"}, Contact, **common)
    sink = MemoryQuarantine()
    assert validate_one({"id": "x"}, Contact, validation="quarantine", sink=sink, **common) is None
    assert [r.operation for r in sink.records()] == ["crm.contact.get"]
    with pytest.raises(ConfigurationError):
        validate_one({"id": 1}, Contact, validation="quarantine", **common)


# -- extra fields ------------------------------------------------------------------------------


def test_unknown_fields_are_kept() -> None:
    """A field the upstream system added survives validation and model_dump."""
    (contact,) = read([{"id": 1, "email": "a", "tier": "gold"}], MemoryQuarantine())
    assert isinstance(contact, Contact)
    assert type(contact).__name__ == "Contact"
    assert contact.model_extra == {"tier": "gold"}
    assert contact.model_dump() == {"id": 1, "email": "a", "tier": "gold"}
    assert contact.model_config.get("frozen") is True


def test_keep_extra_is_cached_and_respects_allow_forbid_and_root_models() -> None:
    """One subclass per model; allow, forbid and RootModel models are used unchanged."""
    assert keep_extra(Contact) is keep_extra(Contact)
    assert issubclass(keep_extra(Contact), Contact)
    assert keep_extra(Contact) is not Contact
    assert keep_extra(OpenContact) is OpenContact
    assert keep_extra(ClosedContact) is ClosedContact

    class Tags(RootModel[list[str]]):
        pass

    assert keep_extra(Tags) is Tags
    (opened,) = read([{"id": 1, "tier": "gold"}], MemoryQuarantine(), model=OpenContact)
    assert type(opened) is OpenContact
    assert opened.model_extra == {"tier": "gold"}


def test_kept_records_compare_equal_hash_and_pickle_like_the_model() -> None:
    """A kept record equals a hand-built one with the same fields; extras make it differ."""
    plain, extended = read(
        [{"id": 1, "email": "a"}, {"id": 1, "email": "a", "tier": "gold"}], MemoryQuarantine()
    )
    assert plain == Contact(id=1, email="a")
    assert Contact(id=1, email="a") == plain
    assert hash(plain) == hash(Contact(id=1, email="a"))
    assert plain != Contact(id=2, email="a")
    assert extended != Contact(id=1, email="a")
    assert Contact(id=1, email="a") != extended
    restored = pickle.loads(pickle.dumps(extended))
    assert restored == extended
    assert restored.model_extra == {"tier": "gold"}
    assert type(restored) is type(extended)


def test_a_forbid_model_quarantines_records_with_unknown_fields() -> None:
    """extra='forbid' is the author's explicit choice: unknown fields make a record invalid."""
    sink = MemoryQuarantine()
    assert list(read([{"id": 1, "tier": "gold"}], sink, model=ClosedContact)) == []
    (record,) = sink.records()
    assert [(e.loc, e.type) for e in record.errors] == [(("tier",), "extra_forbidden")]


# -- sinks --------------------------------------------------------------------------------------


def make_record(
    clock: FakeClock, *, connector: str = "crm", operation: str = LIST, index: int = 0
) -> QuarantinedRecord:
    try:
        Contact.model_validate({"id": "x", "email": "e"})
    except ValidationError as exc:
        return QuarantinedRecord.from_error(
            {"id": "x", "email": "e", "n": index},
            exc,
            connector=connector,
            operation=operation,
            model=Contact,
            source=f"page {index}",
            index=index,
            at=clock.now(),
        )
    raise AssertionError("unreachable")


@pytest.fixture(params=["memory", "jsonl", "sqlite"])
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QuarantineSink]:
    """Each kind of sink, empty."""
    made: QuarantineSink
    if request.param == "memory":
        made = MemoryQuarantine()
    elif request.param == "jsonl":
        made = JSONLQuarantine(tmp_path / "quarantine.jsonl")
    else:
        made = SQLiteQuarantine(tmp_path / "quarantine.db")
    yield made
    made.close()


def test_every_sink_filters_limits_gets_and_counts(sink: QuarantineSink) -> None:
    """Records come back oldest first, filtered by connector, operation and time, limited."""
    clock = FakeClock(START)
    stored = []
    for i in range(6):
        record = make_record(
            clock,
            connector=("crm", "erp")[i % 2],
            operation=(LIST, "crm.companies.list")[i % 3 == 2] if i % 2 == 0 else "erp.orders.list",
            index=i,
        )
        sink.put(record)
        stored.append(record)
        clock.advance(dt.timedelta(minutes=10))

    assert list(sink.records()) == stored
    assert [r.index for r in sink.records(connector="crm")] == [0, 2, 4]
    assert [r.index for r in sink.records(operation="crm.companies.list")] == [2]
    assert [r.index for r in sink.records(connector="crm", operation=LIST)] == [0, 4]
    later = START + dt.timedelta(minutes=30)
    assert [r.index for r in sink.records(since=later)] == [3, 4, 5]
    in_paris = later.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert [r.index for r in sink.records(since=in_paris)] == [3, 4, 5]
    assert [r.index for r in sink.records(limit=2)] == [0, 1]
    assert list(sink.records(limit=0)) == []
    assert sink.get(stored[3].id) == stored[3]
    assert sink.get("01NOSUCHRECORD000000000000") is None
    assert sink.count() == 6
    assert sink.count(connector="erp") == 3
    assert sink.count(connector="crm", since=later) == 1
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        sink.records(since=dt.datetime(2025, 1, 1))
    with pytest.raises(ConfigurationError, match="0 or more"):
        sink.records(limit=-1)


def test_a_closed_sink_refuses_records(sink: QuarantineSink) -> None:
    """put after close is a QuarantineError, never a silent drop; close is idempotent."""
    sink.close()
    sink.close()
    with pytest.raises(QuarantineError, match="closed"):
        sink.put(make_record(FakeClock(START)))


@pytest.mark.parametrize("name", ["q.jsonl", "q.db"])
def test_file_sinks_keep_records_across_reopening(tmp_path: Path, name: str) -> None:
    """A record put before close is read back by a new sink on the same file, read-only."""
    record = make_record(FakeClock(START))
    with open_quarantine(tmp_path / name) as sink:
        sink.put(record)
    reader = open_quarantine(tmp_path / name, read_only=True)
    assert list(reader.records()) == [record]
    with pytest.raises(QuarantineError, match="read-only"):
        reader.put(record)
    reader.close()
    assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600


def test_open_quarantine_picks_the_kind_by_name_and_by_content(tmp_path: Path) -> None:
    """.db/.sqlite/.sqlite3 (or an SQLite file under any name) is SQLite; anything else JSONL."""
    for name in ("a.db", "b.sqlite", "c.SQLITE3"):
        sink = open_quarantine(tmp_path / name)
        assert isinstance(sink, SQLiteQuarantine)
        sink.close()
    (tmp_path / "c.SQLITE3").rename(tmp_path / "renamed.data")
    sink = open_quarantine(tmp_path / "renamed.data")
    assert isinstance(sink, SQLiteQuarantine)
    sink.close()
    sink = open_quarantine(tmp_path / "q.jsonl")
    assert isinstance(sink, JSONLQuarantine)
    sink.close()


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.db"])
def test_reading_a_missing_quarantine_is_a_clear_error(tmp_path: Path, name: str) -> None:
    """read_only on a missing file names it; nothing is created."""
    with pytest.raises(QuarantineError, match="no such file"):
        open_quarantine(tmp_path / name, read_only=True)
    assert not (tmp_path / name).exists()


def test_an_sqlite_file_that_is_not_a_quarantine_is_refused(tmp_path: Path) -> None:
    """Another application's database: QuarantineError on open, read-only."""
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(QuarantineError, match="no such table"):
        SQLiteQuarantine(path, read_only=True)


def test_sqlite_quarantine_is_wal_and_indexed(tmp_path: Path) -> None:
    """The database is in WAL mode with indexes on connector/operation/time."""
    SQLiteQuarantine(tmp_path / "q.db").close()
    connection = sqlite3.connect(tmp_path / "q.db")
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    indexes = {
        row[0]
        for row in connection.execute("SELECT sql FROM sqlite_master WHERE type = 'index'")
        if row[0]
    }
    connection.close()
    assert any("(connector, operation, at)" in sql for sql in indexes)
    assert any("(at)" in sql for sql in indexes)


@pytest.mark.parametrize("name", ["q.jsonl", "q.db"])
def test_two_writers_and_many_threads_share_one_file(tmp_path: Path, name: str) -> None:
    """Two sinks on one file, four threads each: every record is stored whole."""
    first, second = open_quarantine(tmp_path / name), open_quarantine(tmp_path / name)
    clock = FakeClock(START)

    def put_many(sink: QuarantineSink, offset: int) -> None:
        for i in range(50):
            sink.put(make_record(clock, index=offset + i))

    threads = [
        threading.Thread(target=put_many, args=(sink, n * 1000))
        for n, sink in enumerate([first, second, first, second])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    indexes = sorted(r.index or 0 for r in first.records())
    assert indexes == sorted(n * 1000 + i for n in range(4) for i in range(50))
    first.close()
    second.close()


# -- torn and corrupt JSONL --------------------------------------------------------------------


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_next_writer_starts_afresh(
    tmp_path: Path,
) -> None:
    """A half-written last line: whole records read, a QuarantineWarning, later records intact."""
    path = tmp_path / "q.jsonl"
    clock = FakeClock(START)
    first, second, third = (make_record(clock, index=i) for i in range(3))
    with JSONLQuarantine(path) as sink:
        sink.put(first)
        sink.put(second)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # the writer died mid-line

    with pytest.warns(QuarantineWarning, match=r"q.jsonl:2: skipped a torn last line"):
        assert list(JSONLQuarantine(path, read_only=True).records()) == [first]

    with JSONLQuarantine(path) as sink:
        sink.put(third)
    with pytest.warns(QuarantineWarning, match=r"q.jsonl:2: skipped a torn line 2"):
        assert list(JSONLQuarantine(path, read_only=True).records()) == [first, third]


@given(cut=st.integers(min_value=1, max_value=10_000))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_prefix_of_a_record_reads_as_torn(tmp_path: Path, cut: int) -> None:
    """However a line is cut short, it is recognised as torn, not as corruption."""
    line = make_record(FakeClock(START)).model_dump_json().encode()
    path = tmp_path / "cut.jsonl"
    path.write_bytes(line[: cut % len(line) or 1])
    with pytest.warns(QuarantineWarning, match="torn"):
        assert list(JSONLQuarantine(path, read_only=True).records()) == []


def test_a_corrupt_line_is_an_error_naming_it(tmp_path: Path) -> None:
    """A line that is not a record (edited, or another file): QuarantineError with its line."""
    path = tmp_path / "q.jsonl"
    record = make_record(FakeClock(START))
    path.write_text(record.model_dump_json() + '\n{"hello": "world"}\n', encoding="utf-8")
    with pytest.raises(QuarantineError, match=r"q.jsonl:2: not a quarantined record") as caught:
        list(JSONLQuarantine(path, read_only=True).records())
    assert caught.value.line == 2
    path.write_text("this is not json\n", encoding="utf-8")
    with pytest.raises(QuarantineError, match=r"q.jsonl:1: not a quarantined record"):
        list(JSONLQuarantine(path, read_only=True).records())


# -- the metric -------------------------------------------------------------------------------


def test_quarantined_records_are_counted_by_connector_and_operation() -> None:
    """handrail.connector.quarantined counts each stored record, with its connector/operation."""
    rows = [{"id": "x"}, {"id": 1, "email": "a"}, {"id": "y"}]
    with capture_telemetry() as captured:
        list(read(rows, MemoryQuarantine(), telemetry=captured.telemetry))
        list(read([{"id": "z"}], MemoryQuarantine(), telemetry=captured.telemetry))
    points = [(p.attributes, p.value) for p in captured.points("handrail.connector.quarantined")]
    assert points == [({"handrail.connector": "crm", "handrail.operation": LIST}, 3)]


def test_without_an_sdk_the_metric_costs_nothing() -> None:
    """No OpenTelemetry SDK configured: no counter is made, quarantining still works."""
    assert _quarantined_counter(None) is None
    sink = MemoryQuarantine()
    assert list(read([{"id": "x"}], sink)) == []
    assert sink.count() == 1


# -- properties ---------------------------------------------------------------------------------

valid_rows = st.fixed_dictionaries(
    {"id": st.integers(-(2**31), 2**31), "email": st.text(max_size=8)},
    optional={"extra": st.text(max_size=5)},
)
invalid_rows = st.one_of(
    st.fixed_dictionaries({"id": st.text(alphabet="abc", min_size=1, max_size=4)}),
    st.fixed_dictionaries({"id": st.integers(), "email": st.none()}),
    st.text(max_size=5),
)
rows_strategy = st.lists(
    st.one_of(valid_rows.map(lambda r: (True, r)), invalid_rows.map(lambda r: (False, r))),
    max_size=30,
)


@given(rows=rows_strategy)
def test_quarantine_partitions_the_input(rows: list[tuple[bool, Any]]) -> None:
    """Quarantine yields exactly the valid records in order and stores exactly the invalid ones."""
    sink = MemoryQuarantine()
    reader = read((row for _, row in rows), sink)
    got = [c.model_dump() for c in reader]
    assert got == [row for ok, row in rows if ok]
    assert [r.index for r in sink.records()] == [i for i, (ok, _) in enumerate(rows) if not ok]
    assert reader.valid + reader.quarantined == len(rows)
    assert reader.quarantined == sink.count()


@given(rows=rows_strategy)
def test_strict_raises_at_the_first_invalid_index(rows: list[tuple[bool, Any]]) -> None:
    """Strict yields the valid prefix, then raises InvalidRecord at the first invalid index."""
    first_bad = next((i for i, (ok, _) in enumerate(rows) if not ok), None)
    reader = read((row for _, row in rows), validation="strict")
    got: list[Contact] = []
    if first_bad is None:
        got.extend(reader)
        assert len(got) == len(rows)
        return
    with pytest.raises(InvalidRecord) as caught:
        got.extend(reader)
    assert caught.value.index == first_bad
    assert len(got) == first_bad


secrets_ = st.text(alphabet="0123456789abcdef", min_size=8, max_size=24).map("SEKRIT-{}".format)
sensitive_keys = st.sampled_from(["password", "api_key", "X-Api-Key", "refresh_token", "secret"])


@given(secret=secrets_, key=sensitive_keys, nested=st.booleans(), kind=st.sampled_from(["j", "s"]))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_secret_under_a_sensitive_key_never_reaches_the_file(
    tmp_path: Path, secret: str, key: str, nested: bool, kind: str
) -> None:
    """Whatever the secret and wherever the sensitive key, the stored file never holds it."""
    path = tmp_path / ("q.jsonl" if kind == "j" else "q.db")
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    payload: dict[str, Any] = {"id": "not-an-int", key: secret}
    if nested:
        payload = {"id": "not-an-int", "auth": {key: secret, "list": [{key: secret}]}}
    source = f"https://bot:{secret}@crm.example.com/c?token={secret}"
    with open_quarantine(path) as sink:
        list(read([payload], sink, source=source))
        assert sink.count() == 1
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(path.name))
    assert secret.encode() not in stored


def test_reading_200_000_records_stays_in_constant_memory(tmp_path: Path) -> None:
    """Peak traced memory stays small however many records go by (some quarantined)."""

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(200_000):
            yield {"id": "bad" if i % 500 == 0 else i, "email": "e@example.com", "n": i}

    gc.collect()
    with JSONLQuarantine(tmp_path / "q.jsonl") as sink:
        reader = read(rows(), sink)
        for _ in range(10):  # warm caches (keep_extra, pydantic) before measuring
            next(reader)
        tracemalloc.start()
        try:
            count = sum(1 for _ in reader)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count + 10 == reader.valid == 200_000 - 400
    assert reader.quarantined == 400
    assert peak < 5 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"


def test_warnings_are_not_raised_on_a_whole_file(tmp_path: Path) -> None:
    """A file of whole records reads without any warning."""
    path = tmp_path / "q.jsonl"
    with JSONLQuarantine(path) as sink:
        sink.put(make_record(FakeClock(START)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(JSONLQuarantine(path, read_only=True).records())) == 1
    assert json.loads(path.read_text(encoding="utf-8"))["connector"] == "crm"
