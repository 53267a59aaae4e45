-- Seed 000: a few pending imports and one already done. Re-runnable (fixed ids, ON CONFLICT).
INSERT INTO instagram_imports (id, instagram_url, status, created_at, processed_at) VALUES
    (1, 'https://www.instagram.com/p/sandbox-0001/', 'pending',   now() - interval '3 minutes', NULL),
    (2, 'https://www.instagram.com/p/sandbox-0002/', 'pending',   now() - interval '2 minutes', NULL),
    (3, 'https://www.instagram.com/p/sandbox-0003/', 'pending',   now() - interval '1 minute',  NULL),
    (4, 'https://www.instagram.com/p/sandbox-0004/', 'completed', now() - interval '1 hour',    now() - interval '59 minutes')
ON CONFLICT (id) DO NOTHING;

-- Explicit ids do not advance the identity sequence; move it past them.
SELECT setval(pg_get_serial_sequence('instagram_imports', 'id'), (SELECT max(id) FROM instagram_imports));
