-- "Failed N runs in a row", the one definition: per job, its final runs (succeeded or failed) from
-- run {first_runid} on, newest first, counted until the newest success. The doctor's
-- CONSECUTIVE_FAILURES runs it with a literal runid; the alerts job's failed_runs rule embeds it in
-- its statement with cronkit.runid_at(now() - <within>). {first_runid} is a psycopg.sql placeholder.
SELECT jobid,
       (count(*) FILTER (WHERE later_successes = 0))::integer AS failed_in_a_row,
       bool_or(status = 'succeeded') AS has_success,
       max(end_time) FILTER (WHERE status = 'succeeded') AS last_success,
       (array_agg(return_message ORDER BY runid DESC) FILTER (WHERE status = 'failed'))[1] AS last_message
  FROM (SELECT d.jobid, d.runid, d.status, d.return_message, d.end_time,
               count(*) FILTER (WHERE d.status = 'succeeded') OVER (PARTITION BY d.jobid ORDER BY d.runid DESC)
                   AS later_successes
          FROM cron.job_run_details d
         WHERE d.runid >= {first_runid} AND d.status IN ('succeeded', 'failed')) AS final_runs
 GROUP BY jobid
