-- Per job: its last start before the window, from cronkit's rollups — daily rows before the window's
-- day (once the daily level is complete), hourly rows of the rest — and the runs not folded yet.
-- The hour the window starts in is read raw (from runid %(lo)s), as its hourly row may hold later runs too.
with st as (select run_watermark, day_rollup_ready from cronkit.monitor_state),
     edge as (select case when st.day_rollup_ready then date_trunc('day', %(since)s::timestamptz, 'UTC')
                          else '-infinity'::timestamptz end as day from st)
select s.jobid, max(s.last_start) as last_before
  from (select r.jobid, r.last_start from cronkit.run_rollup_day r, edge where r.day < edge.day
        union all
        select r.jobid, r.last_start from cronkit.run_rollup_hour r, edge
         where r.bucket >= edge.day and r.last_start < %(since)s
        union all
        select d.jobid, d.start_time from cron.job_run_details d
         where d.runid >= %(lo)s and d.start_time >= date_trunc('hour', %(since)s::timestamptz, 'UTC')
           and d.start_time < %(since)s
        union all
        select d.jobid, d.start_time from cron.job_run_details d, st
         where d.runid > st.run_watermark and d.start_time < %(since)s) s
 group by s.jobid
