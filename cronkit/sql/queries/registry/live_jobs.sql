-- Every named pg_cron job the connected role can see. pg_cron keys jobs by (name, owner); where a
-- superuser sees the same name under several owners, the connected role's own job comes last, so
-- it is the one a lookup by name finds.
SELECT jobid, jobname, schedule, command, active, username
  FROM cron.job
 WHERE jobname IS NOT NULL
 ORDER BY username = current_user, jobid
