"""``cronkit exporter``: Prometheus metrics for one database or a fleet, read from the monitor at each scrape.

One :class:`Target` per DSN. A scrape reads every target in turn, each in one short ``READ ONLY``
transaction with a statement timeout, and turns what it read into metric families
(:func:`families`, a pure function of :class:`Reading` records, so names and labels are tested
without a database). Every number comes from a read that already exists, so "failed", "missed"
and an HTTP outcome class mean here exactly what they mean in the monitor and the doctor:

* runs, failures, duration quantiles over ``window`` — :func:`cronkit.monitor.run_summary` from
  the rollups (its cost follows jobs and hours, not runs);
* each job's last run time and status — from that summary for the jobs that ran in the window,
  else from ``run_summary`` over ``lookback`` (daily rollup rows), so a daily or weekly job still
  has a last run when the window is an hour;
* HTTP outcomes by :class:`cronkit.outcomes.Outcome` — :func:`cronkit.monitor.http_outcomes`;
* missed runs — the one engine, :func:`cronkit.monitor.missed.detect_missed`, over ``window`` (it
  reads that window's raw runs, runid-bounded, and computes every expected slot);
* queues — the newest row of each queue in ``cronkit.queue_snapshots``
  (:func:`cronkit.monitor.queues.queue_trend`), which the ``cronkit-queues:<project>`` job writes;
* rollup freshness — :func:`cronkit.monitor.monitor_state`;
* doctor findings by code and severity — :func:`cronkit.doctor.diagnose` (every check of the
  catalogue).

The last three cost more than a scrape may (:class:`Slow`; measured at 1M runs: 60 ms, 60 ms and
750 ms against a 100 ms budget): they are recomputed at most every ``slow_ttl`` (60 s) in a
background thread with its own connection, and a scrape serves the newest result; only the first
scrape of a database waits for it. Everything else is read at every scrape.

Each read runs in its own savepoint: one the role may not read (or that times out) gives
``cronkit_read_success{read=...} 0`` and the others are still served; a database that cannot be
reached gives ``cronkit_up 0`` and the other databases are still served.

Labels: ``database`` is ``host:port/dbname`` (:func:`cronkit.db.dsn_label`: never a user or a
password); per job ``jobname`` — not ``job``, which Prometheus sets on every series it scrapes —
and ``project``, the cronkit project that manages it (empty for a job cronkit did not create).
Windowed counts are gauges, not counters: they go down when old runs leave the window.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

import polars as pl
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from cronkit import db, monitor, registry
from cronkit.errors import CronkitError, UsageError
from cronkit.monitor.missed import detect_missed
from cronkit.monitor.queues import queue_trend
from cronkit.outcomes import OUTCOMES

T = TypeVar("T")

#: runs, failures, durations, HTTP outcomes and missed runs are counted over this window
WINDOW = timedelta(hours=1)
#: how far back a job's last run is looked for (a weekly job must still have one)
LOOKBACK = timedelta(days=8)
#: queue snapshots are taken every 5 minutes by default: the newest within this is the queue's state
QUEUE_LOOKBACK = timedelta(hours=1)
#: the reads too costly for a scrape (:class:`Slow`: the doctor, missed runs, the 8-day last run)
#: run at most this often per database, in the background
SLOW_TTL = timedelta(seconds=60)
#: statement_timeout of each read of a scrape
TIMEOUT_MS = 5_000
#: a scrape gives up connecting to a database after this many seconds (it is then down)
CONNECT_TIMEOUT = 3
#: the quantile label values of cronkit_job_duration_seconds and the summary columns they come from
DURATION_QUANTILES = {"0.5": "p50_ms", "0.95": "p95_ms", "1": "max_ms"}
#: what a queue's items are counted by, in cronkit_queue_depth{status}
QUEUE_STATUSES = ("pending", "processing", "failed", "done", "other")


class Read(StrEnum):
    """The reads of one scrape of one database; each succeeds or fails on its own."""

    JOBS = "jobs"
    LAST_RUN = "last_run"
    HTTP = "http"
    MISSED = "missed"
    QUEUES = "queues"
    STATE = "state"
    DOCTOR = "doctor"


@dataclass(frozen=True)
class DoctorCounts:
    """What the exporter keeps of a doctor report: findings per (code, severity), when it ran."""

    findings: Mapping[tuple[str, str], int]
    skipped: int
    ran_at: datetime


@dataclass
class Reading:
    """Everything one scrape read from one database (None/empty: not read; see ``failed``)."""

    database: str
    up: bool
    seconds: float = 0.0
    summary: pl.DataFrame | None = None
    last_runs: pl.DataFrame | None = None
    http: pl.DataFrame | None = None
    missed: pl.DataFrame | None = None
    queues: pl.DataFrame | None = None
    state: monitor.MonitorState | None = None
    doctor: DoctorCounts | None = None
    #: jobname -> the cronkit project that manages it
    projects: Mapping[str, str] = field(default_factory=dict)
    #: read -> why it failed (a missing privilege, a timeout, no monitoring schema)
    failed: dict[Read, str] = field(default_factory=dict)


# -- readings into metric families -------------------------------------------------------------------


def _seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def families(readings: Sequence[Reading], *, window: timedelta = WINDOW,
             slow_ttl: timedelta = SLOW_TTL) -> list[Metric]:
    """The metric families of one scrape of ``readings``; a family is present even when no database
    has a sample of it, so every name in :data:`FAMILIES` is always exposed."""
    minutes = f"{window.total_seconds() / 60:g} minutes"
    job_labels = ["database", "project", "jobname"]
    background = f"computed in the background at most every {slow_ttl.total_seconds():g} s"

    def gauge(name: str, doc: str, labels: Sequence[str] = ("database",)) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=list(labels))

    up = gauge("cronkit_up", "1 when the database answered this scrape, 0 when it could not be reached")
    scrape = gauge("cronkit_scrape_duration_seconds", "how long reading this database took in this scrape")
    read_ok = gauge("cronkit_read_success", "1 when this read of the scrape succeeded, 0 when it failed "
                    "(a missing privilege, a timeout, no cronkit monitoring schema)", ["database", "read"])
    window_g = gauge("cronkit_exporter_window_seconds",
                     "the window runs, failures, durations, HTTP outcomes and missed runs are counted over", [])
    window_g.add_metric([], window.total_seconds())
    runs = gauge("cronkit_job_runs", f"runs started in the last {minutes} (rollups; a gauge: runs leave the window)",
                 job_labels)
    failures = gauge("cronkit_job_failures", f"runs in the last {minutes} that pg_cron recorded as failed", job_labels)
    running = gauge("cronkit_job_running", f"runs started in the last {minutes} that are still running", job_labels)
    duration = gauge("cronkit_job_duration_seconds", f"run duration over the last {minutes}: quantile 0.5, 0.95 "
                     "(from the rollups' histogram, within 2.5 percent) and 1 (the longest)", [*job_labels, "quantile"])
    active = gauge("cronkit_job_active", "1 when the job is scheduled (cron.job.active), 0 when paused", job_labels)
    last_ts = gauge("cronkit_job_last_run_timestamp_seconds", "when the job's newest run started (unix time; "
                    f"runs older than the window are looked up over {LOOKBACK.days} days, {background})", job_labels)
    last_ok = gauge("cronkit_job_last_run_success", "1 when the job's newest finished run succeeded, 0 when it "
                    "failed (pg_cron's status: an HTTP job's call is judged by cronkit_http_requests)", job_labels)
    http = gauge("cronkit_http_requests", f"HTTP requests the job queued in the last {minutes}, by outcome class "
                 "(only 2xx succeeds; pending: no answer yet; expired: no answer within pg_net.ttl)",
                 [*job_labels, "outcome"])
    missed = gauge("cronkit_job_missed_runs", f"scheduled runs in the last {minutes} that never started "
                   f"(cronkit's missed-run engine; downtime is counted apart; {background})", job_labels)
    expected = gauge("cronkit_job_expected_runs", f"runs the schedule called for in the last {minutes} ({background})",
                     job_labels)
    depth = gauge("cronkit_queue_depth", "items in the queue by status group, from its newest snapshot",
                  ["database", "project", "queue", "status"])
    oldest = gauge("cronkit_queue_oldest_pending_age_seconds",
                   "age of the oldest pending item when the newest snapshot was taken", ["database", "project", "queue"])
    snapshot = gauge("cronkit_queue_snapshot_timestamp_seconds", "when the queue's newest snapshot was taken "
                     "(the cronkit-queues:<project> job; stale means the numbers are too)", ["database", "project", "queue"])
    refreshed = gauge("cronkit_rollups_refreshed_timestamp_seconds",
                      "when cronkit.refresh_rollups() last ran (newer runs are read raw until it runs again)")
    harvested = gauge("cronkit_responses_harvested_timestamp_seconds",
                      "when cronkit.harvest_responses() last copied pg_net's answers")
    findings = gauge("cronkit_doctor_findings", f"the doctor's findings by code and severity ({background}: see "
                     "cronkit_doctor_run_timestamp_seconds)", ["database", "code", "severity"])
    doctor_ts = gauge("cronkit_doctor_run_timestamp_seconds", "when the doctor findings served were computed")
    skipped = gauge("cronkit_doctor_checks_skipped", "doctor checks that could not run (privileges, timeouts)")

    for r in readings:
        d = r.database
        up.add_metric([d], 1.0 if r.up else 0.0)
        scrape.add_metric([d], r.seconds)
        if not r.up:
            continue
        for read in Read:
            read_ok.add_metric([d, read], 0.0 if read in r.failed else 1.0)

        def labels(jobname: str) -> list[str]:
            return [d, r.projects.get(jobname, ""), jobname]  # noqa: B023 - used within this iteration

        if r.summary is not None:
            for row in r.summary.iter_rows(named=True):
                key = labels(_jobname(row))
                runs.add_metric(key, float(row["runs"]))
                failures.add_metric(key, float(row["failed"]))
                running.add_metric(key, float(row["running"]))
                if row["active"] is not None:
                    active.add_metric(key, 1.0 if row["active"] else 0.0)
                for quantile, column in DURATION_QUANTILES.items():
                    if row[column] is not None:
                        duration.add_metric([*key, quantile], row[column] / 1000)
        if r.last_runs is not None:
            for row in r.last_runs.iter_rows(named=True):
                key = labels(_jobname(row))
                started = _seconds(row["last_start"])
                if started is not None:
                    last_ts.add_metric(key, started)
                if row["last_status"] in ("succeeded", "failed"):
                    last_ok.add_metric(key, 1.0 if row["last_status"] == "succeeded" else 0.0)
        if r.http is not None:
            for row in r.http.iter_rows(named=True):
                key = labels(row["jobname"])
                for outcome in OUTCOMES:
                    http.add_metric([*key, outcome], float(row[outcome] or 0))
        if r.missed is not None:
            for row in r.missed.iter_rows(named=True):
                key = labels(_jobname(row))
                missed.add_metric(key, float(row["missed"]))
                expected.add_metric(key, float(row["expected"]))
        if r.queues is not None:
            for row in r.queues.iter_rows(named=True):
                key = [d, row["project"], row["queue"]]
                for status in QUEUE_STATUSES:
                    if row[status] is not None:
                        depth.add_metric([*key, status], float(row[status]))
                if row["oldest_pending_age_s"] is not None:
                    oldest.add_metric(key, float(row["oldest_pending_age_s"]))
                snapshot.add_metric(key, row["taken_at"].timestamp())
        if r.state is not None:
            for family, moment in ((refreshed, r.state.rollups_refreshed_at), (harvested, r.state.harvested_at)):
                if moment is not None:
                    family.add_metric([d], moment.timestamp())
        if r.doctor is not None:
            for (code, severity), count in sorted(r.doctor.findings.items()):
                findings.add_metric([d, code, severity], float(count))
            doctor_ts.add_metric([d], r.doctor.ran_at.timestamp())
            skipped.add_metric([d], float(r.doctor.skipped))
    return [up, scrape, read_ok, window_g, runs, failures, running, duration, active, last_ts, last_ok, http,
            missed, expected, depth, oldest, snapshot, refreshed, harvested, findings, doctor_ts, skipped]


def _jobname(row: Mapping[str, Any]) -> str:
    """A job's name, or ``jobid:N`` for a job pg_cron knows by number only."""
    return str(row["jobname"]) if row.get("jobname") else f"jobid:{row['jobid']}"


