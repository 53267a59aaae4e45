-- Requests cronkit wrappers queued in the window, with pg_net's response or the copy cronkit's
-- harvest kept in cronkit.http_responses (which outlives pg_net.ttl).
select l.request_id, l.jobname, l.url, l.created_at,
       coalesce(r.status_code, h.status_code) as status_code,
       left(coalesce(r.content, h.excerpt), 300) as content,
       coalesce(r.timed_out, h.timed_out) as timed_out,
       coalesce(r.error_msg, h.error_msg) as error_msg,
       (r.id is not null or h.request_id is not null) as answered,
       h.outcome as harvested_outcome
  from cronkit.request_ledger l
  left join net._http_response r on r.id = l.request_id
  -- a kept copy's requested_at is its ledger row's created_at: the bound lets the join use an index
  -- instead of reading every kept response
  left join cronkit.http_responses h on h.request_id = l.request_id and h.requested_at >= %(since)s
 where l.created_at >= %(since)s
 order by l.created_at desc
 limit 20000
