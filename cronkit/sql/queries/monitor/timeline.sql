-- Hourly run timeline per job. A job-hour whose runs are all rolled up is its cronkit.run_rollup_hour
-- row, percentiles included (kept by the refresh); one that also has raw runs (newer than the last
-- refresh, still open then, or in a partial edge hour) merges the histograms of its units.
WITH {units}, mixed AS (
    SELECT u.* FROM units u WHERE EXISTS (SELECT FROM raw WHERE raw.jobid = u.jobid AND raw.bucket = u.bucket)
), {percentiles}
SELECT h.bucket, h.jobid, coalesce(h.jobname, j.jobname) AS jobname, h.succeeded + h.failed AS runs,
       h.succeeded, h.failed, 0::bigint AS running, least(h.p50_ms, h.dur_max_ms) AS p50_ms,
       least(h.p95_ms, h.dur_max_ms) AS p95_ms, h.dur_max_ms AS max_ms
  FROM cronkit.run_rollup_hour h
  LEFT JOIN cron.job j ON j.jobid = h.jobid
 WHERE h.bucket >= %(full_start)s::timestamptz AND h.bucket < %(full_end)s::timestamptz
   AND (%(jobids)s::bigint[] IS NULL OR h.jobid = ANY(%(jobids)s::bigint[]))
   AND NOT EXISTS (SELECT FROM raw WHERE raw.jobid = h.jobid AND raw.bucket = h.bucket)
UNION ALL
SELECT u.bucket, u.jobid, coalesce(max(u.jobname), max(j.jobname)) AS jobname, sum(u.runs)::bigint AS runs,
       sum(u.succeeded)::bigint AS succeeded, sum(u.failed)::bigint AS failed, sum(u.running)::bigint AS running,
       least(max(pct.p50), max(u.ms_max)) AS p50_ms, least(max(pct.p95), max(u.ms_max)) AS p95_ms,
       max(u.ms_max) AS max_ms
  FROM mixed u
  LEFT JOIN pct ON pct.jobid = u.jobid AND pct.bucket = u.bucket
  LEFT JOIN cron.job j ON j.jobid = u.jobid
 GROUP BY u.bucket, u.jobid
 ORDER BY bucket, jobid
