-- Seed 001: one schedule of each kind the function must tell apart. Re-runnable (fixed ids).
-- Windows are relative to the time the seed runs, so "outside its window" holds for an hour.
INSERT INTO auto_sync_schedules
    (id, integration_id, frequency_minutes, enabled, last_run_at, next_run_at, time_window_start, time_window_end)
VALUES
    -- due, no window: runs
    ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000a1', 15, true,
     now() - interval '20 minutes', now() - interval '5 minutes', NULL, NULL),
    -- due, inside a window around now: runs
    ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-0000000000a2', 60, true,
     NULL, now() - interval '1 minute',
     ((now() AT TIME ZONE 'UTC') - interval '1 hour')::time, ((now() AT TIME ZONE 'UTC') + interval '1 hour')::time),
    -- due, but its window opens in an hour: skipped
    ('00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-0000000000a3', 30, true,
     NULL, now() - interval '1 minute',
     ((now() AT TIME ZONE 'UTC') + interval '1 hour')::time, ((now() AT TIME ZONE 'UTC') + interval '2 hours')::time),
    -- not due yet: skipped
    ('00000000-0000-4000-8000-000000000004', '00000000-0000-4000-8000-0000000000a4', 5, true,
     now(), now() + interval '5 minutes', NULL, NULL),
    -- disabled: skipped
    ('00000000-0000-4000-8000-000000000005', '00000000-0000-4000-8000-0000000000a5', 5, false,
     NULL, now() - interval '1 hour', NULL, NULL)
ON CONFLICT (id) DO NOTHING;
