-- Whether any job's run in the range failed with 'server restarted' (pg_cron's mark on runs a
-- restart cut short): then every job's activity is needed to place the restart.
SELECT EXISTS (
    SELECT 1 FROM cron.job_run_details d
     WHERE d.runid >= %(lo)s
       AND coalesce(d.start_time, d.end_time) >= %(since)s
       AND (%(until)s::timestamptz IS NULL OR coalesce(d.start_time, d.end_time) < %(until)s::timestamptz)
       AND d.status = 'failed'
       AND btrim(d.return_message, E' \t\n\r\f' || chr(11)) = 'server restarted'
) AS restarted
