-- Guide 003 (scheduled workflows moved from GitHub Actions), as its two migrations and the "update
-- secrets" step leave it: a cron_secrets table read through public.get_secret(), six jobs calling
-- net.http_post inline. One job was pasted with the service key written literally (the guide's
-- manual-trigger example with the value filled in) — the case the doctor must flag.
CREATE TABLE IF NOT EXISTS public.cron_secrets (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  description TEXT,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE public.cron_secrets ENABLE ROW LEVEL SECURITY;
REVOKE INSERT, UPDATE, DELETE ON public.cron_secrets FROM PUBLIC;

INSERT INTO public.cron_secrets (key, value, description) VALUES
  ('supabase_url', '__SUPABASE_URL__', 'Project URL'),
  ('service_role_key', '__SERVICE_ROLE_KEY__', 'Service role JWT'),
  ('cron_secret', '__CRON_SECRET__', 'Bearer token of run-escalation-orchestration'),
  ('edge_function_url', '__SUPABASE_URL__/functions/v1', 'Base URL of the scheduler endpoints'),
  ('scheduler_secret_token', '__SCHEDULER_TOKEN__', 'x-scheduler-token of schedule-create-zoom')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now();

CREATE OR REPLACE FUNCTION public.get_secret(secret_key TEXT)
RETURNS TEXT
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = public
AS $$
  SELECT value FROM public.cron_secrets WHERE key = secret_key;
$$;

SELECT cron.schedule('generate-t5-invoices', '0 1 * * *', $$
  SELECT net.http_post(
    url := public.get_secret('supabase_url') || '/functions/v1/generate-t5-invoices',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || public.get_secret('service_role_key'),
      'apikey', public.get_secret('service_role_key')
    ),
    body := '{}'::jsonb
  );
$$);

SELECT cron.schedule('run-escalation-orchestration', '0 2 * * *', $$
  SELECT net.http_post(
    url := public.get_secret('supabase_url') || '/functions/v1/run-escalation-orchestration',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || public.get_secret('cron_secret')
    ),
    body := jsonb_build_object('force', false)
  );
$$);

SELECT cron.schedule('schedule-create-zoom', '*/15 * * * *', $$
  SELECT net.http_post(
    url := public.get_secret('edge_function_url') || '/schedule-create-zoom',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || public.get_secret('service_role_key'),
      'x-scheduler-token', public.get_secret('scheduler_secret_token')
    ),
    body := jsonb_build_object('force_invoke', false)
  );
$$);

SELECT cron.schedule('generate-monthly-invoices', '0 2 * * *', $$
  SELECT net.http_post(
    url := public.get_secret('supabase_url') || '/functions/v1/generate-monthly-invoices',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || public.get_secret('service_role_key')
    ),
    body := '{}'::jsonb
  );
$$);

SELECT cron.schedule('escalate-overdue-bookings', '0 6 * * *', $$
  SELECT net.http_post(
    url := '__SUPABASE_URL__/functions/v1/escalate-overdue-bookings',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer __SERVICE_ROLE_KEY__'
    ),
    body := '{}'::jsonb
  );
$$);

SELECT cron.schedule('notification-worker', '* * * * *', $$
  SELECT net.http_post(
    url := public.get_secret('supabase_url') || '/functions/v1/notification-worker',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || public.get_secret('service_role_key'),
      'apikey', public.get_secret('service_role_key')
    ),
    body := jsonb_build_object('limit', 5, 'runs', 1),
    timeout_milliseconds := 15000
  );
$$);
