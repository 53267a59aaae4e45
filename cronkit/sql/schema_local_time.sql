-- cronkit: local times that survive daylight saving time. Runs after schema.sql (name order).
-- Idempotent; contains no percent sign on purpose (plan/apply passes these files through psycopg).
--
-- A manifest job with `at` + `timezone` and no `schedule` runs on a GMT schedule (pg_cron's zone,
-- the only one on hosted Supabase) that is right for one UTC offset of its zone. apply records the
-- intent in cronkit.managed_jobs.spec -> 'local' ({"at", "zone", "days", "schedules": {"<offset in
-- seconds>": "<GMT expression>"}}, computed by cronkit/schedules/dst.py); the maintenance job
-- cronkit-dst:<project> calls cronkit.reissue_local_schedules, which switches the expression at
-- each DST change in its own transaction and records the switch here.

CREATE TABLE IF NOT EXISTS cronkit.schedule_reissues (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jobname      text NOT NULL,
    jobid        bigint NOT NULL,
    reissued_at  timestamptz NOT NULL DEFAULT now(),
    as_of        timestamptz NOT NULL,          -- the moment the rule was evaluated for
    old_schedule text NOT NULL,
    new_schedule text NOT NULL,
    utc_offset   interval                       -- the offset the next local run is read with
);
CREATE INDEX IF NOT EXISTS schedule_reissues_job ON cronkit.schedule_reissues (jobname, reissued_at);
REVOKE ALL ON cronkit.schedule_reissues FROM PUBLIC;

-- The GMT schedule a local-time job must have at `moment`, given the one it has. Mirrors
-- cronkit.schedules.dst.local_schedule (a test evaluates both across both transitions): the next
-- local run after `moment` decides (its wall time read as `AT TIME ZONE` reads it: a skipped time
-- with the offset from before the change, a repeated one with the offset from after it), and the
-- switch waits while the new expression would still fire once more before that run.
CREATE OR REPLACE FUNCTION cronkit.local_schedule(zone text, at_local time, schedules jsonb,
                                                  current_schedule text, moment timestamptz)
RETURNS text LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    day date := (moment AT TIME ZONE zone)::date - 1;
    run timestamptz;
    target text;
BEGIN
    LOOP
        run := (day + at_local) AT TIME ZONE zone;
        EXIT WHEN run > moment;
        day := day + 1;
    END LOOP;
    target := schedules ->> extract(epoch FROM (day + at_local) - (run AT TIME ZONE 'UTC'))::bigint::text;
    IF target IS NULL THEN
        RETURN current_schedule;
    END IF;
    IF current_schedule IS NOT NULL AND run - interval '1 day' >= date_trunc('minute', moment) THEN
        RETURN current_schedule;
    END IF;
    RETURN target;
END
$fn$;

-- Reissue the schedules of one project's local-time jobs that the rule says must change, as of
-- `moment` (now(); tests pass another). Serializes with apply on its advisory lock; every switch
-- and its record commit together, in the calling transaction. Returns the number of switches.
CREATE OR REPLACE FUNCTION cronkit.reissue_local_schedules(for_project text, moment timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    job record;
    target text;
    switched integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('cronkit.apply'));
    FOR job IN
        SELECT m.jobname, j.jobid, j.schedule, m.spec -> 'local' AS intent
          FROM cronkit.managed_jobs m
          JOIN cron.job j ON j.jobid = m.jobid
         WHERE m.project = for_project AND m.spec ? 'local'
         ORDER BY m.jobname
    LOOP
        target := cronkit.local_schedule(job.intent ->> 'zone', (job.intent ->> 'at')::time,
                                         job.intent -> 'schedules', job.schedule, moment);
        CONTINUE WHEN target IS NOT DISTINCT FROM job.schedule;
        PERFORM cron.alter_job(job.jobid, schedule := target);
        INSERT INTO cronkit.schedule_reissues (jobname, jobid, as_of, old_schedule, new_schedule, utc_offset)
        VALUES (job.jobname, job.jobid, moment, job.schedule, target,
                (SELECT make_interval(secs => key::bigint) FROM jsonb_each_text(job.intent -> 'schedules')
                  WHERE value = target LIMIT 1));
        -- on the record like every change cronkit makes (cronkit.audit: AuditAction.DST_REISSUE)
        INSERT INTO cronkit.audit_log (action, project, target, summary, details)
        VALUES ('dst-reissue', for_project, job.jobname,
                'reissued ' || job.jobname || ' for daylight saving time: ' || job.schedule || ' -> ' || target,
                jsonb_build_object('old_schedule', job.schedule, 'new_schedule', target, 'as_of', moment));
        RAISE NOTICE USING MESSAGE = 'cronkit: job "' || job.jobname || '" reissued for daylight saving time: '
                                     || job.schedule || ' -> ' || target;
        switched := switched + 1;
    END LOOP;
    RETURN switched;
END
$fn$;
