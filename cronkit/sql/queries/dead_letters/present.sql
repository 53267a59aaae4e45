-- Whether this database has the dead letter table (created by `cronkit apply` with schema cronkit).
SELECT to_regclass('cronkit.dead_letters') IS NOT NULL AS present
