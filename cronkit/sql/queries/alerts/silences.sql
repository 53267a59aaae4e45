-- Silences of a project that have not ended.
SELECT id, coalesce(subject, '(whole project)') AS subject, starts_at, ends_at, reason
  FROM cronkit.alert_silences
 WHERE project = %(project)s AND ends_at > now()
 ORDER BY ends_at
