-- cronkit's own objects, created by `cronkit apply` as the connecting role (on Supabase: postgres).
-- Everything cronkit creates is either in this schema or listed in cronkit.managed_jobs.
-- Idempotent: every statement may run again.

CREATE SCHEMA IF NOT EXISTS cronkit;
COMMENT ON SCHEMA cronkit IS 'cronkit: job wrappers, the job registry and the HTTP request ledger. Managed by cronkit; do not edit by hand.';
REVOKE ALL ON SCHEMA cronkit FROM PUBLIC;

CREATE TABLE IF NOT EXISTS cronkit.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The ownership marker: a job is cronkit's only if it is listed here.
CREATE TABLE IF NOT EXISTS cronkit.managed_jobs (
    jobname    text PRIMARY KEY,
    project    text NOT NULL,
    wrapper    text NOT NULL,          -- regprocedure of the generated wrapper
    spec       jsonb NOT NULL,         -- the resolved spec: secret names, never values
    spec_hash  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- Identity, not just the name: the cron.job row cronkit scheduled, and the role that owns it. A job
-- re-created by hand under a managed name has another jobid, so it is foreign (until --adopt).
ALTER TABLE cronkit.managed_jobs ADD COLUMN IF NOT EXISTS jobid bigint;
ALTER TABLE cronkit.managed_jobs ADD COLUMN IF NOT EXISTS username text;

-- One row per HTTP request a wrapper queued: net._http_response has no URL and no job, so this
-- is how outcomes are attributed to jobs. job_pid = cron.job_run_details.job_pid of the run.
CREATE TABLE IF NOT EXISTS cronkit.request_ledger (
    request_id bigint NOT NULL,
    jobname    text NOT NULL,
    job_pid    integer NOT NULL DEFAULT pg_backend_pid(),
    url        text NOT NULL,          -- as in the manifest ({secret:NAME} parts kept), no query string
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS request_ledger_job_time ON cronkit.request_ledger (jobname, created_at);
CREATE INDEX IF NOT EXISTS request_ledger_request ON cronkit.request_ledger (request_id);

-- The record of every change cronkit makes (apply, pause/resume, run-now, secret set/delete, remove,
-- teardown): who, what, when. `summary` and `details` hold names and counts, never a secret value.
CREATE TABLE IF NOT EXISTS cronkit.audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    action       text NOT NULL,
    project      text,
    target       text,
    summary      text NOT NULL,
    db_role      text NOT NULL DEFAULT current_user,
    session_role text NOT NULL DEFAULT session_user,
    os_user      text,
    host         text,
    client_addr  inet DEFAULT inet_client_addr(),
    application  text DEFAULT current_setting('application_name', true),
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_at ON cronkit.audit_log (at);

-- Runs started by hand (`cronkit run-now`, the runbooks' test runs): pg_cron's history never sees
-- them, so they are kept here, with the scheduled start a backfill stands in for (`--for`).
CREATE TABLE IF NOT EXISTS cronkit.manual_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jobname     text NOT NULL,
    slot        timestamptz,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL,
    status      text NOT NULL,          -- 'called', 'skipped', 'succeeded' (SQL only) or 'failed'
    request_id  bigint,
    message     text,
    audit_id    bigint REFERENCES cronkit.audit_log (id)
);
CREATE INDEX IF NOT EXISTS manual_runs_job_time ON cronkit.manual_runs (jobname, started_at);
REVOKE ALL ON ALL TABLES IN SCHEMA cronkit FROM PUBLIC;
