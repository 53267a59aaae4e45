-- The bookkeeping a rollup read needs, computed first so the reads below have constant bounds the
-- planner turns into primary-key range scans: the whole hours [full_start, full_end) inside the
-- window; the whole UTC days [day_start, day_end) inside those (read from the daily level; empty,
-- i.e. both equal full_end, when the window holds no whole day, when ``days`` is false, or while
-- the daily level is not built yet); the watermark and open set; and the runid ranges of the
-- rolled-up runs of the two partial edge hours (all rolled-up runs of a bucket lie in
-- [min_runid, max_runid] of its rows).
WITH b AS (
    SELECT date_trunc('hour', %(since)s::timestamptz, 'UTC') AS lead_bucket,
           CASE WHEN date_trunc('hour', %(since)s::timestamptz, 'UTC') = %(since)s::timestamptz THEN %(since)s::timestamptz
                ELSE date_trunc('hour', %(since)s::timestamptz, 'UTC') + interval '1 hour' END AS full_start,
           date_trunc('hour', %(until)s::timestamptz, 'UTC') AS full_end
), d AS (
    SELECT b.*,
           CASE WHEN date_trunc('day', b.full_start, 'UTC') = b.full_start THEN b.full_start
                ELSE date_trunc('day', b.full_start, 'UTC') + interval '1 day' END AS first_day,
           date_trunc('day', b.full_end, 'UTC') AS end_day
      FROM b
)
SELECT d.full_start, d.full_end,
       CASE WHEN %(days)s AND s.day_rollup_ready AND d.first_day < d.end_day THEN d.first_day ELSE d.full_end END AS day_start,
       CASE WHEN %(days)s AND s.day_rollup_ready AND d.first_day < d.end_day THEN d.end_day ELSE d.full_end END AS day_end,
       s.run_watermark AS wm,
       (SELECT coalesce(array_agg(runid), '{}') FROM cronkit.run_rollup_open) AS open_ids,
       lead.lo AS lead_lo, lead.hi AS lead_hi, trail.lo AS trail_lo, trail.hi AS trail_hi
  FROM d
 CROSS JOIN cronkit.monitor_state s
 CROSS JOIN LATERAL (SELECT min(r.min_runid) AS lo, max(r.max_runid) AS hi FROM cronkit.run_rollup_hour r
                      WHERE r.bucket = d.lead_bucket AND d.lead_bucket < d.full_start
                        AND (%(jobids)s::bigint[] IS NULL OR r.jobid = ANY(%(jobids)s::bigint[]))) AS lead
 CROSS JOIN LATERAL (SELECT min(r.min_runid) AS lo, max(r.max_runid) AS hi FROM cronkit.run_rollup_hour r
                      WHERE r.bucket = d.full_end AND d.full_end < %(until)s::timestamptz AND d.full_end >= d.full_start
                        AND (%(jobids)s::bigint[] IS NULL OR r.jobid = ANY(%(jobids)s::bigint[]))) AS trail
 WHERE s.id
