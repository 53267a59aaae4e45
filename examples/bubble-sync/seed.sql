-- Seed 002: pending items of each processed operation, one DELETE the processor ignores, one
-- failed item ready for retry, one that used up its retries. Re-runnable (fixed ids).
INSERT INTO sync_queue
    (id, table_name, record_id, operation, payload, status, retry_count, max_retries, next_retry_at, error_message, created_at)
VALUES
    (1, 'user',    'u-1001', 'SIGNUP_ATOMIC', '{"email": "ada@example.test"}', 'pending', 0, 3, NULL, NULL, now() - interval '4 minutes'),
    (2, 'listing', 'l-2001', 'INSERT',        '{"title": "Loft"}',             'pending', 0, 3, NULL, NULL, now() - interval '3 minutes'),
    (3, 'listing', 'l-2001', 'UPDATE',        '{"price": 120}',                'pending', 0, 3, NULL, NULL, now() - interval '2 minutes'),
    (4, 'listing', 'l-2002', 'DELETE',        '{}',                            'pending', 0, 3, NULL, NULL, now() - interval '1 minute'),
    (5, 'user',    'u-1002', 'UPDATE',        '{"phone": "+10000000000"}',     'failed',  1, 3, now() - interval '1 minute', 'Bubble API 502', now() - interval '1 hour'),
    (6, 'user',    'u-1003', 'INSERT',        '{"email": "bob@example.test"}', 'failed',  3, 3, NULL, 'Bubble API 400', now() - interval '2 hours')
ON CONFLICT (id) DO NOTHING;

SELECT setval(pg_get_serial_sequence('sync_queue', 'id'), (SELECT max(id) FROM sync_queue));
