-- Guide 002 (Split Lease → Bubble), steps 5-8 as written; the Vault secrets it assumes exist.
SELECT vault.create_secret('__SUPABASE_URL__', 'supabase_url', 'Supabase project URL for pg_net calls');
SELECT vault.create_secret('__SERVICE_ROLE_KEY__', 'service_role_key', 'Service role key for authenticating');

CREATE OR REPLACE FUNCTION invoke_bubble_sync_processor()
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    response_id BIGINT;
    supabase_url TEXT;
    service_role_key TEXT;
    pending_count INTEGER;
BEGIN
    -- Check if there are pending items
    SELECT COUNT(*) INTO pending_count
    FROM sync_queue
    WHERE status = 'pending'
      AND operation IN ('SIGNUP_ATOMIC', 'INSERT', 'UPDATE');

    -- Exit early if no pending items
    IF pending_count = 0 THEN
        RAISE NOTICE '[bubble_sync_processor] No pending items in queue';
        RETURN;
    END IF;

    RAISE NOTICE '[bubble_sync_processor] Found % pending items, invoking Edge Function', pending_count;

    -- Get secrets from vault
    SELECT decrypted_secret INTO supabase_url
    FROM vault.decrypted_secrets
    WHERE name = 'supabase_url';

    SELECT decrypted_secret INTO service_role_key
    FROM vault.decrypted_secrets
    WHERE name = 'service_role_key';

    -- Validate secrets exist
    IF supabase_url IS NULL OR service_role_key IS NULL THEN
        RAISE WARNING '[bubble_sync_processor] Vault secrets not configured. Please create supabase_url and service_role_key';
        RETURN;
    END IF;

    -- Invoke bubble_sync Edge Function via pg_net
    SELECT net.http_post(
        url := supabase_url || '/functions/v1/bubble_sync',
        headers := jsonb_build_object(
            'Content-Type', 'application/json',
            'Authorization', 'Bearer ' || service_role_key
        ),
        body := jsonb_build_object(
            'action', 'process_queue_data_api',
            'payload', jsonb_build_object(
                'limit', 10,
                'batch_size', 5
            )
        ),
        timeout_milliseconds := 30000
    ) INTO response_id;

    RAISE NOTICE '[bubble_sync_processor] Edge Function invoked, request ID: %', response_id;
END;
$$;

COMMENT ON FUNCTION invoke_bubble_sync_processor() IS 'Invokes bubble_sync Edge Function to process pending sync_queue items (main processor)';

CREATE OR REPLACE FUNCTION invoke_bubble_sync_retry()
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    response_id BIGINT;
    supabase_url TEXT;
    service_role_key TEXT;
    failed_count INTEGER;
BEGIN
    -- Check if there are failed items ready for retry
    SELECT COUNT(*) INTO failed_count
    FROM sync_queue
    WHERE status = 'failed'
      AND retry_count < max_retries
      AND (next_retry_at IS NULL OR next_retry_at <= NOW());

    -- Exit early if no failed items
    IF failed_count = 0 THEN
        RAISE NOTICE '[bubble_sync_retry] No failed items to retry';
        RETURN;
    END IF;

    RAISE NOTICE '[bubble_sync_retry] Found % failed items to retry', failed_count;

    -- Get secrets from vault
    SELECT decrypted_secret INTO supabase_url
    FROM vault.decrypted_secrets
    WHERE name = 'supabase_url';

    SELECT decrypted_secret INTO service_role_key
    FROM vault.decrypted_secrets
    WHERE name = 'service_role_key';

    -- Validate secrets exist
    IF supabase_url IS NULL OR service_role_key IS NULL THEN
        RAISE WARNING '[bubble_sync_retry] Vault secrets not configured';
        RETURN;
    END IF;

    -- Invoke bubble_sync Edge Function to retry failed items
    SELECT net.http_post(
        url := supabase_url || '/functions/v1/bubble_sync',
        headers := jsonb_build_object(
            'Content-Type', 'application/json',
            'Authorization', 'Bearer ' || service_role_key
        ),
        body := jsonb_build_object(
            'action', 'retry_failed',
            'payload', jsonb_build_object()
        ),
        timeout_milliseconds := 30000
    ) INTO response_id;

    RAISE NOTICE '[bubble_sync_retry] Retry request sent, ID: %', response_id;
END;
$$;

COMMENT ON FUNCTION invoke_bubble_sync_retry() IS 'Invokes bubble_sync Edge Function to retry failed sync items';

SELECT cron.unschedule('bubble-sync-processor') WHERE EXISTS (
    SELECT 1 FROM cron.job WHERE jobname = 'bubble-sync-processor'
);
SELECT cron.unschedule('bubble-sync-retry') WHERE EXISTS (
    SELECT 1 FROM cron.job WHERE jobname = 'bubble-sync-retry'
);

-- Main processor - every minute
SELECT cron.schedule(
    'bubble-sync-processor',
    '* * * * *',
    $$SELECT invoke_bubble_sync_processor()$$
);

-- Retry processor - every 5 minutes
SELECT cron.schedule(
    'bubble-sync-retry',
    '*/5 * * * *',
    $$SELECT invoke_bubble_sync_retry()$$
);
