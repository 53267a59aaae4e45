"""The handlers of every ``cronkit`` command: each reads its arguments, calls the package, prints text or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from cronkit.errors import CronkitError, ExitCode, JobNotFound, UsageError

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
    return _emit_env(args, _sandbox(args).up(progress=_quiet_if(args), postgres=args.postgres))


def cmd_sandbox_env(args: argparse.Namespace) -> int:
    return _emit_env(args, _sandbox(args).env())


def _emit_env(args: argparse.Namespace, env: Any) -> int:
    """The sandbox's connection variables: JSON, or KEY=value lines for `eval`/.env."""
    if args.json:
        _emit_json(env.as_dict())
    elif getattr(args, "export", False):
        import shlex

        print("\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.as_dict().items()))
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
    print(f"engine      {info['engine']['kind']}: {info['engine']['describe']}")
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

    settings = _settings(args)
    return db.connect(settings.database_url, autocommit=autocommit, environ=settings.values)


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
        elif args.sql:
            print(plan.script(conn), end="")
        elif args.format == "markdown":
            print(plan.markdown(), end="")
        else:
            print(plan.render())
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
            print(preview.render())
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
                if args.json:  # the --json twin still shows what would be applied
                    _emit_json({**preview.as_dict(conn), "applied": False})
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


def cmd_export_migration(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cronkit.config import merged_environment
    from cronkit.migration import MIGRATIONS_DIR, export_migration, write_migration

    manifest = _manifest(args)
    # no database: only the environment's name is read (CRONKIT_ENV), never a value for the file
    environment = args.env or merged_environment().get("CRONKIT_ENV") or None
    migration = export_migration(manifest, environment, timestamp=args.timestamp)
    if args.output == "-":
        if args.json:
            _emit_json({**migration.as_dict(), "written": None, "sql": migration.sql, "seed_sql": migration.seed})
        else:
            print(migration.sql, end="")
        return 0
    if args.output is not None:
        raise UsageError("-o takes only '-' (print): the file name is Supabase's, <timestamp>_cronkit_<project>.sql.",
                         remedy="Choose the folder with --dir and the version with --timestamp.")
    directory = args.dir or MIGRATIONS_DIR
    written = write_migration(migration, directory, seed_directory=args.seed_dir or Path(directory).parent / "seeds",
                              force=args.force)
    if args.json:
        _emit_json({**migration.as_dict(), "written": str(written.migration), "seed": str(written.seed),
                    "seed_outcome": written.seed_outcome})
        return 0
    print(f"wrote {written.migration}: {len(migration.jobs)} job(s) of project {migration.project!r} "
          f"({migration.environment}); no URL or key in it")
    seed = {"written": f"wrote {written.seed}: placeholders for the secrets the jobs read on the local stack "
                       "(add it to seed.sql or [db.seed] sql_paths, then fill them in)",
            "unchanged": f"{written.seed} is up to date",
            "kept": f"kept {written.seed}: it differs from the snippet for this manifest (filled in, or older); "
                    "--force rewrites it"}[written.seed_outcome]
    print(seed)
    return 0


def _require_cron(conn: Any) -> None:
    from cronkit.facts import require_pg_cron, server_facts

    require_pg_cron(server_facts(conn))


def cmd_status(args: argparse.Namespace) -> int:
    from cronkit.jobs import list_jobs
    from cronkit.privileges import Section, missing

    with _connect(args, autocommit=True) as conn:
        _require_cron(conn)
        lacking = {s: m for s, m in missing(conn).items() if s in (Section.JOBS, Section.REGISTRY)}
        jobs = [] if Section.JOBS in lacking else list_jobs(conn, ownership=Section.REGISTRY not in lacking)
    for gap in lacking.values():  # on stderr: --json keeps stdout a list of jobs
        print(f"cronkit: {gap.line()}", file=sys.stderr)
    status = ExitCode.PROBLEMS if lacking else ExitCode.OK
    if args.json:
        _emit_json([j.as_dict() for j in jobs])
        return status
    if not jobs and Section.JOBS not in lacking:
        print("no jobs in cron.job")
    for job in jobs:
        owner = f"cronkit:{job.managed_by}" if job.managed_by else ("foreign" if job.ownership_known else "owner unknown")
        print(f"{job.jobid:>5}  {'active ' if job.active else 'paused '} {job.schedule:<16} {job.jobname}  ({owner})")
    return status


def _job_action(args: argparse.Namespace, action: str) -> int:
    from cronkit import jobs

    with _connect(args, autocommit=True) as conn:
        _require_cron(conn)
        if action in ("pause", "resume"):
            job = jobs.set_active(conn, args.job, action == "resume", foreign=args.foreign)
            result: dict[str, Any] = {"job": job.jobname, "jobid": job.jobid, "active": job.active}
        else:
            conn.autocommit = False
            ran = jobs.run_job_now(conn, args.job, foreign=args.foreign, slot=getattr(args, "slot", None))
            if args.json:
                _emit_json(ran.as_dict())
            else:
                print(ran.line())
            return 0
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


def cmd_log(args: argparse.Namespace) -> int:
    from cronkit import audit, db

    with _connect(args) as conn, db.read_only(conn):
        present = audit.has_log(conn, writable=False)
        entries = audit.read_log(conn, project=args.project, target=args.job, since=args.since, limit=args.limit)
    if args.json:
        _emit_json({"recorded": present, "entries": [e.as_dict() for e in entries]})
    elif not present:
        print("no change record in this database yet: `cronkit apply` creates it with cronkit's schema")
    elif not entries:
        print("no change on the record matches")
    for entry in entries if not args.json else ():
        print(entry.line())
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from cronkit import jobs
    from cronkit.errors import NotConfirmed

    if not args.yes:
        raise NotConfirmed(f"Job {args.job!r} was not removed.", remedy="Re-run with --yes to remove it.")
    with _connect(args) as conn:
        jobs.remove_job(conn, args.job, foreign=args.foreign)
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
    from cronkit.importer import Selection, import_manifest

    selection = Selection(tuple(args.job or ()), args.match)
    with _connect(args, autocommit=True) as conn:
        _require_cron(conn)
        result = import_manifest(conn, jobs.list_jobs(conn), args.project, selection, args.timezone)
    if result.missing:
        raise JobNotFound(f"No job cronkit does not already manage is named {', '.join(repr(n) for n in result.missing)}.",
                          remedy="`cronkit status` lists every job and who manages it.")
    if not result.jobs:
        raise CronkitError("There is no job to import: every job in cron.job is managed by cronkit"
                           + (" or not selected." if args.job or args.match else "."),
                           remedy="`cronkit status` lists every job and who manages it.")
    if args.output:
        from pathlib import Path

        Path(args.output).write_text(result.text, encoding="utf-8")
    if args.json:
        _emit_json({**result.as_dict(), **({"written": args.output} if args.output else {})})
    elif args.output:
        print(f"wrote {args.output}: {_import_summary(result)}")
    else:
        print(result.text, end="")
        print(_import_summary(result), file=sys.stderr)
    return 0


def _import_summary(result: Any) -> str:
    http = sum(1 for i in result.jobs if not i.reason and not i.commented and i.recovered.url is not None)
    commented = sum(1 for i in result.jobs if i.commented)
    kept = len(result.jobs) - http - commented
    store = [n for i in result.jobs if not i.commented for n in i.recovered.literal_keys]
    text = f"{len(result.jobs)} job(s): {http} as HTTP jobs, {kept} as sql jobs, {commented} left out (see comments)"
    return text + (f"; store first: {', '.join(store)}" if store else "")


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
        _emit_json({"expr": args.expr, "kind": schedule.kind, "explain": schedule.explain(args.tz),
                    "warnings": list(schedule.warnings), "next": [r.isoformat() for r in runs]})
    else:
        print(schedule.explain(args.tz))
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

    from cronkit.config import merged_environment
    from cronkit.errors import ConfigError
    from cronkit.manifest import SecretsConfig
    from cronkit.redact import looks_like_placeholder
    from cronkit.secrets import backend_for, store_secret

    # where it goes is settled before the value is asked for: a bad option never costs a typed key
    if args.table and args.backend not in (None, "table"):
        raise ConfigError(f"--table names a secrets table, but --backend is {args.backend}.",
                          remedy="Drop --backend, or --table.")
    manifest = _manifest(args) if args.manifest else None
    if manifest is not None:
        config = manifest.secrets
    elif args.table or args.backend == "table":
        config = SecretsConfig(backend="table", table=args.table or SecretsConfig.table,
                               key_column=args.key_column, value_column=args.value_column)
    else:
        config = SecretsConfig(backend=args.backend or "vault")
    if args.from_env:
        value = merged_environment().get(args.from_env)  # the environment over .env, as apply reads it
        if not value:
            raise ConfigError(f"{args.from_env} is not set (in the environment or .env).",
                              remedy=f"export {args.from_env}=... or add it to .env first.")
    elif sys.stdin.isatty():
        value = getpass.getpass(f"value for {args.name} (input hidden): ")
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        raise ConfigError(f"No value was given for secret {args.name!r}: nothing was stored.",
                          remedy="Pipe the value on stdin, type it at the prompt, or use --from-env VARIABLE.")
    if looks_like_placeholder(value):
        raise ConfigError(f"The value for secret {args.name!r} is a placeholder copied from a guide, not a key: "
                          "nothing was stored.",
                          remedy="Paste the real value (Dashboard → Project Settings → API keys, or `supabase status -o env`).")
    with _connect(args) as conn:
        outcome = store_secret(conn, backend_for(config), args.name, value, args.description,
                               project=manifest.project if manifest is not None else None)
        conn.commit()
    from cronkit.redact import mask

    if args.json:
        _emit_json({"name": args.name, "outcome": outcome, "value": mask(value)})
    else:
        where = f"table {config.table}" if config.backend == "table" else config.backend
        print(f"{outcome} secret {args.name!r} ({where}) {mask(value)}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from cronkit.doctor import cmd_doctor as run

    return run(args)


def cmd_exporter(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from cronkit import config, exporter

    if args.window < 1 or args.background_every < 1:
        raise UsageError("--window and --background-every must be at least 1.")
    dsns = args.dsn or [config.load().database_url]  # DATABASE_URL, .env, PG* variables
    host, port = exporter.parse_listen(args.listen)
    window = timedelta(minutes=args.window)
    every = timedelta(seconds=args.background_every)
    fleet = exporter.Exporter([exporter.Target(dsn, window=window, slow_ttl=every) for dsn in dsns],
                              window=window, slow_ttl=every)
    if args.once or args.json:  # --json is the one-scrape twin: samples as JSON
        try:
            if args.json:
                scraped = exporter.scrape_json(fleet)
                _emit_json(scraped)
                up = [s["value"] for f in scraped["families"] if f["name"] == "cronkit_up" for s in f["samples"]]
            else:
                text = exporter.scrape_text(fleet)
                print(text, end="")
                up = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("cronkit_up{")]
        finally:
            fleet.close()
        for line in fleet.problems():  # on stderr: stdout stays one scrape
            _progress(line)
        return ExitCode.OK if all(up) else ExitCode.PROBLEMS
    exporter.serve_forever(fleet, host, port, announce=_progress)
    return ExitCode.OK


def _self_command() -> str:
    """How to run this cronkit again from here: ``cronkit`` when that is on PATH, else its path
    (``./dev demo`` runs ``.venv/bin/cronkit`` without activating the virtualenv)."""
    import os
    import shutil

    me = os.path.abspath(sys.argv[0])
    found = shutil.which("cronkit")
    if found and os.path.realpath(found) == os.path.realpath(me):
        return "cronkit"
    relative = os.path.relpath(me)
    return relative if not relative.startswith("..") else me


def cmd_demo(args: argparse.Namespace) -> int:
    from cronkit.errors import SandboxNotInstalled

    try:
        from cronkit_sandbox.demo import render_report, run_demo
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "cronkit_sandbox":
            raise
        raise SandboxNotInstalled() from exc
    report = run_demo(_quiet_if(args), wait_seconds=args.wait, postgres=args.postgres)
    if args.json:
        _emit_json(report)
    else:
        print(render_report(report))
        me = _self_command()
        print("report written to reports/demo.md and reports/demo.json")
        print(f"the sandbox keeps running for you to explore (`eval \"$({me} sandbox env --export)\"`); "
              f"`{me} sandbox down` stops it")
    return 0 if report["complete"] else 1
