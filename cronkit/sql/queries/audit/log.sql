-- The change record, newest first, optionally for one project and/or one target.
SELECT id, at, action, project, target, summary, db_role, session_role, os_user, host,
       host(client_addr) AS client_addr, application, details
  FROM cronkit.audit_log
 WHERE (%(project)s::text IS NULL OR project = %(project)s::text)
   AND (%(target)s::text IS NULL OR target = %(target)s::text)
   AND (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
 ORDER BY at DESC, id DESC
 LIMIT %(limit)s
