-- Responses in the window (no cronkit ledger here: none of them was queued by a cronkit wrapper).
select r.id as request_id, null::text as jobname, null::text as url, r.created as created_at,
       r.status_code, left(r.content, 300) as content, r.timed_out, r.error_msg, true as answered
  from net._http_response r
 where r.created >= %(since)s
 order by r.created desc
 limit 5000
