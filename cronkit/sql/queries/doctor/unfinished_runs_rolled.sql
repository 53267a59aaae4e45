-- doctor/unfinished_runs where cronkit's rollups keep track: every run at or below the watermark is
-- folded (final) or listed in cronkit.run_rollup_open, so only those and the newer runs can be
-- unfinished — a primary-key lookup per candidate (LATERAL: the planner would otherwise scan the
-- whole history by status, which has no index) instead of a scan of the whole history.
with candidates as materialized (
    select o.runid from cronkit.run_rollup_open o
    union
    select n.runid from cron.job_run_details n where n.runid > (select run_watermark from cronkit.monitor_state)
)
select d.runid, d.jobid, d.job_pid, d.status, d.start_time,
       exists (select 1 from pg_stat_activity a where a.pid = d.job_pid) as backend_alive,
       (select max(l.runid) from cron.job_run_details l where l.jobid = d.jobid and l.runid >= d.runid) as last_runid
  from candidates c
  cross join lateral (select * from cron.job_run_details x where x.runid = c.runid offset 0) d
 where d.status in ('starting', 'connecting', 'sending', 'running')
 order by d.runid
 limit 500
