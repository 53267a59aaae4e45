-- The newest messages of a project and what became of each (the payload is alert text only).
SELECT id, created_at, channel, channel_kind, event, subject, rule, attempt, status, status_code,
       retry_after_s, retry_at, note
  FROM cronkit.alert_deliveries
 WHERE project = %(project)s
 ORDER BY id DESC
 LIMIT %(limit)s
