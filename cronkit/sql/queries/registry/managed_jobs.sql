-- cronkit's jobs (optionally of one project) with their live cron.job row, if any.
SELECT m.jobname, m.project, m.wrapper, m.spec, m.spec_hash, m.created_at, m.updated_at,
       to_regprocedure(m.wrapper) IS NOT NULL AS wrapper_exists,
       j.jobid, j.schedule, j.command, j.active
  FROM cronkit.managed_jobs m
  LEFT JOIN cron.job j ON j.jobname = m.jobname
 WHERE %(project)s::text IS NULL OR m.project = %(project)s::text
 ORDER BY m.jobname
