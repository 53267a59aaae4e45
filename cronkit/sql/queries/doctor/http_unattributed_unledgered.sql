-- Responses in the window that no cronkit wrapper queued (hand-written jobs, webhooks).
select r.id as request_id, null::text as jobname, null::text as url, r.created as created_at,
       r.status_code, left(r.content, 300) as content, r.timed_out, r.error_msg, true as answered
  from net._http_response r
 where r.created >= %(since)s
   and not exists (select 1 from cronkit.request_ledger l where l.request_id = r.id)
 order by r.created desc
 limit 5000
