-- The definition of a function a job's command calls, as pg_get_functiondef prints it. Unqualified
-- names resolve the way the job would: the first schema of the search path that has the function.
select n.nspname as schema, p.proname as name, pg_get_functiondef(p.oid) as definition,
       p.oid::regprocedure::text as signature
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  left join lateral unnest(current_schemas(false)) with ordinality as s(nspname, position) on s.nspname = n.nspname
 where p.proname = %(name)s
   and p.prokind = 'f'
   and (n.nspname = %(schema)s or (%(schema)s::text is null and s.position is not null))
 order by s.position nulls last
 limit 1
