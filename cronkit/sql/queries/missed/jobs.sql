-- The jobs whose runs are checked (all, or those with the given ids).
SELECT jobid, jobname, schedule, active
  FROM cron.job
 WHERE %(ids)s::bigint[] IS NULL OR jobid = ANY(%(ids)s::bigint[])
 ORDER BY jobid
