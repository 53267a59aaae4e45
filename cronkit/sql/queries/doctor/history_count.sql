-- The run history's rows, counted up to a cap (for a table that was never analyzed).
select count(*) as n from (select 1 from cron.job_run_details limit %(n)s) t
