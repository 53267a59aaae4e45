-- Whether cronkit's alert tables exist (an apply with this cronkit version created them).
SELECT to_regclass('cronkit.alert_state') IS NOT NULL AND to_regclass('cronkit.alert_deliveries') IS NOT NULL AS ready
