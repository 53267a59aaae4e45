"""The runbooks' nbval goldens (tests/golden/*.ipynb): generate them, check they are current.

    python tools/golden.py update                      # every runbook, against the local sandbox
    python tools/golden.py update runbooks/setup.py    # one runbook
    python tools/golden.py check                       # exit 1 when a golden's code is stale

A golden is the runbook exported with ``marimo export ipynb`` and executed in an IPython kernel
(``python -m cronkit.runbooks export-ipynb``) against a known state: the manifest
``tests/golden/runbooks.toml`` applied to a sandbox by :func:`prepare` (its queue table, its key,
one manual run of each HTTP job), removed again by :func:`purge`. Only cells marked
``# NBVAL_CHECK_OUTPUT`` are compared by ``pytest --nbval-lax``; they hold nothing that differs
between sandboxes. The runbooks run read-only there (no ``apply``), as they would in Jupyter.

``update`` uses the sandbox in CRONKIT_SANDBOX_DIR (default .cronkit/sandbox), starting it when it
is not running and stopping it again afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "golden"
GOLDEN_MANIFEST = GOLDEN_DIR / "runbooks.toml"
RUNBOOKS = sorted((ROOT / "runbooks").glob("*.py"))

if str(ROOT) not in sys.path:  # `python tools/golden.py` from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from cronkit import db, jobs
from cronkit.queries import query
from cronkit.runbooks import context, job_checks, setup
from cronkit.runbooks.context import RunbookContext
from cronkit.runbooks.golden import export_ipynb, golden_is_current
from cronkit.secrets import backend_for

#: parameters a golden run must not inherit from the developer's environment or .env
NEUTRAL = {"CRONKIT_APPLY": "false", "CRONKIT_SECRET": "", "CRONKIT_SECRET_FROM_ENV": "", "CRONKIT_JOB": "",
           "CRONKIT_ACTION": "disable", "CRONKIT_SECRETS": "false", "CRONKIT_DSN": ""}


def golden_path(runbook: Path) -> Path:
    return GOLDEN_DIR / f"{runbook.stem}.ipynb"


def kernel_environ(database_url: str, supabase_url: str) -> dict[str, str]:
    """The variables a golden's kernel runs with (no key among them). The kernel runs in
    tests/golden/ (nbclient and nbval start it in the notebook's directory), so the manifest is
    named relative to it and no machine's path ends up in a golden."""
    return {**NEUTRAL, "DATABASE_URL": database_url, "SUPABASE_URL": supabase_url,
            "CRONKIT_MANIFEST": GOLDEN_MANIFEST.name, "CRONKIT_ENV": "sandbox"}


def _context(manifest: Path, database_url: str, environ: Mapping[str, str]) -> RunbookContext:
    return context.resolve({"manifest": str(manifest), "env": "sandbox", "dsn": database_url}, environ=dict(environ))


def prepare(manifest: Path, database_url: str, environ: Mapping[str, str], keys: Mapping[str, str],
            wait_seconds: float = 20.0) -> RunbookContext:
    """Bring a test manifest's project to the state its runbooks are checked in.

    Creates each ``[[queues]]`` table (empty: guards find nothing to do), stores ``keys`` (secret
    name → value) for secrets without a source, applies the manifest, runs each HTTP job once and
    waits for the answers.
    """
    ctx = _context(manifest, database_url, environ)
    purge_history(ctx)
    with db.connect(database_url, autocommit=True) as conn:
        for queue in ctx.manifest.queues:
            table = sql.Identifier(*queue.table.split("."))
            conn.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'pending', "
                "created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz, retry_count int NOT NULL DEFAULT 0)"
            ).format(table))
            conn.execute(sql.SQL("DELETE FROM {}").format(table))
    backend = backend_for(ctx.manifest.secrets)
    with db.connect(database_url) as conn:
        for name, value in sorted(keys.items()):
            backend.set(conn, name, value, "runbook test key")
        conn.commit()
    outcome = setup.apply_plan(ctx, True)
    if isinstance(outcome, setup.ApplyOutcome) and outcome.error:
        raise RuntimeError(f"could not apply {manifest}: {outcome.error}")
    job_checks.manual_run(ctx, True)
    job_checks.verify(ctx, wait_seconds)
    return ctx


