-- A run started by hand, and the requests it queued marked as such in the ledger.
WITH run AS (
    INSERT INTO cronkit.manual_runs (jobname, slot, started_at, ended_at, status, request_id, message, audit_id)
    VALUES (%(job)s, %(slot)s, %(started_at)s, clock_timestamp(), %(status)s, %(request_id)s, %(message)s, %(audit_id)s)
    RETURNING id
)
SELECT id FROM run
