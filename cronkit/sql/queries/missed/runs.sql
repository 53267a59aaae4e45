-- Every job's runs from the context start (a runid range on the primary key); no upper bound
-- when until is NULL. One row more than the limit tells the caller the window is too big.
SELECT d.jobid, d.runid, d.status, d.start_time, d.end_time, left(d.return_message, 200) AS return_message
  FROM cron.job_run_details d
 WHERE d.runid >= %(lo)s
   AND coalesce(d.start_time, d.end_time) >= %(since)s
   AND (%(until)s::timestamptz IS NULL OR coalesce(d.start_time, d.end_time) < %(until)s::timestamptz)
 ORDER BY d.runid
 LIMIT %(limit)s
