-- Send a dead letter's call again: attempt 1 of a new chain with the same idempotency key, through the
-- job's wrapper (cronkit.send_attempt, sql/schema_retries.sql); the job's retry policy covers it again.
SELECT cronkit.send_attempt(%(job)s, %(key)s, 1, NULL) AS request_id
