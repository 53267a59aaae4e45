-- The server's clock, whether it is a standby, and when it started.
select now() as now, pg_is_in_recovery() as in_recovery, pg_postmaster_start_time() as started_at
