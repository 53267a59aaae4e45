"""The ``cronkit`` command line. Every command has ``--help`` with examples and a ``--json`` twin.

Errors print one clear message with its fix and exit non-zero; ``-v`` adds the traceback.
Progress goes to stderr so stdout stays clean for ``KEY=value`` lines and JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from cronkit import __version__
from cronkit.errors import ConfigError, CronkitError, ExitCode, NotConfirmed, UsageError

Handler = Callable[[argparse.Namespace], int]


def _progress(message: str) -> None:
    print(f"cronkit: {message}", file=sys.stderr, flush=True)


def _emit_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str))


# -- sandbox --------------------------------------------------------------------------------------


def _sandbox(args: argparse.Namespace) -> Any:
    from cronkit.errors import SandboxNotInstalled

    try:
        from cronkit_sandbox.manager import Sandbox
    except ModuleNotFoundError as exc:
        # Only cronkit_sandbox itself missing means "not installed"; any other import error keeps its traceback.
        if (exc.name or "").partition(".")[0] != "cronkit_sandbox":
            raise
        raise SandboxNotInstalled() from exc
    return Sandbox(args.state_dir)


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    return _emit_env(args, _sandbox(args).up(progress=_quiet_if(args)))


def cmd_sandbox_env(args: argparse.Namespace) -> int:
    return _emit_env(args, _sandbox(args).env())


def _emit_env(args: argparse.Namespace, env: Any) -> int:
    """The sandbox's connection variables: JSON, or KEY=value lines for `eval`/.env."""
    if args.json:
        _emit_json(env.as_dict())
    else:
        print("\n".join(f"{key}={value}" for key, value in env.as_dict().items()))
    return 0


def cmd_sandbox_down(args: argparse.Namespace) -> int:
    _sandbox(args).down(reset=args.reset, progress=_quiet_if(args))
    if args.json:
        _emit_json({"stopped": True, "reset": args.reset})
    return 0


def cmd_sandbox_status(args: argparse.Namespace) -> int:
    info = _sandbox(args).status()
    if args.json:
        _emit_json(info)
        return 0 if info["running"] else 1
    if not info["exists"]:
        print(f"no sandbox in {info['state_dir']} (run `cronkit sandbox up`)")
        return 1
    pg = info["postgres"]
    print(f"state dir   {info['state_dir']}")
    print(f"postgres    {'running' if pg['running'] else 'stopped'} on 127.0.0.1:{pg['port']} (log {pg['log']})")
    print(f"pg_net      worker {'pid ' + str(info['networker']['pid']) if info['networker']['pid'] else 'stopped'}")
    print(f"edge        {'pid ' + str(info['edge']['pid']) if info['edge']['pid'] else 'stopped'} on port {info['edge']['port']}")
    for name, version in info.get("versions", {}).items():
        print(f"{name:<11} {version}")
    return 0 if info["running"] else 1


def _quiet_if(args: argparse.Namespace) -> Callable[[str], None]:
    return (lambda _m: None) if args.json else _progress



# -- jobs -----------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Any:
    from cronkit import config

    return config.load(dsn=getattr(args, "dsn", None))


def _connect(args: argparse.Namespace, autocommit: bool = False) -> Any:
    from cronkit import db

    return db.connect(_settings(args).database_url, autocommit=autocommit)


def _manifest(args: argparse.Namespace) -> Any:
    from cronkit.manifest import load_manifest

    return load_manifest(args.manifest)


def _plan(args: argparse.Namespace, conn: Any, manifest: Any) -> Any:
    from cronkit.plan import make_plan

    settings = _settings(args)
    return make_plan(conn, manifest, args.env or settings.environment, adopt=args.adopt, environ=settings.values)


def cmd_plan(args: argparse.Namespace) -> int:
    manifest = _manifest(args)  # a broken manifest is reported before anything connects
    with _connect(args) as conn:
        plan = _plan(args, conn, manifest)
        if args.json:
            _emit_json(plan.as_dict(conn))
        else:
            print(plan.render(conn, show_sql=not args.brief))
        conn.rollback()
    return 1 if plan.problems else 0


