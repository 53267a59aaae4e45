-- One job's (or all jobs') most recent runs in a window, newest first, bounded by a runid floor and a LIMIT.
SELECT d.runid, d.jobid, j.jobname, d.status, d.start_time, d.end_time,
       extract(epoch FROM d.end_time - d.start_time)::float8 * 1000.0 AS duration_ms, d.return_message
  FROM cron.job_run_details d
  LEFT JOIN cron.job j ON j.jobid = d.jobid
 WHERE d.runid >= %(lo)s
   AND {run_time} >= %(since)s AND {run_time} < %(until)s
   AND (%(jobids)s::bigint[] IS NULL OR d.jobid = ANY(%(jobids)s::bigint[]))
 ORDER BY d.runid DESC
 LIMIT %(limit)s
