-- Units: rollup rows of the whole hours; durable rows that are not in them (in a partial edge
-- hour: [since, full_start) and [full_end, until), each an index range on requested_at; or newer
-- than the watermark: an index range on seq); and requests without a durable row yet. Buckets
-- are the bucket parameter long (an hour, or whole hours; shorter only when no rollup row is read), binned
-- from midnight UTC.
resolved AS (
    -- rolled-up whole hours
    SELECT r.jobname, date_bin(%(bucket)s::interval, r.bucket, %(origin)s::timestamptz) AS bucket, r.outcome, r.requests AS n, NULL::timestamptz AS error_at, NULL::text AS error
      FROM cronkit.http_rollup r
     WHERE r.bucket >= %(full_start)s::timestamptz AND r.bucket < %(full_end)s::timestamptz
       AND (%(names)s::text[] IS NULL OR r.jobname = ANY(%(names)s::text[]))
    UNION ALL
    -- durable rows not in those rollup rows
    SELECT h.jobname, date_bin(%(bucket)s::interval, h.requested_at, %(origin)s::timestamptz), h.outcome, 1, NULL, NULL
      FROM cronkit.http_responses h
     WHERE ((h.requested_at >= %(lead_lo)s::timestamptz AND h.requested_at < %(lead_hi)s::timestamptz)
            OR (h.requested_at >= %(trail_lo)s::timestamptz AND h.requested_at < %(trail_hi)s::timestamptz)
            OR (h.seq > %(wm)s::bigint AND h.requested_at >= %(full_start)s::timestamptz AND h.requested_at < %(full_end)s::timestamptz))
       AND (%(names)s::text[] IS NULL OR h.jobname = ANY(%(names)s::text[]))
), unresolved AS (
    -- requests with no durable row yet: at most pg_net.ttl old once the harvest job runs
    -- (a primary-key probe per request: as NOT EXISTS the planner may hash all of http_responses)
    SELECT l.jobname, l.request_id, l.created_at
      FROM cronkit.request_ledger l
      LEFT JOIN LATERAL (SELECT true AS found FROM cronkit.http_responses h
                          WHERE h.request_id = l.request_id LIMIT 1) AS durable ON true
     WHERE l.created_at >= %(unresolved_from)s::timestamptz AND l.created_at < %(until)s::timestamptz
       AND (%(names)s::text[] IS NULL OR l.jobname = ANY(%(names)s::text[]))
       AND durable.found IS NULL
), live AS (
    SELECT u.jobname, date_bin(%(bucket)s::interval, u.created_at, %(origin)s::timestamptz) AS bucket,
           {live_outcome} AS outcome, 1 AS n, {live_error_at} AS error_at, {live_error} AS error
      FROM unresolved u {live_join}
), units AS (
    SELECT * FROM resolved UNION ALL SELECT * FROM live
)
