"""The manifest, the generated wrappers and the schedule dialect as a manifest uses them — no database.

Every validation error names the file and the key path and says what is wrong; every example
manifest resolves to the schedules its guide asks for; a wrapper never holds a secret and
``cron.job.command`` is a one-line call of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cronkit import schedules
from cronkit_sandbox.demo import OverrideSource, examples, sandbox_manifest
from cronkit.schedules import PgCronVersion
from cronkit.errors import CronkitError, ManifestError
from cronkit.manifest import MAX_JOBNAME_BYTES, JobSpec, SecretsConfig, load_manifest, parse_manifest
from cronkit.secrets import backend_for
from cronkit.wrappers import render_wrapper, spec_hash, wrapper_name
from tests.helpers import fake_jwt, fake_sb_secret

FILE = Path("cronkit.toml")
JWT = fake_jwt()
CANARY = "canary-7f3a-unit-0b5e2c9d"


def job(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "a", "schedule": "*/5 * * * *", "function": "fn",
        "headers": {"Authorization": "Bearer {secret:key}"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def manifest(*jobs: dict[str, Any], **top: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"project": "p", "jobs": list(jobs) or [job()]}
    data.update(top)
    return {k: v for k, v in data.items() if v is not None}


# -- the five example systems ----------------------------------------------------------------------

# What each seed guide schedules, per environment of its manifest (sandbox: the guide's own seconds
# schedule, every 5 s for the others so the demo sees every job fire within seconds).
EXAMPLE_SCHEDULES = {
    ("auto-sync", "sandbox"): {"auto-sync-cron-job": "5 seconds"},
    ("auto-sync", "cloud"): {"auto-sync-cron-job": "*/5 * * * *"},
    ("bubble-sync", "sandbox"): {"bubble-sync-processor": "5 seconds", "bubble-sync-retry": "5 seconds"},
    ("bubble-sync", "cloud"): {"bubble-sync-processor": "* * * * *", "bubble-sync-retry": "*/5 * * * *"},
    ("instagram-sync", "sandbox"): {"process-instagram-imports": "10 seconds"},
    ("instagram-sync", "local"): {"process-instagram-imports": "10 seconds"},
    ("instagram-sync", "cloud"): {"process-instagram-imports": "10 seconds"},
    ("scheduled-workflows", "sandbox"): {
        "generate-t5-invoices": "5 seconds", "run-escalation-orchestration": "5 seconds",
        "schedule-create-zoom": "5 seconds", "generate-monthly-invoices": "5 seconds",
        "escalate-overdue-bookings": "5 seconds", "notification-worker": "5 seconds",
    },
    ("scheduled-workflows", "cloud"): {
        "generate-t5-invoices": "0 1 * * *", "run-escalation-orchestration": "0 2 * * *",
        "schedule-create-zoom": "*/15 * * * *", "generate-monthly-invoices": "0 2 * * *",
        "escalate-overdue-bookings": "0 6 * * *", "notification-worker": "* * * * *",
    },
    ("tasty-mangoes", "sandbox"): {
        "scheduled_ingest_daily": "5 seconds", "scheduled_ingest_weekly": "5 seconds",
        "daily_refresh_enqueue": "5 seconds", "refresh_worker": "5 seconds",
    },
    ("tasty-mangoes", "cloud"): {
        "scheduled_ingest_daily": "0 11 * * *", "scheduled_ingest_weekly": "0 10 * * 0",
        "daily_refresh_enqueue": "30 11 * * *", "refresh_worker": "*/10 * * * *",
    },
}


def test_the_five_examples_are_the_manifests_this_suite_knows() -> None:
    assert {e.name for e in examples()} == {name for name, _env in EXAMPLE_SCHEDULES}


@pytest.mark.parametrize(("example", "environment"), sorted(EXAMPLE_SCHEDULES), ids=lambda v: str(v))
def test_each_example_resolves_to_the_schedules_of_its_guide(example: str, environment: str) -> None:
    found = next(e for e in examples() if e.name == example).manifest()
    specs = found.resolve(environment, {"SUPABASE_URL": "http://127.0.0.1:1"})
    assert {s.name: s.schedule for s in specs} == EXAMPLE_SCHEDULES[example, environment]
    assert all(s.active for s in specs)
    # Keys are always read when a job fires: every HTTP job names its secrets, none holds a value.
    for spec in specs:
        assert spec.kind == "http" and spec.secret_names
        assert not any(JWT[:10] in v for v in spec.headers.values())


def test_the_demo_runs_the_guides_schedules_where_pg_cron_can_and_says_what_it_changed() -> None:
    instagram = next(e for e in examples() if e.name == "instagram-sync")
    manifest, overrides = sandbox_manifest(instagram, PgCronVersion(1, 6, 0))
    assert overrides == [] and manifest.resolve("sandbox", {"SUPABASE_URL": "http://x"})[0].schedule == "10 seconds"

    manifest, overrides = sandbox_manifest(instagram, PgCronVersion(1, 4, 2))
    assert manifest.resolve("sandbox", {"SUPABASE_URL": "http://x"})[0].schedule == "* * * * *"
    [override] = overrides
    assert (override.job, override.written, override.runs, override.source) == (
        "process-instagram-imports", "10 seconds", "* * * * *", OverrideSource.ENGINE)
    assert "'10 seconds' needs pg_cron 1.5 or later; this database has 1.4.2" in override.reason

    workflows = next(e for e in examples() if e.name == "scheduled-workflows")
    _, overrides = sandbox_manifest(workflows, PgCronVersion(1, 6, 0))
    daily = next(o for o in overrides if o.job == "generate-t5-invoices")
    assert (daily.written, daily.runs, daily.source) == ("0 1 * * *", "5 seconds", OverrideSource.MANIFEST)
    _, overrides = sandbox_manifest(workflows, PgCronVersion(1, 4, 2))
    assert [(o.written, o.runs) for o in overrides if o.job == "generate-t5-invoices"] == [
        ("0 1 * * *", "5 seconds"), ("5 seconds", "* * * * *")]  # the manifest's change, then the engine's


# -- resolving a valid manifest --------------------------------------------------------------------


def test_a_function_job_resolves_to_its_edge_function_url_with_secret_templates_kept() -> None:
    data = manifest(
        job(name="a", body={"n": 1}, timeout_ms=30000, description="d"),
        job(name="b", method="get", function=None, url="{env:WORKER}/x?y=1",
            headers={"apikey": "{secret:key}", "x-token": "{secret:token}"}),
        environments={"sandbox": {"base_url": "{env:SUPABASE_URL}/"}},
    )
    a, b = parse_manifest(data, FILE).resolve("sandbox", {"SUPABASE_URL": "http://sb:1", "WORKER": "http://w"})
    assert (a.kind, a.method, a.url, a.body, a.timeout_ms) == ("http", "POST", "http://sb:1/functions/v1/fn", {"n": 1}, 30000)
    assert a.headers == {"Authorization": "Bearer {secret:key}"}
    assert (b.method, b.url, b.body, b.timeout_ms) == ("GET", "http://w/x?y=1", None, 5000)
    assert b.secret_names == ("key", "token")


def test_a_post_job_without_a_body_sends_an_empty_object_and_secret_names_are_listed_once() -> None:
    data = manifest(job(url="{secret:base}/x", function=None,
                        headers={"Authorization": "Bearer {secret:key}", "apikey": "{secret:key}"}))
    (spec,) = parse_manifest(data, FILE).resolve(None, {})
    assert spec.body == {}
    assert spec.secret_names == ("base", "key")


def test_an_environment_override_changes_only_that_environment() -> None:
    data = manifest(job(name="a"), job(name="b"),
                    environments={"cloud": {"base_url": "https://x"},
                                  "sandbox": {"base_url": "http://y", "jobs": {"a": {"schedule": "* * * * *", "active": False}}}})
    loaded = parse_manifest(data, FILE)
    cloud = {s.name: (s.schedule, s.active) for s in loaded.resolve("cloud", {})}
    sandbox = {s.name: (s.schedule, s.active) for s in loaded.resolve("sandbox", {})}
    assert cloud == {"a": ("*/5 * * * *", True), "b": ("*/5 * * * *", True)}
    assert sandbox == {"a": ("* * * * *", False), "b": ("*/5 * * * *", True)}
    assert loaded.default_environment == "cloud"  # the first one, when none is named


def test_secret_sources_read_a_variable_or_fill_a_template_and_report_unset_variables() -> None:
    config = SecretsConfig(sources={"key": "env:KEY", "url": "{env:BASE}/functions/v1"})
    assert config.source_value("key", {"KEY": "v"}) == ("KEY", "v")
    assert config.source_value("url", {"BASE": "http://x"}) == ("BASE", "http://x/functions/v1")
    assert config.source_value("key", {}) == ("KEY", None)
    assert config.source_value("other", {"KEY": "v"}) is None


# -- every validation path -------------------------------------------------------------------------

V = pytest.param
VALIDATION = [
    # top level
    V(manifest(jobz=[]), "jobz", "unknown key", "Known keys here", id="unknown top-level key"),
    V({"jobs": [job()]}, "project", "missing", 'project = "my-app"', id="project missing"),
    V(manifest(project=""), "project", "missing", None, id="project empty"),
    V(manifest(project=1), "project", "expected str, got int 1", None, id="project wrong type"),
    V({"project": "p", "jobs": {"name": "a"}}, "jobs", "expected list, got dict", None, id="jobs is a table"),
    V({"project": "p", "jobs": ["a"]}, "jobs[0]", "expected a table ([[jobs]])", None, id="job is not a table"),
    V(manifest(default_environment="prod", environments={"cloud": {}}), "default_environment",
      "'prod' is not defined in [environments]", None, id="default environment undefined"),
    # [secrets]
    V(manifest(secrets={"vault_name": "x"}), "secrets.vault_name", "unknown key", "backend", id="unknown secrets key"),
    V(manifest(secrets={"backend": "aws"}), "secrets.backend", "'aws' is not one of vault, table, guc", None, id="unknown backend"),
    V(manifest(secrets={"create_table": "yes"}), "secrets.create_table", "expected bool, got str 'yes'", None, id="secrets wrong type"),
    V(manifest(secrets={"sources": {"key": "secret:key"}}), "secrets.sources.key", 'expected "env:VARIABLE"', None,
      id="source not from the environment"),
    V(manifest(secrets={"sources": {"key": "{secret:other}/x"}}), "secrets.sources.key", 'expected "env:VARIABLE"', None,
      id="source template with a secret"),
    V(manifest(secrets={"sources": "env:KEY"}), "secrets.sources", "expected dict, got str", None, id="sources not a table"),
    # [[jobs]] keys and types
    V(manifest(job(schedul="* * * * *")), "jobs[0].schedul", "unknown key", "Known keys here", id="unknown job key"),
    V(manifest(job(timeout_ms="30s")), "jobs[0].timeout_ms", "expected int, got str '30s'", None, id="timeout as text"),
    V(manifest(job(timeout_ms=True)), "jobs[0].timeout_ms", "expected int, got bool True", None, id="timeout as bool"),
    V(manifest(job(active="yes")), "jobs[0].active", "expected bool, got str 'yes'", None, id="active as text"),
    V(manifest(job(body="{}")), "jobs[0].body", "expected dict/list, got str", None, id="body as text"),
    V(manifest(job(headers="Bearer x")), "jobs[0].headers", "expected dict, got str", None, id="headers as text"),
    V(manifest(job(name=None)), "jobs[0].name", "missing", None, id="name missing"),
    V(manifest(job(name="a"), job(name="a")), "jobs[1].name", "duplicate job name 'a' (also jobs[0])", "rename",
      id="duplicate names"),
    V(manifest(job(name="x" * (MAX_JOBNAME_BYTES + 1))), "jobs[0].name", "longer than 63 bytes", None, id="name too long"),
    V(manifest(job(name="é" * 32)), "jobs[0].name", "longer than 63 bytes", None, id="name too long in bytes"),
    V(manifest(job(name="a\nb")), "jobs[0].name", "contains control characters", None, id="name with a newline"),
    V(manifest(job(function=None)), "jobs[0]", "needs exactly one target of function/url/sql, found none", None, id="no target"),
    V(manifest(job(url="http://x")), "jobs[0]", "found ['function', 'url']", None, id="two targets"),
    V(manifest(job(schedule=None)), "jobs[0]", "needs `schedule` or `at`", None, id="no schedule"),
    V(manifest(job(schedule=None, at="3am")), "jobs[0].at", "expected HH:MM, got '3am'", None, id="at not HH:MM"),
    V(manifest(job(schedule=None, at="24:00")), "jobs[0].at", "expected HH:MM, got '24:00'", None, id="at out of range"),
    V(manifest(job(at="03:00", timezone="Mars/Olympus_Mons")), "jobs[0].timezone", "unknown time zone 'Mars/Olympus_Mons'",
      "IANA", id="unknown time zone"),
    V(manifest(job(method="PATCH")), "jobs[0].method", "'PATCH' is not one of POST, GET, DELETE", None, id="method"),
    V(manifest(job(timeout_ms=0)), "jobs[0].timeout_ms", "0 is outside 1..3600000", None, id="timeout zero"),
    V(manifest(job(timeout_ms=3_600_001)), "jobs[0].timeout_ms", "3600001 is outside 1..3600000", None, id="timeout too long"),
    # headers: keys are secrets, never literal, never environment variables
    V(manifest(job(headers={"X-Retries": 3})), "jobs[0].headers.X-Retries", "expected string, got int", None,
      id="header not a string"),
    V(manifest(job(headers={"Authorization": "Bearer {env:SERVICE_ROLE_KEY}"})), "jobs[0].headers.Authorization",
      "{env:...} is not allowed in headers", "{secret:NAME}", id="env template in a header"),
    V(manifest(job(headers={"Authorization": f"Bearer {JWT}"})), "jobs[0].headers.Authorization",
      "looks like a literal key or JWT", "cronkit secrets set NAME", id="literal JWT in a header"),
    V(manifest(job(headers={"apikey": fake_sb_secret("abcdefghijklmnop")})), "jobs[0].headers.apikey",
      "looks like a literal key or JWT", None, id="literal sb_secret key in a header"),
    V(manifest(job(headers={"Content-Type": "text/plain"})), "jobs[0].headers.Content-Type",
      "pg_net only sends Content-Type: application/json", None, id="content type"),
    V(manifest(job(function=None, headers=None, sql=f"select '{JWT}'")), "jobs[0].sql", "looks like a literal key or JWT",
      "cron.job.command", id="literal JWT in sql"),
    V(manifest(job(function=None, url=f"https://x/?apikey={JWT}")), "jobs[0].url", "looks like a literal key or JWT", None,
      id="literal JWT in a url"),
    V(manifest(job(function=None, headers=None, sql="select 1", body={})), "jobs[0]",
      "an sql job takes no headers/body/method/params", None, id="sql job with a body"),
    V(manifest(job(function=None, headers=None, sql="VACUUM ANALYZE public.t")), "jobs[0].sql",
      "VACUUM cannot run inside a function", "cron.schedule() directly", id="sql that cannot run in a wrapper"),
    # [environments]
    V(manifest(environments={"cloud": 5}), "environments.cloud", "expected a table", None, id="environment not a table"),
    V(manifest(environments={"cloud": {"schedule": "* * * * *"}}), "environments.cloud.schedule", "unknown key", None,
      id="unknown environment key"),
    V(manifest(environments={"cloud": {"jobs": {"b": {"schedule": "* * * * *"}}}}), "environments.cloud.jobs.b",
      "no job with this name", "Jobs are: a", id="override of an unknown job"),
    V(manifest(environments={"cloud": {"jobs": {"a": {"headers": {}}}}}), "environments.cloud.jobs.a.headers", "unknown key",
      None, id="unknown override key"),
    V(manifest(environments={"cloud": {"jobs": {"a": {"schedule": 5}}}}), "environments.cloud.jobs.a.schedule",
      "expected str, got int 5", None, id="override wrong type"),
    V(manifest(environments={"cloud": {"jobs": {"a": "* * * * *"}}}), "environments.cloud.jobs.a",
      "expected a table, got str", None, id="override not a table"),
    V(manifest(job(schedule=None, at="03:00"), environments={"cloud": {"jobs": {"a": {"at": "25:99"}}}}),
      "environments.cloud.jobs.a.at", "expected HH:MM, got '25:99'", None, id="override at not HH:MM"),
    V(manifest(environments={"cloud": {"jobs": {"a": {"timeout_ms": 0}}}}), "environments.cloud.jobs.a.timeout_ms",
      "0 is outside 1..3600000", None, id="override timeout out of range"),
    V(manifest(environments={"cloud": {"jobs": {"a": {"url": "http://elsewhere"}}}}), "environments.cloud.jobs.a.url",
      "is a function job; url applies to url jobs only", None, id="override url of a function job"),
    V(manifest(environments={"cloud": {"base_url": f"https://x?k={JWT}"}}), "environments.cloud.base_url",
      "looks like a literal key or JWT", "{secret:NAME}", id="literal JWT in an environment's base_url"),
    # [[queues]]
    V(manifest(queues=["public.q"]), "queues[0]", "expected a table ([[queues]])", None, id="queue not a table"),
    V(manifest(queues=[{"table": "q", "stauts_column": "s"}]), "queues[0].stauts_column", "unknown key", None,
      id="unknown queue key"),
    V(manifest(queues=[{"status_column": "s"}]), "queues[0].table", "missing", None, id="queue without table"),
    V(manifest(queues=[{"table": "q", "pending": [1, 2]}]), "queues[0].pending", "expected a list of status strings", None,
      id="queue statuses not strings"),
]


@pytest.mark.parametrize(("data", "where", "problem", "remedy"), VALIDATION)
def test_an_invalid_manifest_is_refused_naming_the_file_the_key_and_the_problem(
    data: dict[str, Any], where: str, problem: str, remedy: str | None
) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, FILE)
    assert caught.value.message.startswith(f"{FILE}: {where}: "), caught.value.message
    assert problem in caught.value.message
    if remedy is not None:
        assert remedy in caught.value.remedy
    assert str(caught.value).count("fix:") <= 1


RESOLVE_ERRORS = [
    V(manifest(environments={"cloud": {}, "sandbox": {}}), "prod", {}, "environment 'prod' is not defined",
      "Use one of: cloud, sandbox.", id="undefined environment"),
    V(manifest(job(function=None, url="{env:WORKER_URL}/run")), None, {},
      "jobs[0] (a).url needs the environment variable WORKER_URL, which is not set", "Set WORKER_URL", id="unset variable"),
    V(manifest(job(name="b")), None, {}, "jobs[0] (b) calls function 'fn' but no base_url is set",
      "Set base_url in [environments.<env>]", id="function without base_url"),
    V(manifest(job(schedule=None, at="03:00", timezone="America/Los_Angeles", days="funday")), None, {},
      "'funday' is not a day-of-week name", None, id="days not a day of week"),
]


@pytest.mark.parametrize(("data", "environment", "environ", "problem", "remedy"), RESOLVE_ERRORS)
def test_what_depends_on_the_environment_is_refused_when_resolving(
    data: dict[str, Any], environment: str | None, environ: dict[str, str], problem: str, remedy: str | None
) -> None:
    loaded = parse_manifest(data, FILE)
    with pytest.raises(CronkitError) as caught:
        loaded.resolve(environment, environ)
    assert problem in caught.value.message
    if remedy is not None:
        assert remedy in caught.value.remedy


def test_a_missing_file_and_invalid_toml_are_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"Manifest .*nope\.toml does not exist"):
        load_manifest(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('project = "p"\n[[jobs]]\nname = "a"\nname = "b"\n', encoding="utf-8")
    with pytest.raises(ManifestError) as caught:
        load_manifest(broken)
    assert caught.value.message.startswith(f"{broken}: not valid TOML")


# -- local times and daylight saving time ----------------------------------------------------------


def test_at_and_timezone_without_a_schedule_give_the_standard_time_gmt_expression() -> None:
    seed_004 = manifest(
        job(name="scheduled_ingest_daily", schedule=None, at="03:00", timezone="America/Los_Angeles"),
        job(name="scheduled_ingest_weekly", schedule=None, at="02:00", days="0", timezone="America/Los_Angeles"),
        job(name="at-utc", schedule=None, at="03:30"),
        environments={"cloud": {"base_url": "{secret:supabase_url}"}},
    )
    daily, weekly, utc = parse_manifest(seed_004, FILE).resolve(None, {})
    assert (daily.schedule, daily.intended_local) == ("0 11 * * *", ("03:00", "America/Los_Angeles"))
    assert (weekly.schedule, weekly.intended_local) == ("0 10 * * 0", ("02:00", "America/Los_Angeles"))
    assert (utc.schedule, utc.intended_local) == ("30 3 * * *", ("03:30", "UTC"))


def test_a_gmt_schedule_for_a_los_angeles_time_warns_that_dst_moves_it_an_hour() -> None:
    # Seed 004: '0 11 * * *' is 03:00 PST in winter and 04:00 PDT in summer.
    on_debian = schedules.dst_warning("0 11 * * *", "03:00", "America/Los_Angeles", year=2026,
                                      version=schedules.DEBIAN_BOOKWORM)
    assert "runs at 03:00 America/Los_Angeles only part of 2026" in on_debian
    assert "from 2026-03-08 to 2026-10-31 at 04:00 PDT" in on_debian
    assert "'0 11 * * *' (PST) or '0 10 * * *' (PDT)" in on_debian
    assert "cron.timezone came in 1.5" in on_debian
    on_supabase = schedules.dst_warning("0 11 * * *", "03:00", "America/Los_Angeles", year=2026,
                                        version=schedules.SUPABASE)
    assert "cron.timezone = 'America/Los_Angeles'" in on_supabase and "'0 3 * * *'" in on_supabase


@pytest.mark.parametrize(("expr", "at", "zone"), [
    ("0 3 * * *", "03:00", "UTC"),              # no DST in UTC
    ("* * * * *", "03:00", "America/Los_Angeles"),  # a sandbox override is not a time of day
])
def test_no_dst_warning_when_the_schedule_cannot_drift(expr: str, at: str, zone: str) -> None:
    assert schedules.dst_warning(expr, at, zone, year=2026, version=schedules.DEBIAN_BOOKWORM) == ""


# -- wrappers --------------------------------------------------------------------------------------

NAMES = ["a", "bubble-sync-processor", "it's \"quoted\"", "$$; drop table x; --", "Ünïcödé ✓", "x" * MAX_JOBNAME_BYTES]
COMMAND = re.compile(r'SELECT "cronkit"\."job_[a-z0-9_]*_[0-9a-f]{8}"\(\)')


def http_spec(name: str = "a", **changes: Any) -> JobSpec:
    fields: dict[str, Any] = dict(
        name=name, schedule="* * * * *", kind="http", url="{secret:base}/functions/v1/fn?x=1",
        headers={"Authorization": "Bearer {secret:key}", "x-scheduler-token": "{secret:token}"},
        body={"it's": "$$;"}, timeout_ms=1000,
    )
    fields.update(changes)
    return JobSpec(**fields)


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_cron_job_command_is_a_one_line_call_of_the_wrapper(name: str) -> None:
    wrapper = render_wrapper(http_spec(name), backend_for(SecretsConfig()), "p")
    command = wrapper.command()
    assert COMMAND.fullmatch(command), command
    assert "\n" not in command and len(wrapper.function.encode()) <= 63
    assert wrapper.function == wrapper_name(name)  # stable: plan compares it with cron.job.command


def test_job_names_that_differ_only_in_punctuation_or_case_get_different_wrappers() -> None:
    names = ["a-b", "a_b", "A_B", "a b", "a.b"]
    assert len({wrapper_name(n) for n in names}) == len(names)


BACKENDS = [
    V(SecretsConfig(backend="vault", sources={"key": "env:CANARY"}),
      "SELECT decrypted_secret INTO \"_ck_secret_2\" FROM vault.decrypted_secrets WHERE name = 'key';", id="vault"),
    V(SecretsConfig(backend="table", table="ops.keys", key_column="k", value_column="v", sources={"key": "env:CANARY"}),
      "SELECT \"v\" INTO \"_ck_secret_2\" FROM \"ops\".\"keys\" WHERE \"k\" = 'key';", id="table"),
    V(SecretsConfig(backend="guc", sources={"key": "env:CANARY"}),
      "\"_ck_secret_2\" := current_setting('app.settings.key', true);", id="guc"),
]


@pytest.mark.parametrize(("config", "reads_key"), BACKENDS)
def test_a_wrapper_reads_each_secret_by_name_when_it_fires_and_holds_no_value(config: SecretsConfig, reads_key: str) -> None:
    data = manifest(job(function=None, url="{secret:base}/functions/v1/fn",
                        headers={"Authorization": "Bearer {secret:key}"}),
                    secrets={"backend": config.backend, "sources": {"key": "env:CANARY"}})
    (spec,) = parse_manifest(data, FILE).resolve(None, {"CANARY": CANARY})
    assert config.source_value("key", {"CANARY": CANARY}) == ("CANARY", CANARY)
    wrapper = render_wrapper(spec, backend_for(config), "p")
    everything = "\n".join([wrapper.body, wrapper.comment, wrapper.command(), wrapper.create_statement().as_string(None)])
    assert CANARY not in everything
    assert reads_key in wrapper.body
    # a missing (NULL) or placeholder secret stops the run before any request, naming the secret
    assert f"""'cronkit: secret "key" is missing ({config.backend}); job "a" did not call its endpoint'""" in wrapper.body
    assert f"""'cronkit: secret "key" holds a placeholder, not a real value ({config.backend})""" in wrapper.body
    assert wrapper.body.index('IF "_ck_secret_2" IS NULL') < wrapper.body.index("net.http_post")
    assert """jsonb_build_object('Authorization', 'Bearer ' || "_ck_secret_2")""" in wrapper.body


