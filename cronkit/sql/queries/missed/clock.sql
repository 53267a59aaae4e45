-- The server's clock and when it last started (a restart forgets pending runs).
SELECT now() AS now, pg_postmaster_start_time() AS started_at
