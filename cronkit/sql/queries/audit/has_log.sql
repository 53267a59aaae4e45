-- Whether the change record exists (writable: whether this role may add to it).
SELECT to_regclass('cronkit.audit_log') IS NOT NULL AS present,
       coalesce(has_table_privilege(to_regclass('cronkit.audit_log'), 'INSERT'), false) AS writable
