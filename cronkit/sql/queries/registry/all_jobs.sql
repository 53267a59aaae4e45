-- Every pg_cron job the role can see (which of them cronkit manages is decided by registry.managed_jobs).
SELECT j.jobid, coalesce(j.jobname, '') AS jobname, j.schedule, j.command, j.active, j.username
  FROM cron.job j
 ORDER BY j.jobname, j.jobid
