-- Runs that never reached a final state, with whether their backend still exists and the job's
-- newest runid (a backward primary-key scan that stops at the job's newest run, never below this one).
select d.runid, d.jobid, d.job_pid, d.status, d.start_time,
       exists (select 1 from pg_stat_activity a where a.pid = d.job_pid) as backend_alive,
       (select max(l.runid) from cron.job_run_details l where l.jobid = d.jobid and l.runid >= d.runid) as last_runid
  from cron.job_run_details d
 where d.status in ('starting', 'connecting', 'sending', 'running')
 order by d.runid
 limit 500
