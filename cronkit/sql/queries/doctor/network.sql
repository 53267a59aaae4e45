-- Where the server answered and saw the client, and traces of a Supabase (CLI) stack.
select host(inet_server_addr()) as server_addr, host(inet_client_addr()) as client_addr,
       inet_server_port() as server_port,
       exists (select 1 from pg_roles where rolname in ('supabase_admin', 'supabase_functions_admin')) as supabase_roles,
       exists (select 1 from pg_namespace where nspname = 'supabase_functions') as supabase_functions
