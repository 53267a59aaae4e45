-- Whether cronkit's monitoring schema is applied here AND the role may use it. Read from the
-- catalogs: a role without USAGE on schema cronkit gets false, not "permission denied".
SELECT coalesce(
         has_schema_privilege(n.oid, 'USAGE')
         AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'monitor_state'
                      AND has_table_privilege(c.oid, 'SELECT'))
         AND EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = n.oid AND p.proname = 'runid_at'),
         false) AS ok
  FROM (SELECT (SELECT oid FROM pg_namespace WHERE nspname = 'cronkit') AS oid) n
