-- Run details that started in the window, plus runs without a start time (never connected).
select runid, jobid, job_pid, status, left(return_message, 500) as return_message, start_time, end_time
  from cron.job_run_details
 where runid >= %(lo)s and (start_time >= %(since)s or start_time is null)
 order by runid desc
 limit 50000
