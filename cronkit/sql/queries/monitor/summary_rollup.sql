-- Per-job run summary from the daily and hourly rollups plus the raw edges.
WITH {units}, {percentiles},
per_job AS (
    SELECT jobid, max(jobname) AS jobname, sum(runs)::bigint AS runs, sum(succeeded)::bigint AS succeeded,
           sum(failed)::bigint AS failed, sum(running)::bigint AS running, max(ms_max) AS max_ms,
           sum(ms_sum) / nullif(sum(timed), 0) AS mean_ms,
           max(last_runid) AS last_runid, max(last_failed_runid) AS last_failed_runid
      FROM units GROUP BY jobid
), jobs AS (
    SELECT j.jobid, j.jobname, j.active, j.schedule FROM cron.job j
     WHERE %(jobids)s::bigint[] IS NULL OR j.jobid = ANY(%(jobids)s::bigint[])
)
SELECT coalesce(jobs.jobid, per_job.jobid) AS jobid, coalesce(jobs.jobname, per_job.jobname) AS jobname,
       jobs.active, jobs.schedule,
       coalesce(per_job.runs, 0) AS runs, coalesce(per_job.succeeded, 0) AS succeeded,
       coalesce(per_job.failed, 0) AS failed, coalesce(per_job.running, 0) AS running,
       least(pct.p50, per_job.max_ms) AS p50_ms, least(pct.p95, per_job.max_ms) AS p95_ms,
       per_job.max_ms, per_job.mean_ms,
       last_run.start_time AS last_start, last_run.status AS last_status,
       coalesce(last_fail.end_time, last_fail.start_time) AS last_failure_at,
       last_fail.return_message AS last_failure_message
  FROM jobs
  FULL JOIN per_job ON per_job.jobid = jobs.jobid
  LEFT JOIN pct ON pct.jobid = per_job.jobid
  LEFT JOIN cron.job_run_details last_run ON last_run.runid = per_job.last_runid
  LEFT JOIN cron.job_run_details last_fail ON last_fail.runid = per_job.last_failed_runid
 ORDER BY 2, 1
