-- cronkit: the overlap policy (manifest `overlap = "skip"`). Runs after schema_monitoring.sql (name
-- order). Idempotent; contains no percent sign on purpose (plan/apply passes these files through psycopg).

-- One row per run a wrapper skipped because the job's previous call or run was still going: the
-- outcome "skipped (overlap)" of history, charts and the doctor.
CREATE TABLE IF NOT EXISTS cronkit.skipped_runs (
    jobname             text NOT NULL,
    reason              text NOT NULL CHECK (reason IN ('overlap')),
    skipped_at          timestamptz NOT NULL DEFAULT now(),
    job_pid             integer NOT NULL DEFAULT pg_backend_pid(),  -- cron.job_run_details.job_pid of the run
    blocking_request_id bigint              -- the request still in flight; NULL: another run was still running
);
CREATE INDEX IF NOT EXISTS skipped_runs_job_time ON cronkit.skipped_runs (jobname, skipped_at);
CREATE INDEX IF NOT EXISTS skipped_runs_time ON cronkit.skipped_runs (skipped_at);
REVOKE ALL ON cronkit.skipped_runs FROM PUBLIC;

-- The newest request of `job` still in flight: in cronkit.request_ledger, younger than `within`, and
-- without an answer (cronkit.http_answer, sql/schema_retries.sql: neither in net._http_response nor
-- harvested into cronkit.http_responses; looked up when this runs) —
-- the monitor's "pending", with `within` (the job's timeout plus a margin) instead of pg_net.ttl, so
-- a request pg_net lost stops counting after that long. NULL when none is (or without pg_net).
CREATE OR REPLACE FUNCTION cronkit.call_in_flight(job text, within interval)
RETURNS bigint LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    found bigint;
BEGIN
    IF to_regclass('net._http_response') IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT l.request_id INTO found
      FROM cronkit.request_ledger l
     WHERE l.jobname = job AND l.created_at > now() - within
       AND NOT EXISTS (SELECT 1 FROM cronkit.http_answer(l.request_id))  -- no answer yet: pending
     ORDER BY l.created_at DESC
     LIMIT 1;
    RETURN found;
END
$fn$;
