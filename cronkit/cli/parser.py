"""The ``cronkit`` command line: every command, its arguments, its help with examples and its ``--json`` twin."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from cronkit import __version__
from cronkit.cli.commands import (
    Handler, cmd_apply, cmd_demo, cmd_doctor, cmd_export_migration, cmd_exporter,
    cmd_import, cmd_log, cmd_pause, cmd_plan, cmd_remove, cmd_resume, cmd_run_now,
    cmd_sandbox_down, cmd_sandbox_env, cmd_sandbox_status, cmd_sandbox_up, cmd_schedule_explain, cmd_secrets_set,
    cmd_secrets_status, cmd_status, cmd_teardown,
)
from cronkit.cli.failures import (
    cmd_alerts_silence, cmd_alerts_status, cmd_alerts_test, cmd_dead_letter_drop, cmd_dead_letter_list,
    cmd_dead_letter_replay,
)
from cronkit.errors import ExitCode


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits with the table's 64 and says where to look."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"cronkit: error: {message}\n  fix: see `{self.prog} --help` for the arguments and examples.",
              file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def _command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    handler: Handler,
    help_text: str,
    examples: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    # -v also after the command (`cronkit status -v`); SUPPRESS keeps a -v given before it
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    parser.set_defaults(handler=handler)
    return parser


def _moment(text: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date-time: use e.g. 2026-12-06T03:00 (UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def foreign_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--foreign", action="store_true",
                   help="also act on a job cronkit did not create (by default cronkit refuses)")


def postgres_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--postgres", type=int, choices=(15, 17), default=None,
        help="PostgreSQL major version of a new sandbox (CRONKIT_SANDBOX_POSTGRES; default: the newest this "
        "machine can have: 17 with pg_cron 1.6, in a cached Debian trixie root on bookworm)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cronkit",
        description="pg_cron jobs that call Edge Functions through pg_net, as reviewed code.",
        epilog="examples:\n  cronkit sandbox up\n  cronkit sandbox status --json\n\n"
        "Connection: DATABASE_URL (or PG* variables); see .env.example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cronkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sandbox = commands.add_parser(
        "sandbox",
        help="a local Supabase-like database (real pg_cron, pg_net/Vault stand-ins, Edge Functions server)",
        description="A throwaway local PostgreSQL (17 with pg_cron 1.6, or 15 with the host's pg_cron) with "
        "Supabase-like roles, pg_net and Vault stand-ins and an Edge Functions server. State lives in "
        "CRONKIT_SANDBOX_DIR (default: the nearest .cronkit/sandbox here or in a directory above).",
        epilog="examples:\n  cronkit sandbox up\n  eval \"$(cronkit sandbox env --export)\"   # the variables in this shell\n"
               "  cronkit sandbox down --reset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox.add_argument("--state-dir", type=_path, default=None, help="state directory (CRONKIT_SANDBOX_DIR)")
    sandbox_cmds = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    up = _command(
        sandbox_cmds, "up", cmd_sandbox_up,
        "create or start the sandbox and print its connection variables as KEY=value lines",
        "  cronkit sandbox up\n  cronkit sandbox up --json | jq -r .DATABASE_URL\n"
        "  cronkit sandbox up --postgres 15   # the host's PostgreSQL 15 with pg_cron 1.4.2 (bookworm)\n"
        "  CRONKIT_SANDBOX_PORT=55432 cronkit sandbox up   # choose the port of a new sandbox\n",
    )
    postgres_arg(up)
    env_cmd = _command(
        sandbox_cmds, "env", cmd_sandbox_env,
        "print the sandbox's connection variables (DATABASE_URL, SUPABASE_URL, keys) as KEY=value lines",
        "  cronkit sandbox env > .env\n  eval \"$(cronkit sandbox env --export)\"   # set them in this shell\n",
    )
    env_cmd.add_argument("--export", action="store_true", help="print `export KEY='value'` lines for eval in a shell")
    down = _command(
        sandbox_cmds, "down", cmd_sandbox_down,
        "stop every process the sandbox started (state is kept unless --reset)",
        "  cronkit sandbox down\n  cronkit sandbox down --reset   # also delete the database and keys\n",
    )
    down.add_argument("--reset", action="store_true", help="also delete all sandbox state")
    _command(
        sandbox_cmds, "status", cmd_sandbox_status,
        "show what runs, where, and the PostgreSQL/pg_cron/pg_net/Vault versions (exit 1 when not running)",
        "  cronkit sandbox status\n  cronkit sandbox status --json\n",
    )

    p = _command(commands, "demo", cmd_demo,
                 "the main job on the local sandbox: apply the five example systems, let pg_cron fire them, report",
                 "  cronkit demo\n  cronkit demo --wait 90 --json\n")
    p.add_argument("--wait", type=float, default=150.0, help="seconds to wait for every job to run (default 150)")
    postgres_arg(p)

    def db_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dsn", help="database URL (default: DATABASE_URL, then .env, then PG* variables)")

    def manifest_args(p: argparse.ArgumentParser, *, planned: bool = True) -> None:
        """The manifest, and (for what is planned from it) its environment and --adopt."""
        p.add_argument("manifest", help="the manifest file (e.g. cronkit.toml)")
        if planned:
            p.add_argument("--env", help="environment in the manifest (default: CRONKIT_ENV or the manifest's default)")
            p.add_argument("--adopt", action="store_true", help="let cronkit take over same-named jobs it did not create")
        db_args(p)

    p = _command(commands, "plan", cmd_plan,
                 "compare a manifest with the database and show what would change, job by job (changes nothing)",
                 "  cronkit plan cronkit.toml\n"
                 "  cronkit plan cronkit.toml --sql > plan.sql    # the exact SQL, a script for psql\n"
                 "  cronkit plan cronkit.toml --env cloud --json | jq .summary\n")
    manifest_args(p)
    p.add_argument("--sql", action="store_true",
                   help="print the exact SQL of every change as one script for psql (secret values are never in it)")
    p.add_argument("--format", choices=("text", "markdown"), default="text",
                   help="text (default) or markdown: a table per plan for a pull-request comment (docs/migrations.md)")
    p.epilog = (p.epilog or "") + "  cronkit plan cronkit.toml --env prod --format markdown > plan.md   # for a PR comment\n"
    p = _command(commands, "apply", cmd_apply,
                 "apply a manifest in one transaction after confirmation; then verify (dry-run unless confirmed)",
                 "  cronkit apply cronkit.toml            # shows the plan and asks\n"
                 "  cronkit apply cronkit.toml --yes      # for scripts and CI\n")
    manifest_args(p)
    p.add_argument("--yes", action="store_true", help="apply without asking")
    p = _command(commands, "status", cmd_status, "list every pg_cron job and which cronkit project manages it",
                 "  cronkit status\n  cronkit status --json\n")
    db_args(p)
    for name, handler, text in (
        ("pause", cmd_pause, "pause one job (cron.alter_job active := false); history and jobid are kept"),
        ("resume", cmd_resume, "resume a paused job (cron.alter_job active := true)"),
        ("run-now", cmd_run_now, "run a job's command once now, outside its schedule (records its request like a scheduled run)"),
    ):
        p = _command(commands, name, handler, text, f"  cronkit {name} bubble-sync-processor\n  cronkit {name} bubble-sync-processor --json\n"
                     f"  cronkit {name} my-hand-made-job --foreign   # a job cronkit did not create\n")
        p.add_argument("job", help="job name (cron.job.jobname, case sensitive)")
        foreign_arg(p)
        db_args(p)
        if name == "run-now":
            p.add_argument("--for", dest="slot", type=_moment, metavar="SLOT",
                           help="a backfill: the scheduled start (UTC, e.g. 2026-12-06T03:00) this run stands in "
                                "for; kept on the record with the run")
            p.epilog = (p.epilog or "") + "  cronkit run-now nightly-report --for 2026-12-06T03:00   # a missed run, backfilled\n"
    p = _command(commands, "log", cmd_log,
                 "the change record: every change cronkit made (apply, pause/resume, run-now, secrets, removal), "
                 "who made it and when; newest first",
                 "  cronkit log\n  cronkit log --job bubble-sync-processor --limit 5\n"
                 "  cronkit log --project bubble-sync --since 2026-12-01 --json\n")
    p.add_argument("--job", help="only changes to this job or secret (the entry's target)")
    p.add_argument("--project", help="only changes to this project")
    p.add_argument("--since", type=_moment, help="only changes at or after this moment (UTC)")
    p.add_argument("--limit", type=int, default=50, help="at most this many entries (default 50)")
    db_args(p)
    p = _command(commands, "remove", cmd_remove, "unschedule one cronkit job and drop its wrapper",
                 "  cronkit remove bubble-sync-retry --yes\n"
                 "  cronkit remove my-hand-made-job --yes --foreign   # only unschedules it\n")
    p.add_argument("job")
    p.add_argument("--yes", action="store_true", help="really remove it")
    foreign_arg(p)
    db_args(p)
    p = _command(commands, "teardown", cmd_teardown,
                 "remove everything a manifest's project created (dry run unless --yes)",
                 "  cronkit teardown cronkit.toml\n  cronkit teardown cronkit.toml --yes --secrets\n")
    manifest_args(p, planned=False)  # removes what the project's registry rows name, in every environment
    p.add_argument("--yes", action="store_true", help="really remove")
    p.add_argument("--secrets", action="store_true", help="also delete the secrets the jobs use")
    p = _command(commands, "doctor", cmd_doctor,
                 "diagnose pg_cron, pg_net, secrets, HTTP outcomes, missed runs and queues; findings with evidence and fix "
                 "(exit 0 ok, 1 warnings, 2 critical)",
                 "  cronkit doctor\n  cronkit doctor cronkit.toml --json | jq '.findings[] | .code'\n"
                 "  cronkit doctor examples/bubble-sync/cronkit.toml --env cloud\n")
    p.add_argument("manifest", nargs="?", help="manifest whose secrets, queues and schedules to check as well")
    p.add_argument("--env", help="environment in the manifest")
    db_args(p)
    p = _command(commands, "exporter", cmd_exporter,
                 "serve Prometheus metrics on /metrics for one or many databases: last run and status, runs, failures "
                 "and durations, HTTP outcomes by class, missed runs, queue depth and age, doctor findings",
                 "  cronkit exporter                                   # DATABASE_URL, on 127.0.0.1:9187\n"
                 "  cronkit exporter --listen 0.0.0.0:9187 --dsn \"$PROD_URL\" --dsn \"$STAGING_URL\"\n"
                 "  cronkit exporter --once                            # one scrape in the text format, then exit\n"
                 "  cronkit exporter --once --json | jq '.families[].name'\n"
                 "Connect as a read-only role (README, \"Least privilege\"); a password in --dsn shows in `ps`: prefer\n"
                 "DATABASE_URL or ~/.pgpass. Dashboard and alert rules: examples/grafana/.\n")
    p.add_argument("--listen", default="127.0.0.1:9187", metavar="HOST:PORT",
                   help="address to serve /metrics on (default 127.0.0.1:9187; :9187 for every address)")
    p.add_argument("--dsn", action="append", metavar="URL",
                   help="a database to read (repeat for a fleet; default: DATABASE_URL, then .env, then PG* variables)")
    p.add_argument("--once", action="store_true",
                   help="print one scrape (Prometheus text format) and exit: 1 when a database could not be reached")
    p.add_argument("--window", type=int, default=60, metavar="MINUTES",
                   help="count runs, failures, durations, HTTP outcomes and missed runs over this many minutes (default 60)")
    p.add_argument("--background-every", type=int, default=60, metavar="SECONDS",
                   help="run the reads too costly for a scrape (the doctor, missed runs, last runs older than the "
                        "window) at most this often per database, in the background (default 60)")
    p = _command(commands, "import", cmd_import, "write a manifest from the jobs in cron.job that cronkit does not manage",
                 "  cronkit import -o cronkit.toml\n"
                 "  cronkit import --project bubble-sync --job bubble-sync-processor --job bubble-sync-retry\n"
                 "  cronkit import --project ingest --match '^scheduled_' --timezone America/Los_Angeles\n"
                 "  cronkit import --project billing --json\n")
    p.add_argument("--project", default="imported", help="project name for the new manifest")
    p.add_argument("--job", action="append", metavar="NAME", help="import this job (repeat for several)")
    p.add_argument("--match", metavar="REGEX", help="import the jobs whose name matches this regular expression")
    p.add_argument("--timezone", metavar="ZONE",
                   help="read daily/weekly schedules as local standard time in ZONE (adds at/timezone, so "
                        "daylight saving drift is checked)")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    db_args(p)

    export = commands.add_parser("export", help="write a manifest's jobs as files for other tools (no database needed)",
                                 description="Write a manifest's jobs as files for other tools; reads no database.")
    export_cmds = export.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    p = _command(export_cmds, "migration", cmd_export_migration,
                 "write a Supabase migration equivalent to `cronkit apply` (idempotent, no URL or key in it) "
                 "and a seed snippet for local secrets",
                 "  cronkit export migration cronkit.toml --env prod\n"
                 "  cronkit export migration cronkit.toml --env prod -o - | less   # print, write nothing\n"
                 "  cronkit export migration cronkit.toml --env prod --timestamp 20261206120000 --json\n")
    p.add_argument("manifest", help="the manifest file (e.g. cronkit.toml)")
    p.add_argument("--env", help="environment in the manifest (default: CRONKIT_ENV or the manifest's default)")
    p.add_argument("--dir", type=_path, default=None,
                   help="migrations directory (default: supabase/migrations)")
    p.add_argument("--seed-dir", type=_path, default=None,
                   help="where the seed snippet goes (default: supabase/seeds beside the migrations directory)")
    p.add_argument("--timestamp", help="migration version, UTC YYYYMMDDHHMMSS (default: now)")
    p.add_argument("-o", "--output", help="'-' prints the migration on stdout and writes nothing")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    schedule = commands.add_parser("schedule", help="pg_cron schedule tools",
                                   description="pg_cron schedule tools (no database needed).")
    schedule_cmds = schedule.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    p = _command(schedule_cmds, "explain", cmd_schedule_explain,
                 "validate a schedule exactly as pg_cron does, explain it, and list the next run times",
                 "  cronkit schedule explain '*/5 * * * *' --next 3\n"
                 "  cronkit schedule explain '30 seconds' --pg-cron 1.4.2   # refused: needs 1.5\n"
                 "  cronkit schedule explain '0 12 $ * *' --json\n")
    p.add_argument("expr", help="cron expression, @macro, or 'N seconds'")
    p.add_argument("--next", type=int, default=5, help="how many next run times to list")
    p.add_argument("--pg-cron", help="check against this pg_cron version (e.g. 1.4.2)")
    p.add_argument("--tz", default="GMT", help="cron.timezone (GMT unless set; pg_cron >= 1.5)")

    secrets = commands.add_parser("secrets", help="show or store the secrets jobs read when they fire",
                                  description="Secrets are shown only as present/missing/placeholder, length and fingerprint.")
    secrets_cmds = secrets.add_subparsers(dest="secrets_command", metavar="ACTION", required=True)
    p = _command(secrets_cmds, "status", cmd_secrets_status, "present / missing / placeholder for every secret a manifest uses",
                 "  cronkit secrets status cronkit.toml\n  cronkit secrets status cronkit.toml --json\n")
    p.add_argument("manifest")
    p.add_argument("--env")
    db_args(p)
    p = _command(secrets_cmds, "set", cmd_secrets_set,
                 "store or rotate one secret (value from stdin, a hidden prompt, or --from-env; never an argument)",
                 "  cronkit secrets set service_role_key --manifest cronkit.toml   # hidden prompt\n"
                 "  printf %s \"$KEY\" | cronkit secrets set service_role_key --backend vault\n"
                 "  cronkit secrets set service_role_key --from-env SUPABASE_SERVICE_ROLE_KEY\n"
                 "  cronkit secrets set service_role_key --table public.cron_secrets   # a secrets table\n")
    p.add_argument("name")
    p.add_argument("--manifest", help="take the backend from this manifest's [secrets]")
    p.add_argument("--backend", default=None, choices=["vault", "table", "guc"],
                   help="backend when no manifest is given (default vault; table with --table)")
    p.add_argument("--table", help="the secrets table (implies --backend table), e.g. public.cron_secrets")
    p.add_argument("--key-column", default="key", help="the table's name column (default key)")
    p.add_argument("--value-column", default="value", help="the table's value column (default value)")
    p.add_argument("--from-env", help="read the value from this environment variable")
    p.add_argument("--description", default="", help="description stored with the secret (Vault)")
    db_args(p)

    alerts = commands.add_parser("alerts", help="open alerts, test messages and silences of a manifest's [alerts]",
                                 description="Alerts are evaluated in the database by the job cronkit-alerts:<project>.")
    alerts_cmds = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    p = _command(alerts_cmds, "status", cmd_alerts_status,
                 "open alerts, silences and the last deliveries (exit 1 while an alert is open)",
                 "  cronkit alerts status cronkit.toml\n  cronkit alerts status cronkit.toml --json | jq '.open'\n")
    p.add_argument("manifest")
    p.add_argument("--last", type=int, default=10, help="how many deliveries to list (default 10)")
    db_args(p)
    p = _command(alerts_cmds, "test", cmd_alerts_test,
                 "send a test message to one channel (shows the statement unless --yes)",
                 "  cronkit alerts test cronkit.toml ops-slack\n  cronkit alerts test cronkit.toml ops-slack --yes --json\n")
    p.add_argument("manifest")
    p.add_argument("channel", help="a channel of [alerts.channels]")
    p.add_argument("--yes", action="store_true", help="really send it")
    db_args(p)
    p = _command(alerts_cmds, "silence", cmd_alerts_silence,
                 "send nothing for a while: one job (or queue), or the whole project (dry run unless --yes)",
                 "  cronkit alerts silence cronkit.toml --for '2 hours' --yes\n"
                 "  cronkit alerts silence cronkit.toml --job nightly-sync --for '30 minutes' --reason deploy --yes\n")
    p.add_argument("manifest")
    p.add_argument("--job", help="the job or queue to silence (default: every alert of the project)")
    p.add_argument("--for", dest="duration", required=True, help="how long, e.g. '2 hours' or '30 minutes'")
    p.add_argument("--reason", default="", help="why (shown by `cronkit alerts status`)")
    p.add_argument("--yes", action="store_true", help="really silence")
    db_args(p)

    dead = commands.add_parser("dead-letter", help="calls of jobs with `retry` that failed every attempt: list, replay, drop",
                               description="Dead letters are filed by the job cronkit-retries:<project> "
                                           "(manifest `retry`, docs/manifest.md \"Retries\").")
    dead_cmds = dead.add_subparsers(dest="dead_letter_command", metavar="ACTION", required=True)
    p = _command(dead_cmds, "list", cmd_dead_letter_list,
                 "open dead letters with their evidence: attempts, last answer, idempotency key",
                 "  cronkit dead-letter list\n  cronkit dead-letter list --project bubble-sync --all\n"
                 "  cronkit dead-letter list --json | jq '.[0].evidence'\n")
    p.add_argument("--project", help="only this project's dead letters")
    p.add_argument("--all", action="store_true", help="also the replayed and dropped ones")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    db_args(p)
    for name, handler, what, doing in (
        ("replay", cmd_dead_letter_replay, "send the call again through the job's wrapper, same idempotency key "
         "(shows what it would do unless --yes)", "really send it"),
        ("drop", cmd_dead_letter_drop, "dismiss a dead letter; its evidence stays (dry run unless --yes)", "really drop it"),
    ):
        p = _command(dead_cmds, name, handler, what,
                     f"  cronkit dead-letter {name} 42\n  cronkit dead-letter {name} 42 --yes --json\n")
        p.add_argument("id", type=int, help="the dead letter's number (`cronkit dead-letter list`)")
        p.add_argument("--yes", action="store_true", help=doing)
        db_args(p)
    return parser



def _path(value: str) -> Any:
    from pathlib import Path

    return Path(value)
