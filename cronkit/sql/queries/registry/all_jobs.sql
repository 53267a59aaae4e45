-- Every pg_cron job the role can see, with the cronkit project that manages it (NULL: foreign).
SELECT j.jobid, coalesce(j.jobname, '') AS jobname, j.schedule, j.command, j.active, j.username,
       {managed} AS managed_by
  FROM cron.job j {join}
 ORDER BY j.jobname, j.jobid
