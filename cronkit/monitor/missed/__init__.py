"""The one missed-run engine: expected versus actual runs of pg_cron jobs, for the monitor and the doctor.

Missed, late, queued (overrun catch-up), overlapping runs and downtime, from ``cron.job`` and
``cron.job_run_details`` alone.

The model is pg_cron's own (reference §1.8-1.9):

* **cron-syntax jobs**: every matching minute adds one pending run; a job runs one instance at a
  time, so while a run is busy the pending runs pile up and then start **back-to-back** (a
  ``* * * * *`` job that hangs 60 minutes is followed by ~60 quick runs). Expected times come
  from :meth:`cronkit.schedules.Schedule.expected_slots` (pg_cron's exact calendar, in
  ``cron.timezone``). Each run takes the oldest pending slot. A slot that fell while the job was
  busy is *queued* when its catch-up run starts within ``chain_tolerance`` of the previous run's
  end; a slot that came while the job was idle is *on time* when its run starts within
  ``late_after``, *late* when later. A slot whose run never came is *missed* — dropped once a
  later run shows the scheduler moved on (more than ``grace`` after the slot became due).
* **interval jobs** (``'N seconds'``, pg_cron 1.5+): anchored to the previous run's *start*: the
  next run is due at ``start + N``, or at the previous run's end when it overran (at most one run
  is queued). Gaps of whole intervals beyond that are missed slots.
* **zone**: pg_cron evaluates cron syntax in ``cron.timezone`` from 1.5 on and in GMT before
  (the setting does not exist there): :func:`cron_zone` is that one rule.
* **anchors**: ``cron.job`` has no creation time, so no slot is expected before a job's
  :class:`Anchor`; :class:`AnchorRule` says how it is inferred (the monitor uses cronkit's
  registry, the doctor adds evidence from the run history and leaves out jobs with none).
* **downtime is not replayed**: pg_cron forgets pending runs on restart and never replays minutes
  it was down. Missed slots inside a downtime interval are reported as ``downtime``, not
  ``missed``. Downtime comes from: intervals you pass; the server's start time
  (``pg_postmaster_start_time()``); runs failed with ``server restarted``; and, with
  ``infer_downtime``, gaps in the activity of *all* jobs in which at least two jobs missed slots.

Slot kinds: ``on_time``, ``late``, ``queued``, ``missed``, ``downtime``, ``pending`` (queued
behind a run that is still running). Run events: ``overrun`` (a slot fell while it was running),
``overlap`` (it started while the previous run of the same job was still running — pg_cron never
does that, so two schedulers or a stale row), ``unexpected`` (no slot to account for it: a manual
or replayed run). A job whose last due slots were all missed has ``silent_since`` set and status
``stopped``: it silently stopped firing.
"""

from __future__ import annotations

from cronkit.monitor.missed.analysis import (
    CHAIN_TOLERANCE,
    CONTEXT,
    DOWNTIME_SCHEMA,
    EVENT_KINDS,
    EVENTS_SCHEMA,
    GRACE,
    LATE_AFTER,
    SLOT_KINDS,
    SLOTS_SCHEMA,
    SUMMARY_SCHEMA,
    JobInfo,
    MissedReport,
    Run,
    analyze,
)
from cronkit.monitor.missed.history import (
    RUNS_SCHEMA,
    Anchor,
    AnchorRule,
    History,
    TooManyRuns,
    anchor,
    cron_zone,
    detect_missed,
    job_infos,
    read_history,
    read_runs,
    report,
    runs_frame,
)

__all__ = [
    "CHAIN_TOLERANCE", "CONTEXT", "DOWNTIME_SCHEMA", "EVENTS_SCHEMA", "EVENT_KINDS", "GRACE", "LATE_AFTER",
    "RUNS_SCHEMA", "SLOTS_SCHEMA", "SLOT_KINDS", "SUMMARY_SCHEMA", "Anchor", "AnchorRule", "History", "JobInfo",
    "MissedReport", "Run", "TooManyRuns", "analyze", "anchor", "cron_zone", "detect_missed", "job_infos",
    "read_history", "read_runs", "report", "runs_frame",
]
