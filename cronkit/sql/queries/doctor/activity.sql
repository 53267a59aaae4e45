-- Every session: application_name, datname and pid are visible to every role; backend_type and
-- backend_start only with pg_read_all_stats (NULL otherwise).
select pid, datname, usename, application_name, backend_type, backend_start from pg_stat_activity
