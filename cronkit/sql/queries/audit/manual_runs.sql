-- Runs started by hand in a window, oldest first (the monitor charts them beside pg_cron's runs).
SELECT m.id, m.jobname, m.slot, m.started_at, m.ended_at, m.status, m.request_id, m.message,
       extract(epoch FROM m.ended_at - m.started_at) * 1000 AS duration_ms, a.db_role, a.os_user
  FROM cronkit.manual_runs m
  LEFT JOIN cronkit.audit_log a ON a.id = m.audit_id
 WHERE m.started_at >= %(since)s::timestamptz AND m.started_at < %(until)s::timestamptz
   AND (%(names)s::text[] IS NULL OR m.jobname = ANY(%(names)s::text[]))
 ORDER BY m.started_at
