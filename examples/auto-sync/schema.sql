-- Seed 001 (Golioth auto-sync): the schedules the `auto-sync-cron` Edge Function checks.
-- Columns as in the guide: frequency_minutes, enabled, last_run_at, next_run_at,
-- time_window_start/end (UTC), per integration. "Automatically calculates next_run_at via
-- trigger": a new schedule is due at once; changing the frequency moves the next run.
-- Idempotent. The pg_cron_secrets table and the cron job come from cronkit.

CREATE TABLE IF NOT EXISTS auto_sync_schedules (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    integration_id    uuid        NOT NULL,
    frequency_minutes integer     NOT NULL CHECK (frequency_minutes > 0),
    enabled           boolean     NOT NULL DEFAULT true,
    last_run_at       timestamptz,
    next_run_at       timestamptz,
    -- NULL start or end: no window. start > end: the window spans midnight (UTC).
    time_window_start time,
    time_window_end   time,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS auto_sync_schedules_due_idx
    ON auto_sync_schedules (next_run_at) WHERE enabled;

CREATE OR REPLACE FUNCTION auto_sync_schedules_set_next_run()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.next_run_at IS NULL THEN
        NEW.next_run_at := now();
    ELSIF TG_OP = 'UPDATE' AND NEW.frequency_minutes IS DISTINCT FROM OLD.frequency_minutes THEN
        NEW.next_run_at := coalesce(NEW.last_run_at, now()) + make_interval(mins => NEW.frequency_minutes);
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS auto_sync_schedules_next_run ON auto_sync_schedules;
CREATE TRIGGER auto_sync_schedules_next_run
    BEFORE INSERT OR UPDATE OF frequency_minutes ON auto_sync_schedules
    FOR EACH ROW EXECUTE FUNCTION auto_sync_schedules_set_next_run();
