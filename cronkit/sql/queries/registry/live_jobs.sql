-- Every named pg_cron job the connected role can see.
SELECT jobid, jobname, schedule, command, active, username
  FROM cron.job
 WHERE jobname IS NOT NULL
 ORDER BY jobid
