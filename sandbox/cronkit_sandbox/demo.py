"""The main job on the local sandbox: apply the five seed systems, let pg_cron fire them, report.

``cronkit demo`` (what ``./dev demo`` runs):

1. ``sandbox up``;
2. for each example in ``examples/``: create its tables and rows, provide what the *platform*
   would (``app.settings.*`` set by a superuser for the GUC example, the Edge Functions' own
   CRON_SECRET / scheduler token), then ``apply`` its manifest for the ``sandbox`` environment;
3. wait (bounded) until every job has run once after the apply and its HTTP call was answered;
4. print a short report and write it to ``reports/demo.md`` and ``reports/demo.json``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cronkit import db
from cronkit.manifest import Manifest, load_manifest
from cronkit.plan import apply
from cronkit_sandbox.manager import Sandbox, SandboxEnv
from cronkit.secrets import GucBackend

Progress = Callable[[str], None]
# Package data: a link to the repository's examples/ in a checkout, a copy in the wheel.
EXAMPLES_DIR = Path(__file__).parent / "examples"
REPO = Path.cwd()
MAINTENANCE_MANIFEST = EXAMPLES_DIR / "maintenance.toml"

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


def apply_example(example: Example, env: SandboxEnv, environ: Mapping[str, str], progress: Progress) -> int:
    with db.connect(env.database_url) as conn:
        result = apply(conn, example.manifest(), "sandbox", environ=environ)
    progress(f"{example.name}: applied {len(result.plan.changes)} change(s)")
    return len(result.plan.changes)


REPORT_SQL = """
with jobs as (
  select m.jobname, m.project, j.jobid, j.schedule, j.active
    from cronkit.managed_jobs m join cron.job j on j.jobname = m.jobname
   where m.project = any(%(projects)s)
), runs as (
  select d.jobid, count(*) as runs,
         count(*) filter (where d.status = 'succeeded') as succeeded,
         count(*) filter (where d.status = 'failed') as failed,
         max(d.start_time) as last_start,
         (array_agg(d.return_message order by d.runid desc))[1] as last_message
    from cron.job_run_details d
   where d.jobid in (select jobid from jobs) and d.start_time >= %(since)s
   group by d.jobid
), http as (
  select l.jobname,
         count(*) as requests,
         count(*) filter (where r.status_code between 200 and 299) as ok,
         count(*) filter (where r.status_code >= 400) as http_errors,
         count(*) filter (where r.error_msg is not null) as transport_errors,
         count(*) filter (where r.id is null) as pending
    from cronkit.request_ledger l
    left join net._http_response r on r.id = l.request_id
   where l.created_at >= %(since)s
   group by l.jobname
)
select jobs.project, jobs.jobname, jobs.schedule, jobs.active,
       coalesce(runs.runs, 0) as runs, coalesce(runs.succeeded, 0) as succeeded,
       coalesce(runs.failed, 0) as failed, runs.last_start, runs.last_message,
       coalesce(http.requests, 0) as requests, coalesce(http.ok, 0) as http_2xx,
       coalesce(http.http_errors, 0) as http_errors, coalesce(http.transport_errors, 0) as transport_errors,
       coalesce(http.pending, 0) as pending
  from jobs left join runs using (jobid) left join http using (jobname)
 order by jobs.project, jobs.jobname
"""


def collect(env: SandboxEnv, projects: list[str], since: datetime) -> list[dict[str, Any]]:
    with db.connect(env.database_url, autocommit=True) as conn:
        return conn.execute(REPORT_SQL, {"projects": projects, "since": since}).fetchall()  # type: ignore[arg-type]


def _all_answered(rows: list[dict[str, Any]]) -> bool:
    # A guarded job that found nothing to do runs without a request: that counts as answered.
    return bool(rows) and all(r["runs"] > 0 and r["pending"] == 0 for r in rows)


def run_demo(progress: Progress, *, wait_seconds: float = 150.0, report_dir: Path = REPO / "reports",
             state_dir: Path | None = None) -> dict[str, Any]:
    sandbox = Sandbox(state_dir)
    env = sandbox.up(progress=progress)
    from cronkit_sandbox.edge import EdgeAdmin

    edge = EdgeAdmin(env.supabase_url, env.service_key)
    environ = demo_environ(env)
    chosen = examples()
    since = datetime.now(UTC)
    for example in chosen:
        prepare_example(example, env, environ, edge)
        apply_example(example, env, environ, progress)
    with db.connect(env.database_url) as conn:
        result = apply(conn, load_manifest(MAINTENANCE_MANIFEST), environ=environ)
    progress(f"cronkit maintenance (harvest, rollups, retention): applied {len(result.plan.changes)} change(s)")
    projects = [e.manifest().project for e in chosen]

    deadline = time.monotonic() + wait_seconds
    rows = collect(env, projects, since)
    progress(f"waiting for pg_cron to fire {len(rows)} jobs (pg_cron checks schedules every minute)")
    last = -1
    while not _all_answered(rows) and time.monotonic() < deadline:
        done = sum(1 for r in rows if r["runs"] > 0 and r["pending"] == 0)
        if done != last:
            progress(f"  {done}/{len(rows)} jobs ran and got their HTTP answer")
            last = done
        time.sleep(1.0)
        rows = collect(env, projects, since)

    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sandbox": {"database": db.redact_dsn(env.database_url), "supabase_url": env.supabase_url},
        "complete": _all_answered(rows),
        "jobs": [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows],
        "invocations": _invocation_counts(edge),
    }
    report["doctor"] = _doctor_summary(env)
    report_dir.mkdir(parents=True, exist_ok=True)
    progress("writing the offline HTML report of the monitor runbook (charts inline, no CDN)")
    from cronkit.runbook import report as runbook_report

    html_path = runbook_report(Path(__file__).parent / "runbooks" / "monitor.py", report_dir / "monitor.html",
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


def render_report(report: dict[str, Any]) -> str:
    lines = [
        f"# cronkit demo — {report['generated_at']}",
        "",
        f"Sandbox database {report['sandbox']['database']}; Edge Functions at {report['sandbox']['supabase_url']}.",
        "",
        "| project | job | schedule | runs | ok | failed | HTTP 2xx | HTTP 4xx/5xx | transport errors | last message |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for job in report["jobs"]:
        message = (job["last_message"] or "").strip().replace("|", "\\|")
        lines.append(
            f"| {job['project']} | {job['jobname']} | `{job['schedule']}` | {job['runs']} | {job['succeeded']} | "
            f"{job['failed']} | {job['http_2xx']} | {job['http_errors']} | {job['transport_errors']} | {message} |"
        )
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
    verdict = "every job ran and its HTTP call was answered" if report["complete"] else "NOT every job ran in time"
    lines += ["", f"Result: {verdict}.", ""]
    return "\n".join(lines)
