-- One entry of the change record, in the caller's transaction (the change and its entry commit together).
INSERT INTO cronkit.audit_log (action, project, target, summary, os_user, host, details)
VALUES (%(action)s, %(project)s, %(target)s, %(summary)s, %(os_user)s, %(host)s, %(details)s::jsonb)
RETURNING id
