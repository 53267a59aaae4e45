-- Exact per-job run summary from raw cron.job_run_details rows of a runid range (percentile_disc): the reference the rollup read is checked against.
WITH b AS (
    SELECT %(since)s::timestamptz AS since, %(until)s::timestamptz AS until, %(lo)s::bigint AS lo,
           %(jobids)s::bigint[] AS jobids
), raw AS (
    SELECT d.runid, d.jobid, d.status, d.start_time, {run_time} AS t,
           extract(epoch FROM d.end_time - d.start_time)::float8 * 1000.0 AS ms
      FROM cron.job_run_details d, b
     WHERE d.runid >= b.lo AND (b.jobids IS NULL OR d.jobid = ANY(b.jobids))
), per_job AS (
    SELECT raw.jobid, count(*) AS runs,
           count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status NOT IN {final} OR status IS NULL) AS running,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE status IN {final}) AS p50_ms,
           percentile_disc(0.95) WITHIN GROUP (ORDER BY ms) FILTER (WHERE status IN {final}) AS p95_ms,
           max(ms) FILTER (WHERE status IN {final}) AS max_ms,
           avg(ms) FILTER (WHERE status IN {final}) AS mean_ms,
           max(runid) AS last_runid, max(runid) FILTER (WHERE status = 'failed') AS last_failed_runid
      FROM raw, b WHERE raw.t >= b.since AND raw.t < b.until
     GROUP BY raw.jobid
), jobs AS (
    SELECT j.jobid, j.jobname, j.active, j.schedule FROM cron.job j, b
     WHERE b.jobids IS NULL OR j.jobid = ANY(b.jobids)
)
SELECT coalesce(jobs.jobid, per_job.jobid) AS jobid, jobs.jobname, jobs.active, jobs.schedule,
       coalesce(per_job.runs, 0) AS runs, coalesce(per_job.succeeded, 0) AS succeeded,
       coalesce(per_job.failed, 0) AS failed, coalesce(per_job.running, 0) AS running,
       per_job.p50_ms, per_job.p95_ms, per_job.max_ms, per_job.mean_ms,
       last_run.start_time AS last_start, last_run.status AS last_status,
       coalesce(last_fail.end_time, last_fail.start_time) AS last_failure_at,
       last_fail.return_message AS last_failure_message
  FROM jobs
  FULL JOIN per_job ON per_job.jobid = jobs.jobid
  LEFT JOIN cron.job_run_details last_run ON last_run.runid = per_job.last_runid
  LEFT JOIN cron.job_run_details last_fail ON last_fail.runid = per_job.last_failed_runid
 ORDER BY 2, 1
