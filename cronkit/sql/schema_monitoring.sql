-- cronkit monitoring: durable HTTP outcomes, incremental rollups of run history, queue snapshots,
-- and the SECURITY INVOKER functions the maintenance jobs call (cronkit/maintenance.py).
-- Runs after schema.sql (name order). Idempotent; contains no percent sign on purpose (plan/apply
-- passes these files through psycopg).
--
-- Why these objects exist:
--   * cron.job_run_details has no index but its primary key (pg_cron#408) and grows without bound,
--     so every time window is turned into a runid range (cronkit.runid_at) and history is read
--     from daily and hourly rollups that are kept current incrementally (watermark on runid).
--   * pg_cron's "succeeded" only means net.http_post queued a request; the HTTP outcome lives in
--     the UNLOGGED net._http_response for pg_net.ttl (6 hours) and carries no URL or job, so
--     cronkit.harvest_responses copies the rows of cronkit's requests (request_ledger) to a
--     durable table, classified once.
-- Reference: shared/reference/pg_cron_pg_net_vault.md sections 1.2, 1.7-1.9, 2.3-2.5.

-- One row of bookkeeping for the maintenance functions.
CREATE TABLE IF NOT EXISTS cronkit.monitor_state (
    id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- every cron.job_run_details row with runid <= run_watermark is in cronkit.run_rollup_hour or
    -- listed in cronkit.run_rollup_open
    run_watermark        bigint NOT NULL DEFAULT 0,
    -- every cronkit.http_responses row with seq <= http_watermark is in cronkit.http_rollup
    http_watermark       bigint NOT NULL DEFAULT 0,
    -- newest net._http_response.created already harvested
    harvest_watermark    timestamptz NOT NULL DEFAULT '-infinity',
    -- every ledger request made before this has a row in cronkit.http_responses
    expired_until        timestamptz NOT NULL DEFAULT '-infinity',
    harvested_at         timestamptz,
    rollups_refreshed_at timestamptz,
    retention_applied_at timestamptz
);
INSERT INTO cronkit.monitor_state (id) VALUES (true) ON CONFLICT (id) DO NOTHING;
-- true once cronkit.run_rollup_day holds every day of cronkit.run_rollup_hour (set by the first
-- cronkit.refresh_rollups() after the daily level was added; summaries ignore the daily level before)
ALTER TABLE cronkit.monitor_state ADD COLUMN IF NOT EXISTS day_rollup_ready boolean NOT NULL DEFAULT false;

-- Runs at or below the watermark that were not final when the rollup last looked (still running,
-- or a runid not yet visible because its inserting transaction had not committed).
CREATE TABLE IF NOT EXISTS cronkit.run_rollup_open (
    runid    bigint PRIMARY KEY,
    reason   text NOT NULL CHECK (reason IN ('running', 'unseen')),
    noted_at timestamptz NOT NULL DEFAULT now()
);

-- Nearest-rank percentile p (0 < p <= 1) of a sparse histogram (see cronkit.run_rollup_hour.hist): the
-- middle of the bin that holds the ceil(p * n)-th duration, NULL for an empty one. A loop, not a
-- query: it runs for every hourly row a refresh writes (a set-based version costs 6 times as much).
-- The summary's merge of many histograms (queries/monitor/percentiles.sql) computes the same.
CREATE OR REPLACE FUNCTION cronkit.hist_percentile(hist bigint[], p numeric)
RETURNS double precision LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
    e bigint;
    total bigint := 0;
    seen bigint := 0;
    rank numeric;
BEGIN
    FOREACH e IN ARRAY coalesce(hist, '{}') LOOP
        total := total + (e & 4294967295);
    END LOOP;
    rank := ceil(p * total);
    FOREACH e IN ARRAY coalesce(hist, '{}') LOOP
        seen := seen + (e & 4294967295);
        IF seen >= rank THEN
            RETURN exp(((e >> 32) + 0.5) * ln(1.05::float8));
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$;

-- Final runs (succeeded/failed) per job per UTC hour of their start. hist is a sparse histogram of
-- the durations of the timed runs (both times known), sorted by bin: each element is
-- (bin << 32) | count, bin = floor(ln(ms) / ln(1.05)), so merged percentiles are within 2.5 percent.
-- p50_ms/p95_ms are the row's own percentiles, kept with it so an hourly timeline reads them
-- instead of merging histograms per query.
CREATE TABLE IF NOT EXISTS cronkit.run_rollup_hour (
    bucket           timestamptz NOT NULL,
    jobid            bigint NOT NULL,
    jobname          text,
    succeeded        bigint NOT NULL,
    failed           bigint NOT NULL,
    timed_runs       bigint NOT NULL,          -- runs with both start and end time
    dur_sum_ms       double precision NOT NULL DEFAULT 0,
    dur_max_ms       double precision,
    hist             bigint[] NOT NULL DEFAULT '{}',
    p50_ms           double precision GENERATED ALWAYS AS (cronkit.hist_percentile(hist, 0.5)) STORED,
    p95_ms           double precision GENERATED ALWAYS AS (cronkit.hist_percentile(hist, 0.95)) STORED,
    min_runid        bigint NOT NULL,
    max_runid        bigint NOT NULL,
    max_failed_runid bigint,                  -- the newest failed run of the hour
    last_start       timestamptz,
    PRIMARY KEY (bucket, jobid)
);

-- The same final runs per job per UTC day: a summary over N days reads N rows per job here plus at
-- most 23 hourly rows per job for the partial days at the window's edges, instead of 24 N hourly
-- rows. Invariant (kept by cronkit.refresh_rollups, which folds the same new runs into both levels
-- in one statement): a row is exactly the merge of the cronkit.run_rollup_hour rows of its day.
CREATE TABLE IF NOT EXISTS cronkit.run_rollup_day (
    day              timestamptz NOT NULL,    -- UTC midnight
    jobid            bigint NOT NULL,
    jobname          text,
    succeeded        bigint NOT NULL,
    failed           bigint NOT NULL,
    timed_runs       bigint NOT NULL,
    dur_sum_ms       double precision NOT NULL DEFAULT 0,
    dur_max_ms       double precision,
    hist             bigint[] NOT NULL DEFAULT '{}',
    min_runid        bigint NOT NULL,
    max_runid        bigint NOT NULL,
    max_failed_runid bigint,                  -- the newest failed run of the day
    last_start       timestamptz,
    PRIMARY KEY (day, jobid)
);

-- One row per resolved HTTP request of a cronkit job (request_ledger), kept after pg_net's TTL.
CREATE TABLE IF NOT EXISTS cronkit.http_responses (
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    request_id   bigint PRIMARY KEY,
    jobname      text NOT NULL,
    requested_at timestamptz NOT NULL,    -- request_ledger.created_at
    responded_at timestamptz,             -- net._http_response.created; NULL when expired
    outcome      text NOT NULL CHECK (outcome IN ('2xx', '3xx', '4xx', '5xx', 'timeout', 'transport_error', 'expired', 'other')),
    status_code  integer,
    timed_out    boolean,
    error_msg    text,
    excerpt      text,                    -- start of the body of a non-2xx answer
    harvested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS http_responses_requested ON cronkit.http_responses (requested_at);
CREATE INDEX IF NOT EXISTS http_responses_job_errors ON cronkit.http_responses (jobname, requested_at) WHERE outcome <> '2xx';

-- Requests per job per UTC hour of the request, by outcome.
CREATE TABLE IF NOT EXISTS cronkit.http_rollup (
    bucket   timestamptz NOT NULL,
    jobname  text NOT NULL,
    outcome  text NOT NULL,
    requests bigint NOT NULL,
    PRIMARY KEY (bucket, jobname, outcome)
);

-- Periodic queue health (cronkit/monitor/queues.py renders the statement per declared queue; pgmq
-- queues come from cronkit.snapshot_pgmq).
CREATE TABLE IF NOT EXISTS cronkit.queue_snapshots (
    taken_at             timestamptz NOT NULL DEFAULT now(),
    project              text NOT NULL,
    queue                text NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('table', 'pgmq')),
    total                bigint,
    pending              bigint,
    processing           bigint,
    failed               bigint,
    done                 bigint,
    other                bigint,
    oldest_pending_age_s double precision,
    stuck_processing     bigint,
    exhausted            bigint,
    retries              jsonb,
    done_recent          bigint,
    recent_window_s      integer,
    sent_total           bigint,
    PRIMARY KEY (project, queue, taken_at)
);
CREATE INDEX IF NOT EXISTS queue_snapshots_taken ON cronkit.queue_snapshots (taken_at);

-- Retention of the ledger and "unresolved requests" scans go by time; schema.sql indexes the
-- ledger by (jobname, created_at) only.
CREATE INDEX IF NOT EXISTS request_ledger_created ON cronkit.request_ledger (created_at);

REVOKE ALL ON ALL TABLES IN SCHEMA cronkit FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- Helpers

-- The outcome class of a pg_net response row (reference 2.5): a timeout is recognised by
-- timed_out (NULL before pg_net 0.19.6) or by its message; any other error_msg is a transport
-- failure; otherwise the status code decides.
CREATE OR REPLACE FUNCTION cronkit.http_outcome(status_code integer, timed_out boolean, error_msg text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE
        WHEN timed_out IS TRUE OR starts_with(coalesce(error_msg, ''), 'Timeout') THEN 'timeout'
        WHEN error_msg IS NOT NULL THEN 'transport_error'
        WHEN status_code BETWEEN 200 AND 299 THEN '2xx'
        WHEN status_code BETWEEN 300 AND 399 THEN '3xx'
        WHEN status_code BETWEEN 400 AND 499 THEN '4xx'
        WHEN status_code BETWEEN 500 AND 599 THEN '5xx'
        ELSE 'other'
    END
$fn$;

-- Histogram bin of a duration in milliseconds (sub-millisecond durations share bin 0).
CREATE OR REPLACE FUNCTION cronkit.duration_bin(ms double precision)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT floor(ln(greatest(ms, 1.0)) / ln(1.05))::integer
$fn$;

-- Sum of two sparse histograms (see cronkit.run_rollup_hour.hist).
CREATE OR REPLACE FUNCTION cronkit.hist_merge(a bigint[], b bigint[])
RETURNS bigint[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT coalesce(array_agg((bin << 32) | n ORDER BY bin), '{}')
      FROM (SELECT e >> 32 AS bin, sum(e & 4294967295)::bigint AS n
              FROM unnest(coalesce(a, '{}') || coalesce(b, '{}')) AS e
             GROUP BY 1) s
$fn$;

-- Until this schema, the hourly level was cronkit.run_rollup: one row per job, hour and status. Its
-- rows become cronkit.run_rollup_hour rows (both statuses of an hour merged) and the table goes, in
-- the transaction that applies this file; the rollups need no rebuild.
DO $mig$
BEGIN
    IF to_regclass('cronkit.run_rollup') IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO cronkit.run_rollup_hour
           (bucket, jobid, jobname, succeeded, failed, timed_runs, dur_sum_ms, dur_max_ms, hist,
            min_runid, max_runid, max_failed_runid, last_start)
    SELECT s.bucket, s.jobid, s.jobname, s.succeeded, s.failed, s.timed, s.ms_sum, s.ms_max, coalesce(h.hist, '{}'),
           s.lo, s.hi, s.hi_failed, s.last_start
      FROM (SELECT r.bucket, r.jobid, max(r.jobname) AS jobname,
                   coalesce(sum(r.runs) FILTER (WHERE r.status = 'succeeded'), 0)::bigint AS succeeded,
                   coalesce(sum(r.runs) FILTER (WHERE r.status = 'failed'), 0)::bigint AS failed,
                   sum(r.timed_runs)::bigint AS timed, sum(r.dur_sum_ms) AS ms_sum, max(r.dur_max_ms) AS ms_max,
                   min(r.min_runid) AS lo, max(r.max_runid) AS hi,
                   max(r.max_runid) FILTER (WHERE r.status = 'failed') AS hi_failed, max(r.last_start) AS last_start
              FROM cronkit.run_rollup r GROUP BY 1, 2) s
      LEFT JOIN (SELECT x.bucket, x.jobid, array_agg((x.bin << 32) | x.n ORDER BY x.bin) AS hist
                   FROM (SELECT r.bucket, r.jobid, e >> 32 AS bin, sum(e & 4294967295)::bigint AS n
                           FROM cronkit.run_rollup r, unnest(r.hist) AS e GROUP BY 1, 2, 3) x
                  GROUP BY 1, 2) h ON h.bucket = s.bucket AND h.jobid = s.jobid
    ON CONFLICT (bucket, jobid) DO NOTHING;
    DROP TABLE cronkit.run_rollup;
END
$mig$;

-- The smallest runid whose run started at or after `at` (runids are handed out when a run starts,
-- so they follow start times within seconds). A binary search over the primary key: about 25
-- index probes for 10M rows instead of a sequential scan. Rows without any time are skipped.
CREATE OR REPLACE FUNCTION cronkit.runid_at(at timestamptz)
RETURNS bigint LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    lo bigint;
    hi bigint;
    mid bigint;
    found_runid bigint;
    found_time timestamptz;
BEGIN
    SELECT min(runid), max(runid) + 1 INTO lo, hi FROM cron.job_run_details;
    IF lo IS NULL THEN
        RETURN 1;
    END IF;
    WHILE lo < hi LOOP
        mid := lo + (hi - lo) / 2;
        SELECT d.runid, coalesce(d.start_time, d.end_time) INTO found_runid, found_time
          FROM cron.job_run_details d
         WHERE d.runid >= mid AND coalesce(d.start_time, d.end_time) IS NOT NULL
         ORDER BY d.runid LIMIT 1;
        IF found_runid IS NULL OR found_time >= at THEN
            hi := mid;
        ELSE
            lo := found_runid + 1;
        END IF;
    END LOOP;
    RETURN lo;
END
$fn$;

-- ---------------------------------------------------------------------------------------------
-- Maintenance functions. All take one transaction-level advisory lock, so the cron jobs and a
-- person calling them by hand serialize instead of double counting.

-- Copy new net._http_response rows of cronkit's requests into cronkit.http_responses, and record
-- requests that got no response within pg_net.ttl as 'expired' (their outcome is unknown).
CREATE OR REPLACE FUNCTION cronkit.harvest_responses()
RETURNS jsonb LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    st cronkit.monitor_state;
    lookback interval;
    ttl interval;
    horizon timestamptz;
    copied bigint := 0;
    expired bigint := 0;
    newest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('cronkit.monitor'));
    SELECT * INTO st FROM cronkit.monitor_state WHERE id FOR UPDATE;
    -- pg_net stamps `created` when the worker's batch transaction starts and commits when the
    -- slowest request of the batch ends, so rows can appear up to one request timeout "in the
    -- past": look back that far behind the watermark.
    lookback := greatest(interval '5 minutes',
                         interval '2 minutes' + coalesce((SELECT max((spec ->> 'timeout_ms')::bigint)
                                                            FROM cronkit.managed_jobs), 0) * interval '1 millisecond');
    IF to_regclass('net._http_response') IS NOT NULL THEN
        WITH fresh AS (
            SELECT r.id, r.status_code, r.timed_out, r.error_msg, r.content, r.created
              FROM net._http_response r
             WHERE r.created >= st.harvest_watermark - lookback
        ), ins AS (
            INSERT INTO cronkit.http_responses
                   (request_id, jobname, requested_at, responded_at, outcome, status_code, timed_out, error_msg, excerpt)
            SELECT f.id, l.jobname, l.created_at, f.created,
                   cronkit.http_outcome(f.status_code, f.timed_out, f.error_msg),
                   f.status_code, f.timed_out, f.error_msg,
                   CASE WHEN f.status_code BETWEEN 200 AND 299 THEN NULL ELSE left(f.content, 300) END
              FROM fresh f
              JOIN cronkit.request_ledger l ON l.request_id = f.id
             WHERE NOT EXISTS (SELECT FROM cronkit.http_responses h WHERE h.request_id = f.id)
            ON CONFLICT (request_id) DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM ins), (SELECT max(created) FROM fresh) INTO copied, newest;
    END IF;
    -- A request older than the TTL (plus the look-back) with no response anywhere will never get
    -- one: pending, lost and purged are indistinguishable then (reference 2.5).
    ttl := coalesce(nullif(current_setting('pg_net.ttl', true), '')::interval, interval '6 hours');
    horizon := now() - ttl - lookback;
    IF horizon > st.expired_until THEN
        WITH ins AS (
            INSERT INTO cronkit.http_responses (request_id, jobname, requested_at, outcome)
            SELECT l.request_id, l.jobname, l.created_at, 'expired'
              FROM cronkit.request_ledger l
             WHERE l.created_at >= st.expired_until AND l.created_at < horizon
               AND NOT EXISTS (SELECT FROM cronkit.http_responses h WHERE h.request_id = l.request_id)
            ON CONFLICT (request_id) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) INTO expired FROM ins;
    END IF;
    UPDATE cronkit.monitor_state
       SET harvest_watermark = greatest(harvest_watermark, coalesce(newest, harvest_watermark)),
           expired_until = greatest(expired_until, horizon),
           harvested_at = now()
     WHERE id;
    RETURN jsonb_build_object('copied', copied, 'expired', expired);
END
$fn$;

-- Fold runs that became final since the last call into cronkit.run_rollup_hour and cronkit.run_rollup_day
-- (the daily delta is the merge of the hourly delta, in the same statement), and new durable HTTP
-- outcomes into cronkit.http_rollup.
-- Cost is proportional to what is new, not to the history (except once, right after the daily level
-- was added: it is then derived from the hourly level).
CREATE OR REPLACE FUNCTION cronkit.refresh_rollups()
RETURNS jsonb LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    st cronkit.monitor_state;
    v_hi bigint;
    open_ids bigint[];
    folded bigint := 0;
    opened bigint := 0;
    http_hi bigint;
    http_folded bigint := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('cronkit.monitor'));
    SELECT * INTO st FROM cronkit.monitor_state WHERE id FOR UPDATE;
    IF NOT st.day_rollup_ready THEN
        -- The daily level is new (or was never built): merge the hourly rows of each day once.
        DELETE FROM cronkit.run_rollup_day;
        INSERT INTO cronkit.run_rollup_day
               (day, jobid, jobname, succeeded, failed, timed_runs, dur_sum_ms, dur_max_ms, hist,
                min_runid, max_runid, max_failed_runid, last_start)
        SELECT s.day, s.jobid, s.jobname, s.succeeded, s.failed, s.timed, s.ms_sum, s.ms_max, coalesce(h.hist, '{}'),
               s.lo, s.hi, s.hi_failed, s.last_start
          FROM (SELECT date_trunc('day', hr.bucket, 'UTC') AS day, hr.jobid,
                       (array_agg(hr.jobname ORDER BY hr.bucket DESC) FILTER (WHERE hr.jobname IS NOT NULL))[1] AS jobname,
                       sum(hr.succeeded)::bigint AS succeeded, sum(hr.failed)::bigint AS failed,
                       sum(hr.timed_runs)::bigint AS timed, sum(hr.dur_sum_ms) AS ms_sum, max(hr.dur_max_ms) AS ms_max,
                       min(hr.min_runid) AS lo, max(hr.max_runid) AS hi,
                       max(hr.max_failed_runid) AS hi_failed, max(hr.last_start) AS last_start
                  FROM cronkit.run_rollup_hour hr GROUP BY 1, 2) s
          LEFT JOIN (SELECT x.day, x.jobid, array_agg((x.bin << 32) | x.n ORDER BY x.bin) AS hist
                       FROM (SELECT date_trunc('day', hr.bucket, 'UTC') AS day, hr.jobid, e >> 32 AS bin,
                                    sum(e & 4294967295)::bigint AS n
                               FROM cronkit.run_rollup_hour hr, unnest(hr.hist) AS e GROUP BY 1, 2, 3) x
                      GROUP BY 1, 2) h ON h.day = s.day AND h.jobid = s.jobid;
        UPDATE cronkit.monitor_state SET day_rollup_ready = true WHERE id;
    END IF;
    SELECT max(runid) INTO v_hi FROM cron.job_run_details;
    IF v_hi IS NULL OR v_hi < st.run_watermark THEN
        -- The history was truncated and cron.runid_seq restarted (Supabase's fix for a launcher
        -- crash loop): start counting new runids from the beginning; old rollup rows stay.
        st.run_watermark := 0;
        DELETE FROM cronkit.run_rollup_open;
        v_hi := coalesce(v_hi, 0);
    END IF;
    SELECT coalesce(array_agg(runid), '{}') INTO open_ids FROM cronkit.run_rollup_open;

    WITH cand AS (
        SELECT d.runid, d.jobid, d.status, d.start_time, d.end_time
          FROM cron.job_run_details d
         WHERE (d.runid > st.run_watermark AND d.runid <= v_hi) OR d.runid = ANY (open_ids)
    ), final AS (
        SELECT c.runid, c.jobid, c.status,
               date_trunc('hour', coalesce(c.start_time, c.end_time,
                   -- pg_cron before 1.6.3 leaves both times NULL on runs that never connected:
                   -- place them at the previous run's start.
                   (SELECT p.start_time FROM cron.job_run_details p
                     WHERE p.runid < c.runid AND p.start_time IS NOT NULL
                     ORDER BY p.runid DESC LIMIT 1),
                   'epoch'::timestamptz), 'UTC') AS bucket,
               c.start_time,
               extract(epoch FROM c.end_time - c.start_time)::float8 * 1000.0 AS ms
          FROM cand c
         WHERE c.status IN ('succeeded', 'failed')
    ), per_bin AS (
        SELECT bucket, jobid, CASE WHEN ms IS NOT NULL THEN cronkit.duration_bin(ms) END AS bin,
               count(*) FILTER (WHERE status = 'succeeded') AS ok, count(*) FILTER (WHERE status = 'failed') AS bad,
               count(ms) AS timed, coalesce(sum(ms), 0) AS ms_sum, max(ms) AS ms_max,
               min(runid) AS lo, max(runid) AS hi, max(runid) FILTER (WHERE status = 'failed') AS hi_failed,
               max(start_time) AS last_start
          FROM final GROUP BY 1, 2, 3
    ), agg AS (
        SELECT bucket, jobid, sum(ok)::bigint AS succeeded, sum(bad)::bigint AS failed, sum(timed)::bigint AS timed,
               sum(ms_sum) AS ms_sum, max(ms_max) AS ms_max,
               coalesce(array_agg((bin::bigint << 32) | (ok + bad) ORDER BY bin) FILTER (WHERE bin IS NOT NULL), '{}') AS hist,
               min(lo) AS lo, max(hi) AS hi, max(hi_failed) AS hi_failed, max(last_start) AS last_start
          FROM per_bin GROUP BY 1, 2
    ), ins AS (
        INSERT INTO cronkit.run_rollup_hour AS r
               (bucket, jobid, jobname, succeeded, failed, timed_runs, dur_sum_ms, dur_max_ms, hist,
                min_runid, max_runid, max_failed_runid, last_start)
        SELECT a.bucket, a.jobid, j.jobname, a.succeeded, a.failed, a.timed, a.ms_sum, a.ms_max, a.hist,
               a.lo, a.hi, a.hi_failed, a.last_start
          FROM agg a LEFT JOIN cron.job j ON j.jobid = a.jobid
        ON CONFLICT (bucket, jobid) DO UPDATE SET
               jobname = coalesce(excluded.jobname, r.jobname),
               succeeded = r.succeeded + excluded.succeeded,
               failed = r.failed + excluded.failed,
               timed_runs = r.timed_runs + excluded.timed_runs,
               dur_sum_ms = r.dur_sum_ms + excluded.dur_sum_ms,
               dur_max_ms = greatest(r.dur_max_ms, excluded.dur_max_ms),
               hist = cronkit.hist_merge(r.hist, excluded.hist),
               min_runid = least(r.min_runid, excluded.min_runid),
               max_runid = greatest(r.max_runid, excluded.max_runid),
               max_failed_runid = greatest(r.max_failed_runid, excluded.max_failed_runid),
               last_start = greatest(r.last_start, excluded.last_start)
        RETURNING 1
    ), day_hist AS (
        -- the daily delta is the merge of the hourly delta (per_bin stays a single-use CTE)
        SELECT day, jobid, array_agg((bin << 32) | n ORDER BY bin) AS hist
          FROM (SELECT date_trunc('day', a.bucket, 'UTC') AS day, a.jobid, e >> 32 AS bin,
                       sum(e & 4294967295)::bigint AS n
                  FROM agg a, unnest(a.hist) AS e GROUP BY 1, 2, 3) x
         GROUP BY 1, 2
    ), day_agg AS (
        SELECT date_trunc('day', bucket, 'UTC') AS day, jobid, sum(succeeded)::bigint AS succeeded,
               sum(failed)::bigint AS failed, sum(timed)::bigint AS timed, sum(ms_sum) AS ms_sum, max(ms_max) AS ms_max,
               min(lo) AS lo, max(hi) AS hi, max(hi_failed) AS hi_failed, max(last_start) AS last_start
          FROM agg GROUP BY 1, 2
    ), ins_day AS (
        INSERT INTO cronkit.run_rollup_day AS r
               (day, jobid, jobname, succeeded, failed, timed_runs, dur_sum_ms, dur_max_ms, hist,
                min_runid, max_runid, max_failed_runid, last_start)
        SELECT a.day, a.jobid, j.jobname, a.succeeded, a.failed, a.timed, a.ms_sum, a.ms_max, coalesce(h.hist, '{}'),
               a.lo, a.hi, a.hi_failed, a.last_start
          FROM day_agg a
          LEFT JOIN day_hist h ON h.day = a.day AND h.jobid = a.jobid
          LEFT JOIN cron.job j ON j.jobid = a.jobid
        ON CONFLICT (day, jobid) DO UPDATE SET
               jobname = coalesce(excluded.jobname, r.jobname),
               succeeded = r.succeeded + excluded.succeeded,
               failed = r.failed + excluded.failed,
               timed_runs = r.timed_runs + excluded.timed_runs,
               dur_sum_ms = r.dur_sum_ms + excluded.dur_sum_ms,
               dur_max_ms = greatest(r.dur_max_ms, excluded.dur_max_ms),
               hist = cronkit.hist_merge(r.hist, excluded.hist),
               min_runid = least(r.min_runid, excluded.min_runid),
               max_runid = greatest(r.max_runid, excluded.max_runid),
               max_failed_runid = greatest(r.max_failed_runid, excluded.max_failed_runid),
               last_start = greatest(r.last_start, excluded.last_start)
        RETURNING 1
    )
    SELECT coalesce((SELECT sum(succeeded + failed) FROM agg), 0) INTO folded
      FROM (SELECT count(*) FROM ins) AS done, (SELECT count(*) FROM ins_day) AS done_day;

    -- The open set after this pass: runs that are still not final, runids above the old watermark
    -- that are not visible yet (a transaction that has not committed; gaps wider than 1000 are
    -- rollbacks or manual ids, not in-flight inserts), minus what was folded or vanished.
    DELETE FROM cronkit.run_rollup_open o
     WHERE EXISTS (SELECT FROM cron.job_run_details d WHERE d.runid = o.runid AND d.status IN ('succeeded', 'failed'))
        OR (NOT EXISTS (SELECT FROM cron.job_run_details d WHERE d.runid = o.runid)
            AND (o.reason = 'running' OR o.noted_at < now() - interval '1 hour'));
    UPDATE cronkit.run_rollup_open o SET reason = 'running'
     WHERE o.reason = 'unseen' AND EXISTS (SELECT FROM cron.job_run_details d WHERE d.runid = o.runid);
    WITH fresh AS (
        SELECT d.runid, d.status, lag(d.runid, 1, st.run_watermark) OVER (ORDER BY d.runid) AS prev
          FROM cron.job_run_details d
         WHERE d.runid > st.run_watermark AND d.runid <= v_hi
    ), ins AS (
        INSERT INTO cronkit.run_rollup_open (runid, reason)
        SELECT runid, 'running' FROM fresh WHERE status NOT IN ('succeeded', 'failed') OR status IS NULL
        UNION ALL
        SELECT g, 'unseen' FROM fresh, generate_series(fresh.prev + 1, fresh.runid - 1) AS g
         WHERE fresh.runid - fresh.prev BETWEEN 2 AND 1001
        ON CONFLICT (runid) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO opened FROM ins;

    SELECT coalesce(max(seq), st.http_watermark) INTO http_hi FROM cronkit.http_responses WHERE seq > st.http_watermark;
    WITH agg AS (
        SELECT date_trunc('hour', requested_at, 'UTC') AS bucket, jobname, outcome, count(*) AS n
          FROM cronkit.http_responses
         WHERE seq > st.http_watermark AND seq <= http_hi
         GROUP BY 1, 2, 3
    ), ins AS (
        INSERT INTO cronkit.http_rollup AS r (bucket, jobname, outcome, requests)
        SELECT bucket, jobname, outcome, n FROM agg
        ON CONFLICT (bucket, jobname, outcome) DO UPDATE SET requests = r.requests + excluded.requests
        RETURNING 1
    )
    SELECT coalesce((SELECT sum(n) FROM agg), 0) INTO http_folded FROM (SELECT count(*) FROM ins) AS done;

    UPDATE cronkit.monitor_state
       SET run_watermark = greatest(st.run_watermark, v_hi),
           http_watermark = http_hi,
           rollups_refreshed_at = now()
     WHERE id;
    RETURN jsonb_build_object('runs', folded, 'open', (SELECT count(*) FROM cronkit.run_rollup_open),
                              'opened', opened, 'responses', http_folded,
                              'run_watermark', greatest(st.run_watermark, v_hi));
END
$fn$;

-- Drop every rollup and build it again from the raw tables (after a bug fix, or to check).
CREATE OR REPLACE FUNCTION cronkit.rebuild_rollups()
RETURNS jsonb LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('cronkit.monitor'));
    DELETE FROM cronkit.run_rollup_hour;
    DELETE FROM cronkit.run_rollup_day;
    DELETE FROM cronkit.run_rollup_open;
    DELETE FROM cronkit.http_rollup;
    UPDATE cronkit.monitor_state SET run_watermark = 0, http_watermark = 0, day_rollup_ready = true WHERE id;
    RETURN cronkit.refresh_rollups();
END
$fn$;

-- Delete history older than `horizon` from cron.job_run_details, the request ledger and the durable
-- responses, and rollups/snapshots older than `rollup_horizon`. Runs are deleted only once they are
-- in the rollups (when rollups are kept), oldest first, at most max_rows per call: a first clean-up
-- of a huge table takes several calls instead of one enormous transaction.
CREATE OR REPLACE FUNCTION cronkit.apply_retention(horizon interval,
                                                   rollup_horizon interval DEFAULT interval '400 days',
                                                   max_rows bigint DEFAULT 1000000)
RETURNS jsonb LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    st cronkit.monitor_state;
    cutoff timestamptz;
    bound bigint;
    runs_deleted bigint := 0;
    ledger_deleted bigint := 0;
    responses_deleted bigint := 0;
    rollups_deleted bigint := 0;
    snapshots_deleted bigint := 0;
    records_deleted bigint := 0;
    n bigint;
BEGIN
    IF horizon IS NULL OR horizon < interval '1 day' THEN
        RAISE EXCEPTION USING
            MESSAGE = 'cronkit.apply_retention: horizon must be at least 1 day, got ' || coalesce(horizon::text, 'NULL'),
            HINT = 'Keep at least pg_net.ttl (6 hours) of ledger so outcomes can still be attributed; e.g. interval ''7 days''.';
    END IF;
    IF rollup_horizon < horizon THEN
        RAISE EXCEPTION USING MESSAGE = 'cronkit.apply_retention: rollup_horizon must not be shorter than horizon';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('cronkit.monitor'));
    SELECT * INTO st FROM cronkit.monitor_state WHERE id;
    cutoff := now() - horizon;
    -- runids follow start times within seconds; the time condition below keeps it exact.
    bound := cronkit.runid_at(cutoff);
    WITH victims AS (
        SELECT d.runid FROM cron.job_run_details d
         WHERE d.runid < bound
           AND (coalesce(d.end_time, d.start_time) < cutoff OR (d.end_time IS NULL AND d.start_time IS NULL))
           AND (st.run_watermark = 0
                OR (d.runid <= st.run_watermark
                    AND NOT EXISTS (SELECT FROM cronkit.run_rollup_open o WHERE o.runid = d.runid)))
         ORDER BY d.runid
         LIMIT max_rows
    ), del AS (
        DELETE FROM cron.job_run_details d USING victims v WHERE d.runid = v.runid RETURNING 1
    )
    SELECT count(*) INTO runs_deleted FROM del;

    WITH del AS (DELETE FROM cronkit.request_ledger WHERE created_at < cutoff RETURNING 1)
    SELECT count(*) INTO ledger_deleted FROM del;
    -- durable responses go once they are counted in the rollup
    WITH del AS (
        DELETE FROM cronkit.http_responses
         WHERE requested_at < cutoff AND (seq <= st.http_watermark OR st.http_watermark = 0)
        RETURNING 1
    )
    SELECT count(*) INTO responses_deleted FROM del;
    -- run rollups go by whole UTC days, so every daily row left still has all of its hourly rows
    WITH d1 AS (DELETE FROM cronkit.run_rollup_hour WHERE bucket < date_trunc('day', now() - rollup_horizon, 'UTC') RETURNING 1),
         d1d AS (DELETE FROM cronkit.run_rollup_day WHERE day < date_trunc('day', now() - rollup_horizon, 'UTC') RETURNING 1),
         d2 AS (DELETE FROM cronkit.http_rollup WHERE bucket < now() - rollup_horizon RETURNING 1)
    SELECT (SELECT count(*) FROM d1) + (SELECT count(*) FROM d1d) + (SELECT count(*) FROM d2) INTO rollups_deleted;
    WITH del AS (DELETE FROM cronkit.queue_snapshots WHERE taken_at < now() - rollup_horizon RETURNING 1)
    SELECT count(*) INTO snapshots_deleted FROM del;
    -- what the other features record (their schema files follow this one, so each is looked up first):
    -- per-run rows go with the run history, the change record and its kin with the rollups
    IF to_regclass('cronkit.skipped_runs') IS NOT NULL THEN
        DELETE FROM cronkit.skipped_runs WHERE skipped_at < cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; records_deleted := records_deleted + n;
    END IF;
    IF to_regclass('cronkit.alert_deliveries') IS NOT NULL THEN
        DELETE FROM cronkit.alert_deliveries WHERE created_at < cutoff AND status NOT IN ('sent', 'rate_limited');
        GET DIAGNOSTICS n = ROW_COUNT; records_deleted := records_deleted + n;
        DELETE FROM cronkit.alert_silences WHERE ends_at < cutoff;
        GET DIAGNOSTICS n = ROW_COUNT; records_deleted := records_deleted + n;
    END IF;
    IF to_regclass('cronkit.dead_letters') IS NOT NULL THEN
        DELETE FROM cronkit.dead_letters WHERE state <> 'open' AND resolved_at < now() - rollup_horizon;
        GET DIAGNOSTICS n = ROW_COUNT; records_deleted := records_deleted + n;
    END IF;
    IF to_regclass('cronkit.schedule_reissues') IS NOT NULL THEN
        DELETE FROM cronkit.schedule_reissues WHERE reissued_at < now() - rollup_horizon;
        GET DIAGNOSTICS n = ROW_COUNT; records_deleted := records_deleted + n;
    END IF;
    DELETE FROM cronkit.manual_runs WHERE started_at < now() - rollup_horizon;
    GET DIAGNOSTICS n = ROW_COUNT; records_deleted := records_deleted + n;
    DELETE FROM cronkit.audit_log a WHERE a.at < now() - rollup_horizon
       AND NOT EXISTS (SELECT FROM cronkit.manual_runs m WHERE m.audit_id = a.id);
    GET DIAGNOSTICS n = ROW_COUNT; records_deleted := records_deleted + n;
    UPDATE cronkit.monitor_state SET retention_applied_at = now() WHERE id;
    RETURN jsonb_build_object('runs', runs_deleted, 'ledger', ledger_deleted, 'responses', responses_deleted,
                              'rollups', rollups_deleted, 'snapshots', snapshots_deleted, 'records', records_deleted,
                              'more', runs_deleted >= max_rows);
