-- Seed 003: two customers, bookings that give every function something to do, three pending
-- notifications. Times are relative to when the seed runs. Re-runnable (fixed ids).
INSERT INTO customers (id, name, email, whatsapp) VALUES
    (1, 'Ada Example', 'ada@example.test', '+10000000001'),
    (2, 'Bob Example', 'bob@example.test', NULL)
ON CONFLICT (id) DO NOTHING;

INSERT INTO bookings
    (id, customer_id, status, starts_at, amount_cents, payment_due_at, paid_at,
     escalation_level, escalated_at, requires_zoom, zoom_join_url)
VALUES
    -- completed yesterday (UTC): billed by generate-t5-invoices (and next month's monthly run)
    (1, 1, 'completed', (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '14 hours') AT TIME ZONE 'UTC', 4500, NULL, now() - interval '1 day', 0, NULL, false, NULL),
    (2, 2, 'completed', (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '10 hours') AT TIME ZONE 'UTC', 6000, NULL, now() - interval '1 day', 0, NULL, false, NULL),
    -- payment overdue, not escalated yet: escalate-overdue-bookings
    (3, 1, 'confirmed', now() + interval '3 days', 3000, now() - interval '2 days', NULL, 0, NULL, false, NULL),
    -- escalated two days ago and still unpaid: run-escalation-orchestration raises it
    (4, 2, 'confirmed', now() + interval '5 days', 3000, now() - interval '5 days', NULL, 1, now() - interval '2 days', false, NULL),
    -- online session tomorrow morning without a meeting: schedule-create-zoom
    (5, 1, 'confirmed', now() + interval '20 hours', 2500, now() + interval '1 day', NULL, 0, NULL, true, NULL),
    -- online session next week: only with {"force_invoke": true}
    (6, 2, 'confirmed', now() + interval '7 days', 2500, now() + interval '7 days', NULL, 0, NULL, true, NULL)
ON CONFLICT (id) DO NOTHING;

INSERT INTO notifications (id, channel, recipient, template, payload, created_at) VALUES
    (1, 'whatsapp', '+10000000001',     'payment_reminder',     '{"booking_id": 3}', now() - interval '3 minutes'),
    (2, 'email',    'bob@example.test', 'booking_confirmation', '{"booking_id": 6}', now() - interval '2 minutes'),
    (3, 'email',    'ada@example.test', 'class_notification',   '{"booking_id": 5}', now() - interval '1 minute')
ON CONFLICT (id) DO NOTHING;

SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers));
SELECT setval(pg_get_serial_sequence('bookings', 'id'), (SELECT max(id) FROM bookings));
SELECT setval(pg_get_serial_sequence('notifications', 'id'), (SELECT max(id) FROM notifications));
