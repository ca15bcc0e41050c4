"""BusinessHours: SLA durations count working time only, across weekends, holidays and DST."""

from __future__ import annotations

import time as perf
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from handrail import ConfigurationError
from handrail.escalation import BusinessHours

BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
HOUR = timedelta(hours=1)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


OFFICE = BusinessHours(timezone="Europe/Berlin")


# --- examples that read like the docs ---------------------------------------------------


def test_defaults_are_monday_to_friday_nine_to_five() -> None:
    """Without days and hours, a calendar is Monday to Friday, 09:00 to 17:00."""
    assert OFFICE.days == frozenset({1, 2, 3, 4, 5})
    assert (OFFICE.start, OFFICE.end) == (time(9), time(17))


def test_friday_afternoon_plus_two_hours_is_monday_morning() -> None:
    """Friday 16:00 + 2 working hours = Monday 10:00: the weekend does not count."""
    deadline = OFFICE.add(berlin(2026, 11, 27, 16), 2 * HOUR)
    assert deadline == berlin(2026, 11, 30, 10)
    assert deadline.tzinfo is UTC


def test_a_holiday_does_not_count() -> None:
    """Thursday 16:00 + 2 hours skips a Friday holiday and the weekend."""
    christmas = BusinessHours(timezone="Europe/Berlin", holidays=frozenset({date(2026, 12, 25)}))
    assert christmas.add(berlin(2026, 12, 24, 16), 2 * HOUR) == berlin(2026, 12, 28, 10)
    assert christmas.working_time(berlin(2026, 12, 25, 0), berlin(2026, 12, 26, 0)) == timedelta(0)


def test_a_dst_weekend_changes_real_but_not_working_time() -> None:
    """Across a spring-forward weekend, 2 working hours end at Monday 10:00, an hour sooner."""
    start = berlin(2026, 3, 27, 16)  # Friday, CET; clocks go forward early on Sunday the 29th
    deadline = OFFICE.add(start, 2 * HOUR)
    assert deadline == berlin(2026, 3, 30, 10)  # CEST
    assert deadline - start == 65 * HOUR


