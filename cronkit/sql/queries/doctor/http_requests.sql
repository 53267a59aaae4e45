-- Requests cronkit wrappers queued in the window, with pg_net's response (if it still has one).
select l.request_id, l.jobname, l.url, l.created_at,
       r.status_code, left(r.content, 300) as content, r.timed_out, r.error_msg,
       (r.id is not null) as answered, null::text as harvested_outcome
  from cronkit.request_ledger l
  left join net._http_response r on r.id = l.request_id
 where l.created_at >= %(since)s
 order by l.created_at desc
 limit 20000
