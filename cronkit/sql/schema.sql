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
REVOKE ALL ON ALL TABLES IN SCHEMA cronkit FROM PUBLIC;