def test_a_wrapper_composes_every_value_as_a_literal_and_records_its_request() -> None:
    body = render_wrapper(http_spec("it's $$ name"), backend_for(SecretsConfig()), "p").body
    assert "body := '{\"it''s\": \"$$;\"}'::jsonb" in body
    assert "\"_ck_secret_1\" || '/functions/v1/fn?x=1'" in body
    assert "timeout_milliseconds := 1000" in body
    # the ledger keeps the manifest's URL: secret parts as {secret:NAME}, never the query string
    assert "VALUES (_ck_request_id, 'it''s $$ name', '{secret:base}/functions/v1/fn');" in body
    assert body.rstrip().endswith("RETURN _ck_request_id;\nEND")


def test_a_guard_runs_before_any_secret_is_read_and_an_sql_job_executes_its_text_literally() -> None:
    guarded = render_wrapper(http_spec(guard="exists (select 1 from q)"), backend_for(SecretsConfig()), "p").body
    assert guarded.index("IF NOT coalesce((exists (select 1 from q)), false)") < guarded.index("vault.decrypted_secrets")
    sql_job = JobSpec(name="s", schedule="* * * * *", kind="sql", sql="insert into t values ('a;b$$c')")
    body = render_wrapper(sql_job, backend_for(SecretsConfig()), "p").body
    assert "EXECUTE 'insert into t values (''a;b$$c'')';" in body
    assert "net.http_post" not in body and "vault" not in body  # it calls nothing itself...
    # ...and records, after its SQL, the requests that SQL queued (tests/integration/test_sql_job_ledger.py)
    assert body.index("EXECUTE") < body.index("FROM net.http_request_queue") < body.index("RETURN NULL")


