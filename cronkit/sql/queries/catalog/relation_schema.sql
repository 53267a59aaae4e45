-- The schema of a table named without one, as the search path resolves it (NULL: none visible).
select n.nspname as schema
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.oid = to_regclass(quote_ident(%(name)s))
