-- Guide 000 (Instagram sync), as its seed.sql sets it up by hand: two Vault secrets, a wrapper that
-- checks them and calls the worker, and a job every 10 seconds. Adapted only to point at the sandbox
-- (__SUPABASE_URL__, __SERVICE_ROLE_KEY__ are filled in by the test).
SELECT vault.create_secret('__SUPABASE_URL__/functions/v1/process-instagram-imports', 'instagram_worker_url',
                           'Edge Function URL for the Instagram import worker');
SELECT vault.create_secret('__SERVICE_ROLE_KEY__', 'supabase_service_role_key', 'Service role key for pg_cron');

CREATE OR REPLACE FUNCTION invoke_instagram_worker()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
AS $$
DECLARE
  worker_url TEXT;
  service_key TEXT;
  request_id BIGINT;
BEGIN
  SELECT decrypted_secret INTO worker_url FROM vault.decrypted_secrets WHERE name = 'instagram_worker_url';
  SELECT decrypted_secret INTO service_key FROM vault.decrypted_secrets WHERE name = 'supabase_service_role_key';

  IF worker_url IS NULL OR service_key IS NULL THEN
    RAISE EXCEPTION 'Missing vault secrets: instagram_worker_url or supabase_service_role_key';
  END IF;

  SELECT net.http_post(
    url := worker_url,
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || service_key
    ),
    body := '{}'::jsonb
  ) INTO request_id;

  RETURN request_id;
END;
$$;

SELECT cron.schedule('process-instagram-imports', '10 seconds', 'SELECT invoke_instagram_worker();');
