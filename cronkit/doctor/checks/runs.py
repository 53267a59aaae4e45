"""Checks of the run history: the runid sequence, stuck and failing runs, missed runs and overruns."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from cronkit.doctor.catalogue import check
from cronkit.doctor.context import RUNNING_STATES, Context, parsed_schedule
from cronkit.doctor.model import Finding, Severity, Skip
from cronkit.errors import CronkitError
from cronkit.monitor import missed
from cronkit.monitor.history import failed_in_a_row
from cronkit.text import human_duration

#: how the doctor bounds a job's expected slots (the monitor uses its registry only)
MISSED_ANCHORS = missed.AnchorRule.EVIDENCE


@check(
    "RUNID_SEQ_BEHIND", Severity.CRITICAL,
    "cron.runid_seq would hand out a runid that already exists in cron.job_run_details (duplicate key on every run).",
    "Move the sequence past the history (as the table owner): SELECT setval('cron.runid_seq', (SELECT max(runid) "
    "FROM cron.job_run_details)); — Supabase's documented alternative is TRUNCATE cron.job_run_details.",
)
def _runid_seq_behind(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    state = ctx.runid_seq()
    if state is None:
        raise Skip("cron.runid_seq is not readable by this role")
    if not state["behind"]:
        return
    message = (f"cron.runid_seq's next value {state['next_runid']} is not above max(runid) {state['max_runid']}: the "
               "scheduler's insert into cron.job_run_details fails with 'duplicate key value violates unique constraint "
               "\"job_run_details_pkey\"' (a crash loop after a restore or a sequence reset; Supabase discussion #42484).")
    yield ctx.found("RUNID_SEQ_BEHIND", job=None, message=message, evidence=state)
def _stuck_runs(ctx: Context) -> list[dict[str, Any]]:
    def compute() -> list[dict[str, Any]]:
        rows = ctx.rows("doctor/unfinished_runs_rolled" if ctx.rolled_up() else "doctor/unfinished_runs")
        stuck = []
        minute_ago = ctx.now - timedelta(minutes=1)
        for r in rows:
            started = r["start_time"]
            r["last_runid"] = r["last_runid"] or r["runid"]
            if r["last_runid"] > r["runid"]:
                reason = "orphaned: a later run of the job exists (runs of a job never overlap)"
            elif started is not None and started < ctx.now - ctx.limits.stuck_after:
                reason = ("still running" if r["backend_alive"] else "orphaned: its backend is gone") + \
                    f" after {human_duration(ctx.now - started)}"
            elif r["job_pid"] and not r["backend_alive"] and (started is None or started < minute_ago):
                reason = "orphaned: its backend is gone"
            else:
                continue
            stuck.append({**r, "reason": reason, "label": ctx.job_label(r["jobid"])})
        return stuck
    return ctx.memo("stuck", compute)


def _orphaned_runids(ctx: Context) -> set[int]:
    """Stuck rows whose run is over (backend gone, or a later run exists): not real durations."""
    return {r["runid"] for r in _stuck_runs(ctx) if not r["backend_alive"] or r["last_runid"] != r["runid"]}

@check(
    "RUNS_STUCK", Severity.WARNING,
    "Runs left in starting/connecting/sending/running: orphaned rows, or a run that has been going for too long.",
    "Close orphaned rows: UPDATE cron.job_run_details SET status = 'failed', return_message = 'orphaned run closed by "
    "operator', end_time = coalesce(end_time, now()) WHERE runid IN (...); stop a live run with "
    "SELECT pg_cancel_backend(job_pid) and make the job shorter.",
)
def _runs_stuck(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _stuck_runs(ctx):
        by_job[r["label"]].append(r)
    for label, rows in by_job.items():
        live = [r for r in rows if r["backend_alive"] and r["last_runid"] == r["runid"]]
        runids = ", ".join(str(r["runid"]) for r in rows[:20])
        message = f"Job {label!r} has {len(rows)} run(s) stuck in {sorted({r['status'] for r in rows})}: " + \
            "; ".join(sorted({r["reason"] for r in rows})) + "."
        fix = (f"UPDATE cron.job_run_details SET status = 'failed', return_message = 'orphaned run closed by operator', "
               f"end_time = coalesce(end_time, now()) WHERE runid IN ({runids});")
        if live:
            fix = (f"The run is alive: SELECT pg_cancel_backend({live[0]['job_pid']}); then make the job shorter "
                   "(smaller batches) or schedule it less often. " + fix)
        evidence = [{k: r[k] for k in ("runid", "jobid", "status", "start_time", "job_pid", "backend_alive", "reason")} for r in rows[:20]]
        yield ctx.found("RUNS_STUCK", job=label, message=message, evidence=evidence, fix=fix)

_FAILURE_HINTS = (
    ("cronkit: secret", "a secret the wrapper reads is missing or a placeholder (see SECRET_MISSING / SECRET_PLACEHOLDER)"),
    ("connection failed", "pg_cron could not open a connection for the run: check cron.host, pg_hba.conf/.pgpass and that the job's role can log in"),
    ("job startup timeout", "too many jobs start at the same moment (pg_cron's hard-coded 10 s startup timeout, pg_cron#282): spread the schedules"),
    ('null value in column "url"', "the URL evaluated to NULL — typically a missing Vault secret in url := (select decrypted_secret ...) || '/functions/v1/...'"),
    ("permission denied", "the job's role lacks a privilege the command needs"),
    ("does not exist", "an object the command uses does not exist (dropped function, missing extension or schema)"),
    ("server restarted", "the server restarted while the run was in progress"),
    ("statement timeout", "the run hit the statement_timeout of the job's role"),
    ("job canceled", "the job was unscheduled or deactivated while it ran"),
)


@check(
    "CONSECUTIVE_FAILURES", Severity.CRITICAL,
    "A job's most recent runs all failed (status = 'failed' in cron.job_run_details).",
    "Read return_message in the evidence, reproduce with `cronkit run-now NAME` (or run the command by hand as "
    "the job's role), fix the cause, and watch the next run.",
)
def _consecutive_failures(ctx: Context) -> Iterator[Finding]:
    threshold = max(1, ctx.limits.consecutive_failures)
    final: dict[int, list[dict[str, Any]]] = defaultdict(list)  # the evidence: each job's newest final runs
    for r in ctx.runs():  # newest first
        if r["status"] in ("succeeded", "failed"):
            final[r["jobid"]].append(r)
    # the rule itself is the query the alerts share (cronkit.monitor.failed_in_a_row)
    streaks = failed_in_a_row(ctx.conn, ctx.runid_floor(ctx.window_start))
    jobs = {j["jobid"]: j for j in ctx.jobs()}
    for jobid, found in sorted(streaks.items()):
        streak = found["failed_in_a_row"]
        if jobid not in jobs or streak < threshold:
            continue  # an unscheduled job's history, or no streak
        runs = final.get(jobid, [])
        label = jobs[jobid]["jobname"] or f"jobid {jobid}"
        latest = (found["last_message"] or "").strip()
        first_line = latest.splitlines()[0] if latest else "(no message)"
        hints = [hint for needle, hint in _FAILURE_HINTS if needle in latest.lower() or needle in latest]
        message = f"Job {label!r} failed its last {streak} run(s)" + (
            "" if found["last_success"] else f" (no successful run in the last {human_duration(ctx.window)})"
        ) + f": {first_line}"
        if hints:
            message += f" — {hints[0]}."
        evidence = {
            "failed_in_a_row": streak,
            "last_success": found["last_success"],
            "active": jobs[jobid]["active"],
            "recent_failures": [
                {"runid": r["runid"], "start_time": r["start_time"], "end_time": r["end_time"],
                 "return_message": (r["return_message"] or "").strip()[:300]}
                for r in runs[: min(streak, 5)]
            ],
        }
        yield ctx.found("CONSECUTIVE_FAILURES", job=label, message=message, evidence=evidence)

def _job_runs(ctx: Context) -> dict[int, list[dict[str, Any]]]:
    """Runs with a start time, per job, oldest first."""
    def compute() -> dict[int, list[dict[str, Any]]]:
        by_job: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in ctx.runs():
            if r["start_time"] is not None:
                by_job[r["jobid"]].append(r)
        for runs in by_job.values():
            runs.sort(key=lambda r: r["start_time"])
        return by_job
    return ctx.memo("job_runs", compute)


def _run_end(ctx: Context, run: Mapping[str, Any]) -> datetime | None:
    if run["end_time"] is not None:
        return run["end_time"]
    if run["status"] in RUNNING_STATES:
        return ctx.now
    return None


@check(
    "MISSED_RUNS", Severity.WARNING,
    "Scheduled times at which an active job did not start (scheduler or server down; pg_cron never replays them).",
    "Find out why nothing ran then (SCHEDULER_DOWN, a restart, a standby promotion, cron.max_running_jobs). "
    "pg_cron does not catch up: run the job once by hand (`cronkit run-now NAME`) if the missed work matters.",
)
def _missed_runs(ctx: Context) -> Iterator[Finding]:
    """The monitor's engine (:mod:`cronkit.monitor.missed`) on the doctor's reads, anchored on evidence.

    ``cron.job`` has no creation time: a job cronkit does not manage and that never ran before the
    window is checked from its first run in it, and not at all when it never ran
    (:attr:`~cronkit.monitor.missed.AnchorRule.EVIDENCE`).
    """
    ctx.require_cron()
    if ctx.in_recovery():
        raise Skip("this server is a standby: pg_cron runs nothing here")
    history = ctx.missed_history()
    _, anchors = missed.job_infos(history, MISSED_ANCHORS)
    report = missed.report(history, ctx.window_start, ctx.now, anchors=MISSED_ANCHORS, grace=ctx.limits.missed_grace)
    started = history.booted
    scheduler_up = bool(ctx.scheduler_rows())
    downtime = list(report.downtime.iter_rows(named=True))
    rows = list(report.summary.iter_rows(named=True))
    # Times missed while no job ran at all are one outage, not a problem of each job: with two or
    # more jobs affected they become one cluster-wide finding; per job remain the other misses.
    affected = {r["jobid"]: r["downtime"] for r in rows if r["downtime"]}
    shared = len(affected) >= 2
    if shared:
        labels = {r["jobid"]: r["jobname"] or f"jobid {r['jobid']}" for r in rows}
        total = sum(affected.values())
        spans = "; ".join(f"{d['start']:%Y-%m-%d %H:%M}–{d['end']:%H:%M} UTC ({d['reason']})" for d in downtime[:3])
        message = (f"{len(affected)} jobs did not start at {total} scheduled time(s) while no job ran at all: {spans}."
                   + ("" if scheduler_up else " The pg_cron scheduler is not running now (SCHEDULER_DOWN)."))
        yield ctx.found("MISSED_RUNS", job=None, message=message, evidence={
            "downtime": downtime[:10], "not_started_by_job": {labels[j]: n for j, n in sorted(affected.items())},
            "scheduler_running": scheduler_up, "server_started_at": started, "timezone": ctx.cron_tz,
        })
    never_started: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in ctx.runs():
        if r["start_time"] is None and r["end_time"] is None and r["status"] == "failed":
            never_started[r["jobid"]].append(r)
    for row in rows:
        kinds = ["missed"] if shared else ["missed", "downtime"]
        not_started = sum(row[k] or 0 for k in kinds)
        if not_started < max(1, ctx.limits.missed_runs):
            continue
        label = row["jobname"] or f"jobid {row['jobid']}"
        slots = report.slots.filter((pl.col("jobid") == row["jobid"]) & pl.col("kind").is_in(kinds))
        times = slots.get_column("slot").to_list()
        causes = []
        if not scheduler_up:
            causes.append("the pg_cron scheduler is not running now (SCHEDULER_DOWN)")
        # pg_cron < 1.6.3 records no time for a run that failed before it started (pg_cron#246)
        unstarted = never_started.get(row["jobid"], [])
        if unstarted:
            reason = (unstarted[0]["return_message"] or "").strip().splitlines()[0] if unstarted[0]["return_message"] else "?"
            causes.append(f"{len(unstarted)} run(s) failed before they could start ({reason!r}; see CONSECUTIVE_FAILURES)")
        windows = [d for d in downtime if any(d["start"] <= t <= d["end"] for t in times)]
        causes += [f"{d['reason']} between {d['start']:%H:%M} and {d['end']:%H:%M} UTC" for d in windows]
        message = (f"Job {label!r} ({row['schedule']!r}) did not start at {not_started} of {row['expected']} scheduled "
                   f"time(s) in the last {human_duration(ctx.window)}")
        if times:
            message += f" (first {times[0]:%Y-%m-%d %H:%M}, last {times[-1]:%H:%M} UTC)"
        if row["silent_since"] is not None:
            message += f"; it has not started since {row['silent_since']:%Y-%m-%d %H:%M} UTC"
        message += "." + (f" Likely cause: {'; '.join(causes)}." if causes else "")
        evidence = {
            "schedule": row["schedule"], "timezone": ctx.cron_tz, "since_basis": anchors[row["jobid"]].basis,
            "expected": row["expected"], "not_started": not_started,
            **{kind: row[kind] for kind in missed.SLOT_KINDS},
            "not_started_times": times[:10], "silent_since": row["silent_since"],
            "runs_failed_before_starting": len(unstarted),
            "downtime": windows[:5], "scheduler_running": scheduler_up, "server_started_at": started,
        }
        yield ctx.found("MISSED_RUNS", job=label, message=message, evidence=evidence)


@check(
    "OVERRUNS", Severity.WARNING,
    "Runs that last longer than the time to the job's next scheduled start: later runs queue up behind them.",
    "Make each run shorter (smaller batches; let the Edge Function answer early), schedule it less often, or skip "
    "when busy: start the command with `SELECT pg_try_advisory_lock(...)` and return when it is false.",
)
def _overruns(ctx: Context) -> Iterator[Finding]:
    ctx.require_cron()
    stuck = _orphaned_runids(ctx)
    runs_by_job = _job_runs(ctx)
    for job in ctx.jobs():
        schedule = parsed_schedule(ctx, job["schedule"])
        if schedule is None or schedule.kind == "reboot" or schedule.never_runs:
            continue
        label = job["jobname"] or f"jobid {job['jobid']}"
        over: list[dict[str, Any]] = []
        runs = [r for r in runs_by_job.get(job["jobid"], []) if r["runid"] not in stuck]
        ends = [_run_end(ctx, r) for r in runs]
        slots: list[datetime] = []
        if schedule.interval_seconds is None and runs:
            try:  # every slot the runs can reach, once: a run's next slot is a bisection away
                last = max((e for e in ends if e is not None), default=runs[-1]["start_time"])
                slots = list(schedule.expected_slots(runs[0]["start_time"], last + timedelta(minutes=1), ctx.cron_tz))
            except CronkitError:
                continue
        for r, end in zip(runs, ends, strict=True):
            if end is None:
                continue
            if schedule.interval_seconds is not None:
                next_slot = r["start_time"] + timedelta(seconds=schedule.interval_seconds)
                passed = int((end - r["start_time"]).total_seconds() // schedule.interval_seconds)
            else:
                i = bisect_right(slots, r["start_time"])  # the first slot strictly after its start
                if i == len(slots):
                    continue  # the next slot is after every end: nothing could overrun it
                next_slot = slots[i]
                passed = max(0, bisect_left(slots, end) - i)
            if end > next_slot + timedelta(seconds=1):
                over.append({"runid": r["runid"], "status": r["status"], "start_time": r["start_time"],
                             "end_time": r["end_time"], "still_running": r["end_time"] is None,
                             "duration_s": round((end - r["start_time"]).total_seconds(), 1),
                             "next_scheduled": next_slot, "scheduled_times_passed": passed})
        if len(over) < max(1, ctx.limits.overruns):
            continue
        longest = max(over, key=lambda o: o["duration_s"])
        running = [o for o in over if o["still_running"]]
        message = (f"Job {label!r} ({job['schedule']!r}) ran past its next scheduled start {len(over)} time(s) in the last "
                   f"{human_duration(ctx.window)} (longest {longest['duration_s']:.0f} s)"
                   + (", and a run is still going" if running else "")
                   + ". pg_cron never runs a job twice at once: the next runs wait and then start back to back (pg_cron#300).")
        evidence = {"schedule": job["schedule"], "runs_in_window": len(runs), "overruns": len(over),
                    "longest": longest, "recent": sorted(over, key=lambda o: o["start_time"], reverse=True)[:5]}
        yield ctx.found("OVERRUNS", job=label, message=message, evidence=evidence)


# -- the overlap policy ---------------------------------------------------------------------------


@check(
    "OVERLAP_SKIPS", Severity.INFO,
    "A job with `overlap = \"skip\"` skipped runs because its previous call was still in flight (or its previous run "
    "still running): the outcome \"skipped (overlap)\". Expected now and then; many mean the endpoint is slower than the schedule.",
    "Nothing, if the skips are expected. Otherwise make the endpoint answer faster (respond early, do the work in the "
    "background) or schedule the job less often.",
)
def _overlap_skips(ctx: Context) -> Iterator[Finding]:
    exists = ctx.relation_exists("cronkit.skipped_runs")
    if not exists:
        raise Skip("no cronkit.skipped_runs here (no `cronkit apply` since the overlap policy came)" if exists is False
                   else "this role may not read schema cronkit")
    for row in ctx.rows("doctor/overlap_skips", {"since": ctx.window_start}):
        because = (f"{row['behind_a_call']} behind a call without a response yet" if row["behind_a_call"] else "")
        if row["behind_a_run"]:
            because += ("; " if because else "") + f"{row['behind_a_run']} behind a run still running"
        message = (f"Job {row['jobname']!r} skipped {row['skipped']} run(s) since {ctx.window_start:%Y-%m-%d %H:%M} UTC "
                   f"(overlap = \"skip\"): {because}.")
        yield ctx.found("OVERLAP_SKIPS", job=row["jobname"], message=message, evidence=row)
