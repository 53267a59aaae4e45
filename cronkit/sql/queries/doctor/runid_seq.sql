-- Where cron.runid_seq stands (SELECT is granted to PUBLIC since pg_cron 1.4-1).
select last_value, is_called from cron.runid_seq
