-- Who besides its owner can read a secrets table: row level security off, and the roles among
-- PUBLIC, anon and authenticated (Supabase's API roles) that hold SELECT on it.
select c.relrowsecurity as rls,
       array(select r from unnest(array['public', 'anon', 'authenticated']) r
              where (r = 'public' and exists (select 1 from aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                                               where a.grantee = 0 and a.privilege_type = 'SELECT'))
                 or (r <> 'public' and exists (select 1 from pg_roles where rolname = r)
                     and has_table_privilege(r, c.oid, 'SELECT'))) as readers
  from pg_class c
 where c.oid = to_regclass(%(table)s)