def test_a_job_name_cannot_end_the_comment_line_of_its_wrapper() -> None:
    body = render_wrapper(http_spec('x" */\\ \u2028 y'), backend_for(SecretsConfig()), "p\u2028q").body
    comment = next(line for line in body.splitlines() if line.startswith("-- Generated by cronkit"))
    assert comment.endswith("Edit the manifest, not this function.")


def test_the_spec_hash_changes_with_the_wrapper_the_schedule_and_active() -> None:
    backend = backend_for(SecretsConfig())
    wrapper = render_wrapper(http_spec(), backend, "p")
    other = render_wrapper(http_spec(timeout_ms=2000), backend, "p")
    base = spec_hash(wrapper, "* * * * *", True)
    assert base == spec_hash(render_wrapper(http_spec(), backend, "p"), "* * * * *", True)
    assert len({base, spec_hash(other, "* * * * *", True), spec_hash(wrapper, "*/2 * * * *", True),
                spec_hash(wrapper, "* * * * *", False)}) == 4


def test_the_local_environment_follows_supabase_starts_conventions() -> None:
    from cronkit.errors import ManifestError
    from cronkit.manifest import LOCAL_API_URL, parse_manifest

    job = {"name": "sync", "schedule": "* * * * *", "function": "sync"}
    local = parse_manifest({"project": "p", "jobs": [job], "environments": {"local": {}, "prod": {"base_url": "{secret:url}"}}},
                           Path("cronkit.toml"))
    assert local.resolve("local", {})[0].url == f"{LOCAL_API_URL}/functions/v1/sync"  # Kong, from inside the database
    assert local.resolve("prod", {})[0].url == "{secret:url}/functions/v1/sync"

    for url in ("http://localhost:54321", "http://127.0.0.1:54321", "http://[::1]:54321"):
        broken = parse_manifest({"project": "p", "jobs": [job], "environments": {"local": {"base_url": url}}},
                                Path("cronkit.toml"))
        with pytest.raises(ManifestError) as info:
            broken.resolve("local", {})
        assert "localhost is the container itself" in info.value.message and LOCAL_API_URL in info.value.remedy
