-- cronkit's jobs (optionally of one project) with their live cron.job row, if any: the row cronkit
-- scheduled (its recorded jobid), or, for a registry row from before jobids were recorded, the row
-- of that name. A same-named job with another jobid is not joined: it is foreign (re-created by hand).
-- to_jsonb(m) reads the jobid column whether or not an older registry has it yet.
WITH m AS (
    SELECT m.*, (to_jsonb(m) ->> 'jobid')::bigint AS recorded_jobid
      FROM cronkit.managed_jobs m
     WHERE %(project)s::text IS NULL OR m.project = %(project)s::text
)
SELECT m.jobname, m.project, m.wrapper, m.spec, m.spec_hash, m.created_at, m.updated_at,
       to_regprocedure(m.wrapper) IS NOT NULL AS wrapper_exists,
       m.recorded_jobid,
       j.jobid, j.schedule, j.command, j.active
  FROM m
  LEFT JOIN cron.job j
    ON CASE WHEN m.recorded_jobid IS NULL THEN j.jobname = m.jobname ELSE j.jobid = m.recorded_jobid END
 ORDER BY m.jobname