def test_a_day_with_spring_forward_inside_working_hours_is_shorter() -> None:
    """Night shift 00:00-06:00 on Sundays: 5 real hours on the day clocks skip 02:00-03:00."""
    night = BusinessHours(timezone="Europe/Berlin", days=frozenset({7}), start=time(0), end=time(6))
    assert night.working_time(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 5 * HOUR
    assert night.working_time(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 7 * HOUR
    assert night.working_time(berlin(2026, 11, 1), berlin(2026, 11, 2)) == 6 * HOUR


def test_lord_howe_shifts_by_half_an_hour() -> None:
    """Lord Howe Island moves its clocks by 30 minutes, so its DST days differ by half an hour."""
    night = BusinessHours(
        timezone="Australia/Lord_Howe", days=frozenset({7}), start=time(0), end=time(4)
    )
    spring = datetime(2026, 10, 4, tzinfo=LORD_HOWE)  # 02:00 -> 02:30
    autumn = datetime(2026, 4, 5, tzinfo=LORD_HOWE)  # 02:00 -> 01:30
    assert night.working_time(spring, spring + 2 * timedelta(days=1)) == 3.5 * HOUR
    assert night.working_time(autumn, autumn + 2 * timedelta(days=1)) == 4.5 * HOUR


def test_an_opening_time_in_a_gap_reads_with_the_offset_before_it() -> None:
    """Opening at 02:30 on the spring-forward day means 03:30 CEST (fold=0, pre-gap offset)."""
    sunday = BusinessHours(
        timezone="Europe/Berlin", days=frozenset({7}), start=time(2, 30), end=time(5)
    )
    assert sunday.next_open(berlin(2026, 3, 29, 0)) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert sunday.working_time(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 1.5 * HOUR


def test_an_opening_time_in_a_fold_is_its_first_occurrence() -> None:
    """Opening at 02:30 on the fall-back day means the first 02:30 (CEST), so the day is 3.5 h."""
    sunday = BusinessHours(
        timezone="Europe/Berlin", days=frozenset({7}), start=time(2, 30), end=time(5)
    )
    assert sunday.next_open(berlin(2026, 10, 25, 0)) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert sunday.working_time(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 3.5 * HOUR


def test_hours_that_vanish_in_a_gap_give_no_working_time() -> None:
    """02:15-03:15 on the spring-forward day opens and closes at the same instant: no work."""
    sunday = BusinessHours(
        timezone="Europe/Berlin", days=frozenset({7}), start=time(2, 15), end=time(3, 15)
    )
    assert sunday.working_time(berlin(2026, 3, 29), berlin(2026, 3, 30)) == timedelta(0)
    assert sunday.next_open(berlin(2026, 3, 29)) == berlin(2026, 4, 5, 2, 15)


def test_a_skipped_date_is_not_counted_twice() -> None:
    """Samoa skipped 2011-12-30; its hours land on the 31st, which then has none of its own."""
    apia = ZoneInfo("Pacific/Apia")
    daily = BusinessHours(timezone="Pacific/Apia", days=frozenset(range(1, 8)))
    start = datetime(2011, 12, 29, 9, tzinfo=apia)
    assert daily.working_time(start, datetime(2012, 1, 1, tzinfo=apia)) == 16 * HOUR
    for hours in range(0, 40, 3):
        assert daily.working_time(start, daily.add(start, hours * HOUR)) == hours * HOUR


def test_zero_duration_is_the_next_working_instant() -> None:
    """add(x, 0) is x when open, else the next opening; an opening counts as open, a closing not."""
    assert OFFICE.add(berlin(2026, 11, 25, 12), timedelta(0)) == berlin(2026, 11, 25, 12)
    assert OFFICE.add(berlin(2026, 11, 25, 17), timedelta(0)) == berlin(2026, 11, 26, 9)
    assert OFFICE.is_open(berlin(2026, 11, 25, 9))
    assert not OFFICE.is_open(berlin(2026, 11, 25, 17))
    assert OFFICE.next_open(berlin(2026, 11, 28, 12)) == berlin(2026, 11, 30, 9)


def test_a_duration_that_fills_the_day_ends_at_closing() -> None:
    """Counting 8 hours from Monday 09:00 ends at Monday 17:00, not at Tuesday's opening."""
    assert OFFICE.add(berlin(2026, 11, 30, 9), 8 * HOUR) == berlin(2026, 11, 30, 17)


def test_midnight_end_means_end_of_day() -> None:
    """end 00:00 closes at midnight at the end of the working day."""
    late = BusinessHours(timezone="Europe/Berlin", start=time(20), end=time(0))
    assert late.add(berlin(2026, 11, 27, 23), 2 * HOUR) == berlin(2026, 11, 30, 21)


def test_always_is_plain_elapsed_time() -> None:
    """BusinessHours.always() counts every instant: add is real elapsed time, even across DST."""
    start = berlin(2026, 3, 28, 22)
    # Not `start + 10 * HOUR`: Python adds to an aware datetime in its own zone's wall clock.
    assert BusinessHours.always().add(start, 10 * HOUR) == start.astimezone(UTC) + 10 * HOUR
    assert BusinessHours.always().add(start, 10 * HOUR) == berlin(2026, 3, 29, 9)


def test_long_durations_finish_quickly() -> None:
    """1,000 working hours are 125 days of 8 hours: 25 weeks, computed in well under a second."""
    utc_office = BusinessHours(timezone="UTC")
    monday = datetime(2026, 1, 5, 9, tzinfo=UTC)
    began = perf.perf_counter()
    deadline = utc_office.add(monday, 1000 * HOUR)
    assert perf.perf_counter() - began < 0.5
    assert deadline == datetime(2026, 6, 26, 17, tzinfo=UTC)  # the Friday of week 25


# --- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timezone": "Europe/Berln"}, "unknown time zone 'Europe/Berln'"),
        ({"timezone": "../etc/passwd"}, "unknown time zone"),
        ({"timezone": "UTC", "days": []}, "no working days"),
        ({"timezone": "UTC", "days": [0, 8]}, "[0, 8] not ISO weekdays"),
        ({"timezone": "UTC", "start": "17:00", "end": "09:00"}, "end 09:00:00 is not after"),
        ({"timezone": "UTC", "start": "09:00", "end": "09:00"}, "is not after start"),
        ({"timezone": "UTC", "start": "09:00+02:00"}, "carries its own offset"),
        ({"timezone": "UTC", "hours": "9-5"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_calendars_are_refused(fields: dict[str, object], message: str) -> None:
    """A malformed calendar fails at load time, saying what is wrong and how to fix it."""
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        BusinessHours.model_validate(fields)


def test_calendars_load_from_config_values() -> None:
    """Strings and lists, as read from YAML or JSON, become a calendar."""
    loaded = BusinessHours.model_validate(
        {
            "timezone": "America/New_York",
            "days": [1, 2, 3, 4],
            "start": "08:30",
            "end": "16:30",
            "holidays": ["2026-11-26"],
        }
    )
    assert loaded.holidays == frozenset({date(2026, 11, 26)})
    assert loaded.start == time(8, 30)


@pytest.mark.parametrize("method", ["add", "working_time", "is_open", "next_open"])
def test_naive_datetimes_are_refused(method: str) -> None:
    """Every method refuses a naive datetime, naming the argument."""
    naive = datetime(2026, 11, 25, 12)
    calls: dict[str, Callable[[], object]] = {
        "add": lambda: OFFICE.add(naive, HOUR),
        "working_time": lambda: OFFICE.working_time(berlin(2026, 11, 25), naive),
        "is_open": lambda: OFFICE.is_open(naive),
        "next_open": lambda: OFFICE.next_open(naive),
    }
    name = {"add": "start", "working_time": "end", "is_open": "at", "next_open": "at"}[method]
    with pytest.raises(ValueError, match=f"^{name} must be a timezone-aware datetime"):
        calls[method]()


def test_negative_durations_are_refused() -> None:
    """A deadline is never before its start."""
    with pytest.raises(ConfigurationError, match="must not be negative"):
        OFFICE.add(berlin(2026, 11, 25, 12), -HOUR)


# --- properties -----------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/Santiago",  # transitions at midnight
    "Asia/Kolkata",  # no DST, +05:30
]
FIRST, LAST = datetime(2024, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)


def _transitions() -> list[datetime]:
    """The UTC days on which one of ZONES changes its offset."""
    found: list[datetime] = []
    for key in ZONES:
        zone = ZoneInfo(key)
        day = FIRST
        while day < LAST:
            following = day + timedelta(days=1)
            if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
                found.append(day)
            day = following
    return found


TRANSITIONS = _transitions()


@st.composite
def calendars(draw: st.DrawFn) -> BusinessHours:
    start = draw(st.times())
    end = draw(st.one_of(st.just(time(0)), st.times().filter(lambda t: t > start)))
    holidays = st.dates(FIRST.date(), LAST.date() + timedelta(days=400))
    return BusinessHours(
        timezone=draw(st.sampled_from(ZONES)),
        days=draw(st.frozensets(st.integers(1, 7), min_size=1)),
        start=start,
        end=end,
        holidays=draw(st.frozensets(holidays, max_size=30)),
    )


instants = st.one_of(
    st.datetimes(FIRST.replace(tzinfo=None), LAST.replace(tzinfo=None), timezones=st.just(UTC)),
    # Near a DST change, where the arithmetic is most likely to slip.
    st.builds(
        datetime.__add__,
        st.sampled_from(TRANSITIONS),
        st.timedeltas(timedelta(days=-3), timedelta(days=2)),
    ),
)
durations = st.one_of(
    st.timedeltas(timedelta(0), 400 * HOUR),
    st.integers(0, 48 * 4).map(lambda quarters: quarters * timedelta(minutes=15)),
)


@settings(deadline=None)
@given(calendars(), instants, durations)
def test_working_time_inverts_add(calendar: BusinessHours, start: datetime, d: timedelta) -> None:
    """The working time from a start to its deadline is exactly the duration."""
    assert calendar.working_time(start, calendar.add(start, d)) == d


@settings(deadline=None)
@given(calendars(), instants, durations, durations)
def test_add_is_monotone_in_the_duration(
    calendar: BusinessHours, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    """A longer duration never gives an earlier deadline."""
    shorter, longer = sorted([d1, d2])
    assert calendar.add(start, shorter) <= calendar.add(start, longer)


@settings(deadline=None)
@given(calendars(), instants, instants, durations)
def test_add_is_monotone_in_the_start(
    calendar: BusinessHours, s1: datetime, s2: datetime, d: timedelta
) -> None:
    """A later start never gives an earlier deadline."""
    earlier, later = sorted([s1, s2])
    assert calendar.add(earlier, d) <= calendar.add(later, d)


@settings(deadline=None)
@given(calendars(), instants, durations, durations)
def test_add_is_additive(
    calendar: BusinessHours, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    """Counting d1 then d2 > 0 ends where counting d1 + d2 does."""
    assume(d2 > timedelta(0))
    assert calendar.add(start, d1 + d2) == calendar.add(calendar.add(start, d1), d2)


@settings(deadline=None)
@given(calendars(), instants, durations)
def test_deadlines_are_open_or_closing_instants(
    calendar: BusinessHours, start: datetime, d: timedelta
) -> None:
    """A deadline is never before its start, and lies in working time or exactly at a close."""
    deadline = calendar.add(start, d)
    assert deadline >= start
    assert deadline.tzinfo is UTC
    if d == timedelta(0):
        assert deadline == calendar.next_open(start)
        assert calendar.is_open(deadline)
    else:
        just_before = deadline - timedelta(microseconds=1)
        assert calendar.is_open(deadline) or calendar.is_open(just_before)


@settings(deadline=None)
@given(calendars(), instants)
def test_next_open_skips_only_closed_time(calendar: BusinessHours, at: datetime) -> None:
    """next_open is open, and no working time lies between the argument and it."""
    opening = calendar.next_open(at)
    assert calendar.is_open(opening)
    assert calendar.working_time(at, opening) == timedelta(0)
    assert calendar.is_open(at) == (opening == at)


@settings(deadline=None)
@given(calendars(), instants, durations)
def test_holidays_never_count(calendar: BusinessHours, at: datetime, d: timedelta) -> None:
    """Making a date a holiday removes all its working time and never brings a deadline forward."""
    zone = ZoneInfo(calendar.timezone)
    day = at.astimezone(zone).date()
    closed = calendar.model_copy(update={"holidays": calendar.holidays | {day}})
    assert not closed.is_open(at)
    midnight = datetime.combine(day, time(0), tzinfo=zone)
    assert closed.working_time(midnight, midnight + timedelta(days=1)) == timedelta(0)
    assert closed.add(at, d) >= calendar.add(at, d)


@settings(deadline=None)
@given(instants, instants, durations)
def test_always_is_wall_clock_time(a: datetime, b: datetime, d: timedelta) -> None:
    """Under BusinessHours.always(), working time is elapsed time."""
    always = BusinessHours.always()
    assert always.add(a, d) == a + d
    assert always.working_time(a, b) == max(b - a, timedelta(0))


@settings(deadline=None)
@given(calendars(), instants, instants)
def test_working_time_is_additive_over_a_split(
    calendar: BusinessHours, a: datetime, b: datetime
) -> None:
    """Working time over [a, c) is the sum over [a, b) and [b, c)."""
    first, second = sorted([a, b])
    third = second + timedelta(days=3)
    assert calendar.working_time(first, third) == calendar.working_time(
        first, second
    ) + calendar.working_time(second, third)
