-- Per job: the backend pids of the runs that queued a request in the window (cron.job_run_details.job_pid).
select jobname, array_agg(distinct job_pid) as pids
  from cronkit.request_ledger
 where created_at >= %(since)s
 group by jobname
