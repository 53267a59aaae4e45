-- Jobs whose role no longer exists (pg_cron's scheduler exits on them, pg_cron#399).
select j.jobid, j.jobname, j.username, j.active, j.schedule
  from cron.job j
 where not exists (select 1 from pg_roles r where r.rolname = j.username)
 order by j.jobid
