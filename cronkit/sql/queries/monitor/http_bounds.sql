-- The bookkeeping an HTTP read needs, computed first (like _BOUNDS) so the reads below have
-- constant bounds: the whole hours [full_start, full_end) read from cronkit.http_rollup, the
-- watermark, where unresolved requests may start, and the moment before which a request without
-- a response is expired.
SELECT CASE WHEN date_trunc('hour', %(since)s::timestamptz, 'UTC') = %(since)s::timestamptz THEN %(since)s::timestamptz
            ELSE date_trunc('hour', %(since)s::timestamptz, 'UTC') + interval '1 hour' END AS full_start,
       greatest(date_trunc('hour', %(until)s::timestamptz, 'UTC'), %(since)s::timestamptz) AS full_end,
       s.http_watermark AS wm,
       greatest(%(since)s::timestamptz, s.expired_until) AS unresolved_from,
       now() - coalesce(nullif(current_setting('pg_net.ttl', true), '')::interval, interval '6 hours') AS expired_before
  FROM cronkit.monitor_state s WHERE s.id
