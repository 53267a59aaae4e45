-- Whether cronkit's registry exists in this database (an older or absent schema is not an error).
-- Read from the catalogs, so a role without USAGE on schema cronkit gets an answer, not an error.
SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'cronkit' AND c.relname = 'managed_jobs') AS ok
