"""The pg_cron schedule dialect: validate a schedule as pg_cron does, explain it, list its run times.

pg_cron (citusdata/pg_cron) parses schedules with Paul Vixie's crontab parser, so most of
Vixie/Debian cron applies: five fields ``minute hour day-of-month month day-of-week``; names
``jan``-``dec`` and ``sun``-``sat`` in any case; ``7`` is Sunday; ``*``, ranges, lists and
``/step`` after ``*`` or a range; a day matches when day-of-month **and** day-of-week match if
either field *starts with* ``*``, and when either matches otherwise (``0 0 */2 * 1`` = odd days
that are Mondays; ``0 0 1 * 1`` = the 1st and every Monday). Where pg_cron differs:

* **Time zone.** Schedules run in GMT. pg_cron 1.5 added ``cron.timezone`` (a superuser,
  restart-only setting that hosted Supabase does not let users change). In a zone with DST,
  pg_cron checks every absolute minute against the local time: a local time that does not exist
  (spring forward) never runs and one that happens twice (fall back) runs twice. Debian cron,
  and cronsim which copies it, instead move or merge those runs.
* **Extensions.** ``'N seconds'``/``'N second'`` with N 1-59 (1.5+): an interval measured from the
  *start of the previous run*, not a clock grid; a run that overruns is followed by one catch-up
  run. ``$`` as the whole day-of-month field (1.6+): the last day of the month.
* **Macros.** ``@reboot`` (alias ``@restart``: once per scheduler start), ``@yearly``,
  ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight``, ``@hourly`` - lower case
  only. Since 1.6.0 ``@yearly``/``@annually`` never run: the parser sets no month for them.
* **Leniency.** Text after the fifth field is ignored (``* * * * * *`` is every minute, not a
  seconds field), as is the rest of a field after a character that cannot continue it
  (``0 12.30 * * *`` is 12:00). A step needs ``*`` or a range (``5/10`` is refused). Reversed
  ranges (``22-2``, ``sat-sun``) do not wrap: 1.4 selects nothing, 1.6 a byte-aligned subset.
  Since 1.6.5 a step larger than the field's maximum (``*/60``) is refused.
  :func:`parse_schedule` accepts all of this exactly as pg_cron does (so schedules read back from
  ``cron.job`` always parse) and lists each surprise in :attr:`Schedule.warnings`; pass
  ``strict=True`` to refuse them.
* **Not modelled.** pg_cron 1.6.0-1.6.2 ran day-restricted jobs one day early (#290, fixed in
  1.6.3); unreleased pg_cron adds ``cron.match_dom_and_dow`` to force AND. Runs missed while the
  server or scheduler is down are never replayed (only stalls under five minutes are).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property, lru_cache
from itertools import islice
from typing import NamedTuple

from cronsim import CronSim, CronSimError

from cronkit.errors import ScheduleError, UnsupportedVersion
from cronkit.schedules import parse as grammar
from cronkit.schedules.parse import CronFields, Kind
from cronkit.schedules.slots import _as_utc, _Calendar, _interval_slots, _zone

__all__ = [
    "DEBIAN_BOOKWORM",
    "LATEST",
    "SUPABASE",
    "CronFields",
    "DstPeriod",
    "DstReport",
    "PgCronVersion",
    "Schedule",
    "UtcOption",
    "dst_report",
    "parse_pg_cron_version",
    "parse_schedule",
    "utc_expressions_for_local",
]

_ONE_MINUTE = timedelta(minutes=1)
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")


class PgCronVersion(NamedTuple):
    """A pg_cron release, compared as a tuple: ``PgCronVersion(1, 6, 4) >= (1, 5, 0)``."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def supports_seconds(self) -> bool:
        """``'N seconds'`` interval schedules (pg_cron 1.5.0)."""
        return self >= (1, 5, 0)

    @property
    def supports_last_day(self) -> bool:
        """``$`` as the day-of-month field (pg_cron 1.6.0)."""
        return self >= (1, 6, 0)

    @property
    def supports_timezone(self) -> bool:
        """The ``cron.timezone`` setting (pg_cron 1.5.0); before it every schedule runs in GMT."""
        return self >= (1, 5, 0)


