"""Local-time jobs on a GMT scheduler: what apply registers so that DST never moves them.

A manifest job with ``at`` + ``timezone`` and no ``schedule`` gets a GMT expression (pg_cron's
zone, and the only one hosted Supabase allows). When pg_cron evaluates schedules in GMT, apply
schedules the expression the reissue rule (:func:`cronkit.schedules.local_schedule`) gives now,
and stores the intent with the expression of every UTC offset of the zone in the registry
(``cronkit.managed_jobs.spec -> 'local'``). The maintenance job ``cronkit-dst:<project>``
(:mod:`cronkit.maintenance`) runs SQL ``cronkit.reissue_local_schedules``, which applies the same
rule at each DST change (``sql/schema_local_time.sql``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronkit.manifest import JobSpec
from cronkit.schedules import DstTransition, PgCronVersion, local_options, next_transition, schedule_for_local

#: cron.timezone values under which pg_cron evaluates schedules in GMT
GMT_ZONES = ("GMT", "UTC", "Etc/UTC", "Etc/GMT", "UCT", "Zulu")


@dataclass(frozen=True)
class LocalTimePlan:
    """How apply schedules one local-time job now, and what it registers for the reissue."""

    schedule: str
    #: stored as ``spec -> 'local'``: at, zone, days and {offset seconds: GMT expression}
    intent: dict[str, Any]
    transition: DstTransition | None

    @property
    def hash_key(self) -> str:
        """What the registry's spec hash covers instead of the GMT expression, which the reissue
        changes without apply: the intent."""
        return "local " + json.dumps(self.intent, sort_keys=True)

    @property
    def change_line(self) -> str:
        if self.transition is None:
            return f"local time {self.intent['at']} {self.intent['zone']}: the zone has no DST change ahead"
        t = self.transition
        return f"next DST transition {t.local_date} → schedule becomes {t.expr!r}"


def reissued(spec: JobSpec, version: PgCronVersion | None, cron_timezone: str | None) -> bool:
    """Whether ``spec``'s GMT schedule is kept right across DST by the maintenance job."""
    from cronkit.monitor.missed.history import cron_zone  # the one reading of pg_cron's zone (imports polars)

    return spec.schedule_from_local and spec.intended_local is not None \
        and cron_zone(version, cron_timezone) in GMT_ZONES


def plan_local_time(spec: JobSpec, moment: datetime, live_schedule: str | None) -> LocalTimePlan:
    """The schedule to give ``spec`` at ``moment`` (from its live one, when it exists) and its intent."""
    assert spec.intended_local is not None
    at, zone = spec.intended_local
    options = local_options(at, zone, spec.local_days, moment.year)
    intent = {
        "at": at, "zone": zone, "days": spec.local_days,
        "schedules": {str(int(offset.total_seconds())): expr for offset, expr in sorted(options.items())},
    }
    schedule = schedule_for_local(at, zone, spec.local_days, moment, live_schedule)
    return LocalTimePlan(schedule, intent, next_transition(at, zone, spec.local_days, moment))
