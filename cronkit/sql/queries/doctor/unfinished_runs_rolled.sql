-- doctor/unfinished_runs where cronkit's rollups keep track: every run at or below the watermark is
-- folded (final) or listed in cronkit.run_rollup_open, so only those and the newer runs can be
-- unfinished — primary-key lookups instead of a scan of the whole history.
with candidates as (
    select o.runid from cronkit.run_rollup_open o
    union
    select n.runid from cron.job_run_details n where n.runid > (select run_watermark from cronkit.monitor_state)
)
select d.runid, d.jobid, d.job_pid, d.status, d.start_time,
       exists (select 1 from pg_stat_activity a where a.pid = d.job_pid) as backend_alive,
       (select max(l.runid) from cron.job_run_details l where l.jobid = d.jobid and l.runid >= d.runid) as last_runid
  from cron.job_run_details d
  join candidates c on c.runid = d.runid
 where d.status in ('starting', 'connecting', 'sending', 'running')
 order by d.runid
 limit 500
