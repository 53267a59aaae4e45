"""Monitoring: run history and HTTP outcomes of pg_cron jobs, aggregated in the database, as polars frames.

Modules: ``window`` (windows, guarded reads, runid ranges), ``history`` (run summaries and
timelines from rollups), ``http`` (HTTP outcomes per job), ``missed`` (the one missed-run engine),
``queues`` (queue health), ``upkeep`` (harvest, rollups, retention), ``charts``.

Why this is not ``select * from cron.job_run_details``: the table has no index but its primary key
(pg_cron#408), grows without bound (the Supabase dashboard gives up above 200k rows), and its
``succeeded`` only means ``net.http_post`` queued a request. So:

* every read is time-windowed, and the window becomes a **runid range** (runids are handed out
  when a run starts): :func:`runid_floor` finds it with a binary search over the primary key
  (``cronkit.runid_at``) instead of a sequential scan;
* history comes from **daily and hourly rollups** kept current by ``cronkit.refresh_rollups()``
  (a maintenance job; watermark on runid, runs still running at refresh time are kept in an open
  set and folded in once final; the same new runs go into both levels in one statement). A
  summary reads one daily row per job for each whole UTC day inside the window, hourly rows for
  the other whole hours (at most 23 per job), and raw rows only for the two partial hours at its
  edges (found through the rollup's runid range) and for whatever is newer than the last refresh —
  so results are exact counts while the cost follows the number of jobs and days, not runs. The
  timeline reads the hourly level only;
* duration percentiles from rollups come from a log-scale histogram (bins 5 percent wide, the value
  reported is the bin's geometric middle, capped at the maximum): within 2.5 percent of the
  nearest-rank percentile. ``use_rollups=False`` computes exact nearest-rank percentiles from raw
  rows (``percentile_disc``) for the same window;
* HTTP outcomes come from ``cronkit.request_ledger`` (which request belongs to which job) joined to
  the durable ``cronkit.http_responses`` (copied from ``net._http_response`` by
  ``cronkit.harvest_responses()`` before pg_net's TTL deletes them) and, for requests not
  harvested yet, to ``net._http_response`` itself. A request without any response is *pending*
  until pg_net's TTL has passed, then *expired* (its outcome can no longer be known).

Every query runs in a transaction with ``statement_timeout`` and ``TimeZone = UTC`` set locally.
Reference: shared/reference/pg_cron_pg_net_vault.md §1.2, §1.7, §2.3-2.5, §4.2.
"""

from __future__ import annotations

from cronkit.monitor.history import (
    MANUAL_RUNS_SCHEMA, RUNS_SCHEMA, SKIPS_SCHEMA, SUMMARY_SCHEMA, TIMELINE_SCHEMA, manual_runs, overlap_skips,
    recent_runs, run_summary, run_timeline,
)
from cronkit.monitor.http import HTTP_SCHEMA, HTTP_TIMELINE_SCHEMA, http_outcomes, http_timeline, timeline_bucket
from cronkit.monitor.upkeep import (
    MonitorState, apply_retention, harvest_responses, monitor_state, rebuild_rollups, refresh_rollups,
)
from cronkit.monitor.window import (
    DEFAULT_TIMEOUT_MS, MAX_WINDOW, ROLLUP_BUCKET, RUNID_MARGIN, Jobs, Window, _frame, _job_ids, _job_names,
    _require_schema, guarded, has_monitoring_schema, runid_floor,
)
from cronkit.outcomes import OUTCOMES

__all__ = [
    "DEFAULT_TIMEOUT_MS", "HTTP_SCHEMA", "MANUAL_RUNS_SCHEMA", "manual_runs", "SKIPS_SCHEMA", "overlap_skips", "HTTP_TIMELINE_SCHEMA", "MAX_WINDOW", "OUTCOMES", "ROLLUP_BUCKET",
    "RUNID_MARGIN", "RUNS_SCHEMA", "SUMMARY_SCHEMA", "TIMELINE_SCHEMA", "Jobs", "MonitorState", "Window",
    "_frame", "_job_ids", "_job_names", "_require_schema", "apply_retention", "guarded", "harvest_responses",
    "has_monitoring_schema", "http_outcomes", "http_timeline", "timeline_bucket", "monitor_state", "rebuild_rollups", "recent_runs",
    "refresh_rollups", "run_summary", "run_timeline", "runid_floor",
]
