-- Responses in the window that no cronkit wrapper queued (hand-written jobs, webhooks). A ledger
-- row of such a response has a request id at least the window's smallest: the bound turns the
-- check into a range of the ledger's index instead of a read of all of it.
with answered as (
    select r.id, r.created, r.status_code, r.content, r.timed_out, r.error_msg
      from net._http_response r
     where r.created >= %(since)s
)
select r.id as request_id, null::text as jobname, null::text as url, r.created as created_at,
       r.status_code, left(r.content, 300) as content, r.timed_out, r.error_msg, true as answered
  from answered r
 where not exists (select 1 from cronkit.request_ledger l
                    where l.request_id = r.id and l.request_id >= (select min(a.id) from answered a))
 order by r.created desc
 limit 5000