DEBIAN_BOOKWORM = PgCronVersion(1, 4, 2)
SUPABASE = PgCronVersion(1, 6, 4)
#: the newest pg_cron release; what :func:`parse_schedule` assumes without a version
LATEST = PgCronVersion(1, 6, 7)

# extversion is the SQL schema version. '1.4-1' is the schema that shipped with 1.4.2; a bare
# '1.6' is every 1.6.x release (1.6.1 fixed the schema version at 1.6), read as 1.6.0.
_SQL_SCHEMA_RELEASES = {"1.4-1": PgCronVersion(1, 4, 2)}


def parse_pg_cron_version(extversion: str) -> PgCronVersion:
    """Read ``pg_extension.extversion`` (``'1.4-1'``, ``'1.6'``, ``'1.6.4'``) or a package version."""
    text = extversion.strip().removeprefix("v")
    if text in _SQL_SCHEMA_RELEASES:
        return _SQL_SCHEMA_RELEASES[text]
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        raise UnsupportedVersion(
            f"cannot read the pg_cron version {extversion!r}",
            remedy="Pass the version as major.minor[.patch], e.g. '1.6.4', as "
            "`select extversion from pg_extension where extname = 'pg_cron'` shows it.",
        )
    return PgCronVersion(int(match[1]), int(match[2]), int(match[3] or 0))


@dataclass(frozen=True)
class Schedule:
    """A schedule as pg_cron ``version`` reads it; build it with :func:`parse_schedule`."""

    expr: str
    kind: Kind
    version: PgCronVersion
    fields: CronFields | None = None
    interval_seconds: int | None = None
    macro: str | None = None
    #: ways in which pg_cron reads the schedule differently from how it looks
    warnings: tuple[str, ...] = ()

    @cached_property
    def never_runs(self) -> bool:
        """True for a cron schedule that matches no time at all (e.g. ``0 0 30 2 *``)."""
        return self.fields is not None and not self._calendar.can_run()

    def explain(self, tz: str = "GMT", *, brief: bool = False) -> str:
        """The schedule in English, e.g. ``'At 11:00 every day, in GMT'``; ``tz`` is cron.timezone.
        ``brief`` leaves out how pg_cron counts intervals and what starts a reboot job (for tables)."""
        if self.kind == "reboot":
            return "At scheduler start" if brief else \
                "Once each time the pg_cron scheduler starts (server start or scheduler restart)"
        if self.interval_seconds is not None:
            unit = "second" if self.interval_seconds == 1 else f"{self.interval_seconds} seconds"
            if brief:
                return f"Every {unit}"
            return f"Every {unit}, counted from the start of the previous run (runs of a job never overlap)"
        assert self.fields is not None
        if self.never_runs:
            return "Never runs: " + _never_runs_reason(self.fields, self.macro, self.version)
        return f"{_describe(self.fields)}, in {tz}"

    def next_runs(self, after: datetime, n: int, tz: str = "GMT") -> list[datetime]:
        """The next ``n`` start times strictly after ``after``, as aware UTC datetimes.

        ``tz`` is cron.timezone. For an interval schedule ``after`` is the previous run's start;
        ``@reboot`` has no times.
        """
        after = _as_utc(after, "after")
        if self.interval_seconds is not None:
            step = timedelta(seconds=self.interval_seconds)
            return [after + step * k for k in range(1, n + 1)]
        if self.fields is None or self.never_runs or n <= 0:
            return []
        first_minute = after.replace(second=0, microsecond=0) + _ONE_MINUTE
        return list(islice(self._calendar.instants(first_minute, None, self._zone(tz)), n))

    def expected_slots(self, start: datetime, end: datetime, tz: str = "GMT") -> Iterator[datetime]:
        """Every start time in ``[start, end)``, in order, as aware UTC datetimes.

        For an interval schedule these are ``start, start + N, ...``: the runs expected if one
        started at ``start`` and every later one started on time (pg_cron measures each interval
        from the previous actual start, so real runs drift later by up to a second each).
        Cron schedules are generated a day at a time from precomputed offsets.
        """
        start, end = _as_utc(start, "start"), _as_utc(end, "end")
        if self.interval_seconds is not None:
            return _interval_slots(start, end, self.interval_seconds)
        if self.fields is None or self.never_runs:
            return iter(())
        return self._calendar.instants(start, end, self._zone(tz))

    def longest_gap(self, tz: str = "GMT", *, within: timedelta = timedelta(days=400),
                    limit: int = 20_000) -> timedelta | None:
        """The longest time between two consecutive starts (an interval schedule: its interval),
        over ``within`` from 2026-01-01 or ``limit`` starts, whichever ends first: how long a job
        may be silent before a run is overdue (the alerts' ``silent`` check). None: no times."""
        if self.interval_seconds is not None:
            return timedelta(seconds=self.interval_seconds)
        if self.fields is None or self.never_runs:
            return None
        origin = datetime(2026, 1, 1, tzinfo=UTC)
        starts = list(islice(self.expected_slots(origin, origin + within, tz), limit))
        if len(starts) < 2:
            return within  # once a year or rarer: at least the whole span
        return max(b - a for a, b in zip(starts, starts[1:], strict=False))

    @cached_property
    def _calendar(self) -> _Calendar:
        assert self.fields is not None
        return _Calendar(self.fields)

    def _zone(self, tz: str) -> tzinfo:
        if tz not in ("GMT", "UTC") and not self.version.supports_timezone:
            raise UnsupportedVersion(
                f"cron.timezone needs pg_cron 1.5 or later; this database has {self.version}, "
                "which runs every schedule in GMT",
                remedy="Compute times with tz='GMT', or upgrade pg_cron to 1.5 or later and set cron.timezone.",
            )
        return _zone(tz)


