-- last_outcome.sql for a database without pg_net's response table: harvested answers only.
SELECT j.name AS jobname, last.outcome
  FROM unnest(%(names)s::text[], %(since)s::timestamptz[]) AS j(name, since)
  LEFT JOIN LATERAL (
        SELECT coalesce(h.outcome, 'pending') AS outcome
          FROM cronkit.request_ledger l
          LEFT JOIN cronkit.http_responses h ON h.request_id = l.request_id
         WHERE l.jobname = j.name AND l.created_at >= j.since
         ORDER BY l.created_at DESC, l.request_id DESC
         LIMIT 1) last ON true
 ORDER BY 1
