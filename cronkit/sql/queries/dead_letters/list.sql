-- Dead letters (cronkit.dead_letters, sql/schema_retries.sql), newest first, optionally of one project
-- and in one state.
SELECT id, project, jobname, idempotency_key, first_request_id, last_request_id, attempts, outcome, status_code,
       error_msg, excerpt, evidence, created_at, state, resolved_at, replay_request_id
  FROM cronkit.dead_letters
 WHERE (%(project)s::text IS NULL OR project = %(project)s::text)
   AND (%(state)s::text IS NULL OR state = %(state)s::text)
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s
