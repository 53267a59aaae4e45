-- Per job, the outcome class of its newest request since a moment (cronkit.http_outcome, the SQL
-- mirror of cronkit.outcomes.classify): harvested answer, else pg_net's live row, else 'pending'.
SELECT j.name AS jobname, last.outcome
  FROM unnest(%(names)s::text[], %(since)s::timestamptz[]) AS j(name, since)
  LEFT JOIN LATERAL (
        SELECT coalesce(h.outcome,
                        CASE WHEN r.id IS NOT NULL THEN cronkit.http_outcome(r.status_code, r.timed_out, r.error_msg) END,
                        'pending') AS outcome
          FROM cronkit.request_ledger l
          LEFT JOIN cronkit.http_responses h ON h.request_id = l.request_id
          LEFT JOIN net._http_response r ON r.id = l.request_id
         WHERE l.jobname = j.name AND l.created_at >= j.since
         ORDER BY l.created_at DESC, l.request_id DESC
         LIMIT 1) last ON true
 ORDER BY 1
