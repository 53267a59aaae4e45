"""How fast Schedule.expected_slots lists run times, against a plain cronsim loop.

Run: PYTHONPATH=. python bench/bench_slots.py   (prints slots/s for each and the ratio)
The target for missed-run detection is at least 1M slots/s for minute and second-interval jobs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from zoneinfo import ZoneInfo

from cronsim import CronSim

from cronkit.schedules import parse_schedule

START = datetime(2026, 3, 1, tzinfo=UTC)  # March: America/Los_Angeles springs forward on the 8th
END = START + timedelta(days=31)

# (pg_cron schedule, the same schedule for cronsim, time zone)
CASES = [
    ("* * * * *", "* * * * *", "GMT"),
    ("*/5 * * * *", "*/5 * * * *", "GMT"),
    ("0 */2 * * 1-5", "0 */2 * * 1-5", "GMT"),
    ("30 seconds", "*/30 * * * * *", "GMT"),
    ("1 second", "* * * * * *", "GMT"),
    ("* * * * *", "* * * * *", "America/Los_Angeles"),
]


def ours(expr: str, tz: str) -> tuple[int, float]:
    """(slots, slots per second, best of three) for cronkit."""
    schedule = parse_schedule(expr)
    best, count = float("inf"), 0
    for _ in range(3):
        began = time.perf_counter()
        count = sum(1 for _ in schedule.expected_slots(START, END, tz))
        best = min(best, time.perf_counter() - began)
    return count, count / best


def cronsim_loop(expr: str, tz: str) -> tuple[int, float]:
    """The same for the obvious loop: CronSim's iterator until the end of the window."""
    start = START.astimezone(ZoneInfo(tz)) - timedelta(seconds=1)
    began = time.perf_counter()
    count = sum(1 for _ in takewhile(lambda t: t < END, CronSim(expr, start)))
    return count, count / (time.perf_counter() - began)


def main() -> None:
    print(f"{'schedule':<14} {'zone':<20} {'slots':>9} {'cronkit slots/s':>16} {'cronsim slots/s':>16} {'ratio':>7}")
    for expr, cronsim_expr, tz in CASES:
        count, fast = ours(expr, tz)
        count_cs, slow = cronsim_loop(cronsim_expr, tz)
        note = "" if count == count_cs else f"  (cronsim counted {count_cs})"
        print(f"{expr:<14} {tz:<20} {count:>9} {fast:>16,.0f} {slow:>16,.0f} {fast / slow:>6.1f}x{note}")


if __name__ == "__main__":
    main()
