"""The demo on the local sandbox: apply the five seed systems, let pg_cron fire them, report.

``cronkit demo`` (what ``./dev demo`` runs):

1. ``sandbox up``;
2. for each example in this package's ``examples/`` (the repository's ``examples/``; a copy in the
   wheel): create its tables and rows, provide what the *platform* would (``app.settings.*`` set by
   a superuser for the GUC example, the Edge Functions' own CRON_SECRET / scheduler token), then
   ``apply`` its manifest for the ``sandbox`` environment. Schedules are the guides' own where the
   engine's pg_cron runs them (instagram's ``10 seconds`` on pg_cron 1.6); where it cannot (seconds or
   ``$`` on 1.4.2) the demo runs the job every minute instead, and the report lists every schedule
   that differs from the guide, with the reason;
3. wait (bounded) until every job has run once after the apply and its HTTP call was answered;
4. print a short report and write it to ``reports/demo.md`` and ``reports/demo.json`` (under the
   current directory).

The report reads what cronkit itself reads: the managed jobs from :mod:`cronkit.registry`, runs
from :func:`cronkit.monitor.run_summary` and HTTP answers from :func:`cronkit.monitor.http_outcomes`,
classified by :mod:`cronkit.outcomes` (only 2xx succeeds; a 3xx is a failure).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from cronkit import db
from cronkit.jobs import run_job_now
from cronkit.maintenance import MaintenanceKind, maintenance_jobs, maintenance_kind
from cronkit.manifest import Manifest, load_manifest
from cronkit.monitor import http_outcomes, run_summary
from cronkit.outcomes import FAILED, Outcome
from cronkit.plan import apply
from cronkit.registry import managed_jobs
from cronkit.schedules import PgCronVersion, UnsupportedVersion, parse_pg_cron_version, parse_schedule
from cronkit.secrets import GucBackend
from cronkit_sandbox.manager import Sandbox, SandboxEnv

Progress = Callable[[str], None]
# Package data: links to the repository's examples/ and runbooks/monitor.py in a checkout (one copy
# in git), copies in the wheel; so an installed demo needs no source tree.
PACKAGE_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = PACKAGE_DIR / "examples"
MAINTENANCE_MANIFEST = EXAMPLES_DIR / "maintenance.toml"
MONITOR_RUNBOOK = PACKAGE_DIR / "runbooks" / "monitor.py"

# Functions of seed 003 that authenticate in their own code instead of the JWT gate.
CUSTOM_AUTH = {
    "run-escalation-orchestration": ("authorization", "Bearer", "CRON_SECRET"),
    "schedule-create-zoom": ("x-scheduler-token", None, "SCHEDULER_SECRET_TOKEN"),
}


@dataclass(frozen=True)
class Example:
    name: str
    directory: Path

    @property
    def manifest_path(self) -> Path:
        return self.directory / "cronkit.toml"

    def manifest(self) -> Manifest:
        return load_manifest(self.manifest_path)


#: what a job runs on an engine whose pg_cron cannot run its guide's schedule
ENGINE_FALLBACK = "* * * * *"


class OverrideSource(StrEnum):
    MANIFEST = "manifest"  # the manifest's [environments.sandbox]
    ENGINE = "engine"      # this sandbox's pg_cron cannot run the schedule


@dataclass(frozen=True)
class Override:
    """A demo job whose schedule differs from its guide's, and why."""

    project: str
    job: str
    written: str
    runs: str
    source: OverrideSource
    reason: str


def sandbox_manifest(example: Example, version: PgCronVersion) -> tuple[Manifest, list[Override]]:
    """The example's manifest as the demo applies it on pg_cron ``version``, and every schedule it changes.

    Two kinds of change: the manifest's own ``[environments.sandbox]`` (daily jobs run every minute
    so the demo sees them), and schedules this pg_cron cannot run (run every minute instead).
    """
    manifest = example.manifest()
    sandbox_env = dict(manifest.environments.get("sandbox", {}))
    env_jobs = {name: dict(job) for name, job in sandbox_env.get("jobs", {}).items()}
    overrides = []
    for raw in manifest.raw_jobs:
        name, written = raw["name"], raw.get("schedule")
        if written is None:  # local-time jobs (`at`) are computed, not written
            continue
        effective = env_jobs.get(name, {}).get("schedule", written)
        if effective != written:
            overrides.append(Override(manifest.project, name, written, effective, OverrideSource.MANIFEST,
                                      "the manifest's [environments.sandbox] runs it often, so the demo sees it run"))
        try:
            parse_schedule(effective, version)
        except UnsupportedVersion as exc:
            env_jobs.setdefault(name, {})["schedule"] = ENGINE_FALLBACK
            overrides.append(Override(manifest.project, name, effective, ENGINE_FALLBACK, OverrideSource.ENGINE,
                                      f"this sandbox cannot run it: {exc.message}"))
    sandbox_env["jobs"] = env_jobs
    return replace(manifest, environments={**manifest.environments, "sandbox": sandbox_env}), overrides