def purge_history(ctx: RunbookContext) -> None:
    """Forget the requests and outcomes of the project's jobs (so counts start from zero).

    pg_net's response rows of those requests go too (when the role may delete them): left behind
    without their ledger rows they would look like 401s of hand-written jobs to the doctor.
    """
    names = sorted({s.name for s in context.specs(ctx)})
    with db.connect(ctx.dsn, autocommit=True) as conn:
        if _exists(conn, "net._http_response") and _exists(conn, "cronkit.request_ledger") and conn.execute(
                "SELECT has_table_privilege('net._http_response', 'DELETE') AS ok").fetchone()["ok"]:
            conn.execute("DELETE FROM net._http_response WHERE id IN "
                         "(SELECT request_id FROM cronkit.request_ledger WHERE jobname = ANY(%s))", (names,))
        for table in ("request_ledger", "http_responses", "http_rollup", "run_rollup"):
            if _exists(conn, f"cronkit.{table}"):
                conn.execute(sql.SQL("DELETE FROM {} WHERE jobname = ANY(%s)").format(sql.Identifier("cronkit", table)),
                             (names,))


def _exists(conn: db.Conn, table: str) -> bool:
    return bool(conn.execute(query("runbooks/relation_exists"), {"name": table}).fetchone()["ok"])


def purge(manifest: Path, database_url: str, environ: Mapping[str, str]) -> None:
    """Remove everything :func:`prepare` made: jobs, wrappers, secrets, queue tables, request history."""
    ctx = _context(manifest, database_url, environ)
    with db.connect(database_url) as conn:
        jobs.teardown(conn, ctx.manifest, secrets=True, dry_run=False)
        conn.commit()
    purge_history(ctx)
    with db.connect(database_url, autocommit=True) as conn:
        for queue in ctx.manifest.queues:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(*queue.table.split("."))))


@contextmanager
def sandbox_env() -> Iterator[tuple[str, str, str]]:
    """(DATABASE_URL, SUPABASE_URL, service key) of the local sandbox, started if needed."""
    from cronkit_sandbox.manager import Sandbox

    sandbox = Sandbox()
    was_running = sandbox.status().get("running", False)
    env = sandbox.up()
    try:
        yield env.database_url, env.supabase_url, env.service_key
    finally:
        if not was_running:
            sandbox.down()


def update(runbooks: list[Path]) -> int:
    with sandbox_env() as (database_url, supabase_url, service_key):
        environ = kernel_environ(database_url, supabase_url)
        prepare(GOLDEN_MANIFEST, database_url, environ, {"rb_golden_key": service_key})
        saved = dict(os.environ)
        os.environ.update(environ)
        try:
            for runbook in runbooks:
                print(export_ipynb(runbook, golden_path(runbook)))
        finally:
            os.environ.clear()
            os.environ.update(saved)
            purge(GOLDEN_MANIFEST, database_url, environ)
    return 0


def check(runbooks: list[Path]) -> int:
    stale = [r for r in runbooks if not golden_path(r).exists() or not golden_is_current(r, golden_path(r))]
    for runbook in stale:
        print(f"STALE golden {golden_path(runbook).relative_to(ROOT)}: its code differs from "
              f"{runbook.relative_to(ROOT)}; run `python tools/golden.py update {runbook.relative_to(ROOT)}`", file=sys.stderr)
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["update", "check"])
    parser.add_argument("runbooks", nargs="*", type=Path, help="default: every runbooks/*.py")
    args = parser.parse_args(argv)
    runbooks = [p.resolve() for p in args.runbooks] or RUNBOOKS
    return update(runbooks) if args.command == "update" else check(runbooks)


if __name__ == "__main__":
    sys.exit(main())
