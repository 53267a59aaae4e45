-- The source of the functions job commands call (outside the extensions' own schemas).
select n.nspname, p.proname, p.oid::regprocedure::text as signature, p.prosrc
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where p.proname = any(%(names)s)
   and n.nspname not in ('pg_catalog', 'information_schema', 'cron', 'net', 'vault')
   and p.prokind in ('f', 'p')
