"""What the missed-run engine reads and the rules it is parameterised by: the zone rule and the anchor rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import polars as pl

from cronkit import registry
from cronkit.db import Conn, DatabaseError
from cronkit.errors import CronkitError
from cronkit.monitor.missed.analysis import (
    _TS,
    CHAIN_TOLERANCE,
    CONTEXT,
    GRACE,
    LATE_AFTER,
    JobInfo,
    MissedReport,
    analyze,
)
from cronkit.monitor.window import (
    DEFAULT_TIMEOUT_MS,
    Window,
    _copied_frame,
    _job_ids,
    guarded,
    runid_floor,
)
from cronkit.queries import query
from cronkit.schedules import PgCronVersion, parse_pg_cron_version, parse_schedule

# -- the rules the engine is parameterised by: zone and anchors ------------------------------------


def cron_zone(version: PgCronVersion | None, setting: str | None) -> str:
    """The zone pg_cron evaluates cron syntax in: ``cron.timezone`` from pg_cron 1.5 on, else GMT.

    ``setting`` is ``cron.timezone`` as the server reports it (None when not visible); an older
    pg_cron has no such setting and always uses GMT, whatever a placeholder GUC says.
    """
    if version is not None and version.supports_timezone and setting:
        return setting
    return "GMT"


class AnchorRule(StrEnum):
    """How the time before which no slot of a job is expected is inferred (``cron.job`` has none)."""

    #: when cronkit last (re)scheduled or resumed the job; other jobs from the start of the read context
    REGISTRY = "registry"
    #: as REGISTRY for cronkit's jobs; another job is checked from the window's start when it ran
    #: before it, from just before its first run in the window otherwise, and not at all when it
    #: never ran (it may not have existed: nothing says when it was created)
    EVIDENCE = "evidence"


@dataclass(frozen=True)
class Anchor:
    """No slot of a job is expected before ``at`` (None: no bound), and why."""

    at: datetime | None
    basis: str


def anchor(rule: AnchorRule, registered_at: datetime | None, last_before: datetime | None,
           first_in_window: datetime | None) -> Anchor | None:
    """A job's anchor under ``rule``; None when the job is left out."""
    if registered_at is not None:
        return Anchor(registered_at, "cronkit last (re)scheduled or resumed it")
    if rule is AnchorRule.REGISTRY:
        return Anchor(None, "not managed by cronkit")
    if last_before is not None:
        return Anchor(None, "it ran before the window")
    if first_in_window is not None:
        # start_time is set after the run connected: the slot it ran for may be a little earlier
        return Anchor(first_in_window - timedelta(seconds=2), "its first run in the window")
    return None


# -- what the engine reads, and the analysis of it ---------------------------------------------------


@dataclass(frozen=True)
class History:
    """Everything the engine needs from the database: built by :func:`read_history` or by a caller
    that already holds the rows (the doctor's memoised reads, a test's synthetic history)."""

    #: ``cron.job`` rows (jobid, jobname, schedule, active)
    jobs: Sequence[Mapping[str, Any]]
    #: runs of *all* jobs from ``CONTEXT`` before the window (columns of :data:`RUNS_SCHEMA`); only
    #: the one job's when a single job is asked about and no restart needs the others (``_alone``)
    runs: pl.DataFrame
    now: datetime
    version: PgCronVersion | None = None
    #: ``cron.timezone`` as the server reports it
    zone_setting: str | None = None
    #: ``pg_postmaster_start_time()``
    booted: datetime | None = None
    #: when cronkit last (re)scheduled each of its jobs, by name
    registered: Mapping[str, datetime] = field(default_factory=dict)
    #: per jobid: ``last_before`` / ``first_in_window`` start times (needed by AnchorRule.EVIDENCE)
    bounds: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def zone(self) -> str:
        return cron_zone(self.version, self.zone_setting)


RUNS_SCHEMA: dict[str, pl.DataType] = {
    "jobid": pl.Int64(), "runid": pl.Int64(), "status": pl.String(), "start_time": _TS,
    "end_time": _TS, "return_message": pl.String(),
}


