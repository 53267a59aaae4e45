-- Mark an open dead letter replayed (with the replay's first request) or dropped.
UPDATE cronkit.dead_letters
   SET state = %(state)s, resolved_at = now(), replay_request_id = %(request_id)s
 WHERE id = %(id)s AND state = 'open'
