-- Guide 001 (auto-sync), as its three migrations leave it: a pg_cron_secrets table with RLS (the
-- "Vault bypass"), the service role key stored in it, and a job whose command reads it inline.
CREATE TABLE IF NOT EXISTS public.pg_cron_secrets (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE public.pg_cron_secrets ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.pg_cron_secrets FROM anon, authenticated;

INSERT INTO public.pg_cron_secrets (name, value) VALUES
  ('supabase_url', '__SUPABASE_URL__'),
  ('service_role_key', '__SERVICE_ROLE_KEY__')
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now();

SELECT cron.schedule(
  'auto-sync-cron-job',
  '*/5 * * * *',
  $$
  SELECT net.http_post(
    url := (SELECT value FROM public.pg_cron_secrets WHERE name = 'supabase_url') || '/functions/v1/auto-sync-cron',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || (SELECT value FROM public.pg_cron_secrets WHERE name = 'service_role_key')
    ),
    body := '{}'::jsonb
  ) AS request_id;
  $$
);
