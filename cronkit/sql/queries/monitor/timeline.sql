-- Hourly run timeline per job from the hourly rollup.
WITH {units}, {percentiles}
SELECT u.bucket, u.jobid, coalesce(max(u.jobname), max(j.jobname)) AS jobname, sum(u.runs)::bigint AS runs,
       sum(u.succeeded)::bigint AS succeeded, sum(u.failed)::bigint AS failed, sum(u.running)::bigint AS running,
       least(max(pct.p50), max(u.ms_max)) AS p50_ms, least(max(pct.p95), max(u.ms_max)) AS p95_ms,
       max(u.ms_max) AS max_ms
  FROM units u
  LEFT JOIN pct ON pct.jobid = u.jobid AND pct.bucket = u.bucket
  LEFT JOIN cron.job j ON j.jobid = u.jobid
 GROUP BY u.bucket, u.jobid
 ORDER BY u.bucket, u.jobid
