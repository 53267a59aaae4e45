"""The pg_cron schedule dialect, as specifications.

Expected values come from pg_cron's source (src/entry.c, src/pg_cron.c, src/job_metadata.c) and
were checked against pg_cron's C parser (1.4.2, 1.6.4, 1.6.7) and a real pg_cron 1.4.2 server;
tests/integration/test_schedules_differential.py re-checks acceptance against the database under test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from cronkit.errors import ScheduleError, UnsupportedVersion
from cronkit.schedules import (
    DEBIAN_BOOKWORM,
    LATEST,
    SUPABASE,
    PgCronVersion,
    dst_report,
    parse_pg_cron_version,
    parse_schedule,
    utc_expressions_for_local,
)

LA = "America/Los_Angeles"
V1_5_2 = PgCronVersion(1, 5, 2)
FROM_PREVIOUS_START = "counted from the start of the previous run (runs of a job never overlap)"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def days_of(expr: str, after: datetime, n: int, version: PgCronVersion | None = None) -> list[date]:
    return [t.date() for t in parse_schedule(expr, version).next_runs(after, n)]


# --- versions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extversion", "expected"),
    [
        ("1.4-1", (1, 4, 2)),  # the SQL schema version Debian bookworm's 1.4.2 reports
        ("1.6", (1, 6, 0)),
        ("1.6.4", (1, 6, 4)),
        ("1.5", (1, 5, 0)),
        (" v1.6.7 ", (1, 6, 7)),
        ("1.4.2-2+b1", (1, 4, 2)),  # a Debian package version
    ],
)
def test_it_reads_extension_versions_leniently(extversion: str, expected: tuple[int, int, int]) -> None:
    assert parse_pg_cron_version(extversion) == expected


def test_it_refuses_a_version_it_cannot_read() -> None:
    with pytest.raises(UnsupportedVersion, match="cannot read the pg_cron version 'latest'"):
        parse_pg_cron_version("latest")


@pytest.mark.parametrize(
    ("version", "seconds", "last_day", "timezone"),
    [
        (DEBIAN_BOOKWORM, False, False, False),
        (V1_5_2, True, False, True),
        (PgCronVersion(1, 6, 0), True, True, True),
        (SUPABASE, True, True, True),
    ],
    ids=str,
)
def test_it_knows_which_version_brought_which_feature(
    version: PgCronVersion, seconds: bool, last_day: bool, timezone: bool
) -> None:
    assert (version.supports_seconds, version.supports_last_day, version.supports_timezone) == (
        seconds,
        last_day,
        timezone,
    )


def test_it_names_the_versions_that_matter() -> None:
    assert (str(DEBIAN_BOOKWORM), str(SUPABASE), str(LATEST)) == ("1.4.2", "1.6.4", "1.6.7")


# --- calendar semantics ------------------------------------------------------------------------


def test_it_needs_both_day_fields_when_day_of_month_starts_with_a_star() -> None:
    # odd days of the month that are Mondays
    assert days_of("0 0 */2 * 1", at(2025, 1, 1), 4) == [
        date(2025, 1, 13),
        date(2025, 1, 27),
        date(2025, 2, 3),
        date(2025, 2, 17),
    ]


def test_it_needs_either_day_field_when_neither_starts_with_a_star() -> None:
    # the 1st of the month, and every Monday
    assert days_of("0 0 1 * 1", at(2025, 1, 1), 6) == [
        date(2025, 1, 6),
        date(2025, 1, 13),
        date(2025, 1, 20),
        date(2025, 1, 27),
        date(2025, 2, 1),
        date(2025, 2, 3),
    ]


def test_it_applies_the_star_rule_to_day_of_week_too() -> None:
    # '*/2' in day-of-week starts with a star: the 1st only when it is Sun/Tue/Thu/Sat
    assert days_of("0 0 1 * */2", at(2025, 1, 1), 3) == [date(2025, 2, 1), date(2025, 3, 1), date(2025, 4, 1)]


@pytest.mark.parametrize(
    "expr", ["0 0 */2 * 1", "0 0 1 * 1", "0 0 1,15 * mon-fri", "*/7 9-17 * * 1-5", "0 12 * jan,jul sun", "5 4 * * 7"]
)
def test_cronsim_applies_the_same_day_rule_as_pg_cron_in_gmt(expr: str) -> None:
    start = at(2025, 1, 1)
    assert parse_schedule(expr).next_runs(start, 40) == list(islice(CronSim(expr, start), 40))


@pytest.mark.parametrize("expr", ["0 0 * * 7", "0 0 * * 0", "0 0 * * SUN", "0 0 * * sun", "@weekly"])
def test_it_treats_seven_and_sun_as_sunday(expr: str) -> None:
    assert days_of(expr, at(2025, 1, 1), 2) == [date(2025, 1, 5), date(2025, 1, 12)]


def test_it_reads_month_and_day_names_in_any_case() -> None:
    assert days_of("0 0 1 JAN,jul *", at(2025, 1, 1), 3) == [date(2025, 7, 1), date(2026, 1, 1), date(2026, 7, 1)]
    assert days_of("0 0 * * Mon-Wed", at(2025, 1, 1), 3) == [date(2025, 1, 6), date(2025, 1, 7), date(2025, 1, 8)]


def test_it_runs_dollar_on_the_last_day_of_each_month_including_a_leap_february() -> None:
    assert days_of("0 12 $ * *", at(2028, 1, 15), 4) == [
        date(2028, 1, 31),
        date(2028, 2, 29),
        date(2028, 3, 31),
        date(2028, 4, 30),
    ]


def test_it_joins_dollar_and_a_day_of_week_with_or() -> None:
    # '$' does not start with a star, so: the last day, or any Friday
    assert days_of("0 0 $ * fri", at(2025, 1, 25), 3) == [date(2025, 1, 31), date(2025, 2, 7), date(2025, 2, 14)]


def test_it_reads_a_one_value_range_with_a_step_as_that_value_unlike_cronsim() -> None:
    schedule = parse_schedule("0 1-1/12 * * *")
    assert schedule.fields is not None and schedule.fields.hours == {1}
    assert CronSim("0 1-1/12 * * *", at(2025, 1, 1)).hours == {1, 13}  # why cronkit has its own engine
    assert schedule.explain() == "At 01:00 every day, in GMT"


# --- seconds -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "seconds"),
    [
        ("30 seconds", 30),
        ("1 second", 1),
        ("1 seconds", 1),
        ("59 seconds", 59),
        (" 30 seconds ", 30),
        ("30seconds", 30),
        ("30 SECONDS", 30),
        ("\t5 Second", 5),
        ("+30 seconds", 30),
        ("30 seconds\n", 30),
    ],
)
def test_it_accepts_the_interval_spellings_pg_cron_accepts(expr: str, seconds: int) -> None:
    schedule = parse_schedule(expr)
    assert (schedule.kind, schedule.interval_seconds, schedule.fields) == ("interval", seconds, None)


def test_it_counts_intervals_from_the_previous_start_not_from_the_clock() -> None:
    previous_start = at(2026, 5, 1, 10, 0, 7)
    assert parse_schedule("30 seconds").next_runs(previous_start, 3) == [
        at(2026, 5, 1, 10, 0, 37),
        at(2026, 5, 1, 10, 1, 7),
        at(2026, 5, 1, 10, 1, 37),
    ]


def test_it_lists_interval_slots_from_the_start_of_the_window() -> None:
    slots = list(parse_schedule("20 seconds").expected_slots(at(2026, 1, 1, 0, 0, 5), at(2026, 1, 1, 0, 1, 5)))
    assert slots == [at(2026, 1, 1, 0, 0, 5), at(2026, 1, 1, 0, 0, 25), at(2026, 1, 1, 0, 0, 45)]


# --- macros ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "version", "first_runs"),
    [
        ("@yearly", V1_5_2, [at(2026, 1, 1), at(2027, 1, 1)]),
        ("@annually", DEBIAN_BOOKWORM, [at(2026, 1, 1), at(2027, 1, 1)]),
        ("@monthly", LATEST, [at(2025, 2, 1), at(2025, 3, 1)]),
        ("@weekly", LATEST, [at(2025, 1, 5), at(2025, 1, 12)]),
        ("@daily", LATEST, [at(2025, 1, 2), at(2025, 1, 3)]),
        ("@midnight", LATEST, [at(2025, 1, 2), at(2025, 1, 3)]),
        ("@hourly", LATEST, [at(2025, 1, 1, 1), at(2025, 1, 1, 2)]),
        ("  @daily", LATEST, [at(2025, 1, 2), at(2025, 1, 3)]),
    ],
)
def test_it_runs_every_macro_when_pg_cron_does(expr: str, version: PgCronVersion, first_runs: list[datetime]) -> None:
    schedule = parse_schedule(expr, version)
    assert (schedule.kind, schedule.warnings) == ("cron", ())
    assert schedule.next_runs(at(2025, 1, 1), 2) == first_runs


@pytest.mark.parametrize("expr", ["@yearly", "@annually"])
def test_it_warns_that_yearly_never_runs_on_pg_cron_1_6(expr: str) -> None:
    # pg_cron 1.6.0 calls set_element(month, 1, 12, FIRST_MINUTE): 0 is out of range, no month is set
    schedule = parse_schedule(expr, SUPABASE)
    assert schedule.never_runs
    assert schedule.next_runs(at(2025, 1, 1), 1) == []
    assert "write '0 0 1 1 *'" in schedule.explain()
    with pytest.raises(ScheduleError, match="without a month"):
        parse_schedule(expr, SUPABASE, strict=True)


@pytest.mark.parametrize("expr", ["@reboot", "@restart"])
def test_it_gives_reboot_jobs_no_run_times(expr: str) -> None:
    schedule = parse_schedule(expr)
    assert schedule.kind == "reboot"
    assert schedule.next_runs(at(2025, 1, 1), 3) == []
    assert list(schedule.expected_slots(at(2025, 1, 1), at(2025, 2, 1))) == []
    assert schedule.explain().startswith("Once each time the pg_cron scheduler starts")


# --- what pg_cron accepts but does not mean what it says ---------------------------------------


@pytest.mark.parametrize(
    ("expr", "runs_like", "warning"),
    [
        ("* * * * * *", "* * * * *", "ignores everything after the fifth field: '*'"),
        ("0 */5 * * * *", "0 */5 * * *", "it has no seconds or year field"),
        ("0 12.30 * * *", "0 12 * * *", "ignores '.30' at the end of the hour field '12.30'"),
        ("5;x * * * *", "5 * * * *", "ignores ';x'"),
        ("*5 * * * *", "* * * * *", "ignores '5'"),
        ("@daily at noon", "0 0 * * *", "ignores the text after @daily: 'at noon'"),
    ],
)
def test_it_accepts_what_pg_cron_accepts_and_warns_about_ignored_text(expr: str, runs_like: str, warning: str) -> None:
    schedule = parse_schedule(expr)
    assert schedule.next_runs(at(2025, 1, 1), 5) == parse_schedule(runs_like).next_runs(at(2025, 1, 1), 5)
    assert any(warning in w for w in schedule.warnings), schedule.warnings
    with pytest.raises(ScheduleError, match="pg_cron accepts"):
        parse_schedule(expr, strict=True)


def test_it_skips_comment_lines_before_the_schedule_as_pg_cron_does() -> None:
    assert parse_schedule("# nightly\n0 3 * * *").next_runs(at(2025, 1, 1), 1) == [at(2025, 1, 1, 3)]


def test_it_wraps_huge_numbers_like_c_atoi() -> None:
    # 4294967301 = 2**32 + 5; pg_cron 1.4.2 stored it and runs at minute 5
    schedule = parse_schedule("4294967301 * * * *")
    assert schedule.fields is not None and schedule.fields.minutes == {5}


@pytest.mark.parametrize(
    ("expr", "version", "minutes"),
    [
        ("50-10 * * * *", LATEST, {8, 9, 10, 50, 51, 52, 53, 54, 55}),  # bit_nset works byte by byte
        ("50-10 * * * *", DEBIAN_BOOKWORM, set()),
        ("58-1 * * * *", SUPABASE, {0, 1, 58, 59}),
        ("10-5 * * * *", LATEST, {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}),
        ("7-2 * * * *", LATEST, set()),  # both ends in one byte
        ("50-10/2 * * * *", LATEST, set()),
    ],
)
def test_it_reads_reversed_ranges_as_each_version_does(expr: str, version: PgCronVersion, minutes: set[int]) -> None:
    schedule = parse_schedule(expr, version)
    assert schedule.fields is not None and schedule.fields.minutes == minutes
    assert any("reversed range" in w for w in schedule.warnings)
    assert schedule.never_runs == (not minutes)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("0 0 * * sat-sun", "the day-of-week field 'sat-sun' selects nothing"),
        ("0 0 30 2 *", "no date has day-of-month '30' and day-of-week '*' in month '2'"),
        ("0 0 31 apr,jun *", "no date has day-of-month '31' and day-of-week '*' in month 'apr,jun'"),
    ],
)
def test_it_warns_about_schedules_that_never_run(expr: str, reason: str) -> None:
    schedule = parse_schedule(expr)
    assert schedule.never_runs
    assert schedule.next_runs(at(2025, 1, 1), 1) == []
    assert schedule.explain() == f"Never runs: {reason}"


def test_it_still_runs_feb_30_on_the_day_of_week_when_both_are_restricted() -> None:
    assert days_of("0 0 30 2 1", at(2025, 1, 31), 2) == [date(2025, 2, 3), date(2025, 2, 10)]


def test_it_accepts_a_step_beyond_the_field_before_pg_cron_1_6_5_only() -> None:
    schedule = parse_schedule("*/60 * * * *", SUPABASE)
    assert schedule.fields is not None and schedule.fields.minutes == {0}
    with pytest.raises(ScheduleError, match="step 60 in the minute field is larger than 59"):
        parse_schedule("*/60 * * * *", LATEST)


# --- version gating ----------------------------------------------------------------------------


def test_it_says_seconds_need_pg_cron_1_5() -> None:
    with pytest.raises(UnsupportedVersion) as caught:
        parse_schedule("30 seconds", DEBIAN_BOOKWORM)
    assert caught.value.message == "'30 seconds' needs pg_cron 1.5 or later; this database has 1.4.2"
    assert "Upgrade pg_cron" in caught.value.remedy and "'* * * * *'" in caught.value.remedy


def test_it_says_dollar_needs_pg_cron_1_6() -> None:
    with pytest.raises(UnsupportedVersion) as caught:
        parse_schedule("0 12 $ * *", V1_5_2)
    assert caught.value.message == (
        "'0 12 $ * *' uses '$' (last day of the month), which needs pg_cron 1.6 or later; this database has 1.5.2"
    )
    assert "'0 12 28-31 * *'" in caught.value.remedy


def test_it_reports_a_bad_interval_as_invalid_even_where_intervals_are_unsupported() -> None:
    with pytest.raises(ScheduleError, match="60 seconds is out of range 1-59"):
        parse_schedule("60 seconds", DEBIAN_BOOKWORM)


def test_it_refuses_a_time_zone_before_pg_cron_1_5() -> None:
    with pytest.raises(
        UnsupportedVersion, match=r"cron\.timezone needs pg_cron 1\.5 or later; this database has 1\.4\.2"
    ):
        parse_schedule("0 3 * * *", DEBIAN_BOOKWORM).next_runs(at(2025, 1, 1), 1, tz=LA)


# --- invalid schedules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("60 seconds", "60 seconds is out of range 1-59"),
        ("0 seconds", "0 seconds is out of range 1-59"),
        ("-5 seconds", "-5 seconds is out of range 1-59"),
        ("30 secs", "'secs' is not a unit pg_cron accepts"),
        ("5 minutes", "'minutes' is not a unit pg_cron accepts"),
        ("30 second ", "pg_cron refuses blanks after the singular 'second'"),
        ("30 seconds please", "pg_cron refuses text after 'seconds': 'please'"),
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("1-60 * * * *", "minute 60 is out of range 0-59"),
        ("* 24 * * *", "hour 24 is out of range 0-23"),
        ("* * 32 * *", "day-of-month 32 is out of range 1-31"),
        ("* * 0 * *", "day-of-month 0 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week 8 is out of range 0-7"),
        ("", "minute is missing"),
        ("   ", "minute is missing"),
        ("* * * *", "day-of-week is missing; pg_cron needs 5 fields"),
        ("0 12 $", "month is missing"),
        ("0 12 1,$ * *", "expected a day-of-month but found '$'"),
        ("0 12 $-1 * *", "'$' (last day of the month) must be the whole day-of-month field"),
        ("0 12 $5 * *", "'$' (last day of the month) must be the whole day-of-month field"),
        ("5/10 * * * *", "a step needs a range in the minute field: write '5-59/N' or '*/N'"),
        ("*/0 * * * *", "step 0 in the minute field must be 1 or more"),
        ("*/x * * * *", "'x' is not a number (step in the minute field)"),
        ("* * * JANUARY *", "'JANUARY' is not a month name (jan-dec) or number"),
        ("* * * * monday", "'monday' is not a day-of-week name (sun-sat) or number"),
        ("0 jan * * *", "'jan' is not a number (hour)"),
        ("1,2, * * * *", "expected a minute but found ' '"),
        ("@DAILY", "'@DAILY' is not a macro pg_cron knows (macros are lower case)"),
        ("@every_5m", "'@every_5m' is not a macro pg_cron knows; it knows @reboot"),
        ("# only a comment", "it holds only comments"),
        ("*" * 1000, "it is longer than 999 bytes"),
        ("* * * * *\0", "it contains a NUL character"),
    ],
)
def test_it_rejects_what_pg_cron_rejects_and_says_why(expr: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expr)
    assert caught.value.message.startswith(f"invalid schedule '{expr}': ")
    assert reason in caught.value.message
    assert caught.value.remedy


def test_it_rejects_sixty_seconds() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("60 seconds")
    assert caught.value.message == "invalid schedule '60 seconds': 60 seconds is out of range 1-59"
    assert "'* * * * *'" in caught.value.remedy


# --- explaining --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz", "text"),
    [
        ("0 11 * * *", "GMT", "At 11:00 every day, in GMT"),
        ("0 3 * * *", LA, "At 03:00 every day, in America/Los_Angeles"),
        ("0 0 */2 * 1", "GMT", "At 00:00 on every second day of month if it's on Monday, in GMT"),
        ("0 0 1 * 1", "GMT", "At 00:00 on the first day of month and on Monday, in GMT"),
        ("0 12 $ * *", "GMT", "At 12:00 on the last day of every month, in GMT"),
        ("@hourly", "GMT", "At the start of every hour, in GMT"),
        ("0 22-2 * * *", "GMT", "At minute 0 past every hour from 0 through 2, hour 22, and hour 23, in GMT"),
        ("30 seconds", "GMT", f"Every 30 seconds, {FROM_PREVIOUS_START}"),
        ("1 second", "GMT", f"Every second, {FROM_PREVIOUS_START}"),
    ],
)
def test_it_explains_schedules_in_english(expr: str, tz: str, text: str) -> None:
    assert parse_schedule(expr).explain(tz) == text


# --- time zones and DST ------------------------------------------------------------------------


def test_it_never_runs_a_local_time_that_daylight_saving_skips() -> None:
    # 2026-03-08 02:30 does not exist in Los Angeles; Debian cron (and cronsim) run at 03:00 instead
    runs = parse_schedule("30 2 * * *").next_runs(at(2026, 3, 7), 2, tz=LA)
    assert [t.astimezone(ZoneInfo(LA)).isoformat() for t in runs] == [
        "2026-03-07T02:30:00-08:00",
        "2026-03-09T02:30:00-07:00",
    ]
    cronsim_runs = islice(CronSim("30 2 * * *", datetime(2026, 3, 7, tzinfo=ZoneInfo(LA))), 2)
    assert [t.isoformat() for t in cronsim_runs] == ["2026-03-07T02:30:00-08:00", "2026-03-08T03:00:00-07:00"]


def test_it_runs_a_repeated_local_time_twice_when_daylight_saving_ends() -> None:
    runs = parse_schedule("30 1 * * *").next_runs(at(2026, 10, 31, 12), 3, tz=LA)
    assert runs == [at(2026, 11, 1, 8, 30), at(2026, 11, 1, 9, 30), at(2026, 11, 2, 9, 30)]


def test_it_runs_every_absolute_minute_across_a_dst_change() -> None:
    zone = ZoneInfo(LA)
    spring_day = parse_schedule("* * * * *").expected_slots(
        datetime(2026, 3, 8, tzinfo=zone), datetime(2026, 3, 9, tzinfo=zone), tz=LA
    )
    assert len(list(spring_day)) == 23 * 60


def test_it_decides_dollar_by_the_same_instant_24_hours_later_as_pg_cron_does() -> None:
    # Berlin springs forward on Sunday 2024-03-31: 23:30 on the 30th plus 24 h is 00:30 on 1 April,
    # so pg_cron's ShouldRunTask (tomorrow_tm->tm_mday == 1) runs '$' on the 30th and the 31st.
    runs = parse_schedule("30 23 $ * *").next_runs(at(2024, 3, 29), 2, tz="Europe/Berlin")
    assert runs == [at(2024, 3, 30, 22, 30), at(2024, 3, 31, 21, 30)]


def test_it_runs_dollar_in_the_first_hour_of_a_first_that_falls_back_as_pg_cron_does() -> None:
    # 2026-11-01 00:30 PDT plus 24 h is 2026-11-01 23:30 PST, still "a 1st" to ShouldRunTask
    runs = parse_schedule("30 0 $ * *").next_runs(at(2026, 10, 30), 2, tz=LA)
    assert runs == [at(2026, 10, 31, 7, 30), at(2026, 11, 1, 7, 30)]


def test_it_lists_the_same_slots_as_it_lists_next_runs() -> None:
    schedule = parse_schedule("*/20 8-9 * * mon,fri")
    start, end = at(2026, 1, 1), at(2026, 1, 15)
    slots = list(schedule.expected_slots(start, end))
    assert slots == [t for t in schedule.next_runs(start - timedelta(seconds=1), 100) if t < end]
    assert len(slots) == 4 * 6  # 4 days x (8:00 .. 9:40)


def test_it_includes_the_start_and_excludes_the_end_of_a_window() -> None:
    slots = list(parse_schedule("0 * * * *").expected_slots(at(2026, 1, 1, 5), at(2026, 1, 1, 7)))
    assert slots == [at(2026, 1, 1, 5), at(2026, 1, 1, 6)]


def test_it_wants_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        parse_schedule("* * * * *").next_runs(datetime(2026, 1, 1), 1)


def test_it_names_an_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        parse_schedule("* * * * *").next_runs(at(2026, 1, 1), 1, tz="Mars/Olympus")


def test_it_offers_a_gmt_schedule_for_standard_and_for_daylight_time() -> None:
    standard, daylight = utc_expressions_for_local(3, 0, LA, 2026)
    assert (standard.expr, standard.abbreviation, standard.is_daylight) == ("0 11 * * *", "PST", False)
    assert standard.periods == ((date(2026, 1, 1), date(2026, 3, 7)), (date(2026, 11, 1), date(2026, 12, 31)))
    assert (daylight.expr, daylight.abbreviation, daylight.utc_offset) == ("0 10 * * *", "PDT", timedelta(hours=-7))
    assert daylight.periods == ((date(2026, 3, 8), date(2026, 10, 31)),)


@pytest.mark.parametrize(
    ("hour", "zone", "days", "exprs"),
    [
        (17, LA, "mon-fri", ["0 1 * * 2-6", "0 0 * * 2-6"]),  # the evening is the next day in GMT
        (3, "Australia/Sydney", "mon", ["0 17 * * 0", "0 16 * * 0"]),  # early morning is the day before
        (9, "Asia/Tokyo", "*", ["0 0 * * *"]),  # no DST: one schedule
    ],
)
def test_it_shifts_the_days_when_the_gmt_time_falls_on_another_day(
    hour: int, zone: str, days: str, exprs: list[str]
) -> None:
    assert [o.expr for o in utc_expressions_for_local(hour, 0, zone, 2026, days)] == exprs


def test_seed_004_eleven_gmt_is_three_am_in_los_angeles_only_in_winter() -> None:
    # The seed said '0 11 * * *' is 03:00 PDT. It is 03:00 PST, and 04:00 PDT all summer.
    report = dst_report("0 11 * * *", time(3, 0), LA, 2026, SUPABASE)
    assert [(p.first, p.last, p.local_time, p.abbreviation, p.as_intended) for p in report.periods] == [
        (date(2026, 1, 1), date(2026, 3, 7), time(3, 0), "PST", True),
        (date(2026, 3, 8), date(2026, 10, 31), time(4, 0), "PDT", False),
        (date(2026, 11, 1), date(2026, 12, 31), time(3, 0), "PST", True),
    ]
    assert "from 2026-03-08 to 2026-10-31 at 04:00 PDT" in report.warning
    assert "cron.timezone = 'America/Los_Angeles'" in report.warning and "'0 3 * * *'" in report.warning
    assert "hosted Supabase does not let you set cron.timezone" in report.warning
    assert "'0 11 * * *' (PST) or '0 10 * * *' (PDT)" in report.warning


def test_a_weekly_job_is_offered_weekly_schedules_not_daily_ones() -> None:
    # Mondays 03:00 in Los Angeles: 11:00 GMT in winter; the advice must keep the day of the week
    report = dst_report("0 11 * * 1", time(3, 0), LA, 2026, SUPABASE)
    assert [o.expr for o in report.options] == ["0 11 * * 1", "0 10 * * 1"]
    assert "'0 11 * * 1' (PST) or '0 10 * * 1' (PDT)" in report.warning


def test_a_weekly_evening_job_keeps_its_local_day_when_gmt_is_the_next_day() -> None:
    # Fridays 17:00 in Los Angeles run on Saturday in GMT (01:00 PST / 00:00 PDT)
    report = dst_report("0 1 * * 6", time(17, 0), LA, 2026, SUPABASE)
    assert [o.expr for o in report.options] == ["0 1 * * 6", "0 0 * * 6"]


def test_a_monthly_job_keeps_its_date_fields() -> None:
    report = dst_report("0 11 1 * *", time(3, 0), LA, 2026, SUPABASE)
    assert [o.expr for o in report.options] == ["0 11 1 * *", "0 10 1 * *"]


def test_the_daylight_schedule_runs_an_hour_early_all_winter() -> None:
    report = dst_report("0 10 * * *", time(3, 0), LA, 2026, DEBIAN_BOOKWORM)
    assert [(p.first, p.last, p.local_time) for p in report.mismatches] == [
        (date(2026, 1, 1), date(2026, 3, 7), time(2, 0)),
        (date(2026, 11, 1), date(2026, 12, 31), time(2, 0)),
    ]
    assert "pg_cron 1.4.2 runs every schedule in GMT (cron.timezone came in 1.5)" in report.warning


def test_it_has_no_dst_warning_for_a_zone_without_dst() -> None:
    report = dst_report("0 0 * * *", time(9, 0), "Asia/Tokyo", 2026)
    assert (report.warning, len(report.periods), report.mismatches) == ("", 1, ())


def test_it_says_when_a_schedule_never_hits_the_intended_local_time() -> None:
    report = dst_report("0 12 * * *", time(3, 0), LA, 2026)
    assert report.warning.startswith("'0 12 * * *' (GMT) never runs at 03:00 America/Los_Angeles in 2026")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 */12 * * *", "runs more than once on"),
        ("30 seconds", "does not run at a time of day"),
        ("@reboot", "does not run at a time of day"),
    ],
)
def test_it_reports_dst_only_for_jobs_that_run_at_most_daily(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        dst_report(expr, time(3, 0), LA, 2026)