def runs_frame(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Run rows as the frame :func:`analyze` reads."""
    return pl.DataFrame({k: [r[k] for r in rows] for k in RUNS_SCHEMA}, schema=RUNS_SCHEMA)


def job_infos(history: History, rule: AnchorRule) -> tuple[list[JobInfo], dict[int, Anchor]]:
    """The jobs to analyse with their anchors; jobs whose schedule pg_cron cannot read are left out."""
    infos: list[JobInfo] = []
    anchors: dict[int, Anchor] = {}
    for job in history.jobs:
        try:
            parse_schedule(job["schedule"], history.version)
        except CronkitError:
            continue
        bounds = history.bounds.get(job["jobid"], {})
        found = anchor(rule, history.registered.get(job["jobname"] or ""), bounds.get("last_before"),
                       bounds.get("first_in_window"))
        if found is None:
            continue
        anchors[job["jobid"]] = found
        infos.append(JobInfo(job["jobid"], job["jobname"], job["schedule"], bool(job["active"]), found.at))
    return infos, anchors


def report(
    history: History,
    since: datetime,
    until: datetime,
    *,
    anchors: AnchorRule = AnchorRule.REGISTRY,
    grace: timedelta = GRACE,
    late_after: timedelta = LATE_AFTER,
    chain_tolerance: timedelta = CHAIN_TOLERANCE,
    downtime: Iterable[tuple[datetime, datetime]] = (),
    infer_downtime: bool = True,
) -> MissedReport:
    """:func:`analyze` of ``history`` over ``[since, until)`` with the zone rule and ``anchors``."""
    infos, _ = job_infos(history, anchors)
    booted = history.booted
    restarts = [booted] if booted is not None and since - CONTEXT <= booted < until else []
    return analyze(
        infos, history.runs, since, until, now=history.now, grace=grace, late_after=late_after,
        chain_tolerance=chain_tolerance, tz=history.zone, version=history.version,
        downtime=downtime, restarts=restarts, infer_downtime=infer_downtime,
    )


# -- reading the database --------------------------------------------------------------------------


class TooManyRuns(CronkitError):
    """More runs in the window than missed-run detection reads."""

    remedy = "Look at a shorter window, or raise max_runs."


def read_runs(conn: Conn, since: datetime, until: datetime | None, *, max_runs: int,
              lo: int | None = None, jobids: Sequence[int] | None = None) -> pl.DataFrame:
    """Every job's runs (or those of ``jobids``) from ``since`` (``until`` None: no end), from runid
    ``lo`` (default: found with :func:`~cronkit.monitor.window.runid_floor`); :class:`TooManyRuns`
    above ``max_runs``."""
    lo = runid_floor(conn, since) if lo is None else lo
    runs = _copied_frame(conn, query("missed/runs"), {"lo": lo, "since": since, "until": until, "limit": max_runs + 1,
                                                      "jobids": list(jobids) if jobids is not None else None},
                         RUNS_SCHEMA)
    if runs.height > max_runs:
        raise TooManyRuns(f"More than {max_runs} runs since {since:%Y-%m-%d %H:%M} UTC; "
                          "missed-run detection reads every run.")
    return runs




def read_history(conn: Conn, since: datetime, until: datetime, *, jobs: Sequence[int | str] | None = None,
                 anchors: AnchorRule = AnchorRule.REGISTRY, max_runs: int = 2_000_000) -> History:
    """What :func:`report` needs, read in the caller's transaction (see :func:`detect_missed`)."""
    from cronkit.facts import server_facts

    facts = server_facts(conn)
    clock = conn.execute(query("missed/clock")).fetchone()
    assert clock is not None
    try:
        with conn.transaction():
            registered = {job.jobname: job.updated_at for job in registry.managed_jobs(conn)}
    except DatabaseError:
        registered = {}  # cronkit never applied here, or the role may not read its schema
    bounds: dict[int, dict[str, Any]] = {}
    if anchors is AnchorRule.EVIDENCE:
        bounds = {r["jobid"]: r for r in conn.execute(query("missed/run_bounds"), {"since": since}).fetchall()}
    ids = _job_ids(conn, jobs)
    return History(
        jobs=conn.execute(query("missed/jobs"), {"ids": ids}).fetchall(),
        runs=read_runs(conn, since - CONTEXT, until, max_runs=max_runs,
                       jobids=ids if _alone(conn, ids, clock["started_at"], since - CONTEXT, until) else None),
        now=clock["now"],
        version=parse_pg_cron_version(facts.pg_cron) if facts.pg_cron else None,
        zone_setting=facts.cron_timezone,
        booted=clock["started_at"],
        registered=registered,
        bounds=bounds,
    )


def _alone(conn: Conn, ids: list[int] | None, booted: datetime | None, since: datetime, until: datetime) -> bool:
    """Whether one job's runs are all its analysis needs. Other jobs' runs matter only to place a
    restart (a server start in the range, or any run failed with 'server restarted') or to infer an
    outage from two or more jobs' misses — so for one job, outside a restart, they are not read."""
    if ids is None or len(ids) != 1 or (booted is not None and since <= booted < until):
        return False
    row = conn.execute(query("missed/restarted"), {"lo": runid_floor(conn, since), "since": since,
                                                   "until": until}).fetchone()
    return row is not None and not row["restarted"]


def detect_missed(
    conn: Conn,
    since: datetime | timedelta,
    until: datetime | None = None,
    *,
    jobs: Sequence[int | str] | None = None,
    anchors: AnchorRule = AnchorRule.REGISTRY,
    grace: timedelta = GRACE,
    late_after: timedelta = LATE_AFTER,
    chain_tolerance: timedelta = CHAIN_TOLERANCE,
    downtime: Iterable[tuple[datetime, datetime]] = (),
    infer_downtime: bool = True,
    max_runs: int = 2_000_000,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> MissedReport:
    """:func:`report` for the jobs in ``cron.job`` (``jobs``: ids or names) over the window.

    Reads pg_cron's version and ``cron.timezone``, the server start time, the runs of every job
    from an hour before ``since`` (runid-bounded), and — when cronkit's registry exists — when
    cronkit last created or changed each job (no slots are expected before that).
    """
    window = Window.of(since, until, max_span=timedelta(days=31))
    with guarded(conn, timeout_ms, "read the run history", jit=False):
        history = read_history(conn, window.since, window.until, jobs=jobs, anchors=anchors, max_runs=max_runs)
    return report(history, window.since, window.until, anchors=anchors, grace=grace, late_after=late_after,
                  chain_tolerance=chain_tolerance, downtime=downtime, infer_downtime=infer_downtime)
