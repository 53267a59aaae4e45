-- As responses_expiring, where cronkit.http_responses keeps copies: a kept copy is safe, and the
-- harvest records a request that got no response within pg_net.ttl as 'expired' (lost).
select count(*) filter (where (r.id is null and l.created_at < %(expired)s and h.request_id is null)
                              or h.outcome = 'expired') as lost,
       count(*) filter (where r.id is not null and r.created < %(expiring)s and h.request_id is null) as expiring,
       min(l.created_at) filter (where (r.id is null and l.created_at < %(expired)s and h.request_id is null)
                                       or h.outcome = 'expired') as oldest_lost,
       min(r.created) filter (where r.id is not null and r.created < %(expiring)s and h.request_id is null) as oldest_expiring
  from cronkit.request_ledger l
  left join net._http_response r on r.id = l.request_id
  -- a kept copy's requested_at is its ledger row's created_at: the bound lets the join use an index
  -- instead of reading every kept response
  left join cronkit.http_responses h on h.request_id = l.request_id and h.requested_at >= %(since)s
 where l.created_at >= %(since)s
