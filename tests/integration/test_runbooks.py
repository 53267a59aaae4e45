"""The runbooks (marimo notebooks in runbooks/) run headless against the test database.

Each runbook is imported by path and run with ``app.run(defs={"p": {...}})``: the parameters
replace the config cell, so nothing depends on pytest's own argv (which ``mo.cli_args()`` would
parse). Every test works on a project of its own (job names, secret names and queue table carry
the test's ``job_prefix``) and removes it afterwards; the five example manifests are never applied
here. The jobs call the sandbox's ``process-instagram-imports`` function with ``{"action":
"health"}`` and are scheduled once a year, so no test waits for pg_cron: ``run-now`` gives the
runs and the HTTP answers arrive within a second.

For each state-changing runbook (setup, rotate_secret, rollback): a run without confirmation
leaves ``cron.job``, cronkit's functions and the secrets exactly as they were, a confirmed run
converges, and a second confirmed run finds nothing to do.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cronkit import db as cdb
from cronkit.monitor import charts
from cronkit.outcomes import OUTCOMES
from cronkit.runbooks import context, job_checks, runtime, secret_store, setup
from cronkit.runbooks import report as offline
from cronkit.runbooks.context import RunbookContext
from cronkit.runbooks.report import load_app

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
HEALTH_FUNCTION = "process-instagram-imports"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(sandbox: Any) -> Any:
    """The test database, provided its Edge Functions server answers the health function."""
    if not (sandbox.supabase_url and sandbox.service_key):
        pytest.skip("needs the sandbox's Edge Functions server (SUPABASE_URL and its service key)")
    request = urllib.request.Request(f"{sandbox.supabase_url}/functions/v1/{HEALTH_FUNCTION}",
                                     headers={"Authorization": f"Bearer {sandbox.service_key}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            assert json.loads(response.read())["status"] == "ok"
    except (OSError, AssertionError, KeyError, ValueError):
        pytest.skip(f"no {HEALTH_FUNCTION} health function at {sandbox.supabase_url} (the sandbox's demo function)")
    return sandbox


@dataclass
class Project:
    """A throwaway manifest: one plain HTTP job, one guarded by an (empty) queue table."""

    prefix: str
    dsn: str
    manifest: Path
    key_variable: str  # environment variable holding the right key
    wrong_variable: str  # environment variable holding a key the function refuses

    @property
    def project(self) -> str:
        return f"{self.prefix}rb"

    @property
    def health(self) -> str:
        return f"{self.prefix}health"

    @property
    def guarded(self) -> str:
        return f"{self.prefix}guarded"

    @property
    def key(self) -> str:
        return f"{self.prefix}key"

    @property
    def name(self) -> str:
        """The manifest's project (what teardown asks to be typed)."""
        return f"{self.prefix}rb"

    @property
    def url_secret(self) -> str:
        return f"{self.prefix}url"

    @property
    def table(self) -> str:
        return f"public.{self.prefix}queue"

    def params(self, **overrides: Any) -> dict[str, Any]:
        """Every parameter any runbook reads (each reads its own subset)."""
        base = {"manifest": str(self.manifest), "env": "sandbox", "dsn": self.dsn, "apply": False, "secret": None,
                "secret_from_env": None, "wait_seconds": 10.0, "job": None, "hours": 1.0, "refresh": "1m",
                "action": "disable", "secrets": False, "confirm": None}
        return {**base, **overrides}

    def context(self) -> RunbookContext:
        return context.resolve(self.params())


def manifest_text(prefix: str, supabase_url: str, backend: str = "vault") -> str:
    secrets = 'backend = "vault"' if backend == "vault" else f'backend = "table"\ntable = "public.{prefix}secrets"'
    return f"""
project = "{prefix}rb"
default_environment = "sandbox"

[secrets]
{secrets}

[secrets.sources]
{prefix}url = "env:SUPABASE_URL"

[[jobs]]
name = "{prefix}health"
schedule = "0 0 1 1 *"
function = "{HEALTH_FUNCTION}"
headers = {{ Authorization = "Bearer {{secret:{prefix}key}}" }}
body = {{ action = "health" }}

[[jobs]]
name = "{prefix}guarded"
schedule = "0 0 1 1 *"
url = "{{secret:{prefix}url}}/functions/v1/{HEALTH_FUNCTION}"
headers = {{ Authorization = "Bearer {{secret:{prefix}key}}" }}
body = {{ action = "health" }}
guard = "exists (select 1 from public.{prefix}queue where status = 'pending')"

[environments.sandbox]
base_url = "{supabase_url}"

[[queues]]
table = "public.{prefix}queue"
retry_column = "retry_count"
max_retries = 3
"""


