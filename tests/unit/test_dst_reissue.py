"""A local time survives DST: the reissue rule, simulated on a fake clock with the slot engine.

The maintenance job ``cronkit-dst:<project>`` evaluates :func:`cronkit.schedules.local_schedule` at
every tick of its schedule and reissues the job's GMT schedule when the answer differs. Here the
ticks and the job's runs both come from the slot engine (pg_cron's GMT calendar), the schedule in
effect changing at each tick, across the whole of 2026 — both transitions of two zones, for times
of day before, inside and after the hour that is skipped or repeated.

The rule for a local time inside a transition is PostgreSQL's reading of ``timestamp AT TIME
ZONE``: a time that does not exist runs an hour late by the clock; one that happens twice runs
once, at its second occurrence.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from cronkit.schedules import (
    DST_REISSUE_SCHEDULE,
    local_instant,
    local_options,
    local_schedule,
    next_transition,
    parse_schedule,
    schedule_for_local,
)

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)
#: a maintenance run takes a moment after its tick; runs at or before it used the old schedule
LAG = timedelta(seconds=2)
TRANSITIONS = {
    "America/Los_Angeles": (date(2026, 3, 8), date(2026, 11, 1)),
    "Europe/Berlin": (date(2026, 3, 29), date(2026, 10, 25)),
}
TIMES = ["00:15", "01:30", "02:00", "02:30", "03:00", "03:30", "09:00", "23:30"]


def simulate(at: str, zone: str, days: str = "*") -> tuple[list[datetime], list[tuple[datetime, str, str]]]:
    """Every run of the job in 2026 and every reissue (moment, old, new), on a fake clock."""
    schedule = schedule_for_local(at, zone, days, YEAR_START)
    options = local_options(at, zone, days, 2026)
    ticks = [t + LAG for t in parse_schedule(DST_REISSUE_SCHEDULE).expected_slots(YEAR_START, YEAR_END)]
    runs: list[datetime] = []
    reissues: list[tuple[datetime, str, str]] = []
    since = YEAR_START
    for tick in [*ticks, YEAR_END]:
        runs += parse_schedule(schedule).expected_slots(since, min(tick, YEAR_END))
        since = tick
        if tick >= YEAR_END:
            break
        new = local_schedule(options, at, zone, tick, schedule)
        if new != schedule:
            reissues.append((tick, schedule, new))
            schedule = new
    return runs, reissues


def local_days(zone: str, days: str = "*") -> list[date]:
    weekdays = {"*": set(range(7)), "mon-fri": {1, 2, 3, 4, 5}}[days]
    day, found = date(2026, 1, 2), []  # Jan 1 may have run on the eve's schedule before YEAR_START
    while day < date(2026, 12, 31):
        if day.isoweekday() % 7 in weekdays:
            found.append(day)
        day += timedelta(days=1)
    return found


@pytest.mark.parametrize("zone", sorted(TRANSITIONS))
@pytest.mark.parametrize("at", TIMES)
def test_every_local_day_of_2026_runs_exactly_once_at_its_local_time(zone: str, at: str) -> None:
    runs, reissues = simulate(at, zone)
    tz = ZoneInfo(zone)
    per_day = Counter(run.astimezone(tz).date() for run in runs)
    wanted = time.fromisoformat(at)
    for day in local_days(zone):
        assert per_day[day] == 1, f"{day}: {per_day[day]} runs"
        assert local_instant(day, wanted, zone) in runs
    assert len(reissues) == 2, reissues  # one per transition, nothing in between
    spring, autumn = TRANSITIONS[zone]
    assert [r[0].date() for r in reissues][0] in (spring - timedelta(days=1), spring)
    assert [r[0].date() for r in reissues][1] in (autumn - timedelta(days=1), autumn)


@pytest.mark.parametrize("zone", sorted(TRANSITIONS))
def test_a_weekday_job_late_in_the_evening_runs_once_on_each_weekday_only(zone: str) -> None:
    runs, _ = simulate("23:30", zone, "mon-fri")
    tz = ZoneInfo(zone)
    per_day = Counter(run.astimezone(tz).date() for run in runs)
    assert all(per_day[day] == 1 for day in local_days(zone, "mon-fri"))
    assert all(day.isoweekday() <= 5 for day in per_day)


@pytest.mark.parametrize(("zone", "day", "at", "local"), [
    # spring forward: the skipped hour's time runs an hour late by the clock
    ("America/Los_Angeles", date(2026, 3, 8), "02:30", "03:30 PDT"),
    ("Europe/Berlin", date(2026, 3, 29), "02:30", "03:30 CEST"),
    # fall back: the repeated hour's time runs once, at its second occurrence
    ("America/Los_Angeles", date(2026, 11, 1), "01:30", "01:30 PST"),
    ("Europe/Berlin", date(2026, 10, 25), "02:30", "02:30 CET"),
    # outside the change hour nothing moves
    ("America/Los_Angeles", date(2026, 3, 8), "03:00", "03:00 PDT"),
    ("Europe/Berlin", date(2026, 10, 25), "01:30", "01:30 CEST"),
])
def test_a_time_inside_the_change_hour_follows_postgresqls_reading(zone: str, day: date, at: str, local: str) -> None:
    runs, _ = simulate(at, zone)
    tz = ZoneInfo(zone)
    on_day = [run.astimezone(tz) for run in runs if run.astimezone(tz).date() == day]
    assert [f"{r:%H:%M} {r.tzname()}" for r in on_day] == [local]


def test_the_switch_waits_while_the_new_expression_would_fire_again_the_same_day() -> None:
    # 01:30 PDT ran on Oct 31 at 08:30 UTC; Nov 1's 01:30 is read as PST (09:30 UTC). At 09:05 UTC
    # on Oct 31 the new '30 9 * * *' would fire 25 minutes later: keep the old one until 09:30 is past.
    options = local_options("01:30", "America/Los_Angeles", "*", 2026)
    assert set(options.values()) == {"30 8 * * *", "30 9 * * *"}
    before = datetime(2026, 10, 31, 9, 5, 2, tzinfo=UTC)
    after = datetime(2026, 10, 31, 10, 5, 2, tzinfo=UTC)
    assert local_schedule(options, "01:30", "America/Los_Angeles", before, "30 8 * * *") == "30 8 * * *"
    assert local_schedule(options, "01:30", "America/Los_Angeles", after, "30 8 * * *") == "30 9 * * *"


def test_the_next_transition_names_the_day_and_the_schedule_it_switches_to() -> None:
    winter = next_transition("03:00", "America/Los_Angeles", "*", datetime(2026, 12, 6, tzinfo=UTC))
    assert winter is not None
    assert (winter.local_date, winter.expr) == (date(2027, 3, 14), "0 10 * * *")
    assert winter.at == datetime(2027, 3, 14, 10, 0, tzinfo=UTC)
    summer = next_transition("03:00", "Europe/Berlin", "*", datetime(2026, 7, 1, tzinfo=UTC))
    assert summer is not None and (summer.local_date, summer.expr) == (date(2026, 10, 25), "0 2 * * *")
    assert next_transition("03:00", "UTC", "*", datetime(2026, 7, 1, tzinfo=UTC)) is None


# -- the maintenance job that applies the rule -------------------------------------------------------


def _maintenance(*jobs: dict[str, object], **top: object) -> list[str]:
    from cronkit.maintenance import maintenance_jobs
    from cronkit.manifest import parse_manifest

    return [j.name for j in maintenance_jobs(parse_manifest({"project": "p", "jobs": list(jobs), **top}))]


@pytest.mark.parametrize(("job", "top", "expected"), [
    ({"at": "03:00", "timezone": "America/Los_Angeles"}, {}, ["cronkit-dst:p"]),
    ({"at": "03:00", "timezone": "Europe/Berlin"}, {"monitoring": {"enabled": False}}, ["cronkit-dst:p"]),
    ({"at": "03:00"}, {"environments": {"x": {"jobs": {"j": {"timezone": "Europe/Berlin"}}}}}, ["cronkit-dst:p"]),
    ({"at": "03:00"}, {}, []),  # UTC: nothing to reissue
    ({"at": "03:00", "timezone": "Asia/Tokyo"}, {}, []),  # no DST
    ({"at": "03:00", "timezone": "America/Los_Angeles", "schedule": "0 11 * * *"}, {}, []),  # a schedule of its own
])
def test_the_dst_job_exists_only_when_a_local_time_without_a_schedule_meets_dst(
        job: dict[str, object], top: dict[str, object], expected: list[str]) -> None:
    assert _maintenance({"name": "j", "sql": "select 1", **job}, **top) == expected
