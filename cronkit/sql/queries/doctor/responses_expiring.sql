-- cronkit's requests whose outcome is lost (no response within pg_net.ttl) or about to be purged;
-- nothing keeps a copy here (cronkit's monitoring tables are not installed).
select count(*) filter (where r.id is null and l.created_at < %(expired)s) as lost,
       count(*) filter (where r.id is not null and r.created < %(expiring)s) as expiring,
       min(l.created_at) filter (where r.id is null and l.created_at < %(expired)s) as oldest_lost,
       min(r.created) filter (where r.id is not null and r.created < %(expiring)s) as oldest_expiring
  from cronkit.request_ledger l
  left join net._http_response r on r.id = l.request_id
 where l.created_at >= %(since)s