def examples(directory: Path = EXAMPLES_DIR) -> list[Example]:
    return [Example(d.name, d) for d in sorted(directory.iterdir()) if (d / "cronkit.toml").is_file()]


def demo_environ(env: SandboxEnv) -> dict[str, str]:
    """The variables the examples' manifests take values from, for this sandbox.

    The extra credentials are derived from the sandbox's own key, so they are stable per sandbox
    and never written anywhere.
    """
    def derived(label: str) -> str:
        return hashlib.sha256(f"{label}:{env.service_key}".encode()).hexdigest()[:32]

    return {
        "SUPABASE_URL": env.supabase_url,
        "SUPABASE_SERVICE_ROLE_KEY": env.service_key,
        "SUPABASE_ANON_KEY": env.anon_key,
        "CRON_SECRET": derived("cron_secret"),
        "SCHEDULER_SECRET_TOKEN": derived("scheduler_token"),
    }


def prepare_example(example: Example, env: SandboxEnv, environ: Mapping[str, str], edge: Any) -> None:
    """Create the example's tables and do what the platform would do before cronkit runs."""
    with db.connect(env.database_url, autocommit=True) as conn:
        for name in ("schema.sql", "seed.sql"):
            path = example.directory / name
            if path.is_file():
                conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]
    manifest = example.manifest()
    if manifest.secrets.backend == "guc":
        # On a self-hosted database a superuser sets these ("Settings > Database > Custom Config").
        with db.connect(env.superuser_url, autocommit=True) as su:
            backend = GucBackend(manifest.secrets)
            backend.set(su, "supabase_url", environ["SUPABASE_URL"])
            backend.set(su, "service_role_key", environ["SUPABASE_SERVICE_ROLE_KEY"])
    for function, (header, scheme, variable) in CUSTOM_AUTH.items():
        edge.configure(function, verify_jwt=False,
                       custom_auth={"header": header, "scheme": scheme, "secret": environ[variable]})


def apply_example(example: Example, env: SandboxEnv, environ: Mapping[str, str], progress: Progress,
                  manifest: Manifest | None = None) -> int:
    with db.connect(env.database_url) as conn:
        result = apply(conn, manifest or example.manifest(), "sandbox", environ=environ)
    progress(f"{example.name}: applied {len(result.plan.changes)} change(s)")
    return len(result.plan.changes)


def http_counts(outcomes: Mapping[str, Any] | None) -> dict[str, Any]:
    """One job's HTTP answers in the report's terms, from a row of :func:`cronkit.monitor.http_outcomes`.

    ``http`` keeps every outcome class; ``http_2xx`` is the successes, ``http_failed`` every finished
    call that did not do the work (3xx, 4xx, 5xx, timeout, transport error, other, expired) and
    ``pending`` the calls still waiting for an answer. A job without HTTP calls has all zeros.
    """
    counts = {str(o): int((outcomes or {}).get(o) or 0) for o in Outcome}
    return {
        "requests": sum(counts.values()),
        "http": counts,
        "http_2xx": counts[Outcome.OK],
        "http_failed": sum(counts[o] for o in FAILED),
        "pending": counts[Outcome.PENDING],
    }


def collect(env: SandboxEnv, projects: Sequence[str], since: datetime) -> list[dict[str, Any]]:
    """Per managed job of ``projects`` (not cronkit's maintenance jobs): its schedule, runs since
    ``since`` and HTTP answers."""
    with db.connect(env.database_url) as conn, db.read_only(conn):
        jobs = [j for j in managed_jobs(conn)
                if j.project in projects and j.jobid is not None and maintenance_kind(j.jobname) is None]
        names = [j.jobname for j in jobs]
        if not names:
            return []
        # Raw history, not rollups: the demo's window is minutes old and the counts must be exact.
        runs = {r["jobname"]: r for r in run_summary(conn, since, jobs=names, use_rollups=False).to_dicts()}
        http = {r["jobname"]: r for r in http_outcomes(conn, since, jobs=names).to_dicts()}
    rows = []
    for job in sorted(jobs, key=lambda j: (j.project, j.jobname)):
        ran = runs.get(job.jobname, {})
        rows.append({
            "project": job.project, "jobname": job.jobname, "schedule": job.schedule, "active": job.active,
            "runs": int(ran.get("runs") or 0), "succeeded": int(ran.get("succeeded") or 0),
            "failed": int(ran.get("failed") or 0), "last_start": ran.get("last_start"),
            "last_failure": ran.get("last_failure_message"),
            **http_counts(http.get(job.jobname)),
        })
    return rows


