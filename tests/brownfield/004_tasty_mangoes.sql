-- Guide 004 (Tasty Mangoes), as its migrations 016/017/020 leave it: the URL and key in app.settings.*
-- (ALTER DATABASE, run here as a superuser), three call_* helpers, four jobs. The schedules are UTC
-- renderings of Los Angeles times ("03:00 America/Los_Angeles (11:00 UTC)").
ALTER DATABASE postgres SET app.settings.supabase_url = '__SUPABASE_URL__';
ALTER DATABASE postgres SET app.settings.service_role_key = '__SERVICE_ROLE_KEY__';

CREATE OR REPLACE FUNCTION public.call_scheduled_ingest(p_source TEXT, p_max_movies INT, p_trigger_type TEXT)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
  request_id bigint;
BEGIN
  SELECT net.http_post(
    url := current_setting('app.settings.supabase_url') || '/functions/v1/scheduled-ingest',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || current_setting('app.settings.service_role_key')
    ),
    body := jsonb_build_object('source', p_source, 'max_movies', p_max_movies, 'trigger_type', p_trigger_type)
  ) INTO request_id;
  RETURN request_id;
END;
$$;

CREATE OR REPLACE FUNCTION public.call_daily_refresh()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
  request_id bigint;
BEGIN
  SELECT net.http_post(
    url := current_setting('app.settings.supabase_url') || '/functions/v1/daily-refresh',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || current_setting('app.settings.service_role_key')
    ),
    body := '{}'::jsonb
  ) INTO request_id;
  RETURN request_id;
END;
$$;

CREATE OR REPLACE FUNCTION public.call_refresh_worker()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
  request_id bigint;
BEGIN
  SELECT net.http_post(
    url := current_setting('app.settings.supabase_url') || '/functions/v1/refresh-worker',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || current_setting('app.settings.service_role_key')
    ),
    body := '{}'::jsonb
  ) INTO request_id;
  RETURN request_id;
END;
$$;

SELECT cron.schedule('scheduled_ingest_daily', '0 11 * * *', $$SELECT call_scheduled_ingest('mixed_daily', 30, 'scheduled');$$);
SELECT cron.schedule('scheduled_ingest_weekly', '0 10 * * 0', $$SELECT call_scheduled_ingest('mixed_weekly', 80, 'scheduled');$$);
SELECT cron.schedule('daily_refresh_enqueue', '30 11 * * *', $$SELECT call_daily_refresh();$$);
SELECT cron.schedule('refresh_worker', '*/10 * * * *', $$SELECT call_refresh_worker();$$);
