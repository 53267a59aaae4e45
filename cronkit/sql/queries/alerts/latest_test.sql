-- The newest test message of a project's channel.
SELECT id, created_at, channel, channel_kind, event, request_id, status, note
  FROM cronkit.alert_deliveries
 WHERE project = %(project)s AND channel = %(channel)s AND event = 'test'
 ORDER BY id DESC
 LIMIT 1
