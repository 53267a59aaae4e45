-- The run history's size from the planner's estimate (no scan).
select c.reltuples::bigint as estimate, pg_total_relation_size(c.oid) as bytes,
       pg_size_pretty(pg_total_relation_size(c.oid)) as size,
       s.last_analyze, s.last_autoanalyze
  from pg_class c left join pg_stat_all_tables s on s.relid = c.oid
 where c.oid = 'cron.job_run_details'::regclass
