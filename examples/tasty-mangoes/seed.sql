-- Seed 004: movies of every age, some stale, one queued refresh. Re-runnable (fixed ids).
INSERT INTO works (id, tmdb_id, title, release_date, last_refreshed_at) VALUES
    (1, 900001, 'Fresh Release',     current_date - 10,   now() - interval '3 days'),   -- stale (2-day rule)
    (2, 900002, 'Recent Hit',        current_date - 90,   now() - interval '1 day'),    -- fresh (7-day rule)
    (3, 900003, 'Last Year',         current_date - 300,  now() - interval '20 days'),  -- stale (14-day rule)
    (4, 900004, 'Classic',           current_date - 4000, now() - interval '10 days'),  -- fresh (30-day rule)
    (5, 900005, 'Never Refreshed',   current_date - 40,   NULL),                        -- stale
    (6, 900006, 'Already Queued',    current_date - 5,    NULL)                         -- stale, already queued
ON CONFLICT (id) DO NOTHING;

INSERT INTO refresh_queue (id, work_id, status, priority) VALUES
    (1, 6, 'queued', 3)
ON CONFLICT DO NOTHING;

INSERT INTO sync_state (sync_type, last_sync_at) VALUES
    ('daily_refresh_stale', now() - interval '1 day')
ON CONFLICT (sync_type) DO NOTHING;

SELECT setval(pg_get_serial_sequence('works', 'id'), (SELECT max(id) FROM works));
SELECT setval(pg_get_serial_sequence('refresh_queue', 'id'), (SELECT max(id) FROM refresh_queue));
