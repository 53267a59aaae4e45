-- What the connected role may read, from the catalogs (which every role may read): no lookup here
-- can fail for lack of a privilege. NULL: the object does not exist in this database.
WITH s AS (
    SELECT nspname, has_schema_privilege(oid, 'USAGE') AS usage
      FROM pg_namespace WHERE nspname IN ('cron', 'cronkit', 'net')
), t AS (
    SELECT n.nspname || '.' || c.relname AS name, has_table_privilege(c.oid, 'SELECT') AS can_select
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE (n.nspname, c.relname) IN (('cron', 'job'), ('cron', 'job_run_details'), ('cronkit', 'managed_jobs'),
                                       ('cronkit', 'request_ledger'), ('net', '_http_response'))
)
SELECT current_user AS role,
       (SELECT usage FROM s WHERE nspname = 'cron') AS cron_usage,
       (SELECT can_select FROM t WHERE name = 'cron.job') AS cron_job,
       (SELECT can_select FROM t WHERE name = 'cron.job_run_details') AS cron_runs,
       (SELECT usage FROM s WHERE nspname = 'cronkit') AS cronkit_usage,
       (SELECT can_select FROM t WHERE name = 'cronkit.managed_jobs') AS registry,
       (SELECT can_select FROM t WHERE name = 'cronkit.request_ledger') AS ledger,
       (SELECT usage FROM s WHERE nspname = 'net') AS net_usage,
       (SELECT can_select FROM t WHERE name = 'net._http_response') AS responses