#: runs of a seconds-schedule job the demo waits for, so the report shows it repeating as written
CADENCE_RUNS = 3


def set_up_examples(env: SandboxEnv, edge: Any, version: PgCronVersion, progress: Progress,
                    chosen: Sequence[Example] | None = None, *, maintenance: bool = True) -> list[Override]:
    """Step 2 of the demo: each example prepared and applied for pg_cron ``version``, cronkit's
    maintenance jobs (unless ``maintenance=False``), and a first queue snapshot. Returns every
    schedule that differs from the manifest's."""
    environ = demo_environ(env)
    overrides: list[Override] = []
    for example in examples() if chosen is None else chosen:
        manifest, changed = sandbox_manifest(example, version)
        overrides += changed
        for change in changed:
            if change.source is OverrideSource.ENGINE:
                progress(f"{change.project}: {change.job} runs '{change.runs}' here, not '{change.written}' "
                         f"({change.reason})")
        prepare_example(example, env, environ, edge)
        apply_example(example, env, environ, progress, manifest)
    if maintenance:
        with db.connect(env.database_url) as conn:
            result = apply(conn, load_manifest(MAINTENANCE_MANIFEST), environ=environ)
        progress(f"cronkit maintenance (harvest, rollups, retention): applied {len(result.plan.changes)} change(s)")
    progress(f"queue snapshots before the jobs run: {snapshot_queues(env, examples() if chosen is None else chosen)} "
             "queue job(s) run once")
    return overrides


def snapshot_queues(env: SandboxEnv, chosen: Sequence[Example]) -> int:
    """Run each example's queue snapshot job once now (its schedule is every 5 minutes; the demo
    is shorter): the monitor's queue charts then show the queues before and after the jobs ran."""
    names = [job.name for example in chosen for job in maintenance_jobs(example.manifest())
             if maintenance_kind(job.name) is MaintenanceKind.QUEUES]
    with db.connect(env.database_url) as conn:
        for name in names:
            run_job_now(conn, name)
    return len(names)


def _cadence_shown(rows: list[dict[str, Any]]) -> bool:
    return all(r["runs"] >= CADENCE_RUNS for r in rows if r["schedule"].endswith("seconds"))


def all_answered(rows: list[dict[str, Any]]) -> bool:
    """Every job of the report ran and none of its calls waits for an answer."""
    # A guarded job that found nothing to do runs without a request: that counts as answered.
    return bool(rows) and all(r["runs"] > 0 and r["pending"] == 0 for r in rows)


