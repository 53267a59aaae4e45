-- cronkit sandbox bootstrap, run once as the extension-owning superuser (supabase_admin)
-- right after initdb. It reproduces the parts of a Supabase database that scheduled jobs touch:
-- roles, the extensions' schemas, and the grants Supabase gives its `postgres` role
-- (reference: ../shared/reference/pg_cron_pg_net_vault.md §1.10, §2.8, §3.3).
-- The app role's password is set separately (as a SCRAM verifier, never as text in a query).

-- Supabase's `postgres` is not a superuser: it is demoted to exactly these attributes.
CREATE ROLE postgres LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS;
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
GRANT anon, authenticated, service_role TO postgres;

-- The app role owns the database and the public schema, as on Supabase; it still cannot
-- `ALTER DATABASE ... SET app.*` (custom GUCs need a superuser), which is the point.
ALTER DATABASE postgres OWNER TO postgres;
ALTER SCHEMA public OWNER TO postgres;

CREATE SCHEMA extensions;
GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;
CREATE EXTENSION pgcrypto WITH SCHEMA extensions;

-- pg_cron lives in pg_catalog on Supabase; its tables and functions in schema cron.
CREATE EXTENSION pg_cron WITH SCHEMA pg_catalog;
GRANT USAGE ON SCHEMA cron TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA cron TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL TABLES IN SCHEMA cron TO postgres WITH GRANT OPTION;
GRANT ALL ON ALL SEQUENCES IN SCHEMA cron TO postgres WITH GRANT OPTION;
-- Supabase migration 20231020085357: jobs change only through cron.* functions.
REVOKE ALL ON TABLE cron.job FROM postgres;
GRANT SELECT ON TABLE cron.job TO postgres;
-- Supabase migration 20260730000000: no triggers on run history (DELETE stays).
REVOKE TRIGGER ON TABLE cron.job_run_details FROM postgres;

-- Stand-ins with the real extensions' SQL surface (cronkit_sandbox/standins/).
CREATE EXTENSION pg_net WITH SCHEMA extensions;
CREATE EXTENSION supabase_vault;
