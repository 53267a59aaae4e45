-- How long pg_net keeps responses (its default when the setting is not visible).
select coalesce(nullif(current_setting('pg_net.ttl', true), ''), '6 hours')::interval as ttl