def run_demo(progress: Progress, *, wait_seconds: float = 150.0, report_dir: Path | None = None,
             state_dir: Path | None = None, postgres: int | None = None) -> dict[str, Any]:
    report_dir = Path("reports").absolute() if report_dir is None else report_dir
    sandbox = Sandbox(state_dir)
    env = sandbox.up(progress=progress, postgres=postgres)
    state = sandbox.load_state()
    assert state is not None, "up() saved the state"
    engine, versions = sandbox.engine(state), sandbox.versions(state)
    version = parse_pg_cron_version(versions["pg_cron"] or "")
    from cronkit_sandbox.edge import EdgeAdmin

    edge = EdgeAdmin(env.supabase_url, env.service_key)
    chosen = examples()
    since = datetime.now(UTC)
    overrides = set_up_examples(env, edge, version, progress, chosen)
    projects = [e.manifest().project for e in chosen]

    deadline = time.monotonic() + wait_seconds
    rows = collect(env, projects, since)
    every = "every 5-10 seconds" if version.supports_seconds else "on the minute (pg_cron 1.4.2)"
    progress(f"waiting for pg_cron to fire {len(rows)} jobs ({every})")
    last = -1
    while not (all_answered(rows) and _cadence_shown(rows)) and time.monotonic() < deadline:
        done = sum(1 for r in rows if r["runs"] > 0 and r["pending"] == 0)
        if done != last:
            progress(f"  {done}/{len(rows)} jobs ran and got their HTTP answer")
            last = done
        time.sleep(1.0)
        rows = collect(env, projects, since)

    snapshot_queues(env, chosen)
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sandbox": {"database": db.redact_dsn(env.database_url), "supabase_url": env.supabase_url,
                    "engine": engine.as_dict(), "versions": versions},
        "overrides": [asdict(o) for o in overrides],
        "complete": all_answered(rows),
        "jobs": [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows],
        "invocations": _invocation_counts(edge),
    }
    report["doctor"] = _doctor_summary(env)
    report_dir.mkdir(parents=True, exist_ok=True)
    progress("writing the offline HTML report of the monitor runbook (charts inline, no CDN)")
    from cronkit.runbooks.report import report as runbook_report

    html_path = runbook_report(MONITOR_RUNBOOK, report_dir / "monitor.html",
                               ["--dsn", env.database_url, "--hours", "1"])
    report["html_report"] = str(html_path)
    (report_dir / "demo.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    (report_dir / "demo.md").write_text(render_report(report), encoding="utf-8")
    return report


def _doctor_summary(env: SandboxEnv) -> dict[str, Any]:
    """The doctor's verdict on the sandbox after the demo: codes by severity."""
    from cronkit.doctor import diagnose

    with db.connect(env.database_url) as conn:
        result = diagnose(conn)
    return {
        "exit_code": result.exit_code,
        "findings": [{"code": f.code, "severity": f.severity, "job": f.job} for f in result.findings],
    }


def _invocation_counts(edge: Any) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for record in edge.invocations():
        per = counts.setdefault(record["function"], {})
        key = str(record.get("status"))
        per[key] = per.get(key, 0) + 1
    return counts


def _engine_line(sandbox: dict[str, Any]) -> str:
    engine, versions = sandbox.get("engine") or {}, sandbox.get("versions") or {}
    return (f"Engine: {engine.get('kind')} — {engine.get('describe')}; PostgreSQL {versions.get('postgresql')}, "
            f"pg_cron {versions.get('pg_cron')}, pg_net {versions.get('pg_net')} (stand-in), "
            f"Vault {versions.get('vault')} (stand-in).")


def verdict(report: Mapping[str, Any]) -> str:
    """What the demo showed, claiming no call that was not made: a guarded job that found no work
    ran without a request."""
    if not report["complete"]:
        return "NOT every job ran in time"
    silent = [j["jobname"] for j in report["jobs"] if j["requests"] == 0]
    calling = len(report["jobs"]) - len(silent)
    text = f"every job ran; {calling} made HTTP calls and every call was answered"
    if silent:
        text += (f"; {len(silent)} made no call (nothing to do, or SQL only): " + ", ".join(silent))
    return text


def render_report(report: dict[str, Any]) -> str:
    lines = [
        f"# cronkit demo — {report['generated_at']}",
        "",
        f"Sandbox database {report['sandbox']['database']}; Edge Functions at {report['sandbox']['supabase_url']}.",
        "",
        _engine_line(report["sandbox"]),
        "",
        "HTTP failed counts every answered call that did not do the work: 3xx (a redirect pg_net could not follow), "
        "4xx, 5xx, timeouts, transport errors, expired.",
        "",
        "| project | job | schedule | runs | ok | failed | HTTP 2xx | HTTP failed | pending | last failure |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for job in report["jobs"]:
        message = (job["last_failure"] or "").strip().replace("|", "\\|")
        classes = ", ".join(f"{o} {job['http'][o]}" for o in FAILED if job["http"].get(o))
        failed = f"{job['http_failed']} ({classes})" if classes else str(job["http_failed"])
        lines.append(
            f"| {job['project']} | {job['jobname']} | `{job['schedule']}` | {job['runs']} | {job['succeeded']} | "
            f"{job['failed']} | {job['http_2xx']} | {failed} | {job['pending']} | {message} |"
        )
    if report.get("overrides"):
        lines += ["", "Schedules that differ from the guides (the table shows what ran):", ""]
        for o in report["overrides"]:
            lines.append(f"- {o['project']} / {o['job']}: `{o['runs']}` instead of `{o['written']}` — {o['reason']}")
    lines += ["", "Edge Function invocations (function: status → count):", ""]
    for function, statuses in sorted(report["invocations"].items()):
        lines.append(f"- {function}: " + ", ".join(f"{s} → {n}" for s, n in sorted(statuses.items())))
    doctor = report.get("doctor", {})
    if doctor:
        worst = [f for f in doctor["findings"] if f["severity"] != "info"]
        lines += ["", f"Doctor: exit {doctor['exit_code']}, {len(doctor['findings'])} finding(s), "
                  f"{len(worst)} warning/critical" + (": " + ", ".join(f"{f['code']} ({f['job'] or 'database'})" for f in worst) if worst else "") + "."]
    if report.get("html_report"):
        lines += ["", f"Charts: {report['html_report']} (self-contained; opens offline)."]
    lines += ["", f"Result: {verdict(report)}.", ""]
    return "\n".join(lines)
