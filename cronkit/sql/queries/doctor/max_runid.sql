-- The newest runid of the history.
select max(runid) as max_runid from cron.job_run_details