#: every family a scrape exposes, in order
FAMILIES: tuple[str, ...] = tuple(f.name for f in families([]))


# -- reading one database -------------------------------------------------------------------------


def doctor_counts(conn: db.Conn) -> DoctorCounts:
    """The doctor's findings on ``conn`` counted by (code, severity)."""
    from cronkit.doctor import diagnose

    report = diagnose(conn)
    counts = Counter((f.code, str(f.severity)) for f in report.findings)
    return DoctorCounts(dict(counts), len(report.skipped), report.generated_at)


@dataclass(frozen=True)
class Slow:
    """The reads too costly for every scrape (measured at 1M runs: 60 ms the 8-day summary, 60 ms
    the missed-run engine, 750 ms the doctor, against a 100 ms scrape), done in the background."""

    last_runs: pl.DataFrame | None
    missed: pl.DataFrame | None
    doctor: DoctorCounts | None
    failed: Mapping[Read, str]


#: the reads :class:`Slow` holds
SLOW_READS = (Read.LAST_RUN, Read.MISSED, Read.DOCTOR)


def read_slow(conn: db.Conn, *, window: timedelta = WINDOW, lookback: timedelta = LOOKBACK,
              timeout_ms: int = TIMEOUT_MS) -> Slow:
    """Each job's newest run over ``lookback``, missed runs over ``window``, the doctor's findings."""
    failed: dict[Read, str] = {}

    def attempt(read: Read, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except CronkitError as exc:
            if conn.closed or conn.broken:
                raise
            failed[read] = exc.message
            return None

    last = missed = None
    if monitor.has_monitoring_schema(conn):  # without the rollups both would scan the whole run history
        last = attempt(Read.LAST_RUN, lambda: monitor.run_summary(conn, lookback, timeout_ms=timeout_ms).select(
            "jobid", "jobname", "last_start", "last_status"))
        missed = attempt(Read.MISSED, lambda: detect_missed(conn, window, timeout_ms=timeout_ms).summary)
    else:
        failed.update({read: NO_SCHEMA for read in (Read.LAST_RUN, Read.MISSED)})
    doctor = attempt(Read.DOCTOR, lambda: doctor_counts(conn))
    return Slow(last, missed, doctor, failed)


NO_SCHEMA = ("cronkit's monitoring schema is not in this database (or the role may not use it): "
             "`cronkit apply` creates it")


def newest_runs(*frames: pl.DataFrame | None) -> pl.DataFrame | None:
    """Each job's newest run (jobid, jobname, last_start, last_status) across summaries of different windows."""
    present = [f.select("jobid", "jobname", "last_start", "last_status") for f in frames if f is not None]
    if not present:
        return None
    return (pl.concat(present).filter(pl.col("last_start").is_not_null())
            .sort("last_start").group_by("jobid", maintain_order=True).last())


class _Background(Generic[T]):
    """A value recomputed at most every ``ttl``, in a background thread; readers get the newest one.

    Only the first :meth:`get` waits (bounded by ``first_wait``); later ones return at once and start
    a refresh when the value is older than ``ttl``. A refresh that fails keeps the previous value and
    its error is reported until one succeeds.
    """

    def __init__(self, compute: Callable[[], T], ttl: timedelta, *, first_wait: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._compute, self._ttl, self._first_wait, self._clock = compute, ttl.total_seconds(), first_wait, clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._error: str | None = None
        self._at: float | None = None
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        value: T | None = None
        error: str | None = "the background read stopped unexpectedly"
        try:
            value, error = self._compute(), None
        except CronkitError as exc:  # e.g. the database went away
            error = exc.message
        except db.DatabaseError as exc:  # the connection broke under a read
            error = db.error_summary(exc)
        finally:  # whatever happened, the next get() may start a refresh again
            with self._lock:
                if value is not None:
                    self._value = value
                self._error = error
                self._at = self._clock()
                self._thread = None

    def get(self, *, wait: bool = False) -> tuple[T | None, str | None]:
        with self._lock:
            stale = self._at is None or self._clock() - self._at >= self._ttl
            if stale and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cronkit-exporter-slow", daemon=True)
                self._thread.start()
            thread = self._thread
            first = self._at is None
        if thread is not None and (wait or first):
            thread.join(self._first_wait)
        with self._lock:
            return self._value, self._error

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


class Target:
    """One database the exporter reads: its DSN, its label, a connection kept between scrapes."""

    def __init__(self, dsn: str, *, window: timedelta = WINDOW, lookback: timedelta = LOOKBACK,
                 timeout_ms: int = TIMEOUT_MS, slow_ttl: timedelta = SLOW_TTL) -> None:
        self.dsn, self.database = dsn, db.dsn_label(dsn)
        self.window, self.lookback, self.timeout_ms = window, lookback, timeout_ms
        self._conn: db.Conn | None = None
        self._lock = threading.Lock()  # scrapes may come in concurrently; one connection, one reader
        self._slow = _Background(self._read_slow, slow_ttl)

    def _read_slow(self) -> Slow:
        with db.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            return read_slow(conn, window=self.window, lookback=self.lookback, timeout_ms=self.timeout_ms)

    def _connection(self) -> db.Conn:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = db.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._slow.join(5)

    def read(self, *, wait_for_slow: bool = False) -> Reading:
        """One scrape of this database; never raises for what the database says or cannot say."""
        began = time.perf_counter()
        with self._lock:
            try:
                reading = self._read(self._connection())
            except (CronkitError, db.DatabaseError):  # unreachable, or the connection broke mid-read
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                reading = Reading(self.database, up=False)
        if reading.up:
            slow, error = self._slow.get(wait=wait_for_slow)
            if slow is None:
                reading.failed.update({read: error or "not read yet" for read in SLOW_READS})
            else:
                reading.missed, reading.doctor = slow.missed, slow.doctor
                # this scrape's window has the freshest last run of every job that ran in it
                reading.last_runs = newest_runs(slow.last_runs, reading.summary)
                reading.failed.update(slow.failed)
                if error is not None:  # the newest refresh failed: these numbers are from an older one
                    reading.failed.update({read: error for read in SLOW_READS})
        reading.seconds = time.perf_counter() - began
        return reading

    def _read(self, conn: db.Conn) -> Reading:
        reading = Reading(self.database, up=True)
        window, timeout = self.window, self.timeout_ms

        def attempt(read: Read, action: Callable[[], Any]) -> Any:
            try:
                with conn.transaction():  # a savepoint: a failed read leaves the others standing
                    return action()
            except CronkitError as exc:
                if conn.closed or conn.broken:
                    raise
                reading.failed[read] = exc.message
                return None

        with db.read_only(conn, timeout_ms=timeout), db.translated("read the metrics"):
            schema = monitor.has_monitoring_schema(conn)
            with contextlib.suppress(CronkitError), db.translated("read which project manages each job"):
                with conn.transaction():
                    reading.projects = {job.jobname: job.project for job in registry.managed_jobs(conn)}
            if not schema:  # without the rollups every read would scan the whole run history
                reading.failed.update({read: NO_SCHEMA for read in Read if read not in SLOW_READS})
                return reading
            reading.summary = attempt(Read.JOBS, lambda: monitor.run_summary(conn, window, timeout_ms=timeout))
            reading.http = attempt(Read.HTTP, lambda: monitor.http_outcomes(conn, window, timeout_ms=timeout))
            reading.queues = attempt(Read.QUEUES, lambda: _latest_snapshots(conn, timeout))
            reading.state = attempt(Read.STATE, lambda: monitor.monitor_state(conn))
        return reading


def _latest_snapshots(conn: db.Conn, timeout_ms: int) -> pl.DataFrame:
    """The newest snapshot of each (project, queue) within :data:`QUEUE_LOOKBACK`."""
    trend = queue_trend(conn, QUEUE_LOOKBACK, timeout_ms=timeout_ms)
    return trend.sort("taken_at").group_by("project", "queue", maintain_order=True).last()


# -- the collector, a scrape, the server ------------------------------------------------------------


class Exporter(Collector):
    """The ``prometheus_client`` collector: each :meth:`collect` reads every target once."""

    def __init__(self, targets: Sequence[Target], *, window: timedelta = WINDOW,
                 slow_ttl: timedelta = SLOW_TTL) -> None:
        labels = [t.database for t in targets]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise UsageError(f"Two --dsn name the same database {twice[0]!r} (host:port/dbname).",
                             remedy="Give each database once; the database label must tell them apart.")
        self.targets, self.window, self.slow_ttl = list(targets), window, slow_ttl
        self.wait_for_slow = False
        #: the readings of the newest scrape (``--once`` says on stderr what it could not read)
        self.last: list[Reading] = []

    def readings(self) -> list[Reading]:
        self.last = [t.read(wait_for_slow=self.wait_for_slow) for t in self.targets]
        return self.last

    def problems(self) -> list[str]:
        """One line per database the newest scrape could not reach and per read it could not do."""
        lines = []
        for reading in self.last:
            if not reading.up:
                lines.append(f"{reading.database}: could not connect (cronkit_up 0)")
            lines += [f"{reading.database}: {read} not read: {why}" for read, why in reading.failed.items()]
        return lines

    def collect(self) -> Iterable[Metric]:
        return families(self.readings(), window=self.window, slow_ttl=self.slow_ttl)

    def close(self) -> None:
        for target in self.targets:
            target.close()

    def registry(self) -> CollectorRegistry:
        """A registry with only this collector (no process or Python metrics of the exporter itself)."""
        found = CollectorRegistry(auto_describe=False)
        found.register(self)
        return found


def scrape_text(exporter: Exporter) -> str:
    """One scrape in Prometheus' text format (waits for the background reads: what ``--once`` prints)."""
    from prometheus_client import generate_latest

    exporter.wait_for_slow = True
    try:
        return generate_latest(exporter.registry()).decode("utf-8")
    finally:
        exporter.wait_for_slow = False


def scrape_json(exporter: Exporter) -> dict[str, Any]:
    """One scrape as JSON: every family with its help, type and samples (``--once --json``)."""
    exporter.wait_for_slow = True
    try:
        metrics = list(exporter.collect())
    finally:
        exporter.wait_for_slow = False
    return {"families": [
        {"name": m.name, "type": m.type, "help": m.documentation,
         "samples": [{"name": s.name, "labels": dict(s.labels), "value": s.value} for s in m.samples]}
        for m in metrics
    ]}


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9187`` for IPv6, ``:9187`` for every address) as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r} is not HOST:PORT.", remedy="Write e.g. --listen 127.0.0.1:9187.")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - ":PORT" asks for every address
    return host, int(port)


@contextlib.contextmanager
def serving(exporter: Exporter, host: str, port: int) -> Iterator[tuple[str, int]]:
    """Serve ``/metrics`` on (host, port) while the block runs (port 0: a free one); yields the address."""
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=host, registry=exporter.registry())
    except OSError as exc:
        raise UsageError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
                         remedy="Choose another --listen address or port, or stop what uses it.") from exc
    try:
        yield server.server_address[0], server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        exporter.close()


def serve_forever(exporter: Exporter, host: str, port: int, *, announce: Callable[[str], None],
                  stop: threading.Event | None = None) -> None:
    """Serve until ``stop`` is set or the process is interrupted (Ctrl-C, SIGTERM): a clean stop."""
    import signal

    stop = stop or threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with serving(exporter, host, port) as (bound_host, bound_port):
            announce(f"serving http://{bound_host}:{bound_port}/metrics for "
                     f"{', '.join(t.database for t in exporter.targets)}; Ctrl-C stops")
            with contextlib.suppress(KeyboardInterrupt):
                while not stop.wait(1):
                    pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    announce("stopped")
