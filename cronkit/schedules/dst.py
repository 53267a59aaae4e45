"""Local-time intents and DST: the GMT schedules that start a job at a local time, and where they drift."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from cronkit.errors import ScheduleError
from cronkit.schedules import LATEST, PgCronVersion, Schedule, _compact, parse_schedule
from cronkit.schedules import parse as grammar
from cronkit.schedules.slots import _ONE_DAY, _zone

# --- local times and DST -----------------------------------------------------------------------


@dataclass(frozen=True)
class UtcOption:
    """A GMT schedule that starts a job at the intended local time while the zone has one offset."""

    expr: str
    utc_offset: timedelta
    abbreviation: str
    is_daylight: bool
    #: (first, last) local dates of the year on which this expression is right
    periods: tuple[tuple[date, date], ...]


@dataclass(frozen=True)
class DstPeriod:
    """Consecutive runs (local dates ``first``..``last``) that start at the same local time."""

    first: date
    last: date
    local_time: time
    abbreviation: str
    as_intended: bool


@dataclass(frozen=True)
class DstReport:
    """When a GMT schedule starts at the intended local time, and when it does not."""

    expr: str
    intended_local: time
    zone: str
    year: int
    periods: tuple[DstPeriod, ...]
    options: tuple[UtcOption, ...]
    #: '' when every run of the year starts at the intended local time
    warning: str

    @property
    def mismatches(self) -> tuple[DstPeriod, ...]:
        return tuple(p for p in self.periods if not p.as_intended)


def utc_expressions_for_local(hour: int, minute: int, zone: str, year: int, days: str = "*") -> tuple[UtcOption, ...]:
    """The GMT schedules that run at ``hour:minute`` local time in ``zone``: one per UTC offset
    the zone uses during ``year`` (standard time first).

    ``days`` is a day-of-week field in local terms (``'mon-fri'``); it is shifted when the
    UTC time falls on the previous or next day.
    """
    tz = _zone(zone)
    weekdays = grammar.parse_field(days, grammar.DAY_OF_WEEK, LATEST)
    if not weekdays:
        raise ScheduleError(f"days '{days}' selects no day of the week (pg_cron ranges do not wrap; write 'sat,sun')")
    by_offset: dict[timedelta, list[date]] = {}
    facts: dict[timedelta, tuple[str, bool]] = {}
    day = date(year, 1, 1)
    while day.year == year:
        wall = datetime(day.year, day.month, day.day, hour, minute)
        local = wall.replace(tzinfo=tz)
        if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:  # skip a time that does not exist
            offset = local.utcoffset()
            assert offset is not None
            by_offset.setdefault(offset, []).append(day)
            facts.setdefault(offset, (local.tzname() or zone, bool(local.dst())))
        day += _ONE_DAY
    options = []
    for offset, dates in by_offset.items():
        utc_wall = datetime(year, 1, 2, hour, minute) - offset
        shift = utc_wall.day - 2  # -1, 0 or +1 day
        dow = _compact(frozenset((d + shift) % 7 for d in weekdays), grammar.DAY_OF_WEEK)
        abbreviation, is_daylight = facts[offset]
        options.append(
            UtcOption(f"{utc_wall.minute} {utc_wall.hour} * * {dow}", offset, abbreviation, is_daylight, _runs(dates))
        )
    return tuple(sorted(options, key=lambda o: (o.is_daylight, o.periods[0])))


def dst_report(
    expr: str, intended_local: time, zone: str, year: int, version: PgCronVersion | None = None
) -> DstReport:
    """Check a GMT cron schedule meant to start at ``intended_local`` in ``zone`` over ``year``.

    The schedule is evaluated in GMT, pg_cron's default and the only choice on hosted Supabase.
    Meant for jobs that run at most once a day.
    """
    schedule = parse_schedule(expr, version)
    if schedule.kind != "cron":
        raise ScheduleError(f"'{expr}' does not run at a time of day, so DST cannot shift it")
    tz = _zone(zone)
    start = datetime(year, 1, 1, tzinfo=tz)
    end = datetime(year + 1, 1, 1, tzinfo=tz)
    periods: list[DstPeriod] = []
    local_weekdays: set[int] = set()  # the days it runs on at the intended local time, Sunday = 0
    for run in schedule.expected_slots(start, end):
        local = run.astimezone(tz)
        if local.time().replace(fold=0) == intended_local:
            local_weekdays.add(local.isoweekday() % 7)
        at, abbreviation = local.time().replace(fold=0), local.tzname() or zone
        if periods and periods[-1].last == local.date():
            raise ScheduleError(
                f"'{expr}' runs more than once on {local.date()}; a DST report is for jobs that run at most once a day"
            )
        if periods and (periods[-1].local_time, periods[-1].abbreviation) == (at, abbreviation):
            periods[-1] = DstPeriod(periods[-1].first, local.date(), at, abbreviation, at == intended_local)
        else:
            periods.append(DstPeriod(local.date(), local.date(), at, abbreviation, at == intended_local))
    options = _options(schedule, intended_local, zone, year, local_weekdays)
    report = DstReport(expr, intended_local, zone, year, tuple(periods), options, warning="")
    return replace(report, warning=_dst_warning(report, schedule))


def _options(schedule: Schedule, intended: time, zone: str, year: int, weekdays: set[int]) -> tuple[UtcOption, ...]:
    """The GMT schedules to choose from, on the same days as ``schedule``: a weekly job stays weekly
    (its local weekdays, shifted when GMT is on another day); a job on certain dates or months keeps
    those fields, offered only for the offsets at which GMT is on the same date."""
    assert schedule.fields is not None
    _minute, _hour, dom, month, dow = schedule.fields.text
    if dom == "*" and month == "*":
        days = "*" if not weekdays or len(weekdays) == 7 else _compact(frozenset(weekdays), grammar.DAY_OF_WEEK)
        return utc_expressions_for_local(intended.hour, intended.minute, zone, year, days)
    same_date = []
    for option in utc_expressions_for_local(intended.hour, intended.minute, zone, year):
        minutes = intended.hour * 60 + intended.minute - option.utc_offset.total_seconds() / 60
        if 0 <= minutes < 24 * 60:
            same_date.append(replace(option, expr=" ".join([*option.expr.split()[:2], dom, month, dow])))
    return tuple(same_date)


def _runs(dates: list[date]) -> tuple[tuple[date, date], ...]:
    """Consecutive dates as (first, last) pairs."""
    runs: list[tuple[date, date]] = []
    for day in dates:
        if runs and runs[-1][1] + _ONE_DAY == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return tuple(runs)


def _dst_warning(report: DstReport, schedule: Schedule) -> str:
    if not report.periods:
        return f"'{report.expr}' does not run in {report.year}."
    wrong = report.mismatches
    if not wrong:
        return ""
    intended = f"{report.intended_local:%H:%M} {report.zone}"
    shifts = "; ".join(f"from {p.first} to {p.last} at {p.local_time:%H:%M} {p.abbreviation}" for p in wrong)
    if len(wrong) == len(report.periods):
        problem = f"'{report.expr}' (GMT) never runs at {intended} in {report.year}: it runs {shifts}."
    else:
        problem = f"'{report.expr}' (GMT) runs at {intended} only part of {report.year}; it runs {shifts}."
    choices = " or ".join(f"'{o.expr}' ({o.abbreviation})" for o in report.options)
    switch = f"choose {choices}, or switch between them at each DST change"
    version = schedule.version
    if not version.supports_timezone:
        return f"{problem} pg_cron {version} runs every schedule in GMT (cron.timezone came in 1.5): {switch}."
    assert schedule.fields is not None
    local_days = " ".join(schedule.fields.text[2:])
    local = (
        f"'{report.intended_local.minute} {report.intended_local.hour} {local_days}'"
        if local_days == "* * *"
        else "the schedule written in local time"
    )
    return (
        f"{problem} The real fix is cron.timezone = '{report.zone}' (pg_cron 1.5+, a server setting that "
        f"needs a restart) with {local}; hosted Supabase does not let you set cron.timezone, so there {switch}."
    )


def utc_schedule_for_local(at: str, zone: str, days: str = "*", year: int | None = None) -> str:
    """The GMT expression for a daily (or ``days``) local time, valid for standard time.

    Used when a manifest gives ``at`` + ``timezone`` but no ``schedule``; plan then warns about
    the months where daylight saving time shifts it (see :func:`dst_warning`).
    """
    hour, minute = (int(part) for part in at.split(":"))
    options = utc_expressions_for_local(hour, minute, zone, year or datetime.now(UTC).year, days)
    return options[0].expr


def dst_warning(expr: str, at: str, zone: str, year: int | None = None, version: PgCronVersion | None = None) -> str:
    """'' when ``expr`` starts at local ``at`` in ``zone`` all year, else a warning with the options.

    Expressions that fire more than once a day (a sandbox override like ``* * * * *``) are not
    a time of day, so there is nothing to warn about.
    """
    hour, minute = (int(part) for part in at.split(":"))
    try:
        report = dst_report(expr, time(hour, minute), zone, year or datetime.now(UTC).year, version)
    except ScheduleError:
        return ""
    return report.warning


# --- reissuing a local time's GMT schedule at each DST change --------------------------------------
#
# A job declared with ``at`` + ``timezone`` (and no ``schedule``) runs on a GMT schedule that is
# right for one UTC offset of its zone. The maintenance job ``cronkit-dst:<project>`` calls SQL
# ``cronkit.local_schedule`` (sql/schema_local_time.sql), which mirrors :func:`local_schedule`
# below, and reissues the schedule when the rule says so; a test proves both agree.

#: the maintenance job's schedule: hourly, away from the top of the hour where most jobs start
DST_REISSUE_SCHEDULE = "5 * * * *"


def local_instant(day: date, at: time, zone: str) -> datetime:
    """The instant local ``at`` on ``day`` names, read as PostgreSQL reads ``timestamp AT TIME ZONE``.

    A wall time that does not exist (spring forward) takes the offset from before the change, so
    it runs an hour late by the clock (02:30 → 03:30 PDT); one that happens twice (fall back)
    takes the offset from after it: the second occurrence, once.
    """
    tz = _zone(zone)
    wall = datetime.combine(day, at)
    first, second = (wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
    if first == second:
        return first
    exists = first.astimezone(tz).replace(tzinfo=None) == wall
    return second if exists else first  # repeated: after the change; skipped: before it


def local_options(at: str, zone: str, days: str, year: int) -> dict[timedelta, str]:
    """The GMT expression of every UTC offset ``zone`` uses in ``year`` and the year after."""
    hour, minute = (int(part) for part in at.split(":"))
    options: dict[timedelta, str] = {}
    for y in (year, year + 1):
        for option in utc_expressions_for_local(hour, minute, zone, y, days):
            options.setdefault(option.utc_offset, option.expr)
    return options


def local_schedule(options: dict[timedelta, str], at: str, zone: str, moment: datetime, current: str | None) -> str:
    """The GMT schedule a local-time job must have at ``moment``, given the one it has (``current``).

    The next local run after ``moment`` decides (its wall time read by :func:`local_instant`): the
    expression of the offset it is read with. The switch waits while that expression would still
    fire once more before that run (its run 24 hours earlier is not yet a minute in the past) — on
    the day after a fall-back the old hour comes again. So each local day runs exactly once, as long
    as the rule is evaluated at least once in the ~23 hours between two runs.
    """
    moment = moment.astimezone(UTC)
    hour, minute = (int(part) for part in at.split(":"))
    wanted = time(hour, minute)
    day = moment.astimezone(_zone(zone)).date() - _ONE_DAY
    run = local_instant(day, wanted, zone)
    while run <= moment:
        day += _ONE_DAY
        run = local_instant(day, wanted, zone)
    offset = datetime.combine(day, wanted, tzinfo=UTC) - run
    target = options.get(offset)
    if target is None:
        return current or next(iter(options.values()))
    if current is not None and run - _ONE_DAY >= moment.replace(second=0, microsecond=0):
        return current
    return target


def schedule_for_local(at: str, zone: str, days: str, moment: datetime, current: str | None = None) -> str:
    """The GMT schedule to give a local-time job at ``moment``: :func:`local_schedule`, starting from
    ``current`` (the live schedule) or else the expression of the zone's offset at ``moment``."""
    options = local_options(at, zone, days, moment.year)
    if current is None:
        now_offset = moment.astimezone(_zone(zone)).utcoffset()
        current = options.get(now_offset) if now_offset is not None else None
    return local_schedule(options, at, zone, moment, current)


@dataclass(frozen=True)
class DstTransition:
    """The next change of a zone's UTC offset, and the GMT expression a local-time job gets then."""

    at: datetime  # the instant the offset changes (UTC)
    local_date: date
    utc_offset: timedelta
    expr: str


def next_transition(at: str, zone: str, days: str, after: datetime) -> DstTransition | None:
    """The zone's next offset change within ~13 months of ``after``; None for a zone without DST."""
    tz = _zone(zone)
    start = after.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    before = start.astimezone(tz).utcoffset()
    step = timedelta(hours=1)
    for hours in range(1, 400 * 24):
        moment = start + hours * step
        offset = moment.astimezone(tz).utcoffset()
        if offset != before:
            low = moment - step  # the change happens in (low, moment]: find its minute
            while moment - low > timedelta(minutes=1):
                middle = low + (moment - low) / 2
                if middle.astimezone(tz).utcoffset() == before:
                    low = middle
                else:
                    moment = middle
            assert offset is not None
            options = local_options(at, zone, days, moment.year)
            expr = options.get(offset)
            if expr is None:
                return None
            return DstTransition(moment, moment.astimezone(tz).date(), offset, expr)
    return None
