-- One dead letter, in any state (read only).
SELECT id, project, jobname, idempotency_key, first_request_id, last_request_id, attempts, outcome, status_code,
       error_msg, excerpt, evidence, created_at, state, resolved_at, replay_request_id
  FROM cronkit.dead_letters
 WHERE id = %(id)s
