-- The subjects of a project that are down now, oldest incident first.
SELECT rule, check_kind, subject, since, detail, notified
  FROM cronkit.alert_state
 WHERE project = %(project)s AND status = 'down'
 ORDER BY since, rule, subject
