-- cronkit: retries with a dead letter (manifest `retry = { attempts, backoff, on }`). Runs after
-- schema_overlap.sql (name order). Idempotent; contains no percent sign on purpose (plan/apply passes
-- these files through psycopg).
--
-- A retry-configured job's wrapper sends every call with `Idempotency-Key: <job>:<slot>` and records
-- the attempt in the ledger. A chain is the calls of one slot: attempt 1 and the retries that carry
-- its key and name it in first_request_id. cronkit-retries:<project> calls cronkit.retry_calls, which
-- sends the next attempt of a chain whose newest call was answered with an outcome the job retries on,
-- or, when none is left, files the chain in cronkit.dead_letters.

ALTER TABLE cronkit.request_ledger ADD COLUMN IF NOT EXISTS attempt integer NOT NULL DEFAULT 1;
ALTER TABLE cronkit.request_ledger ADD COLUMN IF NOT EXISTS idempotency_key text;
-- attempt 1's own request id on every call of a chain; NULL for jobs without `retry`
ALTER TABLE cronkit.request_ledger ADD COLUMN IF NOT EXISTS first_request_id bigint;
CREATE INDEX IF NOT EXISTS request_ledger_chain ON cronkit.request_ledger (first_request_id) WHERE first_request_id IS NOT NULL;

-- One row per chain that used up its attempts. Unique per chain, not per key: a replay starts a new
-- chain with the same key, which may land here again. The evidence is what the ledger and pg_net
-- kept of each attempt (status, error, the start of the response body); never a request header,
-- which may carry a key.
CREATE TABLE IF NOT EXISTS cronkit.dead_letters (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project           text NOT NULL,
    jobname           text NOT NULL,
    idempotency_key   text NOT NULL,
    first_request_id  bigint NOT NULL UNIQUE,
    last_request_id   bigint NOT NULL,
    attempts          integer NOT NULL,
    outcome           text NOT NULL,          -- cronkit.http_outcome of the last attempt
    status_code       integer,
    error_msg         text,                   -- pg_net's error of the last attempt (timeout, transport)
    excerpt           text,                   -- the start of the last response body
    evidence          jsonb NOT NULL DEFAULT '[]',  -- every attempt: request id, sent/answered at, outcome, status
    created_at        timestamptz NOT NULL DEFAULT now(),
    state             text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'replayed', 'dropped')),
    resolved_at       timestamptz,
    replay_request_id bigint                  -- the first call of the replay's chain
);
CREATE INDEX IF NOT EXISTS dead_letters_open ON cronkit.dead_letters (project, created_at) WHERE state = 'open';
REVOKE ALL ON cronkit.dead_letters FROM PUBLIC;

-- The answer to one request: net._http_response while pg_net keeps it, then the harvested
-- cronkit.http_responses (cronkit.http_outcome classifies both the same way). No row: no answer
-- yet — the monitor's "pending" (or pg_net lost it).
CREATE OR REPLACE FUNCTION cronkit.http_answer(request bigint)
RETURNS TABLE (outcome text, status_code integer, error_msg text, excerpt text, answered_at timestamptz)
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT cronkit.http_outcome(r.status_code, r.timed_out, r.error_msg), r.status_code, r.error_msg,
           left(r.content, 500), r.created
      FROM net._http_response r WHERE r.id = request
    UNION ALL
    SELECT h.outcome, h.status_code, h.error_msg, h.excerpt, coalesce(h.responded_at, h.harvested_at)
      FROM cronkit.http_responses h
     WHERE h.request_id = request AND NOT EXISTS (SELECT 1 FROM net._http_response r WHERE r.id = request)
    LIMIT 1
$fn$;

-- Send one attempt of a chain through the job's own wrapper (the same function pg_cron calls, so the
-- same URL, secrets and ledger row), telling it the key and attempt in the transaction-local setting
-- cronkit.retry: the wrapper's signature and cron.job.command stay as they are. A retry skips the
-- wrapper's guard and overlap check (the work was due at the slot). p_first NULL starts a new chain
-- (a replay). The request id, or an error naming the job when cronkit no longer manages it.
CREATE OR REPLACE FUNCTION cronkit.send_attempt(p_job text, p_key text, p_attempt integer, p_first bigint)
RETURNS bigint LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    fn regprocedure;
    sent bigint;
BEGIN
    SELECT to_regprocedure(m.wrapper) INTO fn FROM cronkit.managed_jobs m WHERE m.jobname = p_job;
    IF fn IS NULL THEN
        RAISE EXCEPTION USING MESSAGE = 'cronkit: job "' || p_job || '" has no cronkit wrapper: the call cannot be sent again',
                              HINT = 'Apply the manifest that declares the job, or drop the dead letter.';
    END IF;
    PERFORM set_config('cronkit.retry', jsonb_build_object('job', p_job, 'key', p_key, 'attempt', p_attempt,
                                                           'first_request_id', p_first)::text, true);
    EXECUTE 'SELECT ' || fn::text INTO sent;
    PERFORM set_config('cronkit.retry', '', true);
    RETURN sent;
