-- Calling any pg_cron C function loads its library, and pg_cron refuses to load outside
-- shared_preload_libraries. unschedule(-1) finds no job, and the doctor's transaction is read-only.
select cron.unschedule(-1::bigint)