def parse_schedule(expr: str, version: PgCronVersion | None = None, *, strict: bool = False) -> Schedule:
    """Validate ``expr`` as pg_cron ``version`` (default: :data:`LATEST`) would, and parse it.

    Raises :class:`ScheduleError` for what pg_cron refuses, naming the field and the problem, and
    :class:`UnsupportedVersion` for ``'N seconds'`` before 1.5 and ``$`` before 1.6. With
    ``strict=True`` a schedule with :attr:`Schedule.warnings` is refused too. A schedule is
    immutable, so each (expression, version) is parsed once per process: the doctor and the
    missed-run engine ask for the same hundred schedules hundreds of times.
    """
    return _parse_schedule(expr, version or LATEST, strict)


@lru_cache(maxsize=4096)
def _parse_schedule(expr: str, version: PgCronVersion, strict: bool) -> Schedule:
    parsed = grammar.parse(expr, version)
    if parsed.kind == "interval" and not version.supports_seconds:
        raise UnsupportedVersion(
            f"'{expr}' needs pg_cron 1.5 or later; this database has {version}",
            remedy="Upgrade pg_cron to 1.5 or later (on Supabase: upgrade the project's Postgres), "
            "or give this environment its own schedule, e.g. '* * * * *' (every minute).",
        )
    if parsed.fields is not None and parsed.fields.last_day and not version.supports_last_day:
        minute, hour, _, month, _ = parsed.fields.text
        raise UnsupportedVersion(
            f"'{expr}' uses '$' (last day of the month), which needs pg_cron 1.6 or later; this database has {version}",
            remedy=f"Upgrade pg_cron to 1.6 or later, or give this environment its own schedule, e.g. "
            f"'{minute} {hour} 28-31 {month} *', with a command that does nothing unless tomorrow is the 1st.",
        )
    warnings = parsed.warnings
    if parsed.fields is not None and not _Calendar(parsed.fields).can_run():
        warnings += (f"it never runs: {_never_runs_reason(parsed.fields, parsed.macro, version)}",)
    if strict and warnings:
        raise ScheduleError(
            f"pg_cron accepts '{expr}', but " + "; ".join(warnings),
            remedy="Write the schedule so that pg_cron reads what you mean: five fields (minute hour "
            "day-of-month month day-of-week), plain numbers, names or ranges; see `cronkit schedule explain EXPR`.",
        )
    return Schedule(expr, parsed.kind, version, parsed.fields, parsed.interval_seconds, parsed.macro, warnings)


