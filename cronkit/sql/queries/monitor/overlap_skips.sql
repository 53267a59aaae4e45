-- Runs skipped by the overlap policy ("skipped (overlap)") per job in [since, until):
-- cronkit.skipped_runs, written by the wrappers of jobs with overlap = "skip" (sql/schema_overlap.sql).
SELECT s.jobname, count(*) AS skipped
  FROM cronkit.skipped_runs s
 WHERE s.skipped_at >= %(since)s::timestamptz AND s.skipped_at < %(until)s::timestamptz
   AND s.reason = 'overlap'
 GROUP BY s.jobname