@pytest.fixture
def backend() -> str:
    """Where the test project keeps its secrets (parametrized indirectly by some tests)."""
    return "vault"


@pytest.fixture
def project(target: Any, job_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> Iterator[Project]:
    manifest = tmp_path / "cronkit.toml"
    manifest.write_text(manifest_text(job_prefix, target.supabase_url, backend), encoding="utf-8")
    variable = f"RB_TEST_KEY_{uuid.uuid4().hex[:6].upper()}"
    wrong = f"RB_TEST_WRONG_{uuid.uuid4().hex[:6].upper()}"
    monkeypatch.setenv("SUPABASE_URL", target.supabase_url)
    monkeypatch.setenv(variable, target.service_key)
    monkeypatch.setenv(wrong, "wrong-key-" + uuid.uuid4().hex)
    for name in ("CRONKIT_APPLY", "CRONKIT_MANIFEST", "CRONKIT_ENV", "CRONKIT_SECRET", "CRONKIT_SECRET_FROM_ENV"):
        monkeypatch.delenv(name, raising=False)
    proj = Project(job_prefix, target.database_url, manifest, variable, wrong)
    with cdb.connect(target.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE public.{job_prefix}queue (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT "  # type: ignore[arg-type]
                     "'pending', created_at timestamptz NOT NULL DEFAULT now(), retry_count int NOT NULL DEFAULT 0)")
    yield proj
    tool = _golden_tool()
    tool.purge(manifest, target.database_url, {"SUPABASE_URL": target.supabase_url})
    with cdb.connect(target.database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{job_prefix}secrets")  # type: ignore[arg-type]


def _golden_tool() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("golden_tool", ROOT / "tools" / "golden.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def applied(project: Project) -> Project:
    """The project applied with the right key, each HTTP job run once and answered."""
    _outputs, defs = run("setup", project.params(apply=True, secret=project.key, secret_from_env=project.key_variable))
    assert defs["checks"].filter(pl.col("status") == "todo").is_empty(), defs["checks"]
    return project


# -- helpers -------------------------------------------------------------------------------------


def run(name: str, p: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    app = load_app(RUNBOOKS / f"{name}.py")
    outputs, defs = app.run(defs={"p": p})
    return outputs, dict(defs)


def text(outputs: Any) -> str:
    """Everything a run displayed, as text (HTML of marimo outputs, frames, chart specs)."""
    parts = []
    for value in outputs if isinstance(outputs, tuple | list) else [outputs]:
        if value is None:
            continue
        if isinstance(value, pl.DataFrame):
            with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=10_000):
                parts.append(str(value))
                parts.append(value._repr_html_())
        elif hasattr(value, "to_json") and type(value).__module__.startswith("altair"):
            parts.append(value.to_json())
        else:
            parts.append(getattr(value, "text", None) or repr(value))
    raw = "\n".join(parts)
    # and as a reader sees it: without tags, entities decoded, blanks collapsed
    plain = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw)))
    return raw + "\n" + plain


def snapshot(dsn: str) -> dict[str, Any]:
    """What a state-changing runbook may change: every pg_cron job, cronkit's functions, every
    Vault secret (as a digest) and cronkit's job registry."""
    with cdb.connect(dsn, autocommit=True) as conn:
        state: dict[str, Any] = {
            "jobs": conn.execute(
                "SELECT jobid, jobname, schedule, command, active, username FROM cron.job ORDER BY jobid").fetchall(),
            "functions": conn.execute(
                "SELECT p.oid::regprocedure::text AS fn, md5(p.prosrc) AS src FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'cronkit' ORDER BY 1").fetchall(),
            "secrets": conn.execute(
                "SELECT name, updated_at, md5(decrypted_secret) AS digest FROM vault.decrypted_secrets ORDER BY name").fetchall(),
        }
        state["secret_tables"] = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relname LIKE 't\\_%%secrets' ORDER BY 1").fetchall()
        for table in state["secret_tables"]:
            state[table["relname"]] = conn.execute(
                f"SELECT key, md5(value) AS digest, updated_at FROM public.{table['relname']} ORDER BY key").fetchall()  # type: ignore[arg-type]
        if conn.execute("SELECT to_regclass('cronkit.managed_jobs') IS NOT NULL AS ok").fetchone()["ok"]:
            state["managed"] = conn.execute(
                "SELECT jobname, project, wrapper, spec_hash, updated_at FROM cronkit.managed_jobs ORDER BY jobname").fetchall()
    return state


def requests_of(dsn: str, job: str) -> int:
    with cdb.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('cronkit.request_ledger') IS NOT NULL AS ok").fetchone()["ok"]:
            return 0
        return int(conn.execute("SELECT count(*) AS n FROM cronkit.request_ledger WHERE jobname = %s", (job,)).fetchone()["n"])


def job_row(dsn: str, name: str) -> dict[str, Any] | None:
    with cdb.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT jobid, active FROM cron.job WHERE jobname = %s", (name,)).fetchone()


def statuses(frame: pl.DataFrame) -> dict[str, str]:
    return dict(zip(frame["step"].to_list(), frame["status"].to_list(), strict=True))


# -- structure -----------------------------------------------------------------------------------


def test_every_runbook_passes_marimo_check_strict() -> None:
    done = subprocess.run([sys.executable, "-m", "marimo", "check", "--strict", str(RUNBOOKS)],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", sorted(RUNBOOKS.glob("*.py")), ids=lambda p: p.stem)
def test_each_runbook_has_one_config_cell_that_defines_only_p(path: Path) -> None:
    app = load_app(path)
    config_cells = [c for c in app._cell_manager.cell_data() if "runtime.params(" in c.code]
    assert len(config_cells) == 1
    assert re.fullmatch(r"p = runtime\.params\((.|\n)*\)", config_cells[0].code.strip())


# -- setup ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["setup", "rotate_secret", "rollback"])
def test_a_runbook_without_a_manifest_says_so_and_shows_no_empty_sections_or_live_buttons(project: Project, name: str) -> None:
    outputs, defs = run(name, project.params(manifest=None, apply=True))

    shown = text(outputs)
    assert "No manifest: this runbook works on the jobs a manifest declares." in shown and "--manifest" in shown
    assert "ctx" not in defs and not [k for k in defs if k.endswith("_button")]


@pytest.mark.parametrize("backend", ["vault", "table"])
def test_setup_changes_nothing_unconfirmed_converges_confirmed_and_then_has_nothing_to_do(project: Project) -> None:
    before = snapshot(project.dsn)
    # Everything to do, and a value to store at hand, but no confirmation.
    outputs, defs = run("setup", project.params(secret=project.key, secret_from_env=project.key_variable))
    assert snapshot(project.dsn) == before
    plan = defs["plan"]
    assert {s["job"] for s in plan.steps if s["action"] == "create"} == {
        project.health, project.guarded, f"cronkit-queues:{project.name}"}  # [[queues]]: its snapshot job
    assert any(project.key in problem and "missing" in problem for problem in plan.problems)
    shown = text(outputs)
    assert "Not applied" in shown and "Nothing was changed" in shown
    assert 'CREATE OR REPLACE FUNCTION "cronkit"."job_' in shown  # the exact SQL is previewed
    assert "SELECT cron.schedule(" in shown
    assert statuses(defs["checks"])[f"wrapper of {project.health} created"] == "todo"
    assert requests_of(project.dsn, project.health) == 0
    assert "disabled='true'" not in defs["apply_button"].text  # work to do: the button is live

    # Confirmed: secret stored, plan applied, each HTTP job run once and answered.
    outputs, defs = run("setup", project.params(apply=True, secret=project.key, secret_from_env=project.key_variable))
    after = snapshot(project.dsn)
    assert after != before
    verification = defs["verification"].sort("job")
    assert verification["job"].to_list() == [f"cronkit-queues:{project.name}", project.guarded, project.health]
    assert verification["active"].to_list() == [True, True, True]
    assert verification["wrapper"].to_list() == [True, True, True]
    health = verification.filter(pl.col("job") == project.health).row(0, named=True)
    assert (health["http_2xx"], health["http_failed"], health["http_pending"]) == (1, 0, 0)
    assert verification.filter(pl.col("job") == project.guarded)["work"].to_list() == ["nothing to do"]
    checks = statuses(defs["checks"])
    # the guarded job made no call: its endpoint is "nothing to do yet", never "done"
    assert checks.pop(f"{project.guarded} answered by its endpoint") == "idle"
    assert {v for k, v in checks.items() if "ran on schedule" not in k} == {"done"}
    assert {v for k, v in checks.items() if "ran on schedule" in k} == {"waiting"}
    assert setup.preview_plan(project.context()).changes == 0
    shown = text(outputs)
    assert "verified: a new plan finds nothing left to do" in shown
    assert f"{project.guarded} : not run: its guard finds nothing to do" in shown

    # Again: nothing to do, nothing changed, no function called again.
    outputs, defs = run("setup", project.params(apply=True, secret=project.key, secret_from_env=project.key_variable))
    assert snapshot(project.dsn) == after
    assert defs["plan"].changes == 0
    # buttons with nothing to do are greyed out
    assert "disabled='true'" in defs["apply_button"].text and "disabled='true'" in defs["ext_button"].text
    assert requests_of(project.dsn, project.health) == 1
    shown = text(outputs)
    assert "Nothing to do: the database already matched the manifest; nothing was changed" in shown
    assert "unchanged" in shown  # the secret


def test_setup_names_missing_tables_and_guards_that_read_them(project: Project) -> None:
    with cdb.connect(project.dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {project.table}")  # type: ignore[arg-type]
    tables = setup.required_tables(project.context())
    row = tables.row(0, named=True)
    assert row["table"] == project.table and row["exists"] is False
    assert "[[queues]]" in row["needed_by"] and f"guard of {project.guarded}" in row["needed_by"]


# -- rotate_secret -------------------------------------------------------------------------------


def test_rotate_secret_changes_nothing_unconfirmed_then_detects_a_bad_key_and_verifies_a_good_one(applied: Project) -> None:
    p = applied
    before = snapshot(p.dsn)
    requests = requests_of(p.dsn, p.health)
    outputs, defs = run("rotate_secret", p.params(secret=p.key, secret_from_env=p.wrong_variable))
    assert snapshot(p.dsn) == before
    assert requests_of(p.dsn, p.health) == requests
    assert "Not applied" in text(outputs)
    assert defs["usage"].row(0, named=True)["state"] == "present"

    # The wrong key: stored, the manual run is answered 401, the runbook says so.
    outputs, defs = run("rotate_secret", p.params(apply=True, secret=p.key, secret_from_env=p.wrong_variable))
    check = dict(zip(defs["check"]["job"].to_list(), defs["check"]["manual_check"].to_list(), strict=True))
    assert check[p.health].startswith("failed")
    assert check[p.guarded].startswith("skipped")
    assert "do not revoke the old key" in text(outputs)

    # The right key again: the manual run succeeds.
    outputs, defs = run("rotate_secret", p.params(apply=True, secret=p.key, secret_from_env=p.key_variable))
    check = dict(zip(defs["check"]["job"].to_list(), defs["check"]["manual_check"].to_list(), strict=True))
    assert check[p.health] == "ok"
    after = snapshot(p.dsn)
    requests = requests_of(p.dsn, p.health)

    # Same value once more: unchanged, nothing runs.
    outputs, defs = run("rotate_secret", p.params(apply=True, secret=p.key, secret_from_env=p.key_variable))
    assert snapshot(p.dsn) == after
    assert requests_of(p.dsn, p.health) == requests
    assert "no job was run again" in text(outputs)


# -- rollback ------------------------------------------------------------------------------------


def test_rollback_previews_then_disables_enables_removes_and_tears_down_idempotently(applied: Project) -> None:
    p = applied
    before = snapshot(p.dsn)
    outputs, defs = run("rollback", p.params())
    assert snapshot(p.dsn) == before
    assert not defs["plan"].nothing_to_do
    assert "cron.alter_job" in text(outputs) and "Not applied" in text(outputs)
    assert defs["before"]["active"].to_list() == [True, True, True]  # the two jobs and the queue snapshots

    outputs, defs = run("rollback", p.params(apply=True))
    assert defs["after"]["active"].to_list() == [False, False, False]
    disabled = snapshot(p.dsn)
    outputs, defs = run("rollback", p.params(apply=True))
    assert defs["plan"].nothing_to_do
    assert snapshot(p.dsn) == disabled
    assert "already inactive" in text(outputs)

    run("rollback", p.params(apply=True, action="enable", job=p.health))
    assert job_row(p.dsn, p.health)["active"] is True
    assert job_row(p.dsn, p.guarded)["active"] is False

    # remove and teardown run only once the job's or the project's name is typed
    outputs, defs = run("rollback", p.params(apply=True, action="remove", job=p.guarded, confirm=p.health))
    assert job_row(p.dsn, p.guarded) is not None
    assert "in the box above to confirm the remove" in text(outputs) and f"--confirm {p.guarded}" in text(outputs)
    outputs, defs = run("rollback", p.params(apply=True, action="remove", job=p.guarded, confirm=p.guarded))
    assert job_row(p.dsn, p.guarded) is None
    assert defs["after"]["job"].to_list() == [f"cronkit-queues:{p.name}", p.health]

    outputs, defs = run("rollback", p.params(apply=True, action="teardown", secrets=True))
    assert job_row(p.dsn, p.health) is not None and "to confirm the teardown" in text(outputs)
    outputs, defs = run("rollback", p.params(apply=True, action="teardown", secrets=True, confirm=p.name))
    assert job_row(p.dsn, p.health) is None
    assert defs["after"].is_empty()
    state = snapshot(p.dsn)
    assert not [s for s in state["secrets"] if s["name"].startswith(p.prefix)]
    assert not [f for f in state["functions"] if p.prefix.rstrip("_") in f["fn"]]
    outputs, defs = run("rollback", p.params(apply=True, action="teardown", secrets=True, confirm=p.name))
    assert defs["plan"].nothing_to_do
    assert snapshot(p.dsn) == state


# -- monitor -------------------------------------------------------------------------------------


@pytest.fixture
def history(applied: Project, target: Any) -> Iterator[Project]:
    """Three recorded runs of the health job (one failed) and two pending queue items."""
    if not target.superuser_url:
        pytest.skip("recording run history needs the sandbox's superuser")
    now = datetime.now(UTC)
    jobid = job_row(applied.dsn, applied.health)["jobid"]
    runs = [(now - timedelta(minutes=30), 120, "succeeded", "1 row"), (now - timedelta(minutes=20), 480, "failed", "ERROR: boom"),
            (now - timedelta(minutes=10), 250, "succeeded", "1 row")]
    with cdb.connect(target.superuser_url, autocommit=True) as su:
        for start, ms, status, message in runs:
            su.execute(
                "INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, "
                "start_time, end_time) VALUES (%s, 1, current_database(), 'postgres', 'SELECT 1', %s, %s, %s, %s)",
                (jobid, status, message, start, start + timedelta(milliseconds=ms)))
    with cdb.connect(applied.dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {applied.table} (status) VALUES ('pending'), ('pending'), ('failed')")  # type: ignore[arg-type]
        from cronkit.monitor import queues

        conn.execute(queues.snapshot_statement(list(applied.context().manifest.queues), applied.project))
    yield applied
    with cdb.connect(target.superuser_url, autocommit=True) as su:
        su.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", (jobid,))
    with cdb.connect(applied.dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM cronkit.queue_snapshots WHERE project = %s", (applied.project,))


def test_monitor_shows_runs_outcomes_missed_runs_and_queues_with_their_charts(history: Project) -> None:
    p = history
    before = snapshot(p.dsn)
    outputs, defs = run("monitor", p.params(hours=1.0))
    assert snapshot(p.dsn) == before
    runs = defs["runs"].filter(pl.col("jobname") == p.health).row(0, named=True)
    assert (runs["runs"], runs["succeeded"], runs["failed"]) == (3, 2, 1)
    assert runs["last_failure_message"] == "ERROR: boom"
    assert 120 <= runs["p50_ms"] <= 480 and abs(runs["max_ms"] - 480) < 1
    http = {r["jobname"]: r for r in defs["http"].to_dicts()}
    assert (http[p.health]["requests"], http[p.health]["2xx"]) == (1, 1)
    assert http[p.guarded]["requests"] == 0
    missed = defs["missed"]
    assert set(missed["jobname"].to_list()) == {p.health, p.guarded, f"cronkit-queues:{p.name}"}  # [[queues]]: its snapshot job
    queue = defs["queue_health"].row(0, named=True)
    assert (queue["queue"], queue["pending"], queue["failed"]) == (p.table, 2, 1)

    duration = defs["duration"].to_dict()
    runs_layer, failures_layer, by_hand = duration["layer"]  # the fixture's test runs were started by hand
    assert runs_layer["mark"]["type"] == "point" and failures_layer["mark"]["shape"] == "cross"
    assert by_hand["mark"]["shape"] == "diamond" and {v["jobname"] for v in charts.values(duration)
                                                      if v["origin"] == "by hand"} <= {p.health, p.guarded}
    assert runs_layer["encoding"]["x"]["field"] == "start_time" and runs_layer["encoding"]["y"]["field"] == "duration_ms"
    points = [v for v in charts.values(duration) if v["jobname"] == p.health and v["origin"] == "pg_cron"]
    assert sorted(v["duration_ms"] for v in points) == pytest.approx([120, 250, 480], abs=1)
    outcomes = defs["outcomes"].to_dict()
    assert outcomes["mark"]["type"] == "rect" and outcomes["encoding"]["color"]["field"] == "cell"
    assert "1-minute buckets" in outcomes["encoding"]["x"]["title"]  # an hour's window: 1-minute cells
    assert {(v["jobname"], v["cell"], v["requests"]) for v in charts.values(outcomes)} >= {(p.health, "all 2xx", 1)}
    assert defs["http"].columns[2:2 + len(OUTCOMES)] == [str(o) for o in OUTCOMES]
    # both jobs run yearly: nothing was due in the window, and the chart says so instead of empty axes
    assert "No run was due in this window" in defs["timeline"].text
    trend = defs["queue_trend"].to_dict()
    [row] = [r for r in trend["vconcat"] if r["title"]["text"] == f"Queues: {p.table}"]  # a row per queue
    depth = [v for v in charts.values(trend, row["hconcat"][0]) if v["queue"] == p.table]
    assert {(v["status"], v["items"]) for v in depth} == {("pending", 2), ("processing", 0), ("failed", 1)}
    shown = text(outputs)
    assert "1 of 3 run(s) failed" in shown


# -- incident ------------------------------------------------------------------------------------


def test_incident_walks_a_401_from_a_stale_key_with_evidence_and_fix(applied: Project) -> None:
    p = applied
    ctx = p.context()
    secret_store.store_secret(ctx, p.key, "stale-key-" + uuid.uuid4().hex, True)
    with cdb.connect(p.dsn) as conn:
        from cronkit import jobs

        jobs.run_job_now(conn, p.health)
    job_checks.verify(ctx, 10)
    before = snapshot(p.dsn)
    outputs, defs = run("incident", p.params(hours=1.0))
    assert snapshot(p.dsn) == before
    findings = defs["findings"]
    assert {"severity": "critical", "code": "HTTP_UNAUTHORIZED", "job": p.health} in findings.to_dicts()
    ranks = [("critical", "warning", "info").index(f.severity) for f in defs["report"].findings]
    assert ranks == sorted(ranks)
    coverage = {r["troubleshooting"]: r["status"] for r in defs["coverage"].to_dicts()}
    assert coverage["Vault secret mismatch (401 errors): re-sync the key"] == "found: HTTP_UNAUTHORIZED"
    shown = text(outputs)
    assert "HTTP_UNAUTHORIZED" in shown and "Likely cause." in shown and "Fix." in shown
    assert "guide 000" in shown


@pytest.mark.parametrize("backend", ["table"])
def test_a_stale_table_key_is_named_with_its_table_and_the_fix_it_gives_repairs_the_job(applied: Project) -> None:
    """The 401 of a job whose key lives in a secrets table: a Vault secret of the same name holding the
    right key must not make the evidence say the key is fine, and the fix must store into the table."""
    from cronkit.doctor import diagnose
    from cronkit.secrets import VaultBackend
    from tests.jobs_support import cli

    p = applied
    right = os.environ[p.key_variable]
    ctx = p.context()
    secret_store.store_secret(ctx, p.key, "stale-key-" + uuid.uuid4().hex, True)  # into the table
    with cdb.connect(p.dsn) as conn:
        VaultBackend().set(conn, p.key, right, "same name, another backend")
        conn.commit()
    def call_then_diagnose() -> Any:
        """Run the job once, wait for its answer, and ask the doctor."""
        from cronkit import jobs

        with cdb.connect(p.dsn) as conn:
            jobs.run_job_now(conn, p.health)
        job_checks.verify(ctx, 10)
        with cdb.connect(p.dsn) as conn:
            report = diagnose(conn, ctx.manifest, environment="sandbox", environ={})
            conn.rollback()
        return report.find("HTTP_UNAUTHORIZED", p.health)

    try:
        [finding] = call_then_diagnose()
        [sent] = finding.evidence["auth_secrets"]
        assert sent["backend"] == f"table public.{p.prefix}secrets" and sent["secret"] == p.key
        command = f"cronkit secrets set {p.key} --table public.{p.prefix}secrets"  # the table, named
        assert sent["store_with"] == command and f"`{command}`" in finding.fix

        fixed = cli(*command.split()[1:], "--dsn", p.dsn, cwd=p.manifest.parent, input=right)
        assert fixed.returncode == 0, fixed.stderr
        recovered = call_then_diagnose()
        assert all(f.severity == "info" and f.evidence["recovered_at"] for f in recovered)  # the newest call got 2xx
    finally:
        with cdb.connect(p.dsn) as conn:
            VaultBackend().delete(conn, p.key)
            conn.commit()


@pytest.mark.parametrize("backend", ["table"])
def test_the_incident_verdict_names_a_broken_table_key_and_its_fix_repairs_the_job(
        applied: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11's acceptance: a table-backed key answered with 401 opens the incident runbook with
    that job and its table secret as the cause, and the command the verdict gives, run as written
    (the value from the variable the operator keeps it in), makes the job's next call get a 2xx."""
    import shlex

    from cronkit import jobs
    from cronkit.cli import main as cronkit_main
    from tests.helpers import wait_for

    p = applied
    ctx = p.context()
    table = f"public.{p.prefix}secrets"
    secret_store.store_secret(ctx, p.key, "stale-key-" + uuid.uuid4().hex, True)  # the table now holds a wrong key
    with cdb.connect(p.dsn) as conn:
        jobs.run_job_now(conn, p.health)
    job_checks.verify(ctx, 10)

    outputs, defs = run("incident", p.params(hours=1.0))
    v = defs["verdict"]
    assert v.root is not None and (v.root.code, v.root.job) == ("HTTP_UNAUTHORIZED", p.health)
    assert p.health in v.sentence and repr(p.key) in v.sentence and f"table {table}" in v.sentence
    assert v.chain[:2] == (f"stale key in table {table} ({p.key})", f"401 on {p.health} (1 call(s))")
    [command] = v.fix.commands
    assert command == f"cronkit secrets set {p.key} --table {table}"
    assert v.fix.runbook == f"marimo run runbooks/rotate_secret.py -- --manifest {p.manifest} --secret {p.key}"
    shown = text(outputs)
    assert command in shown and " → " in shown
    assert "stale-key-" not in shown  # the wrong key is a secret too

    def calls_ok() -> int:
        row = job_checks.verify(ctx).filter(pl.col("job") == p.health).row(0, named=True)
        return int(row["http_2xx"])

    before = calls_ok()
    # the fix as the verdict gives it; the value comes from where the operator keeps it, never argv
    assert cronkit_main([*shlex.split(command)[1:], "--from-env", p.key_variable, "--dsn", p.dsn]) == 0
    assert table in capsys.readouterr().out
    with cdb.connect(p.dsn) as conn:
        jobs.run_job_now(conn, p.health)
    wait_for(lambda: calls_ok() > before, timeout=30, interval=0.5, message=f"a 2xx answer to {p.health}'s next call")
    _outputs, defs = run("incident", p.params(hours=1.0))
    root = defs["verdict"].root  # other tests' requests in the shared database may still be refused
    assert root is None or (root.code, root.job) != ("HTTP_UNAUTHORIZED", p.health)


# -- Jupyter degradation -------------------------------------------------------------------------


def test_outside_marimo_the_gate_answers_instead_of_raising() -> None:
    assert not runtime.in_marimo()
    gate = runtime.gate(False, "Apply")
    assert not gate
    assert runtime.JUPYTER_GATE in runtime.NotApplied.of(gate, "Apply").view().text
    assert runtime.NotApplied.of(runtime.gate(False, "Apply", needed=False, idle="All set."), "Apply").view().text.count("All set.")
    assert runtime.marimo_cli_args() == {}


# -- offline report ------------------------------------------------------------------------------

_REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*['\"]?(https?:)?//", re.IGNORECASE)
_IMPORT = re.compile(r"@import\s+(url\()?['\"]?(https?:)?//", re.IGNORECASE)


def test_the_monitor_report_is_one_offline_html_file_with_its_charts(history: Project, tmp_path: Path) -> None:
    target = tmp_path / "monitor.html"
    env = {**os.environ, **_golden_tool().NEUTRAL, "DATABASE_URL": history.dsn,
           "CRONKIT_MANIFEST": str(history.manifest), "CRONKIT_ENV": "sandbox"}
    done = subprocess.run([sys.executable, "-m", "cronkit.runbooks", "report", str(RUNBOOKS / "monitor.py"),
                           "-o", str(target), "--", "--hours", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    page = target.read_text(encoding="utf-8")
    assert not _REMOTE.search(page), _REMOTE.search(page)
    assert not _IMPORT.search(page)
    assert page.count("<svg") >= 3  # duration, outcomes, queues (nothing was due: the missed chart explains)
    assert history.health in page and "ERROR: boom" in page
    assert "Window: the last <strong>60 min</strong>" in page  # the parameter after `--` arrived
    assert "marimo-ui-element" not in page and "interactive control" in page


# -- canary: no secret value anywhere ------------------------------------------------------------


def test_no_secret_value_appears_in_any_output_report_or_notebook(project: Project, target: Any, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    canary = uuid.uuid4().hex
    key = f"canary-{canary}-key"
    url = f"{target.supabase_url}/canary-{canary}-url"  # still reachable: the calls get real answers
    monkeypatch.setenv("RB_CANARY_KEY", key)
    monkeypatch.setenv("SUPABASE_URL", url)  # the url secret's [secrets.sources] variable
    with cdb.connect(project.dsn, autocommit=True) as conn:  # open the guard: both jobs call out
        conn.execute(f"INSERT INTO {project.table} (status) VALUES ('pending')")  # type: ignore[arg-type]
    seen: dict[str, str] = {}
    for name, p in [
        ("setup", project.params(apply=True, secret=project.key, secret_from_env="RB_CANARY_KEY")),
        ("setup", project.params(apply=True, secret=project.key, secret_from_env="RB_CANARY_KEY")),
        ("monitor", project.params()),
        ("incident", project.params()),
        ("rotate_secret", project.params(apply=True, secret=project.key, secret_from_env="RB_CANARY_KEY")),
        ("rotate_secret", project.params(secret=project.key, secret_from_env="RB_CANARY_KEY")),
        ("rollback", project.params(action="teardown", secrets=True)),
    ]:
        outputs, _defs = run(name, p)
        seen[f"{name} outputs {len(seen)}"] = text(outputs)
    with cdb.connect(project.dsn, autocommit=True) as conn:  # the canaries really are stored and used
        stored = {r["name"]: r["decrypted_secret"] for r in conn.execute(
            "SELECT name, decrypted_secret FROM vault.decrypted_secrets WHERE name = ANY(%s)", ([project.key, project.url_secret],))}
        assert stored == {project.key: key, project.url_secret: url}
        assert conn.execute("SELECT count(*) AS n FROM cronkit.request_ledger WHERE jobname = ANY(%s)",
                            ([project.health, project.guarded],)).fetchone()["n"] >= 2
    for name, value in _golden_tool().NEUTRAL.items():  # nothing from a developer's .env
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", project.dsn)
    monkeypatch.setenv("CRONKIT_MANIFEST", str(project.manifest))
    monkeypatch.setenv("CRONKIT_ENV", "sandbox")
    monkeypatch.setenv("CRONKIT_SECRET", project.key)
    monkeypatch.setenv("CRONKIT_SECRET_FROM_ENV", "RB_CANARY_KEY")  # shown as a preview, never applied
    paths = sorted(RUNBOOKS.glob("*.py"))
    # The Jupyter renditions (the documented command, each in a kernel of its own) run in parallel
    # while the reports are written here.
    exports = {path: subprocess.Popen([sys.executable, "-m", "cronkit.runbooks", "export-ipynb", str(path),
                                       "-o", str(tmp_path / f"{path.stem}.ipynb"), "--timeout", "120"],
                                      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for path in paths}
    try:
        for path in paths:
            report = offline.report(path, tmp_path / f"{path.stem}.html")
            seen[str(report)] = report.read_text(encoding="utf-8")
    finally:
        results = {path: process.communicate(timeout=180) for path, process in exports.items()}
    for path, (stdout, stderr) in results.items():
        assert exports[path].returncode == 0, f"export of {path.name} failed:\n{stderr[-3000:]}"
        seen[f"{path.stem}.ipynb"] = (tmp_path / f"{path.stem}.ipynb").read_text(encoding="utf-8")
        seen[f"{path.stem} export log"] = stdout + stderr
    for where, content in seen.items():
        assert canary not in content, f"a secret value leaked into {where}"
    assert not list(ROOT.glob("runbooks/__marimo__/**/*")), "a run left marimo session files next to the runbooks"
    # the Jupyter rendition carries its charts as images: it opens (and prints) without a network
    exported = json.loads(seen["monitor.ipynb"])
    kinds = [kind for cell in exported["cells"] for out in cell.get("outputs", []) for kind in out.get("data", {})]
    # the charts with data (here the HTTP heatmap; the runs were manual, so no duration or missed
    # chart) are embedded images, none a vega script that needs a CDN
    assert kinds.count("image/svg+xml") >= 1 and "application/vnd.vegalite.v5+json" not in kinds
    assert "cdn.jsdelivr" not in seen["monitor.ipynb"] and "<script" not in seen["monitor.ipynb"].split('"outputs"', 1)[-1]