# --- English -----------------------------------------------------------------------------------


def _describe(fields: CronFields) -> str:
    """cronsim's explanation of the first spelling that cronsim reads exactly as pg_cron does."""
    minute, hour, dom, month, dow = fields.text
    as_written = " ".join((minute, hour, "L" if fields.last_day else dom, month, dow))
    compact = " ".join(
        (
            _compact(fields.minutes, grammar.MINUTE),
            _compact(fields.hours, grammar.HOUR),
            "L" if fields.last_day else _compact(fields.days, grammar.DAY_OF_MONTH),
            _compact(fields.months, grammar.MONTH),
            _compact(fields.weekdays, grammar.DAY_OF_WEEK),
        )
    )
    for spelling in (as_written, compact):
        try:
            sim = CronSim(spelling, datetime(2000, 1, 1))
        except CronSimError:
            continue
        if _same_as_cronsim(fields, sim):
            return sim.explain()
    both = "both" if fields.dom_star or fields.dow_star else "either"
    return f"At the times '{compact}' selects ({both} day fields must match)"


def _same_as_cronsim(fields: CronFields, sim: CronSim) -> bool:
    weekdays = [d for d in sim.weekdays if isinstance(d, int)]
    if len(weekdays) != len(sim.weekdays):  # 'L' or '#' forms, which pg_cron does not have
        return False
    days = fields.days | ({CronSim.LAST} if fields.last_day else set())
    ours = (fields.minutes, fields.hours, days, fields.months, fields.weekdays)
    theirs = (sim.minutes, sim.hours, sim.days, sim.months, {d % 7 for d in weekdays})
    return ours == tuple(map(frozenset, theirs)) and sim.day_and == (fields.dom_star or fields.dow_star)


def _compact(values: frozenset[int], field: grammar.Field) -> str:
    """``{1, 2, 3, 7}`` -> ``'1-3,7'``; all values -> ``'*'``."""
    top = 6 if field is grammar.DAY_OF_WEEK else field.high
    if values == set(range(field.low, top + 1)):
        return "*"
    runs: list[list[int]] = []
    for value in sorted(values):
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _never_runs_reason(fields: CronFields, macro: str | None, version: PgCronVersion) -> str:
    if macro in ("yearly", "annually") and not fields.months:
        return f"pg_cron {version} parses @{macro} without a month (a bug since 1.6.0); write '0 0 1 1 *'"
    both = fields.dom_star or fields.dow_star
    empty = [
        name
        for name, selects_something in (
            ("minute", fields.minutes),
            ("hour", fields.hours),
            ("day-of-month", fields.days or fields.last_day or not both),  # with OR the other field may match
            ("month", fields.months),
            ("day-of-week", fields.weekdays or not both),
        )
        if not selects_something
    ]
    if empty:
        name = empty[0]
        return f"the {name} field '{fields.text[_FIELD_NAMES.index(name)]}' selects nothing"
    months = "" if fields.text[3] == "*" else f" in month '{fields.text[3]}'"
    joiner = "and" if both else "or"
    return f"no date has day-of-month '{fields.text[2]}' {joiner} day-of-week '{fields.text[4]}'{months}"




# The slot engine and the DST helpers live in their own modules; they are part of this API.
from cronkit.schedules.dst import (  # noqa: E402
    DST_REISSUE_SCHEDULE,
    DstPeriod,
    DstReport,
    DstTransition,
    UtcOption,
    dst_report,
    dst_warning,
    local_instant,
    local_options,
    local_schedule,
    next_transition,
    schedule_for_local,
    utc_expressions_for_local,
    utc_schedule_for_local,
)

__all__ += ["DstPeriod", "DstReport", "dst_warning", "utc_schedule_for_local"]
__all__ += ["DST_REISSUE_SCHEDULE", "DstTransition", "local_instant", "local_options", "local_schedule",
            "next_transition", "schedule_for_local"]
