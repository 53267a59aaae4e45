"""``cronkit import``'s pure parts: reading GMT schedules as local intents, TOML that reads back exactly."""

from __future__ import annotations

import tomllib
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronkit.errors import UsageError
from cronkit.importer import Selection, _local_intent, toml_value


@pytest.mark.parametrize(("schedule", "zone", "intent"), [
    ("0 11 * * *", "America/Los_Angeles", ("03:00", "*", "America/Los_Angeles")),  # the guide's "03:00 LA (11:00 UTC)"
    ("0 10 * * 0", "America/Los_Angeles", ("02:00", "0", "America/Los_Angeles")),
    ("0 2 * * 1,3", "America/Los_Angeles", ("18:00", "0,2", "America/Los_Angeles")),  # the day before, locally
    ("30 23 * * 6", "Asia/Tokyo", ("08:30", "0", "Asia/Tokyo")),  # the day after; Saturday → Sunday
    ("0 12 * * *", "Australia/Sydney", ("22:00", "*", "Australia/Sydney")),  # standard time is July there
])
def test_a_daily_or_weekly_gmt_schedule_reads_as_local_standard_time(schedule: str, zone: str, intent: Any) -> None:
    assert _local_intent(schedule, ZoneInfo(zone)) == intent


@pytest.mark.parametrize("schedule", ["*/10 * * * *", "0 11 1 * *", "10 seconds", "0 9-17 * * *", "0 11 * * mon"])
def test_schedules_that_are_not_a_time_of_day_are_left_as_written(schedule: str) -> None:
    assert _local_intent(schedule, ZoneInfo("Europe/Berlin")) is None


@pytest.mark.parametrize("value", [
    "it's \"quoted\" $$; --", "line\nbreak", "tab\tand\rcr", "ünï ✓", "'''", "\x7f", {"a b": [1, 2.5, True]},
    {"nested": {"x": {}}}, [], 0, -3,
])
def test_toml_values_read_back_exactly(value: Any) -> None:
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value


def test_a_bad_match_is_a_usage_error_naming_the_flag() -> None:
    with pytest.raises(UsageError, match="--match"):
        Selection(match="(")
    assert Selection(("a",)).wants("a") and not Selection(("a",)).wants("b") and Selection().wants("anything")
