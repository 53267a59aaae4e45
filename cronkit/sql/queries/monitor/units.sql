-- Units: daily rollup rows of the whole days inside the window, hourly rollup rows of the other
-- whole hours, plus the raw runs that are in neither (newer than the watermark, still open at the
-- last refresh, or in a partial edge hour), aggregated per job and hour once, up front. Each unit
-- is (jobid, jobname, bucket, runs, succeeded, failed, running, timed, ms_sum, ms_max, hist,
-- last_runid, last_failed_runid); a raw unit's histogram has one element per timed run (the
-- percentile step sums equal bins). Every bound is a constant from _BOUNDS.
raw AS MATERIALIZED (
    SELECT r.jobid, NULL::text AS jobname, date_trunc('hour', r.t, 'UTC') AS bucket, count(*) AS runs,
           count(*) FILTER (WHERE r.status = 'succeeded') AS succeeded,
           count(*) FILTER (WHERE r.status = 'failed') AS failed,
           count(*) FILTER (WHERE NOT r.final) AS running,
           count(r.ms) FILTER (WHERE r.final) AS timed,
           coalesce(sum(r.ms) FILTER (WHERE r.final), 0) AS ms_sum,
           max(r.ms) FILTER (WHERE r.final) AS ms_max,
           coalesce(array_agg((cronkit.duration_bin(r.ms)::bigint << 32) | 1)
                    FILTER (WHERE r.final AND r.ms IS NOT NULL), '{{}}') AS hist,
           max(r.runid) AS last_runid, max(r.runid) FILTER (WHERE r.status = 'failed') AS last_failed_runid
      FROM (SELECT d.runid, d.jobid, d.status, coalesce(d.status IN {final}, false) AS final, {run_time} AS t,
                   extract(epoch FROM d.end_time - d.start_time)::float8 * 1000.0 AS ms,
                   (d.runid <= %(wm)s::bigint AND NOT (d.runid = ANY(%(open_ids)s::bigint[]))) AS rolled
              FROM cron.job_run_details d
             WHERE ({raw_ranges})
               AND (%(jobids)s::bigint[] IS NULL OR d.jobid = ANY(%(jobids)s::bigint[]))
            OFFSET 0) AS r  -- a fence: t and ms are computed once per run, not once per use
     WHERE r.t >= %(since)s::timestamptz AND r.t < %(until)s::timestamptz
       AND NOT (r.rolled AND r.t >= %(full_start)s::timestamptz AND r.t < %(full_end)s::timestamptz)
     GROUP BY r.jobid, date_trunc('hour', r.t, 'UTC')
), units AS NOT MATERIALIZED (
    SELECT r.jobid, r.jobname, r.day AS bucket, r.succeeded + r.failed AS runs, r.succeeded, r.failed,
           0::bigint AS running, r.timed_runs AS timed, r.dur_sum_ms AS ms_sum, r.dur_max_ms AS ms_max, r.hist,
           r.max_runid AS last_runid, r.max_failed_runid AS last_failed_runid
      FROM cronkit.run_rollup_day r
     WHERE r.day >= %(day_start)s::timestamptz AND r.day < %(day_end)s::timestamptz
       AND (%(jobids)s::bigint[] IS NULL OR r.jobid = ANY(%(jobids)s::bigint[]))
    UNION ALL
    SELECT r.jobid, r.jobname, r.bucket, r.succeeded + r.failed AS runs, r.succeeded, r.failed,
           0::bigint, r.timed_runs, r.dur_sum_ms, r.dur_max_ms, r.hist, r.max_runid, r.max_failed_runid
      FROM cronkit.run_rollup_hour r
     WHERE ((r.bucket >= %(full_start)s::timestamptz AND r.bucket < %(day_start)s::timestamptz)
            OR (r.bucket >= %(day_end)s::timestamptz AND r.bucket < %(full_end)s::timestamptz))
       AND (%(jobids)s::bigint[] IS NULL OR r.jobid = ANY(%(jobids)s::bigint[]))
    UNION ALL
    SELECT * FROM raw
)
