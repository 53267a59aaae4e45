"""Secret backends, secret status, loud failures, rotation, and secrets that never leak.

- Vault: stored with ``vault.create_secret`` the first time and ``vault.update_secret`` after
  (same id), as Supabase Vault has no upsert.
- A secrets table: created with RLS on, no policies and nothing granted to PUBLIC.
- ``app.settings.*``: refused to the app role (hosted Supabase's ``postgres`` is no superuser),
  working when a superuser stored the value.
- A missing secret fails the run with a message naming it, and nothing is sent (instead of
  pg_net dropping the NULL header and the function answering 401 while pg_cron says succeeded).
- A canary value is looked for in every output, table, log and exception text.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cronkit import db as cdb
from cronkit.errors import CronkitError, PrivilegeError
from cronkit.manifest import SecretsConfig
from cronkit.redact import fingerprint, mask
from cronkit.secrets import GucBackend, VaultBackend, backend_for
from tests.helpers import wait_for
from tests.jobs_support import (
    Project,
    away_from_minute_boundary,
    between_runs,
    frequent_schedule,
    cronkit_schema,  # noqa: F401 - fixture
    db_now,
    last_invocation_id,
    output,
    project,  # noqa: F401 - fixture
    sandbox_log_files,
)

Conn = psycopg.Connection[dict[str, Any]]
pytestmark = pytest.mark.usefixtures("cronkit_schema")


def http_job(p: Project, suffix: str, url: str, *secrets: str, schedule: str = "0 0 1 1 *") -> dict[str, Any]:
    headers = {"Authorization": "Bearer {secret:" + secrets[0] + "}"}
    headers.update({f"x-secret-{i}": "{secret:" + s + "}" for i, s in enumerate(secrets[1:], start=1)})
    return {"name": p.job(suffix), "schedule": schedule, "url": url, "headers": headers, "body": {"job": suffix}}


def vault_value(db: Conn, name: str) -> dict[str, Any] | None:
    return db.execute("select id, decrypted_secret as value, updated_at from vault.decrypted_secrets where name = %s",
                      (name,)).fetchone()


# -- Vault ------------------------------------------------------------------------------------------


def test_secrets_set_creates_a_vault_secret_then_updates_it_in_place(project: Project, db: Conn) -> None:
    name, first, second = project.job("key"), "first-" + project.prefix, "second-" + project.prefix

    created = project.cli("secrets", "set", name, "--backend", "vault", "--dsn", project.dsn, input=first)
    assert created.returncode == 0, output(created)
    assert created.stdout == f"created secret {name!r} (vault) {mask(first)}\n"
    stored = vault_value(db, name)
    assert stored is not None and stored["value"] == first

    same = project.cli("secrets", "set", name, "--dsn", project.dsn, input=first + "\n")  # a trailing newline is not part of it
    assert same.stdout.startswith(f"unchanged secret {name!r}")
    updated = project.cli("secrets", "set", name, "--json", "--dsn", project.dsn, input=second)
    assert json.loads(updated.stdout) == {"name": name, "outcome": "updated", "value": mask(second)}

    after = vault_value(db, name)
    assert after is not None and (after["id"], after["value"]) == (stored["id"], second)
    assert after["updated_at"] > stored["updated_at"]
    assert db.execute("select count(*) as n from vault.secrets where name = %s", (name,)).fetchone()["n"] == 1
    assert first not in output(created) + output(same) and second not in output(updated)


def test_apply_stores_a_secret_from_its_source_only_when_the_fingerprint_differs(project: Project, db: Conn) -> None:
    key = project.job("key")
    data = project.data(http_job(project, "a", "http://127.0.0.1:9/x", key), secrets={"sources": {key: "env:CK_KEY"}})
    project.apply(data, {"CK_KEY": "one-" + project.prefix})
    stored = vault_value(db, key)

    same, _text, _json = project.plan(data, {"CK_KEY": "one-" + project.prefix})
    changed, text, _json = project.plan(data, {"CK_KEY": "two-" + project.prefix})

    assert same.changes == []
    assert [s.action for s in changed.changes] == ["secret"]
    assert f"update secret {key!r} in vault from CK_KEY ({mask('two-' + project.prefix)})" in text
    project.apply(data, {"CK_KEY": "two-" + project.prefix})
    after = vault_value(db, key)
    assert stored is not None and after is not None and (after["id"], after["value"]) == (stored["id"], "two-" + project.prefix)


# -- a secrets table ----------------------------------------------------------------------------------


def test_the_table_backend_creates_an_rls_table_with_nothing_granted_to_public(project: Project, sandbox_only: Any,
                                                                                db: Conn) -> None:
    table, key, value = project.job("secrets"), project.job("key"), "table-" + project.prefix
    function = project.function(verify_jwt=False)
    data = project.data(http_job(project, "a", f"{sandbox_only.supabase_url}/functions/v1/{function}", key),
                        secrets={"backend": "table", "table": f"public.{table}", "sources": {key: "env:CK_KEY"}})

    plan, text, _json = project.plan(data, {"CK_KEY": value})
    assert [(s.action, s.detail) for s in plan.steps[:2]] == [
        ("setup", f"create the secrets table (public.{table})"),
        ("secret", f"create secret {key!r} in table from CK_KEY ({mask(value)})"),
    ]
    assert f'ALTER TABLE "public"."{table}" ENABLE ROW LEVEL SECURITY' in text
    project.apply(data, {"CK_KEY": value})

    facts = db.execute(
        "select c.relrowsecurity as rls, (select count(*) from pg_policy where polrelid = c.oid) as policies, "
        "coalesce((select bool_or(a.grantee = 0) from aclexplode(c.relacl) a), false) as public_granted, "
        "has_table_privilege('anon', c.oid, 'SELECT') as anon, has_table_privilege('authenticated', c.oid, 'SELECT') as authenticated "
        "from pg_class c where c.oid = to_regclass(%s)", (f"public.{table}",)).fetchone()
    assert facts == {"rls": True, "policies": 0, "public_granted": False, "anon": False, "authenticated": False}
    stored = db.execute(sql.SQL("select key, value from {}").format(sql.Identifier("public", table))).fetchall()
    assert stored == [{"key": key, "value": value}]

    mark = last_invocation_id(sandbox_only.edge)
    assert project.cli("run-now", project.job("a"), "--dsn", project.dsn).returncode == 0
    (call,) = sandbox_only.edge.wait_for_invocations(function, 1, timeout=20, after_id=mark)
    assert call["auth_fingerprint"] == fingerprint(value)


def test_a_secrets_table_that_must_exist_and_does_not_is_a_clear_error(project: Project, db: Conn) -> None:
    data = project.data(http_job(project, "a", "http://127.0.0.1:9/x", project.job("key")),
                        secrets={"backend": "table", "table": f"public.{project.job('absent')}", "create_table": False})
    result = project.cli("plan", str(project.write(data)), "--dsn", project.dsn)
    assert result.returncode == 1
    assert f"The secrets table public.{project.job('absent')} does not exist." in result.stderr
    assert "create_table = true" in result.stderr


# -- app.settings.* -------------------------------------------------------------------------------------


def test_the_guc_backend_is_refused_to_the_app_role_and_works_when_a_superuser_stored_the_value(
    project: Project, sandbox_only: Any, db: Conn, su: Conn
) -> None:
    key, value = project.job("key"), "guc-" + project.prefix
    config = SecretsConfig(backend="guc")
    with pytest.raises(PrivilegeError) as refused:
        GucBackend(config).set(db, key, value)
    assert f"Cannot store app.settings.{key}: only a superuser may" in refused.value.message
    assert "Use Vault instead" in refused.value.remedy

    assert GucBackend(config).set(su, key, value) == "updated"  # what a self-hosted operator would do
    function = project.function(verify_jwt=False)
    data = project.data(http_job(project, "a", f"{sandbox_only.supabase_url}/functions/v1/{function}", key),
                        secrets={"backend": "guc"})
    plan, _text, _json = project.plan(data)
    assert plan.problems == []
    assert [(s.name, s.state, s.length, s.fingerprint) for s in plan.secrets] == [(key, "present", len(value), fingerprint(value))]
    project.apply(data)

    mark = last_invocation_id(sandbox_only.edge)
    ran = project.cli("run-now", project.job("a"), "--dsn", project.dsn)  # a new session reads the database setting
    assert ran.returncode == 0, output(ran)
    (call,) = sandbox_only.edge.wait_for_invocations(function, 1, timeout=20, after_id=mark)
    assert call["auth_fingerprint"] == fingerprint(value)


# -- status -----------------------------------------------------------------------------------------


def test_secrets_status_shows_present_missing_and_placeholder_with_length_and_fingerprint_only(project: Project,
                                                                                              db: Conn) -> None:
    present, missing, placeholder = project.job("present"), project.job("missing"), project.job("placeholder")
    value, guide_value = "present-" + project.prefix, "YOUR-SERVICE-ROLE-KEY"
    vault = backend_for(SecretsConfig())
    vault.set(db, present, value)
    vault.set(db, placeholder, guide_value)
    path = project.write(project.data(http_job(project, "a", "http://127.0.0.1:9/x", present, missing, placeholder)))

    as_json = project.cli("secrets", "status", str(path), "--json", "--dsn", project.dsn)
    text = project.cli("secrets", "status", str(path), "--dsn", project.dsn)

    assert (as_json.returncode, text.returncode) == (1, 1)
    states = {s["name"]: (s["state"], s["length"], s["fingerprint"]) for s in json.loads(as_json.stdout)}
    assert states == {
        present: ("present", len(value), fingerprint(value)),
        missing: ("missing", None, None),
        placeholder: ("placeholder", len(guide_value), fingerprint(guide_value)),
    }
    lines = {line.split()[0]: line.split()[1:3] for line in text.stdout.splitlines()}
    assert lines == {present: ["present", f"len={len(value)}"], missing: ["missing"],
                     placeholder: ["placeholder", f"len={len(guide_value)}"]}
    assert value not in output(as_json) + output(text) and guide_value not in output(as_json) + output(text)

    vault.set(db, missing, "now-" + project.prefix)
    vault.set(db, placeholder, "real-" + project.prefix)
    assert project.cli("secrets", "status", str(path), "--dsn", project.dsn).returncode == 0


# -- loud failures ------------------------------------------------------------------------------------


def test_run_now_without_its_secret_fails_naming_it_and_sends_nothing(project: Project, sandbox_only: Any, db: Conn) -> None:
    key, name = project.job("key"), project.job("a")
    function = project.function(verify_jwt=False)
    data = project.data(http_job(project, "a", f"{sandbox_only.supabase_url}/functions/v1/{function}", key),
                        secrets={"sources": {key: "env:CK_KEY"}})
    project.apply(data, {"CK_KEY": "k-" + project.prefix})
    mark = last_invocation_id(sandbox_only.edge)

    db.execute("delete from vault.secrets where name = %s", (key,))
    missing = project.cli("run-now", name, "--dsn", project.dsn)
    refused = project.cli("secrets", "set", key, "--dsn", project.dsn, input="your-service-role-key")
    VaultBackend().set(db, key, "your-service-role-key")  # as a pasted guide would store it (`secrets set` refuses)
    placeholder = project.cli("run-now", name, "--dsn", project.dsn)

    assert missing.returncode == 1
    assert f'cronkit: secret "{key}" is missing (vault); job "{name}" did not call its endpoint' in missing.stderr
    assert refused.returncode == 78 and "placeholder" in refused.stderr
    assert placeholder.returncode == 1
    assert f'cronkit: secret "{key}" holds a placeholder, not a real value (vault); job "{name}"' in placeholder.stderr
    assert db.execute("select count(*) as n from cronkit.request_ledger where jobname = %s", (name,)).fetchone()["n"] == 0
    assert sandbox_only.edge.invocations(function, after_id=mark) == []


@pytest.fixture(scope="module")
def next_run(sandbox_only: Any, tmp_path_factory: pytest.TempPathFactory, pg_cron_version: Any) -> Iterator[dict[str, Any]]:
    """Two frequent jobs; then, between runs, one's secret is deleted and the other's rotated.

    Both tests below wait for the same next run (seconds on pg_cron 1.6, the next minute on 1.4.2).
    """
    p = Project(f"t_secrets_next_run_{uuid.uuid4().hex[:6]}_", sandbox_only, tmp_path_factory.mktemp("next_run"))
    edge = sandbox_only.edge
    old, new = "old-" + p.prefix, "new-" + p.prefix
    facts: dict[str, Any] = {
        "missing": p.job("missing"), "rotated": p.job("rotated"),
        "missing_key": p.job("missing_key"), "rotated_key": p.job("rotated_key"), "old": old, "new": new,
    }
    try:
        facts["fn_missing"] = p.function("missing", verify_jwt=False)
        facts["fn_rotated"] = p.function("rotated", verify_jwt=False)
        url = f"{sandbox_only.supabase_url}/functions/v1/"
        every = frequent_schedule(pg_cron_version)
        data = p.data(
            http_job(p, "missing", url + facts["fn_missing"], facts["missing_key"], schedule=every),
            http_job(p, "rotated", url + facts["fn_rotated"], facts["rotated_key"], schedule=every),
            secrets={"sources": {facts["missing_key"]: "env:CK_MISSING", facts["rotated_key"]: "env:CK_ROTATED"}},
        )
        path = p.write(data)
        with cdb.connect(p.dsn, autocommit=True) as conn:
            jobs = [facts["missing"], facts["rotated"]]
            if not pg_cron_version.supports_seconds:
                away_from_minute_boundary(conn)
            p.apply(data, {"CK_MISSING": "m-" + p.prefix, "CK_ROTATED": old})
            mark = last_invocation_id(edge)
            assert p.cli("run-now", facts["rotated"], "--dsn", p.dsn).returncode == 0
            facts["before"] = edge.wait_for_invocations(facts["fn_rotated"], 1, timeout=20, after_id=mark)[0]
            with between_runs(conn, jobs, pg_cron_version):
                facts["rotation"] = p.cli("secrets", "set", facts["rotated_key"], "--manifest", str(path),
                                          "--dsn", p.dsn, input=new)
                conn.execute("delete from vault.secrets where name = %s", (facts["missing_key"],))
                facts["changed_at"], facts["mark"] = db_now(conn), last_invocation_id(edge)
        yield facts
    finally:
        p.cleanup()


@pytest.mark.slow
def test_a_deleted_vault_secret_fails_the_next_run_naming_the_secret_and_nothing_is_sent(
    next_run: dict[str, Any], sandbox_only: Any, db: Conn
) -> None:
    name, key = next_run["missing"], next_run["missing_key"]
    run = wait_for(lambda: db.execute(
        "select d.status, d.return_message from cron.job_run_details d join cron.job j on j.jobid = d.jobid "
        "where j.jobname = %s and d.start_time > %s and d.status in ('failed', 'succeeded') order by d.runid limit 1",
        (name, next_run["changed_at"])).fetchone(), timeout=80, interval=0.5, message=f"the next run of {name}")

    assert run["status"] == "failed"
    assert f'cronkit: secret "{key}" is missing (vault); job "{name}" did not call its endpoint' in run["return_message"]
    assert f"HINT:  Store the real value: cronkit secrets set {key}" in run["return_message"]
    ledger = db.execute("select count(*) as n from cronkit.request_ledger where jobname = %s and created_at > %s",
                        (name, next_run["changed_at"])).fetchone()
    assert ledger["n"] == 0
    # The other job's request of the same minute has arrived, so this one would have by now.
    sandbox_only.edge.wait_for_invocations(next_run["fn_rotated"], 1, timeout=30, after_id=next_run["mark"])
    assert sandbox_only.edge.invocations(next_run["fn_missing"], after_id=next_run["mark"]) == []


@pytest.mark.slow
def test_a_secret_rotated_with_secrets_set_is_used_by_the_next_run(next_run: dict[str, Any], sandbox_only: Any) -> None:
    rotation = next_run["rotation"]
    assert rotation.returncode == 0, output(rotation)
    assert rotation.stdout == f"updated secret {next_run['rotated_key']!r} (vault) {mask(next_run['new'])}\n"
    assert next_run["before"]["auth_fingerprint"] == fingerprint(next_run["old"])

    calls = sandbox_only.edge.wait_for_invocations(next_run["fn_rotated"], 1, timeout=80, after_id=next_run["mark"])

    assert calls[0]["auth_fingerprint"] == fingerprint(next_run["new"])
    assert calls[0]["headers"]["authorization"] == f"Bearer {mask(next_run['new'])}"


# -- a canary never leaks -------------------------------------------------------------------------------


def test_a_canary_secret_never_appears_in_commands_plans_logs_or_errors(project: Project, sandbox_only: Any, db: Conn,
                                                                       su: Conn) -> None:
    canary, rotated = f"canary-7f3a-{uuid.uuid4().hex}", f"canary-7f3a-rotated-{uuid.uuid4().hex}"
    key, name = project.job("key"), project.job("a")
    function = project.function(verify_jwt=False)
    job = http_job(project, "a", f"{sandbox_only.supabase_url}/functions/v1/{function}", key, key)
    data = project.data(job, secrets={"sources": {key: "env:CK_CANARY"}})
    path = project.write(data)
    env = {"CK_CANARY": canary}
    mark = last_invocation_id(sandbox_only.edge)
    seen: list[str] = []

    def run(*args: str, input: str | None = None, exit: int = 0) -> None:
        result = project.cli(*args, env=env, input=input)
        seen.append(output(result))
        assert result.returncode == exit, f"{args}: {output(result)}"

    run("plan", str(path), "--dsn", project.dsn)
    run("plan", str(path), "--json", "--dsn", project.dsn)
    run("apply", str(path), "--yes", "--dsn", project.dsn)
    run("apply", str(path), "--yes", "--json", "--dsn", project.dsn)
    run("secrets", "status", str(path), "--dsn", project.dsn)
    run("secrets", "status", str(path), "--json", "--dsn", project.dsn)
    run("status", "--json", "--dsn", project.dsn)
    run("run-now", name, "--dsn", project.dsn)
    run("secrets", "set", key, "--manifest", str(path), "--dsn", project.dsn, input=rotated)
    run("plan", str(path), "--json", "--dsn", project.dsn)  # wants the source's value back: shown masked
    run("-v", "run-now", name, "--dsn", project.dsn)
    run("-v", "secrets", "set", project.job("guc"), "--backend", "guc", "--dsn", project.dsn, input=canary, exit=1)
    guc = project.write(project.data(job, secrets={"backend": "guc", "sources": {key: "env:CK_CANARY"}}), "guc.toml")
    run("-v", "apply", str(guc), "--yes", "--dsn", project.dsn, exit=1)
    db.execute("delete from vault.secrets where name = %s", (key,))
    run("-v", "run-now", name, "--dsn", project.dsn, exit=1)
    with pytest.raises(CronkitError) as caught:  # the Python API's errors
        project.apply(project.data(job, secrets={"backend": "guc", "sources": {key: "env:CK_CANARY"}}), env)
    seen += [str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value))]
    plan, text, as_json = project.plan(data, env)
    seen += [repr(plan), text, json.dumps(as_json)]

    calls = sandbox_only.edge.wait_for_invocations(function, 2, timeout=20, after_id=mark)
    assert [c["auth_fingerprint"] for c in calls] == [fingerprint(canary), fingerprint(rotated)]  # the values did travel
    seen.append(json.dumps(calls))
    assert any(f"fp={fingerprint(canary)}" in s for s in seen)  # and were shown, masked
    seen += [json.dumps(r, default=str) for r in db.execute(
        "select jobname, command from cron.job union all select jobname, spec::text from cronkit.managed_jobs "
        "union all select jobname, url from cronkit.request_ledger").fetchall()]
    for row in su.execute("select proname, prosrc from pg_proc where prosrc like %s or prosrc like %s",
                          ("%" + canary + "%", "%" + rotated + "%")).fetchall():
        seen.append(f"function {row['proname']} holds it")
    seen += [r["return_message"] or "" for r in db.execute("select return_message from cron.job_run_details").fetchall()]
    logs = sandbox_log_files()
    assert any(f.name == "postgres.log" for f in logs) and any(f.name == "edge.log" for f in logs)
    assert function in Path(next(f for f in logs if f.name == "edge.log")).read_text(errors="replace")
    seen += [f"{f}: {f.read_text(errors='replace')}" for f in logs if f.is_file()]

    leaks = [s[max(0, s.find(canary[:11]) - 300):][:600] for s in seen if canary in s or rotated in s]
    assert leaks == []


def test_the_doctor_tells_an_sb_secret_key_sent_as_a_bearer_jwt_from_a_stale_jwt(project: Project, db: Conn) -> None:
    """Both key formats: a legacy service-role JWT that is stale and a new sb_secret_ key sent as
    Authorization: Bearer both get 401 'Invalid JWT' from the function's JWT gate; the doctor says
    which one it is, because the fixes differ."""
    from cronkit import jobs
    from cronkit.doctor import diagnose
    from tests.helpers import fake_sb_secret

    key = project.job("key")
    fn = project.function()
    data = project.data({"name": project.job("call"), "schedule": "0 0 1 1 *",
                         "url": f"{project.target.supabase_url}/functions/v1/{fn}",
                         "headers": {"Authorization": "Bearer {secret:" + key + "}"}})
    VaultBackend().set(db, key, fake_sb_secret("Doctor0123456789abcdef"))
    db.commit()
    project.apply(data)
    request = jobs.run_job_now(db, project.job("call")).request_id
    wait_for(lambda: db.execute("select 1 from net._http_response where id = %s", (request,)).fetchone(),
             message="the function's answer")
    report = diagnose(db, project.manifest(data), environ={})
    db.rollback()
    [finding] = report.find("HTTP_UNAUTHORIZED", project.job("call"))
    assert f"secret {key!r} — is an sb_secret_ key, which is not a JWT" in finding.message
    assert "apikey" in finding.fix and "verify_jwt = false" in finding.fix
    [sent] = finding.evidence["auth_secrets"]
    assert (sent["header"], sent["key_kind"]) == ("Authorization", "sb_secret")
