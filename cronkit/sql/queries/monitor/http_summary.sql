-- HTTP outcomes per job: one count per outcome class and the newest error, from rollups, harvested and live responses.
WITH {units},
per_job AS (
    SELECT jobname, sum(n)::bigint AS requests, {pivot} FROM units GROUP BY jobname
), live_error AS (
    -- the newest error among the responses not harvested yet (only live rows carry one)
    SELECT DISTINCT ON (jobname) jobname, error_at, error FROM live
     WHERE error_at IS NOT NULL ORDER BY jobname, error_at DESC
), jobs AS (
    SELECT m.jobname FROM cronkit.managed_jobs m
     WHERE m.spec ->> 'kind' = 'http' AND (%(names)s::text[] IS NULL OR m.jobname = ANY(%(names)s::text[]))
    UNION
    SELECT jobname FROM per_job
)
SELECT jobs.jobname, coalesce(p.requests, 0) AS requests, {coalesced},
       CASE WHEN le.error_at >= e.requested_at OR e.requested_at IS NULL THEN le.error_at
            ELSE e.requested_at END AS last_error_at,
       CASE WHEN le.error_at >= e.requested_at OR e.requested_at IS NULL THEN le.error
            ELSE e.error END AS last_error
  FROM jobs
  LEFT JOIN per_job p ON p.jobname = jobs.jobname
  LEFT JOIN live_error le ON le.jobname = jobs.jobname
  LEFT JOIN LATERAL (
      -- the partial index (jobname, requested_at) WHERE outcome <> '2xx' makes this one probe
      SELECT h.requested_at,
             h.outcome || ': ' || coalesce(h.error_msg, h.status_code::text || coalesce(' ' || h.excerpt, ''), 'no response within pg_net.ttl') AS error
        FROM cronkit.http_responses h
       WHERE h.jobname = jobs.jobname AND h.outcome <> '2xx'
         AND h.requested_at >= %(since)s::timestamptz AND h.requested_at < %(until)s::timestamptz
       ORDER BY h.requested_at DESC LIMIT 1
  ) e ON true
 ORDER BY jobs.jobname
