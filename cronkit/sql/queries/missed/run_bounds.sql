-- Per job: its last run before the window and its first run inside it (anchors without a registry).
SELECT jobid,
       max(start_time) FILTER (WHERE start_time < %(since)s) AS last_before,
       min(start_time) FILTER (WHERE start_time >= %(since)s) AS first_in_window
  FROM cron.job_run_details
 GROUP BY jobid