END
$fn$;

-- pgmq's own metrics into cronkit.queue_snapshots, when pgmq is installed. Columns are read by
-- name from to_jsonb(): queue_visible_length exists only from pgmq 1.5 (Supabase ships 1.4.4 too).
CREATE OR REPLACE FUNCTION cronkit.snapshot_pgmq(project text)
RETURNS integer LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    n integer := 0;
BEGIN
    IF to_regprocedure('pgmq.metrics_all()') IS NULL THEN
        RETURN 0;
    END IF;
    EXECUTE 'WITH m AS (SELECT to_jsonb(x) AS j FROM pgmq.metrics_all() x), ins AS ('
         || ' INSERT INTO cronkit.queue_snapshots (taken_at, project, queue, kind, total, pending,'
         || '   oldest_pending_age_s, sent_total)'
         || ' SELECT now(), $1, j ->> ''queue_name'', ''pgmq'', (j ->> ''queue_length'')::bigint,'
         || '   coalesce((j ->> ''queue_visible_length'')::bigint, (j ->> ''queue_length'')::bigint),'
         || '   (j ->> ''oldest_msg_age_sec'')::double precision, (j ->> ''total_messages'')::bigint'
         || '   FROM m ON CONFLICT DO NOTHING RETURNING 1)'
         || ' SELECT count(*) FROM ins'
       INTO n USING project;
    RETURN n;
END
$fn$;

