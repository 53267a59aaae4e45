-- Runs skipped by the overlap policy ("skipped (overlap)") per job and time bucket in [since, until):
-- cronkit.skipped_runs, written by the wrappers of jobs with overlap = "skip" (sql/schema_overlap.sql).
-- The run summary sums a job's buckets; the monitor's heatmap draws them.
SELECT s.jobname, date_bin(%(bucket)s::interval, s.skipped_at, %(origin)s::timestamptz) AS bucket, count(*) AS skipped
  FROM cronkit.skipped_runs s
 WHERE s.skipped_at >= %(since)s::timestamptz AND s.skipped_at < %(until)s::timestamptz
   AND s.reason = 'overlap'
 GROUP BY 1, 2
