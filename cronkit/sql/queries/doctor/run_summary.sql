-- Per job: its last run before / first run inside the window (a scan of the whole history: what
-- the doctor reads when cronkit's rollups are not there; see doctor/ran_before_rolled).
select jobid,
       max(start_time) filter (where start_time < %(since)s) as last_before,
       min(start_time) filter (where start_time >= %(since)s) as first_in_window
  from cron.job_run_details
 group by jobid
