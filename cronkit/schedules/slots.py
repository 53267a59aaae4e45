"""The slot engine: every instant a pg_cron schedule fires, as pg_cron's ShouldRunTask decides it (DST included)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronkit.errors import ScheduleError
from cronkit.schedules.parse import CronFields

_ONE_DAY = timedelta(days=1)
#: a Gregorian cycle: a schedule that can run at all runs within it
_MAX_SCAN_DAYS = 146_097


class _Calendar:
    """The firing times of cron fields, the way pg_cron's ShouldRunTask decides them."""

    def __init__(self, fields: CronFields) -> None:
        self.fields = fields
        self.both_day_fields = fields.dom_star or fields.dow_star
        self.times = [(h, m) for h in sorted(fields.hours) for m in sorted(fields.minutes)]
        self.offsets = [timedelta(hours=h, minutes=m) for h, m in self.times]

    def day_matches(self, month: int, day: int, weekday: int, last: bool) -> bool:
        """``weekday`` counts from Sunday = 0; ``last`` says whether 24 h later is the 1st."""
        f = self.fields
        if month not in f.months:
            return False
        dom = day in f.days or (last and f.last_day)
        dow = weekday in f.weekdays
        return (dom and dow) if self.both_day_fields else (dom or dow)

    def can_run(self) -> bool:
        if not self.times:
            return False
        # Every (month, day, weekday) occurs in the Gregorian calendar; Feb 28 is the last day
        # of the month in common years only.
        return any(
            self.day_matches(month, day, weekday, last)
            for month in range(1, 13)
            for day in range(1, _days_in_month(month) + 1)
            for weekday in range(7)
            for last in ((True, False) if (month, day) == (2, 28) else (day == _days_in_month(month),))
        )

    def instants(self, start: datetime, end: datetime | None, zone: tzinfo) -> Iterator[datetime]:
        """Start times in ``[start, end)`` (no end: up to 400 years), in order, a day at a time."""
        day = start.astimezone(zone).date()
        final = end.astimezone(zone).date() if end is not None else day + timedelta(days=_MAX_SCAN_DAYS)
        while day <= final:
            weekday = day.isoweekday() % 7
            if self.day_matches(day.month, day.day, weekday, last=False):
                times = self._day(day, zone)
            elif (day.day >= 27 or day.day == 1) and self.day_matches(day.month, day.day, weekday, last=True):
                # Only '$' can match: pg_cron asks whether the same instant 24 hours later falls on
                # a 1st. Near a DST change that differs from the calendar for an hour - even on the
                # 1st itself when it is 25 hours long.
                times = [t for t in self._day(day, zone) if (t + _ONE_DAY).astimezone(zone).day == 1]
            else:
                day += _ONE_DAY
                continue
            if times and times[0] < start:
                times = times[bisect_left(times, start) :]
            if end is not None and times and times[-1] >= end:
                yield from times[: bisect_left(times, end)]
                return
            yield from times
            day += _ONE_DAY

    def _day(self, day: date, zone: tzinfo) -> list[datetime]:
        """The day's matching local times as UTC instants, in order."""
        midnight = datetime(day.year, day.month, day.day)
        offset = _constant_offset(midnight, zone)
        if offset is not None:
            base = midnight.replace(tzinfo=UTC) - offset
            return [base + o for o in self.offsets]
        # A DST change: pg_cron compares each absolute minute's local time with the fields, so a
        # wall time that is skipped never runs and one that repeats runs at both instants.
        found = set()
        for hour, minute in self.times:
            for fold in (0, 1):
                wall = midnight.replace(hour=hour, minute=minute, fold=fold)
                instant = wall.replace(tzinfo=zone).astimezone(UTC)
                if instant.astimezone(zone).replace(tzinfo=None) == wall:
                    found.add(instant)
        return sorted(found)


def _constant_offset(midnight: datetime, zone: tzinfo) -> timedelta | None:
    """The zone's UTC offset if it is the same all day, else None."""
    ends = (midnight, midnight.replace(hour=23, minute=59))
    offsets = {zone.utcoffset(t.replace(fold=fold)) for t in ends for fold in (0, 1)}
    offset = offsets.pop()
    return offset if not offsets else None


def _interval_slots(start: datetime, end: datetime, seconds: int) -> Iterator[datetime]:
    step = timedelta(seconds=seconds)
    slot = start
    while slot < end:
        yield slot
        slot += step


def _days_in_month(month: int) -> int:
    return 29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, e.g. datetime(2026, 1, 1, tzinfo=UTC)")
    return moment.astimezone(UTC)


def _zone(tz: str) -> tzinfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {tz!r}",
            remedy="Use a zone name as cron.timezone takes it, e.g. 'GMT', 'UTC' or 'America/Los_Angeles'.",
        ) from None


