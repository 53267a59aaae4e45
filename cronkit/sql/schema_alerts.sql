-- cronkit alerts (cronkit/alerts.py): state of every alert rule's subjects, silences, and the
-- deliveries sent through pg_net. Evaluated by the maintenance job cronkit-alerts:<project>, whose
-- statement reads the channels' URLs from the secret backend when it fires and passes them to
-- cronkit.evaluate_alerts; URLs and keys are never stored, logged or put in an error message.
-- Runs after schema_monitoring.sql (name order). Idempotent; contains no percent sign on purpose.
--
-- Healthchecks semantics: one alert when a subject goes down, one recovery when it comes back, a
-- reminder every `realert` while it stays down, and nothing while a silence covers it (the state
-- still changes; a subject that went down and came back within a silence sends nothing at all).
-- Reference: shared/reference/pg_cron_pg_net_vault.md sections 1.7, 2.2-2.5 (a 429 is an answer
-- like any other: its row in net._http_response carries the body and headers with retry_after).

CREATE TABLE IF NOT EXISTS cronkit.alert_state (
    project      text NOT NULL,
    rule         text NOT NULL,
    subject      text NOT NULL,          -- a job name or a queue
    check_kind   text NOT NULL,
    status       text NOT NULL CHECK (status IN ('up', 'down')),
    since        timestamptz NOT NULL DEFAULT now(),
    detail       text,                   -- why, as of the last evaluation
    notified     text CHECK (notified IN ('up', 'down')),  -- the last event sent (NULL: none yet)
    last_sent_at timestamptz,
    evaluated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, rule, subject)
);

CREATE TABLE IF NOT EXISTS cronkit.alert_silences (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project    text NOT NULL,
    subject    text,                     -- a job or queue; NULL silences the whole project
    starts_at  timestamptz NOT NULL DEFAULT now(),
    ends_at    timestamptz NOT NULL,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);

-- One row per message cronkit meant to send. status: 'sent' = queued in pg_net, no answer yet;
-- 'delivered' = the receiver answered 2xx; 'rate_limited' = 429, sent again at retry_at as a new
-- row (retry_of); 'failed' = any other answer or no answer within pg_net.ttl; 'not_sent' = the
-- channel's URL secret was missing or not an http(s) URL, so nothing left the database.
CREATE TABLE IF NOT EXISTS cronkit.alert_deliveries (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project       text NOT NULL,
    rule          text,
    subject       text,
    channel       text NOT NULL,
    channel_kind  text NOT NULL CHECK (channel_kind IN ('slack', 'discord', 'webhook', 'function')),
    event         text NOT NULL CHECK (event IN ('down', 'up', 'realert', 'test')),
    attempt       integer NOT NULL DEFAULT 1,
    retry_of      bigint,
    payload       jsonb NOT NULL,        -- the body: alert text only, never a URL or a key
    request_id    bigint,
    status        text NOT NULL CHECK (status IN ('sent', 'delivered', 'rate_limited', 'failed', 'not_sent')),
    status_code   integer,
    note          text,
    retry_after_s double precision,
    retry_at      timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    answered_at   timestamptz
);
CREATE INDEX IF NOT EXISTS alert_deliveries_open ON cronkit.alert_deliveries (project, status)
    WHERE status IN ('sent', 'rate_limited');
CREATE INDEX IF NOT EXISTS alert_deliveries_created ON cronkit.alert_deliveries (project, created_at);

REVOKE ALL ON ALL TABLES IN SCHEMA cronkit FROM PUBLIC;

