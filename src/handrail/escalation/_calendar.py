"""Business hours: the calendar under which escalation SLA clocks run.

Pure and I/O-free.  Working time is a set of disjoint, ordered intervals of
real time, one per working day::

    [open(D), close(D))    D a local date whose ISO weekday is in ``days``
                           and which is not in ``holidays``

``open(D)`` and ``close(D)`` are the local wall-clock times ``start`` and
``end`` on ``D`` turned into instants by the zone, each resolved with
``fold=0`` (``zoneinfo`` semantics: a time in a fold is its *first*
occurrence; a time in a gap is read with the offset in force *before* the
gap, which lands as far past the gap's start as the time is).  ``end`` of
``00:00`` means midnight at the end of ``D`` (24:00).  Two clamps keep the
intervals disjoint and ordered however the zone's clocks jump:

- ``open(D)`` is moved forward to ``close(D - 1)`` if it would come before it
  (only for dates a zone skips, such as Pacific/Apia's 2011-12-30);
- a day whose ``close`` is not after its ``open`` has no working time (only
  when both ends fall in, or on either side of, one gap).

So a working day lasts exactly the real time between its opening and closing
instants: one hour less on a day whose 02:00→03:00 spring-forward falls
inside working hours, one hour more on a fall-back day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .._errors import ConfigurationError

_MIDNIGHT = time(0)
_ONE_DAY = timedelta(days=1)
_WEEKDAYS = "1=Monday, 2=Tuesday, ..., 7=Sunday"


def _aware(value: datetime, name: str) -> datetime:
    """``value`` in UTC; a ConfigurationError naming ``name`` if it is naive."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ConfigurationError(
            f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}; "
            f"attach a zone, e.g. {name}.replace(tzinfo=datetime.timezone.utc)"
        )
    return value.astimezone(UTC)


class BusinessHours(BaseModel):
    """Working hours in one time zone; counts SLA durations in working time only.

    Every method takes timezone-aware datetimes (a naive one raises
    ``ConfigurationError``, a ``ValueError``, naming the argument) and returns
    them in UTC.  Immutable, so safe to share between threads and tasks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str
    """An IANA time zone name, such as ``"Europe/Berlin"`` or ``"UTC"``."""
    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    """Working ISO weekdays: 1 is Monday, 7 is Sunday.  Monday to Friday by default."""
    start: time = time(9)
    """Local opening time on each working day."""
    end: time = time(17)
    """Local closing time, after ``start``; ``00:00`` means midnight at the end of the day."""
    holidays: frozenset[date] = frozenset()
    """Local dates with no working time, whatever their weekday."""

    @classmethod
    def always(cls) -> BusinessHours:
        """Open around the clock: working time is plain elapsed time."""
        return cls(timezone="UTC", days=frozenset(range(1, 8)), start=_MIDNIGHT, end=_MIDNIGHT)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin', "
                "'America/New_York' or 'UTC'"
            ) from None
        return value

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        if not value:
            raise ValueError(
                "no working days: SLA deadlines would never be reached; "
                f"list at least one ISO weekday ({_WEEKDAYS})"
            )
        wrong = sorted(day for day in value if not 1 <= day <= 7)
        if wrong:
            raise ValueError(f"{wrong} not ISO weekdays: use {_WEEKDAYS}")
        return value

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError(
                f"{value.isoformat()} carries its own offset: give a local time such as "
                "'09:00'; the calendar's timezone places it"
            )
        return value

    @model_validator(mode="after")
    def _opens_before_closing(self) -> Self:
        if self.end != _MIDNIGHT and self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} is not after start {self.start.isoformat()}: "
                "working hours lie within one day (use end '00:00' for midnight)"
            )
        return self

    # --- the intervals -------------------------------------------------------

    def _instant(self, day: date, at: time) -> datetime:
        # fold=0 is combine's default: first occurrence in a fold, pre-gap offset in a gap.
        return datetime.combine(day, at, tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)

    def _close(self, day: date) -> datetime:
        if self.end == _MIDNIGHT:
            return self._instant(day + _ONE_DAY, _MIDNIGHT)
        return self._instant(day, self.end)

    def _interval(self, day: date) -> tuple[datetime, datetime] | None:
        """The working interval of local date ``day``, or None if it has none."""
        if day.isoweekday() not in self.days or day in self.holidays:
            return None
        opening = max(self._instant(day, self.start), self._close(day - _ONE_DAY))
        closing = self._close(day)
        if closing <= opening:
            return None
        return opening, closing

    def _intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that end after ``at`` (a UTC instant), in order; endless."""
        # Start a day early: an interval may close on the next local date (end 00:00).
        day = at.astimezone(ZoneInfo(self.timezone)).date() - _ONE_DAY
        while True:
            interval = self._interval(day)
            if interval is not None and interval[1] > at:
                yield interval
            day += _ONE_DAY

    # --- the arithmetic ------------------------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of working time has elapsed after ``start``.

        This is the SLA deadline.  Counting begins at ``start`` if the calendar
        is open then, otherwise at the next opening.  For a positive duration
        the result is the *earliest* such instant, so it is either an open
        instant or exactly a closing instant (a duration that fills the rest of
        a day ends at that day's close, not at the next opening).  A zero
        duration gives ``next_open(start)``.  Raises ``ConfigurationError`` for
        a naive ``start`` or a negative ``duration``.  Runs in time
        proportional to the calendar days spanned.
        """
        at = _aware(start, "start")
        if duration < timedelta(0):
            raise ConfigurationError(
                f"duration must not be negative, got {duration}; "
                "for a time before start, there is no working-time deadline"
            )
        remaining = duration
        for opening, closing in self._intervals_from(at):
            begin = max(opening, at)
            available = closing - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: _intervals_from never ends")  # pragma: no cover

    def working_time(self, start: datetime, end: datetime) -> timedelta:
        """The working time in ``[start, end)``; zero if ``end`` is not after ``start``."""
        begin, finish = _aware(start, "start"), _aware(end, "end")
        total = timedelta(0)
        if finish <= begin:
            return total
        for opening, closing in self._intervals_from(begin):
            if opening >= finish:
                break
            total += min(closing, finish) - max(opening, begin)
        return total

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies in working time (an opening instant does, a closing one not)."""
        instant = _aware(at, "at")
        opening, _ = next(self._intervals_from(instant))
        return opening <= instant

    def next_open(self, at: datetime) -> datetime:
        """The first working instant at or after ``at``: ``at`` itself if the calendar is open."""
        instant = _aware(at, "at")
        opening, _ = next(self._intervals_from(instant))
        return max(opening, instant)
