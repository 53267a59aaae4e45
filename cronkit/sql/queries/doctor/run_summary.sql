-- Per job: its newest runid, and its last run before / first run inside the window.
select jobid, max(runid) as last_runid,
       max(start_time) filter (where start_time < %(since)s) as last_before,
       min(start_time) filter (where start_time >= %(since)s) as first_in_window
  from cron.job_run_details
 group by jobid
