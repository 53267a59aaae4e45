-- cronkit's requests in the window that pg_net never answered.
select count(*) as unanswered, min(l.created_at) as oldest
  from cronkit.request_ledger l
 where l.created_at >= %(since)s
   and not exists (select 1 from net._http_response r where r.id = l.request_id)