END
$fn$;

-- One evaluation of the retry policies of a project: p_config maps each retry-configured job to
-- {"attempts", "waits_s", "on"} (rendered from the manifest into the maintenance job's command;
-- waits_s[n - 2] is the wait before attempt n, RetryPolicy.wait_before).
-- Per chain whose newest call is answered with an outcome in "on": with attempts left and its backoff
-- (doubled per attempt) elapsed since that answer, send the next attempt; with none left, file it in
-- cronkit.dead_letters. One call per chain per evaluation. Returns how many attempts were sent.
CREATE OR REPLACE FUNCTION cronkit.retry_calls(p_project text, p_config jsonb)
RETURNS integer LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    j record;
    c record;
    sent integer := 0;
BEGIN
    IF to_regclass('net._http_response') IS NULL THEN
        RETURN 0;
    END IF;
    -- two evaluations at once (a slow one and the next minute's) would send the same attempt twice
    PERFORM pg_advisory_xact_lock(hashtext('cronkit.retries'), hashtext(p_project));
    FOR j IN SELECT e.key AS jobname, (e.value->>'attempts')::integer AS attempts,
                    e.value->'waits_s' AS waits,
                    make_interval(secs => (SELECT sum(w::double precision)
                                             FROM jsonb_array_elements_text(e.value->'waits_s') w)) AS all_waits,
                    ARRAY(SELECT jsonb_array_elements_text(e.value->'on')) AS retry_on
               FROM jsonb_each(p_config) e
    LOOP
        FOR c IN
            WITH newest AS (
                SELECT DISTINCT ON (l.first_request_id) l.first_request_id, l.request_id, l.attempt,
                       l.idempotency_key, l.created_at
                  FROM cronkit.request_ledger l
                 WHERE l.jobname = j.jobname AND l.first_request_id IS NOT NULL
                   -- bounded: a chain's calls are at most its waits apart, plus a day
                   AND l.created_at > now() - (j.all_waits + interval '1 day')
                 ORDER BY l.first_request_id, l.attempt DESC, l.created_at DESC
            )
            SELECT n.first_request_id, n.request_id, n.attempt, n.idempotency_key,
                   a.outcome, a.status_code, a.error_msg, a.excerpt, a.answered_at
              FROM newest n
             CROSS JOIN LATERAL cronkit.http_answer(n.request_id) a
             WHERE a.outcome = ANY (j.retry_on)
               AND NOT EXISTS (SELECT 1 FROM cronkit.dead_letters d WHERE d.first_request_id = n.first_request_id)
             ORDER BY n.created_at
        LOOP
            IF c.attempt < j.attempts THEN
                IF c.answered_at + make_interval(secs => (j.waits->>(c.attempt - 1))::double precision) <= now() THEN
                    BEGIN
                        PERFORM cronkit.send_attempt(j.jobname, c.idempotency_key, c.attempt + 1, c.first_request_id);
                        sent := sent + 1;
                    EXCEPTION WHEN OTHERS THEN
                        -- the chain stays as it is and is tried again at the next evaluation
                        RAISE WARNING USING MESSAGE = 'cronkit: retry ' || (c.attempt + 1) || ' of job "' || j.jobname
                                                      || '" (' || c.idempotency_key || ') was not sent: ' || SQLERRM;
                    END;
                END IF;
            ELSE
                INSERT INTO cronkit.dead_letters (project, jobname, idempotency_key, first_request_id, last_request_id,
                                                  attempts, outcome, status_code, error_msg, excerpt, evidence)
                SELECT p_project, j.jobname, c.idempotency_key, c.first_request_id, c.request_id, c.attempt,
                       c.outcome, c.status_code, c.error_msg, c.excerpt,
                       coalesce(jsonb_agg(jsonb_build_object(
                           'attempt', l.attempt, 'request_id', l.request_id, 'sent_at', l.created_at,
                           'outcome', coalesce(a.outcome, 'pending'), 'status_code', a.status_code,
                           'error_msg', a.error_msg, 'answered_at', a.answered_at) ORDER BY l.attempt), '[]')
                  FROM cronkit.request_ledger l
                  LEFT JOIN LATERAL cronkit.http_answer(l.request_id) a ON true
                 WHERE l.first_request_id = c.first_request_id AND l.jobname = j.jobname
                ON CONFLICT (first_request_id) DO NOTHING;
            END IF;
        END LOOP;
    END LOOP;
    RETURN sent;
END
$fn$;
