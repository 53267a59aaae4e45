-- Runs the overlap policy skipped since the window's start, per job (cronkit.skipped_runs, written by
-- the wrappers of jobs with overlap = "skip"; sql/schema_overlap.sql).
select s.jobname,
       count(*) as skipped,
       count(s.blocking_request_id) as behind_a_call,
       count(*) - count(s.blocking_request_id) as behind_a_run,
       min(s.skipped_at) as first_at,
       max(s.skipped_at) as last_at
  from cronkit.skipped_runs s
 where s.skipped_at >= %(since)s
   and s.reason = 'overlap'
 group by s.jobname
 order by s.jobname