def cmd_apply(args: argparse.Namespace) -> int:
    from cronkit.errors import NotConfirmed
    from cronkit.plan import apply

    settings = _settings(args)
    env = args.env or settings.environment
    manifest = _manifest(args)
    with _connect(args) as conn:
        preview = _plan(args, conn, manifest)
        conn.rollback()
        if not args.json:
            print(preview.render(conn, show_sql=not args.brief))
        if preview.problems:
            if args.json:
                _emit_json({**preview.as_dict(conn), "applied": False})
            print("cronkit: nothing applied: fix the problems above first.", file=sys.stderr)
            return 1
        if not preview.changes:
            if args.json:
                _emit_json({**preview.as_dict(conn), "applied": False})
            else:
                print("nothing to do: the database already matches the manifest.")
            return 0
        if not args.yes:
            if not sys.stdin.isatty():
                raise NotConfirmed(f"Nothing was changed: {len(preview.changes)} change(s) planned but not confirmed.",
                                   remedy="Review the plan above, then re-run with --yes.")
            answer = input(f"Apply {len(preview.changes)} change(s) to {conn.info.dbname} in one transaction? Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise NotConfirmed()
        result = apply(conn, manifest, env, adopt=args.adopt, environ=settings.values,
                       progress=_quiet_if(args))
        after = _plan(args, conn, manifest)
        conn.rollback()
        if args.json:
            _emit_json({**result.plan.as_dict(conn), "applied": result.applied, "after": after.summary})
        else:
            print(f"applied {len(result.plan.changes)} change(s) in one transaction; "
                  f"verify: {len(after.changes)} change(s) left, "
                  f"{after.summary['unchanged']} job(s) match the manifest.")
    return 0 if not after.changes else 1


def cmd_status(args: argparse.Namespace) -> int:
    from cronkit.jobs import list_jobs

    with _connect(args, autocommit=True) as conn:
        jobs = list_jobs(conn)
    if args.json:
        _emit_json([j.as_dict() for j in jobs])
        return 0
    if not jobs:
        print("no jobs in cron.job")
    for job in jobs:
        owner = f"cronkit:{job.managed_by}" if job.managed_by else "foreign"
        print(f"{job.jobid:>5}  {'active ' if job.active else 'paused '} {job.schedule:<16} {job.jobname}  ({owner})")
    return 0


def _job_action(args: argparse.Namespace, action: str) -> int:
    from cronkit import jobs

    with _connect(args, autocommit=True) as conn:
        if action in ("pause", "resume"):
            job = jobs.set_active(conn, args.job, action == "resume")
            result: dict[str, Any] = {"job": job.jobname, "jobid": job.jobid, "active": job.active}
        else:
            conn.autocommit = False
            request_id = jobs.run_now(conn, args.job)
            result = {"job": args.job, "request_id": request_id}
    if args.json:
        _emit_json(result)
    else:
        print(", ".join(f"{k}={v}" for k, v in result.items()))
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    return _job_action(args, "pause")


def cmd_resume(args: argparse.Namespace) -> int:
    return _job_action(args, "resume")


def cmd_run_now(args: argparse.Namespace) -> int:
    return _job_action(args, "run-now")


def cmd_remove(args: argparse.Namespace) -> int:
    from cronkit import jobs
    from cronkit.errors import NotConfirmed

    if not args.yes:
        raise NotConfirmed(f"Job {args.job!r} was not removed.", remedy="Re-run with --yes to remove it.")
    with _connect(args) as conn:
        jobs.remove_job(conn, args.job)
    if args.json:
        _emit_json({"removed": args.job})
    else:
        print(f"removed job {args.job!r} and its wrapper")
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    from cronkit import jobs

    manifest = _manifest(args)
    with _connect(args) as conn:
        done = jobs.teardown(conn, manifest, secrets=args.secrets, dry_run=not args.yes)
    if args.json:
        _emit_json({"applied": bool(args.yes), "actions": done})
    else:
        for line in done or ["nothing to remove"]:
            print(("" if args.yes else "would ") + line)
        if not args.yes and done:
            print("dry run: nothing was changed; re-run with --yes to remove these.")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from cronkit import jobs

    with _connect(args, autocommit=True) as conn:
        text = jobs.import_jobs(conn, args.project)
    if args.output:
        from pathlib import Path

        Path(args.output).write_text(text, encoding="utf-8")
        if args.json:
            _emit_json({"written": args.output})
        else:
            print(f"wrote {args.output}")
    elif args.json:
        _emit_json({"manifest": text})
    else:
        print(text)
    return 0


def cmd_schedule_explain(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from cronkit import schedules

    try:
        version = schedules.parse_pg_cron_version(args.pg_cron) if args.pg_cron else None
        schedule = schedules.parse_schedule(args.expr, version)
    except CronkitError as exc:  # the expression is a command-line argument: a usage error
        raise UsageError(exc.message, remedy=exc.remedy) from None
    runs = schedule.next_runs(datetime.now(UTC), args.next, tz=args.tz) if schedule.kind != "reboot" else []
    if args.json:
        _emit_json({"expr": args.expr, "kind": schedule.kind, "explain": schedule.explain(),
                    "warnings": list(schedule.warnings), "next": [r.isoformat() for r in runs]})
    else:
        print(schedule.explain())
        for warning in schedule.warnings:  # what pg_cron accepts but reads differently than written
            print(f"warning: {warning}")
        for run in runs:
            print(f"  {run.isoformat()}")
    return 0


def cmd_secrets_status(args: argparse.Namespace) -> int:
    from cronkit.secrets import SecretState, backend_for

    manifest = _manifest(args)
    settings = _settings(args)
    names = sorted({n for spec in manifest.resolve(args.env or settings.environment, settings.values) for n in spec.secret_names})
    with _connect(args, autocommit=True) as conn:
        statuses = backend_for(manifest.secrets).status(conn, names)
    if args.json:
        _emit_json([s.as_dict() for s in statuses])
    else:
        for s in statuses:
            extra = f"len={s.length} fp={s.fingerprint} updated {s.updated_at}" if s.length is not None else ""
            print(f"{s.name:<32} {s.state:<12} {extra}")
    return 0 if all(s.state == SecretState.PRESENT for s in statuses) else 1


def cmd_secrets_set(args: argparse.Namespace) -> int:
    import getpass
    import os

    from cronkit.manifest import SecretsConfig
    from cronkit.secrets import backend_for

    if args.from_env:
        value = os.environ.get(args.from_env)
        if not value:
            from cronkit.errors import ConfigError

            raise ConfigError(f"{args.from_env} is not set.", remedy=f"export {args.from_env}=... first.")
    elif sys.stdin.isatty():
        value = getpass.getpass(f"value for {args.name} (input hidden): ")
    else:
        value = sys.stdin.read().rstrip("\n")
    config = _manifest(args).secrets if args.manifest else SecretsConfig(backend=args.backend)
    if not value:
        raise ConfigError(f"No value was given for secret {args.name!r}: nothing was stored.",
                          remedy="Pipe the value on stdin, type it at the prompt, or use --from-env VARIABLE.")
    with _connect(args) as conn:
        outcome = backend_for(config).set(conn, args.name, value, args.description)
        conn.commit()
    from cronkit.redact import mask

    if args.json:
        _emit_json({"name": args.name, "outcome": outcome, "value": mask(value)})
    else:
        print(f"{outcome} secret {args.name!r} ({config.backend}) {mask(value)}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from cronkit.doctor import cmd_doctor as run

    return run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from cronkit.errors import SandboxNotInstalled

    try:
        from cronkit_sandbox.demo import render_report, run_demo
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "cronkit_sandbox":
            raise
        raise SandboxNotInstalled() from exc
    report = run_demo(_quiet_if(args), wait_seconds=args.wait)
    if args.json:
        _emit_json(report)
    else:
        print(render_report(report))
        print("report written to reports/demo.md and reports/demo.json")
        print("the sandbox keeps running for you to explore (`eval \"$(cronkit sandbox env | sed 's/^/export /')\"`); "
              "`cronkit sandbox down` stops it")
    return 0 if report["complete"] else 1


# -- parser ---------------------------------------------------------------------------------------


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
    parser.set_defaults(handler=handler)
    return parser


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
        description="A throwaway local PostgreSQL 15 with real pg_cron, Supabase-like roles, pg_net and Vault "
        "stand-ins and an Edge Functions server. State lives in CRONKIT_SANDBOX_DIR (default .cronkit/sandbox).",
        epilog="examples:\n  cronkit sandbox up\n  eval \"$(cronkit sandbox env)\"\n  cronkit sandbox down --reset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox.add_argument("--state-dir", type=_path, default=None, help="state directory (CRONKIT_SANDBOX_DIR)")
    sandbox_cmds = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    _command(
        sandbox_cmds, "up", cmd_sandbox_up,
        "create or start the sandbox and print its connection variables as KEY=value lines",
        "  cronkit sandbox up\n  cronkit sandbox up --json | jq -r .DATABASE_URL\n"
        "  CRONKIT_SANDBOX_PORT=55432 cronkit sandbox up   # choose the port of a new sandbox\n",
    )
    _command(
        sandbox_cmds, "env", cmd_sandbox_env,
        "print the sandbox's connection variables (DATABASE_URL, SUPABASE_URL, keys) as KEY=value lines",
        "  cronkit sandbox env > .env\n  export $(cronkit sandbox env | xargs)\n",
    )
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

    def db_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dsn", help="database URL (default: DATABASE_URL, then .env, then PG* variables)")

    def manifest_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("manifest", help="the manifest file (e.g. cronkit.toml)")
        p.add_argument("--env", help="environment in the manifest (default: CRONKIT_ENV or the manifest's default)")
        p.add_argument("--adopt", action="store_true", help="let cronkit take over same-named jobs it did not create")
        db_args(p)

    p = _command(commands, "plan", cmd_plan,
                 "compare a manifest with the database and show every change with its exact SQL (changes nothing)",
                 "  cronkit plan cronkit.toml\n  cronkit plan cronkit.toml --env cloud --json | jq .summary\n")
    manifest_args(p)
    p.add_argument("--brief", action="store_true", help="hide the SQL of each step")
    p = _command(commands, "apply", cmd_apply,
                 "apply a manifest in one transaction after confirmation; then verify (dry-run unless confirmed)",
                 "  cronkit apply cronkit.toml            # shows the plan and asks\n"
                 "  cronkit apply cronkit.toml --yes      # for scripts and CI\n")
    manifest_args(p)
    p.add_argument("--yes", action="store_true", help="apply without asking")
    p.add_argument("--brief", action="store_true", help="hide the SQL of each step")
    p = _command(commands, "status", cmd_status, "list every pg_cron job and which cronkit project manages it",
                 "  cronkit status\n  cronkit status --json\n")
    db_args(p)
    for name, handler, text in (
        ("pause", cmd_pause, "pause one job (cron.alter_job active := false); history and jobid are kept"),
        ("resume", cmd_resume, "resume a paused job (cron.alter_job active := true)"),
        ("run-now", cmd_run_now, "run a job's command once now, outside its schedule (records its request like a scheduled run)"),
    ):
        p = _command(commands, name, handler, text, f"  cronkit {name} bubble-sync-processor\n  cronkit {name} bubble-sync-processor --json\n")
        p.add_argument("job", help="job name (cron.job.jobname, case sensitive)")
        db_args(p)
    p = _command(commands, "remove", cmd_remove, "unschedule one cronkit job and drop its wrapper",
                 "  cronkit remove bubble-sync-retry --yes\n")
    p.add_argument("job")
    p.add_argument("--yes", action="store_true", help="really remove it")
    db_args(p)
    p = _command(commands, "teardown", cmd_teardown,
                 "remove everything a manifest's project created (dry run unless --yes)",
                 "  cronkit teardown cronkit.toml\n  cronkit teardown cronkit.toml --yes --secrets\n")
    manifest_args(p)
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
    p = _command(commands, "import", cmd_import, "write a manifest from the jobs in cron.job that cronkit does not manage",
                 "  cronkit import -o cronkit.toml\n  cronkit import --project billing --json\n")
    p.add_argument("--project", default="imported", help="project name for the new manifest")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    db_args(p)

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
                 "  cronkit secrets set service_role_key --from-env SUPABASE_SERVICE_ROLE_KEY\n")
    p.add_argument("name")
    p.add_argument("--manifest", help="take the backend from this manifest's [secrets]")
    p.add_argument("--backend", default="vault", choices=["vault", "table", "guc"], help="backend when no manifest is given")
    p.add_argument("--from-env", help="read the value from this environment variable")
    p.add_argument("--description", default="", help="description stored with the secret (Vault)")
    db_args(p)
    return parser



def _path(value: str) -> Any:
    from pathlib import Path

    return Path(value)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits with the table's 64 and says where to look."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"cronkit: error: {message}\n  fix: see `{self.prog} --help` for the arguments and examples.",
              file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def _boundary_error(exc: BaseException) -> CronkitError | None:
    """The one translation of anything a command may raise into a message with a remedy."""
    from cronkit import db

    if isinstance(exc, CronkitError):
        return exc
    if isinstance(exc, db.DatabaseError):
        try:
            with db.translated("finish the command"):
                raise exc
        except CronkitError as translated:
            return translated
    if isinstance(exc, EOFError):
        return NotConfirmed("Nothing was changed: the input ended before an answer was given.",
                            remedy="Answer at the prompt, or pass --yes to confirm in scripts.")
    if isinstance(exc, UnicodeDecodeError):
        return ConfigError(f"A file is not valid UTF-8 text: {exc.reason} at byte {exc.start}.",
                           remedy="Save the file as UTF-8 and run the command again.")
    if isinstance(exc, IsADirectoryError):
        return ConfigError(f"{exc.filename} is a directory, not a file.", remedy="Name the file itself (e.g. cronkit.toml).")
    if isinstance(exc, FileNotFoundError):
        return ConfigError(f"{exc.filename}: no such file.", remedy="Check the path; it is relative to the current directory.")
    if isinstance(exc, PermissionError):
        return ConfigError(f"{exc.filename}: permission denied.", remedy="Check the file's owner and mode, or run as its owner.")
    if isinstance(exc, OSError):
        return CronkitError(f"An operating-system error stopped the command: {exc.strerror or exc}.",
                            remedy="Check the disk, the paths and the permissions it names, then run it again.")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("cronkit: interrupted; nothing half-done is left committed.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): nothing more to say, and nothing to say it to
        _silence_stdout()
        return ExitCode.PROBLEMS
    except Exception as exc:  # the one error boundary: a person never sees a bare traceback
        error = _boundary_error(exc)
        if error is None:
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"cronkit: error: {error}", file=sys.stderr)
        return int(error.exit_code)


def _silence_stdout() -> None:
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
