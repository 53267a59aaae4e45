-- Whether the server has a pg_cron package at all.
select name, default_version, installed_version from pg_available_extensions where name = 'pg_cron'