-- The body a channel kind expects. Discord refuses content over 2000 characters, so longer
-- messages are cut to 1999 and end with an ellipsis.
CREATE OR REPLACE FUNCTION cronkit.alert_payload(kind text, event text, message text, details jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE kind
        WHEN 'slack' THEN jsonb_build_object('text', message)
        WHEN 'discord' THEN jsonb_build_object('content',
            CASE WHEN char_length(message) > 2000 THEN left(message, 1999) || '…' ELSE message END)
        ELSE jsonb_build_object('event', event, 'message', message) || coalesce(details, '{}')
    END
$fn$;

-- Seconds a 429 asks to wait: Discord's JSON body field retry_after, else the Retry-After header
-- (seconds), else 5; never more than an hour. A body that is not JSON is not an error.
CREATE OR REPLACE FUNCTION cronkit.alert_retry_after(headers jsonb, content text)
RETURNS double precision LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
    seconds double precision;
BEGIN
    BEGIN
        seconds := (content::jsonb ->> 'retry_after')::double precision;
    EXCEPTION WHEN others THEN
        seconds := NULL;
    END;
    IF seconds IS NULL THEN
        SELECT CASE WHEN value ~ '^\s*[0-9]+(\.[0-9]+)?\s*$' THEN value::double precision END INTO seconds
          FROM jsonb_each_text(coalesce(headers, '{}')) WHERE lower(key) = 'retry-after' LIMIT 1;
    END IF;
    RETURN least(greatest(coalesce(seconds, 5), 0), 3600);
END
$fn$;

-- Queue one message through pg_net, or record why it was not sent. target = {"url": ..., "key": ...}
-- as read from the secret backend a moment ago; neither is stored, and pg_net's own errors (which
-- quote the URL) are replaced by a message that does not.
CREATE OR REPLACE FUNCTION cronkit.alert_deliver(project text, rule text, subject text, channel text, kind text,
                                                 event text, payload jsonb, target jsonb,
                                                 attempt integer DEFAULT 1, retry_of bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    url text := target ->> 'url';
    key text := target ->> 'key';
    headers jsonb := jsonb_build_object('Content-Type', 'application/json');
    request bigint;
    why text;
BEGIN
    IF url IS NULL THEN
        why := 'not sent: the channel''s URL secret is missing';
    ELSIF url !~ '^https?://[^/?#[:space:]]+' OR url ~ '[[:space:][:cntrl:]]' THEN
        why := 'not sent: the channel''s URL secret does not hold an http(s) URL';
    ELSIF kind = 'function' AND target ? 'key' AND key IS NULL THEN
        why := 'not sent: the channel''s key secret is missing';
    END IF;
    IF why IS NULL THEN
        IF key IS NOT NULL THEN
            headers := headers || jsonb_build_object('Authorization', 'Bearer ' || key);
        END IF;
        BEGIN
            request := net.http_post(url := url, body := payload, headers := headers, timeout_milliseconds := 5000);
        EXCEPTION WHEN others THEN
            why := 'not sent: pg_net refused the request (SQLSTATE ' || SQLSTATE || ')';
        END;
    END IF;
    INSERT INTO cronkit.alert_deliveries (project, rule, subject, channel, channel_kind, event, attempt, retry_of,
                                          payload, request_id, status, note)
    VALUES (project, rule, subject, channel, kind, event, attempt, retry_of, payload, request,
            CASE WHEN request IS NULL THEN 'not_sent' ELSE 'sent' END, why);
    RETURN request;
END
$fn$;

-- Read the answers of sent deliveries (net._http_response while pg_net keeps it, then the
-- harvested cronkit.http_responses; cronkit.http_outcome classifies both the same way).
CREATE OR REPLACE FUNCTION cronkit.alert_collect(p_project text)
RETURNS integer LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    waiting bigint[];
    n integer;
BEGIN
    SELECT array_agg(request_id) INTO waiting FROM cronkit.alert_deliveries
     WHERE project = p_project AND status = 'sent' AND request_id IS NOT NULL;
    IF waiting IS NULL THEN
        RETURN 0;
    END IF;
    WITH answers AS (
        SELECT r.id, r.status_code, r.created AS answered_at,
               cronkit.http_outcome(r.status_code, r.timed_out, r.error_msg) AS outcome,
               CASE WHEN r.status_code = 429 THEN cronkit.alert_retry_after(r.headers, r.content) END AS retry_after_s
          FROM net._http_response r WHERE r.id = ANY (waiting)
        UNION ALL
        SELECT h.request_id, h.status_code, coalesce(h.responded_at, h.harvested_at), h.outcome,
               CASE WHEN h.status_code = 429 THEN 5 END
          FROM cronkit.http_responses h
         WHERE h.request_id = ANY (waiting)
           AND NOT EXISTS (SELECT 1 FROM net._http_response r WHERE r.id = h.request_id)
    )
    UPDATE cronkit.alert_deliveries d
       SET status = CASE WHEN a.outcome = '2xx' THEN 'delivered' WHEN a.status_code = 429 THEN 'rate_limited' ELSE 'failed' END,
           status_code = a.status_code,
           answered_at = a.answered_at,
           retry_after_s = a.retry_after_s,
           retry_at = a.answered_at + make_interval(secs => a.retry_after_s),
           note = CASE WHEN a.outcome = 'expired' THEN 'no answer within pg_net.ttl'
                       WHEN a.outcome NOT IN ('2xx') AND a.status_code IS DISTINCT FROM 429 THEN 'answer: ' || a.outcome END
      FROM answers a
     WHERE d.request_id = a.id AND d.project = p_project AND d.status = 'sent';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$fn$;

-- The subjects of one rule and whether each is down: true, false, or NULL when there is no evidence
-- either way (then the state does not change). The definitions are the doctor's and the monitor's:
--   failed_runs   — pg_cron's own status: a job's newest `threshold` final runs (succeeded/failed,
--                   as the doctor's CONSECUTIVE_FAILURES counts them) all failed;
--   http_failures — cronkit.http_outcome of the job's ledgered requests (the outcome vocabulary of
--                   cronkit/outcomes.py): its newest `threshold` answered requests were all not 2xx;
--   queue_backlog — the newest row of cronkit.queue_snapshots (written by the queue snapshot job):
--                   pending above `threshold`, or oldest pending item older than max_age_s.
-- Dropped first: CREATE OR REPLACE cannot rename a parameter, and nothing depends on it but the
-- plpgsql of evaluate_alerts (looked up when it runs).
DROP FUNCTION IF EXISTS cronkit.alert_check(text, jsonb);
CREATE OR REPLACE FUNCTION cronkit.alert_check(p_project text, a_rule jsonb)
RETURNS TABLE (subject text, down boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    kind text := a_rule ->> 'check';
    threshold integer := greatest(coalesce((a_rule ->> 'threshold')::integer, 1), 1);
    within interval := make_interval(secs => coalesce((a_rule ->> 'within_s')::double precision, 86400));
    max_age double precision := (a_rule ->> 'max_age_s')::double precision;
    subjects text[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(a_rule -> 'subjects', '[]')));
    horizon interval := make_interval(secs => coalesce((a_rule ->> 'horizon_s')::double precision, 691200));
BEGIN
    IF kind = 'failed_runs' THEN
        -- a_rule -> 'streaks': per job, the row of the shared "failed in a row" query
        -- (cronkit/sql/queries/runs/failed_in_a_row.sql), computed by the job's statement
        RETURN QUERY
        SELECT s.name,
               CASE WHEN f.failed_in_a_row >= threshold THEN true
                    WHEN f.has_success THEN false END,
               CASE WHEN f.failed_in_a_row IS NULL THEN 'no finished run in the window'
                    ELSE f.failed_in_a_row || ' run(s) failed in a row' ||
                         coalesce(': ' || left(split_part(btrim(f.last_message), E'\n', 1), 200), '') END
          FROM unnest(subjects) AS s(name)
          LEFT JOIN LATERAL (
              SELECT (a_rule -> 'streaks' -> s.name ->> 'failed_in_a_row')::integer AS failed_in_a_row,
                     (a_rule -> 'streaks' -> s.name ->> 'has_success')::boolean AS has_success,
                     a_rule -> 'streaks' -> s.name ->> 'last_message' AS last_message
          ) f ON true;
    ELSIF kind = 'silent' THEN
        -- Healthchecks' period + grace: a_rule -> 'gaps' maps each schedule the job may have to the
        -- longest time it leaves between starts (cronkit.schedules.Schedule.longest_gap); the last sign
        -- of life is the newest run's start, or the apply that (re)scheduled it. Paused jobs, schedules
        -- not in the map and ones rarer than the horizon are not judged (NULL).
        RETURN QUERY
        SELECT s.name,
               CASE WHEN j.jobid IS NULL OR NOT j.active OR g.allowed IS NULL OR g.allowed > horizon THEN NULL
                    ELSE greatest(r.last_start, m.updated_at) < now() - g.allowed END,
               CASE WHEN g.allowed IS NULL THEN 'schedule ' || coalesce(j.schedule, '(none)') || ' not judged'
                    ELSE 'no run since ' || coalesce(to_char(greatest(r.last_start, m.updated_at) AT TIME ZONE 'UTC',
                                                             'YYYY-MM-DD HH24:MI:SS') || ' UTC', 'apply')
                         || ' (schedule allows ' || justify_interval(g.allowed) || ')' END
          FROM unnest(subjects) AS s(name)
          LEFT JOIN cron.job j ON j.jobname = s.name AND j.username = current_user
          LEFT JOIN cronkit.managed_jobs m ON m.jobname = s.name
          LEFT JOIN LATERAL (
              SELECT make_interval(secs => (a_rule -> 'gaps' ->> j.schedule)::double precision
                                           + (a_rule ->> 'grace_s')::double precision) AS allowed
          ) g ON true
          LEFT JOIN LATERAL (
              SELECT max(d.start_time) AS last_start FROM cron.job_run_details d
               WHERE d.jobid = j.jobid AND d.runid >= cronkit.runid_at(now() - least(g.allowed, horizon))
          ) r ON g.allowed IS NOT NULL AND g.allowed <= horizon;
    ELSIF kind = 'http_failures' THEN
        RETURN QUERY
        SELECT s.name,
               CASE WHEN o.n >= threshold AND o.failed = o.n THEN true
                    WHEN o.failed < o.n THEN false END,
               CASE WHEN o.n = 0 THEN 'no answered request in the window'
                    ELSE o.failed || ' of the last ' || o.n || ' request(s) failed' ||
                         coalesce(' (last: ' || o.last_failure || ')', '') END
          FROM unnest(subjects) AS s(name)
          CROSS JOIN LATERAL (
              SELECT count(*)::integer AS n, count(*) FILTER (WHERE a.outcome <> '2xx')::integer AS failed,
                     (array_agg(coalesce(a.status_code::text, a.outcome) ORDER BY a.created_at DESC, a.request_id DESC)
                         FILTER (WHERE a.outcome <> '2xx'))[1] AS last_failure
                FROM (SELECT l.request_id, l.created_at,
                             coalesce(h.outcome, cronkit.http_outcome(r.status_code, r.timed_out, r.error_msg)) AS outcome,
                             coalesce(h.status_code, r.status_code) AS status_code
                        FROM cronkit.request_ledger l
                        LEFT JOIN cronkit.http_responses h ON h.request_id = l.request_id
                        LEFT JOIN net._http_response r ON r.id = l.request_id AND h.request_id IS NULL
                       WHERE l.jobname = s.name AND l.created_at >= now() - within
                         AND (h.request_id IS NOT NULL OR r.id IS NOT NULL)
                       ORDER BY l.created_at DESC, l.request_id DESC LIMIT threshold) a
          ) o;
    ELSIF kind = 'queue_backlog' THEN
        RETURN QUERY
        SELECT q.queue,
               (q.pending > threshold OR (max_age IS NOT NULL AND coalesce(q.oldest_pending_age_s, 0) > max_age)),
               q.pending || ' pending' || coalesce(', oldest ' || round(q.oldest_pending_age_s)::text || ' s', '')
          FROM (SELECT DISTINCT ON (qs.queue) qs.queue, qs.pending, qs.oldest_pending_age_s
                  FROM cronkit.queue_snapshots qs
                 WHERE qs.project = p_project AND qs.taken_at >= now() - within
                   AND (cardinality(subjects) = 0 OR qs.queue = ANY (subjects))
                 ORDER BY qs.queue, qs.taken_at DESC) q;
    ELSE
        RAISE EXCEPTION USING MESSAGE = 'cronkit: unknown alert check ' || quote_literal(kind),
            HINT = 'Re-apply the manifest with this cronkit version.';
    END IF;
END
$fn$;

-- One evaluation for a project: read answers, send 429'd messages again once their time has come,
-- then evaluate every rule and send what the transitions call for. config is the validated
-- [alerts] table (cronkit/alerts.py); targets maps each channel to {"url", "key"} read just now;
-- streaks maps each failed_runs rule to its jobs' rows of the shared "failed in a row" query.
-- Returns the number of messages queued.
DROP FUNCTION IF EXISTS cronkit.evaluate_alerts(text, jsonb, jsonb);
CREATE OR REPLACE FUNCTION cronkit.evaluate_alerts(p_project text, config jsonb, targets jsonb, streaks jsonb)
RETURNS integer LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    a_rule jsonb;
    result record;
    st cronkit.alert_state;
    event text;
    silenced boolean;
    channel text;
    message text;
    details jsonb;
    realert interval := make_interval(secs => (config ->> 'realert_s')::double precision);
    queued integer := 0;
    retry record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('cronkit.alerts:' || p_project));
    PERFORM cronkit.alert_collect(p_project);

    FOR retry IN
        SELECT d.* FROM cronkit.alert_deliveries d
         WHERE d.project = p_project AND d.status = 'rate_limited' AND d.retry_at <= now() AND d.attempt < 5
           AND NOT EXISTS (SELECT 1 FROM cronkit.alert_deliveries n WHERE n.retry_of = d.id)
         ORDER BY d.id
    LOOP
        PERFORM cronkit.alert_deliver(p_project, retry.rule, retry.subject, retry.channel, retry.channel_kind, retry.event,
                                      retry.payload, coalesce(targets -> retry.channel, '{}'), retry.attempt + 1, retry.id);
        queued := queued + 1;
    END LOOP;

    DELETE FROM cronkit.alert_state s
     WHERE s.project = p_project
       AND s.rule NOT IN (SELECT r ->> 'name' FROM jsonb_array_elements(config -> 'rules') r);

    FOR a_rule IN SELECT * FROM jsonb_array_elements(config -> 'rules') LOOP
        FOR result IN SELECT * FROM cronkit.alert_check(
                p_project, a_rule || jsonb_build_object('streaks', coalesce(streaks -> (a_rule ->> 'name'), '{}'))) LOOP
            SELECT * INTO st FROM cronkit.alert_state s
             WHERE s.project = p_project AND s.rule = a_rule ->> 'name' AND s.subject = result.subject FOR UPDATE;
            IF result.down IS NULL THEN
                UPDATE cronkit.alert_state s SET evaluated_at = now(), detail = result.detail
                 WHERE s.project = p_project AND s.rule = a_rule ->> 'name' AND s.subject = result.subject;
                IF NOT FOUND OR st.status IS NULL THEN
                    CONTINUE;
                END IF;
            ELSIF st.project IS NULL THEN
                INSERT INTO cronkit.alert_state (project, rule, subject, check_kind, status, detail)
                VALUES (p_project, a_rule ->> 'name', result.subject, a_rule ->> 'check',
                        CASE WHEN result.down THEN 'down' ELSE 'up' END, result.detail)
                RETURNING * INTO st;
            ELSE
                UPDATE cronkit.alert_state s
                   SET status = CASE WHEN result.down THEN 'down' ELSE 'up' END,
                       since = CASE WHEN s.status = CASE WHEN result.down THEN 'down' ELSE 'up' END THEN s.since ELSE now() END,
                       detail = result.detail, evaluated_at = now()
                 WHERE s.project = p_project AND s.rule = a_rule ->> 'name' AND s.subject = result.subject
                RETURNING * INTO st;
            END IF;

            event := CASE
                WHEN st.status = 'down' AND st.notified IS DISTINCT FROM 'down' THEN 'down'
                WHEN st.status = 'down' AND realert IS NOT NULL AND st.last_sent_at <= now() - realert THEN 'realert'
                WHEN st.status = 'up' AND st.notified = 'down' THEN 'up'
            END;
            IF event IS NULL THEN
                CONTINUE;
            END IF;
            SELECT EXISTS (SELECT 1 FROM cronkit.alert_silences x
                            WHERE x.project = p_project AND (x.subject IS NULL OR x.subject = st.subject)
                              AND now() >= x.starts_at AND now() < x.ends_at) INTO silenced;
            IF silenced THEN
                CONTINUE;  -- the state changed; the message waits for the silence to end (or is moot)
            END IF;
            message := '[cronkit] ' || CASE event WHEN 'down' THEN 'DOWN' WHEN 'up' THEN 'RECOVERED' ELSE 'STILL DOWN' END
                       || ': ' || p_project || ' / ' || st.subject || ' — ' || coalesce(st.detail, '')
                       || ' (rule ' || st.rule || ', ' || st.status || ' since '
                       || to_char(st.since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC)';
            details := jsonb_build_object('project', p_project, 'rule', st.rule, 'check', st.check_kind,
                                          'subject', st.subject, 'status', st.status, 'since', st.since,
                                          'detail', st.detail);
            FOR channel IN SELECT jsonb_array_elements_text(a_rule -> 'channels') LOOP
                PERFORM cronkit.alert_deliver(p_project, st.rule, st.subject, channel,
                                              config -> 'channels' -> channel ->> 'kind', event,
                                              cronkit.alert_payload(config -> 'channels' -> channel ->> 'kind', event, message, details),
                                              coalesce(targets -> channel, '{}'));
                queued := queued + 1;
            END LOOP;
            UPDATE cronkit.alert_state s
               SET notified = CASE WHEN event = 'up' THEN 'up' ELSE 'down' END, last_sent_at = now()
             WHERE s.project = p_project AND s.rule = st.rule AND s.subject = st.subject;
        END LOOP;
    END LOOP;
    RETURN queued;
END
$fn$;
