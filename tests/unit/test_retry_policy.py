"""The manifest's ``retry`` key, the wrapper code and the maintenance job it generates (the behaviour
on a live database: tests/integration/test_retries.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cronkit.errors import ManifestError
from cronkit.maintenance import MaintenanceKind, maintenance_jobs, maintenance_kind
from cronkit.manifest import RetryPolicy, SecretsConfig, parse_manifest
from cronkit.outcomes import Outcome
from cronkit.secrets import backend_for
from cronkit.wrappers import render_wrapper, spec_hash


def _data(**job: Any) -> dict[str, Any]:
    return {"project": "p", "jobs": [{"name": "sync", "schedule": "* * * * *", "url": "https://example.test/x", **job}]}


def _spec(**job: Any) -> Any:
    return parse_manifest(_data(**job), Path("cronkit.toml")).resolve(None, {})[0]


def _error(**job: Any) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(_data(**job), Path("cronkit.toml"))
    return caught.value


def test_a_job_without_retry_has_no_policy_and_its_wrapper_sends_no_idempotency_key() -> None:
    spec = _spec()
    assert spec.retry is None
    assert "Idempotency-Key" not in render_wrapper(spec, backend_for(SecretsConfig()), "p").body


def test_retry_takes_defaults_and_reads_transport_as_transport_error() -> None:
    assert _spec(retry={}).retry == RetryPolicy(3, timedelta(seconds=30),
                                                (Outcome.SERVER_ERROR, Outcome.TIMEOUT, Outcome.TRANSPORT_ERROR))
    policy = _spec(retry={"attempts": 4, "backoff": "30s", "on": ["5xx", "transport"]}).retry
    assert (policy.attempts, policy.backoff, policy.on) == (4, timedelta(seconds=30),
                                                          (Outcome.SERVER_ERROR, Outcome.TRANSPORT_ERROR))


def test_the_backoff_doubles_per_attempt() -> None:
    policy = _spec(retry={"backoff": "30 seconds", "attempts": 4}).retry
    assert [policy.wait_before(n) for n in (2, 3, 4)] == [timedelta(seconds=s) for s in (30, 60, 120)]


@pytest.mark.parametrize(("retry", "where", "says"), [
    ({"attempts": 1}, "retry.attempts", "1 is outside 2..10"),
    ({"attempts": True}, "retry.attempts", "expected int"),
    ({"backoff": "soon"}, "retry.backoff", "expected '<number> <unit>'"),
    ({"backoff": "0 seconds"}, "retry.backoff", "between 1 second and 1 day"),
    ({"on": ["2xx"]}, "retry.on", "'2xx' is not an outcome a call can be retried on"),
    ({"on": ["pending"]}, "retry.on", "'pending' is not an outcome"),
    ({"on": []}, "retry.on", "is empty"),
    ({"tries": 3}, "retry.tries", "unknown key"),
])
def test_it_rejects_a_retry_it_cannot_follow_naming_the_key(retry: dict[str, Any], where: str, says: str) -> None:
    error = _error(retry=retry)
    assert f"jobs[0].{where}: " in error.message and says in error.message
    assert error.remedy


def test_it_rejects_retry_on_an_sql_job() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest({"project": "p", "jobs": [{"name": "s", "schedule": "* * * * *", "sql": "select 1",
                                                  "retry": {}}]}, Path("cronkit.toml"))
    assert "jobs[0].retry: only an HTTP job" in caught.value.message


def test_a_retried_wrapper_sends_the_key_records_the_attempt_and_lets_a_retry_skip_guard_and_overlap() -> None:
    body = render_wrapper(_spec(retry={}, guard="exists (select 1)", overlap="skip"), backend_for(SecretsConfig()), "p").body
    assert "current_setting('cronkit.retry', true)" in body
    assert "_ck_retry->>'job' = 'sync'" in body
    assert "'sync' || ':' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')" in body
    assert "|| jsonb_build_object('Idempotency-Key', _ck_key)" in body
    assert "(request_id, jobname, url, attempt, idempotency_key, first_request_id)" in body
    skip_checks = body.index("IF _ck_retry IS NULL THEN")
    assert skip_checks < body.index("pg_try_advisory_xact_lock") < body.index("exists (select 1)") < body.index("net.http_post")


def test_changing_the_retry_policy_changes_the_spec_hash_and_no_retry_keeps_the_old_hash() -> None:
    wrapper = render_wrapper(_spec(retry={}), backend_for(SecretsConfig()), "p")
    three, four = (_spec(retry={"attempts": n}).retry.as_config() for n in (3, 4))
    assert spec_hash(wrapper, "* * * * *", True, three) != spec_hash(wrapper, "* * * * *", True, four)
    assert spec_hash(wrapper, "* * * * *", True, None) == spec_hash(wrapper, "* * * * *", True)


def test_a_manifest_with_a_retried_job_gets_the_retry_job_carrying_every_policy() -> None:
    manifest = parse_manifest(_data(retry={"attempts": 4, "backoff": "1m"}), Path("cronkit.toml"))
    (job,) = [j for j in maintenance_jobs(manifest) if maintenance_kind(j.name) is MaintenanceKind.RETRIES]
    assert job.name == "cronkit-retries:p" and job.kind == "sql" and job.schedule == "* * * * *"
    config = json.loads(job.sql.split("'", 3)[3].rsplit("'", 1)[0])
    assert config == {"sync": {"attempts": 4, "waits_s": [60, 120, 240], "on": ["5xx", "timeout", "transport_error"]}}
    assert job.sql.startswith("SELECT cronkit.retry_calls('p', ")
    assert not [j for j in maintenance_jobs(parse_manifest(_data(), Path("cronkit.toml")))
                if maintenance_kind(j.name) is MaintenanceKind.RETRIES]
