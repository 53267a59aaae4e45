-- Requests pg_net has not sent yet.
select count(*) as queued from net.http_request_queue
