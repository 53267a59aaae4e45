-- Every pg_cron job the role can see.
select jobid, jobname, schedule, command, database, username, active from cron.job order by jobid
