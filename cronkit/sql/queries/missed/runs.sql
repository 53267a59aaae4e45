-- Every job's runs from the context start (a runid range on the primary key); no upper bound
-- when until is NULL; only the jobs in jobids when given. One row more than the limit tells the
-- caller the window is too big.
-- Read in bulk through COPY (monitor.window._copied_frame); only a failed run's message is read
-- (the engine looks for 'server restarted' there), not a million '1 row's.
SELECT d.jobid, d.runid, d.status, d.start_time, d.end_time,
       CASE WHEN d.status = 'failed' THEN left(d.return_message, 200) END AS return_message
  FROM cron.job_run_details d
 WHERE d.runid >= %(lo)s
   AND coalesce(d.start_time, d.end_time) >= %(since)s
   AND (%(until)s::timestamptz IS NULL OR coalesce(d.start_time, d.end_time) < %(until)s::timestamptz)
   AND (%(jobids)s::bigint[] IS NULL OR d.jobid = ANY(%(jobids)s::bigint[]))
 ORDER BY d.runid
 LIMIT %(limit)s
