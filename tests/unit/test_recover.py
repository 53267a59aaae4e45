"""Reading hand-made jobs: the five guides' commands and wrappers become HTTP calls, guards and secret reads.

No database: the functions a command calls come from the guide's own CREATE FUNCTION statements.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronkit.recover import VAULT, Function, MissingSecret, Recovered, SecretRead, recover, walk
from tests.brownfield_support import FILES, Values, guide_sql, read_guide
from tests.helpers import fake_jwt

KEY = fake_jwt()
VALUES = Values("http://edge.test", KEY)
TABLE_003 = ("table", "public.cron_secrets", "key", "value")
TABLE_001 = ("table", "public.pg_cron_secrets", "name", "value")
GUC = ("guc", "app.settings.")


def guide_jobs() -> dict[str, tuple[Recovered, Any]]:
    found = {}
    for path in FILES:
        functions, jobs = read_guide(guide_sql(path, VALUES))

        def lookup(schema: str | None, name: str, functions: dict[str, Function] = functions) -> Function | None:
            return functions.get(name) if schema in (None, "public") else None

        for job in jobs:
            found[job.name] = (recover(job.command, job.name, lookup, lambda _table: "public"),
                               walk(job.command, lookup, lambda _table: "public"))
    return found


JOBS = guide_jobs()


def test_the_corpus_holds_the_five_guides_and_their_fourteen_jobs() -> None:
    assert [p.name[:3] for p in FILES] == ["000", "001", "002", "003", "004"]
    assert len(JOBS) == 14


EXPECTED: list[tuple[str, dict[str, Any]]] = [
    ("process-instagram-imports", {"url": "{secret:instagram_worker_url}", "via": "public.invoke_instagram_worker",
                                   "headers": {"Authorization": "Bearer {secret:supabase_service_role_key}"},
                                   "on_missing_secret": MissingSecret.FAILS}),
    ("auto-sync-cron-job", {"url": "{secret:supabase_url}/functions/v1/auto-sync-cron", "via": None, "body": {},
                            "headers": {"Authorization": "Bearer {secret:service_role_key}"}}),
    ("bubble-sync-processor", {
        "url": "{secret:supabase_url}/functions/v1/bubble_sync", "timeout_ms": 30000,
        "body": {"action": "process_queue_data_api", "payload": {"limit": 10, "batch_size": 5}},
        "guard": "exists (SELECT 1 FROM public.sync_queue WHERE status = 'pending' "
                 "AND operation IN ('SIGNUP_ATOMIC', 'INSERT', 'UPDATE'))",
        "on_missing_secret": MissingSecret.CALLS_NOTHING}),
    ("bubble-sync-retry", {"body": {"action": "retry_failed", "payload": {}},
                           "on_missing_secret": MissingSecret.CALLS_NOTHING}),
    ("schedule-create-zoom", {"url": "{secret:edge_function_url}/schedule-create-zoom", "body": {"force_invoke": False},
                              "headers": {"Authorization": "Bearer {secret:service_role_key}",
                                          "x-scheduler-token": "{secret:scheduler_secret_token}"}}),
    ("notification-worker", {"body": {"limit": 5, "runs": 1}, "timeout_ms": 15000,
                             "headers": {"Authorization": "Bearer {secret:service_role_key}",
                                         "apikey": "{secret:service_role_key}"}}),
    ("scheduled_ingest_weekly", {"url": "{secret:supabase_url}/functions/v1/scheduled-ingest",
                                 "body": {"source": "mixed_weekly", "max_movies": 80, "trigger_type": "scheduled"},
                                 "via": "public.call_scheduled_ingest"}),
]


@pytest.mark.parametrize(("job", "expected"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_each_guide_job_becomes_the_http_call_it_makes(job: str, expected: dict[str, Any]) -> None:
    recovered, _walk = JOBS[job]
    assert recovered.reason is None
    assert {k: getattr(recovered, k) for k in expected} == expected


def test_secrets_are_read_from_the_backend_each_guide_uses() -> None:
    backends = {name: recovered.backends for name, (recovered, _) in JOBS.items() if recovered.url}
    assert backends["process-instagram-imports"] == backends["bubble-sync-processor"] == {VAULT}
    assert backends["auto-sync-cron-job"] == {TABLE_001}
    assert backends["generate-t5-invoices"] == {TABLE_003}, "read through get_secret(), a helper over the table"
    assert backends["refresh_worker"] == {GUC}


def test_a_literal_key_becomes_a_secret_to_store_and_its_value_is_never_kept() -> None:
    recovered, _ = JOBS["escalate-overdue-bookings"]
    assert recovered.literal_keys == ("escalate_overdue_bookings_key",)
    assert recovered.headers == {"Authorization": "Bearer {secret:escalate_overdue_bookings_key}"}
    assert KEY not in repr(recovered) and KEY[:20] not in repr(recovered)


def test_the_guard_names_its_queue_table_and_the_states_it_waits_for() -> None:
    assert JOBS["bubble-sync-processor"][0].queue is not None
    assert (JOBS["bubble-sync-processor"][0].queue.table, JOBS["bubble-sync-retry"][0].queue.states) == (  # type: ignore[union-attr]
        "public.sync_queue", ("failed",))


def test_the_walk_follows_wrappers_and_helpers_and_finds_every_secret_read() -> None:
    reads = {name: {(r.backend, r.name) for r in w.reads} for name, (_, w) in JOBS.items()}
    assert reads["bubble-sync-processor"] == {(VAULT, "supabase_url"), (VAULT, "service_role_key")}
    assert reads["schedule-create-zoom"] == {(TABLE_003, "edge_function_url"), (TABLE_003, "service_role_key"),
                                             (TABLE_003, "scheduler_secret_token")}
    assert [f.name for f in JOBS["generate-t5-invoices"][1].functions] == ["get_secret"]
    assert reads["escalate-overdue-bookings"] == set()


def wrapper(body: str, declare: str = "u text; k text;") -> Function:
    return Function("public", "w", f"CREATE FUNCTION public.w() RETURNS void LANGUAGE plpgsql AS $$ DECLARE {declare} "
                                   f"BEGIN {body} END $$")


def read(function: Function) -> Recovered:
    return recover("select w()", "j", lambda _s, n: function if n == "w" else None, lambda _t: "public")


SECRETS = ("SELECT decrypted_secret INTO u FROM vault.decrypted_secrets WHERE name = 'u'; "
           "SELECT decrypted_secret INTO k FROM vault.decrypted_secrets WHERE name = 'k'; ")
CALL = "PERFORM net.http_post(url := u || '/functions/v1/x', headers := jsonb_build_object('Authorization', 'Bearer ' || k));"


@pytest.mark.parametrize(("body", "reason"), [
    (SECRETS + "INSERT INTO audit VALUES (now()); " + CALL, "also runs INSERT (line 1)"),
    (SECRETS + CALL + CALL, "more than one HTTP call"),
    (SECRETS + "PERFORM net.http_post(url := u, body := jsonb_build_object('key', k));", "its body carries a secret"),
    (SECRETS + "FOR i IN 1..3 LOOP " + CALL + " END LOOP;", "(line 1: fori)"),
    ("SELECT 1 INTO u;", "makes no net.http_post/http_get call"),
    (SECRETS + "PERFORM net.http_post(url := u, body := jsonb_build_object('a', NULL));", "JSON null"),
])
def test_what_an_http_job_cannot_say_is_kept_as_sql_with_the_reason(body: str, reason: str) -> None:
    recovered = read(wrapper(body))
    assert recovered.url is None and recovered.reason is not None and reason in recovered.reason
    assert recovered.calls_http or "no net.http_post" in reason


def test_a_wrapper_that_raises_on_a_missing_secret_fails_and_one_that_returns_calls_nothing() -> None:
    raises = read(wrapper(SECRETS + "IF u IS NULL OR k IS NULL THEN RAISE EXCEPTION 'missing'; END IF; " + CALL))
    returns = read(wrapper(SECRETS + "IF k IS NULL THEN RAISE WARNING 'missing'; RETURN; END IF; " + CALL))
    unchecked = read(wrapper(SECRETS + CALL))
    assert [r.on_missing_secret for r in (raises, returns, unchecked)] == [
        MissingSecret.FAILS, MissingSecret.CALLS_NOTHING, MissingSecret.SENDS_NULL]
    assert raises.secrets == (SecretRead(VAULT, "u"), SecretRead(VAULT, "k"))


def test_a_notice_in_an_if_is_not_an_early_exit() -> None:
    recovered = read(wrapper(SECRETS + "IF k IS NULL THEN RAISE NOTICE 'hm'; END IF; " + CALL))
    assert recovered.url is None and "branches" in (recovered.reason or "")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.sampled_from([
    "select net.http_post(", "SELECT w(1, 2)", "select net.http_post(url := (select 1))", "do $$ begin end $$",
    "select net.http_get(url := 'x' || 1.5, params := '{}'::jsonb)", "VACUUM", "select $$", "select w(url := 'x')",
    "select net.http_post(url := 'x', headers := '[1]'::jsonb)", "select net.http_post(body := 'x'::json)",
])))
def test_any_command_is_read_or_refused_with_a_reason_never_an_exception(command: str) -> None:
    function = wrapper(SECRETS + CALL)
    recovered = recover(command, "j", lambda _s, n: function if n == "w" else None, lambda _t: None)
    assert recovered.url is not None or recovered.reason
    walk(command, lambda _s, n: function if n == "w" else None, lambda _t: None)
