-- cronkit's local stand-in for pg_net 0.20.0 (supabase/pg_net, sql/pg_net.sql).
--
-- Same schema, tables, types, function signatures, defaults and grants as the real extension, so
-- SQL written against the sandbox runs unchanged on Supabase. What the real extension does in C
-- is done here in SQL, or by the sandbox's delivery worker (python -m cronkit_sandbox.networker),
-- a client connection named `pg_net 0.20.0` that LISTENs for wakes and performs the HTTP calls.
--
-- Deliberate differences (each explained where it happens):
--   * net.wake() is a NOTIFY on channel `cronkit_pg_net_wake`; net.worker_restart() NOTIFYs
--     `cronkit_pg_net_restart` (both delivered at COMMIT, like the real wake-at-commit callback);
--   * URL checks are a SQL re-implementation of libcurl's URL parser for the cases that matter,
--     and use the error text of pg_net >= 0.20.1 (`invalid URL "...": <reason>`);
--   * net.check_worker_is_up() also recognises the worker by its application_name, and its hint
--     names the sandbox worker.
-- Reference: ../../../../shared/reference/pg_cron_pg_net_vault.md §2.

\echo Use "CREATE EXTENSION pg_net" to load this file. \quit

-- Like the real script: objects live in `net` whatever `WITH SCHEMA` the extension is created in.
create schema if not exists net;

create domain net.http_method as text
check (
  value ilike 'get'
  or value ilike 'post'
  or value ilike 'delete'
);

-- Pending requests; the worker deletes a batch and performs it. UNLOGGED as in the real extension:
-- emptied by crash recovery, not replicated.
create unlogged table net.http_request_queue (
    id bigserial,
    method net.http_method not null,
    url text not null,
    headers jsonb,  -- nullable since 0.19.3
    body bytea,
    timeout_milliseconds int not null
);

-- One row per finished request, keyed by the request id; no primary key and no index on id
-- (0.5+), only on `created` for the TTL purge.
create unlogged table net._http_response (
    id bigint,
    status_code integer,
    content_type text,
    headers jsonb,
    content text,
    timed_out bool,
    error_msg text,
    created timestamptz not null default now()
);

create index on net._http_response (created);

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');

create type net.http_response as (
    status_code integer,
    headers jsonb,
    body text
);

create type net.http_response_result as (
    status net.request_status,
    message text,
    response net.http_response
);

-- ---------------------------------------------------------------------------------------------
-- The worker

-- The real worker is a background worker (backend_type `pg_net 0.20.0 worker`); ours is a client
-- session whose application_name is `pg_net 0.20.0`, what the real worker reports since 0.14.
create function net.check_worker_is_up() returns void
language plpgsql
as $$
begin
  if not exists (
    select from pg_stat_activity
    where backend_type ilike '%pg_net%' or application_name like 'pg\_net %'
  ) then
    raise exception using
      message = 'the pg_net background worker is not up',
      detail = 'no session of the sandbox''s pg_net delivery worker (application_name ''pg_net 0.20.0'') is connected',
      hint = 'run `cronkit sandbox status`; the worker is python -m cronkit_sandbox.networker';
  end if;
end
$$;
comment on function net.check_worker_is_up() is 'raises an exception if the pg_net background worker is not up, otherwise it doesn''t return anything';

-- Blocks like the real C function (0.17+) until the worker is connected; bound it with
-- statement_timeout.
create function net.wait_until_running() returns void
language plpgsql
as $$
begin
  loop
    -- pg_stat_activity is a per-transaction snapshot: refresh it on every look.
    perform pg_stat_clear_snapshot();
    exit when exists (
      select from pg_stat_activity
      where backend_type ilike '%pg_net%' or application_name like 'pg\_net %'
    );
    perform pg_sleep(0.05);
  end loop;
end
$$;
comment on function net.wait_until_running() is 'waits until the worker is running';

-- pg_net 0.19+ processes the queue on demand: the request functions call wake(), and the worker is
-- woken when the calling transaction COMMITs; a rolled-back transaction wakes nobody. NOTIFY has
-- exactly these semantics, and folds repeated wakes of one transaction into one.
create function net.wake() returns void
language sql
as $$
  select pg_catalog.pg_notify('cronkit_pg_net_wake', '');
$$;

-- The real C function reloads the configuration and makes the worker restart, for any caller
-- (it calls pg_reload_conf internally, bypassing its privilege check). SECURITY DEFINER keeps that
-- working for Supabase's non-superuser `postgres`, who runs `ALTER SYSTEM SET pg_net.ttl ...;
-- SELECT net.worker_restart();`. The worker reconnects (a new pid) and reads the settings again.
create function net.worker_restart() returns bool
language plpgsql
security definer
set search_path = ''
as $$
declare
  reloaded bool := pg_catalog.pg_reload_conf();
begin
  perform pg_catalog.pg_notify('cronkit_pg_net_restart', '');
  return reloaded;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- URL helpers (C + libcurl in the real extension)

-- curl_easy_escape: every byte except ALPHA / DIGIT / - . _ ~ becomes %XX (upper-case hex).
create function net._urlencode_string(string varchar) returns text
language sql
immutable
as $$
  select case when string is not null then coalesce(
    (select string_agg(
              case when b between 48 and 57 or b between 65 and 90 or b between 97 and 122 or b in (45, 46, 95, 126)
                   then chr(b)
                   else '%' || upper(lpad(to_hex(b), 2, '0'))
              end, '' order by i)
       from (select i, get_byte(raw, i) as b
               from convert_to(string, getdatabaseencoding()) as raw,
                    generate_series(0, octet_length(raw) - 1) as i) as bytes),
    '') end;
$$;

-- libcurl's curl_url(): parse `url`, append each element of `params_array` to the query
-- (CURLU_APPENDQUERY; NULL elements skipped) and return the normalised URL: lower-case scheme,
-- `/` for an empty path, dot segments removed, port without leading zeros, empty `?`/`#` dropped.
-- Errors carry curl_url_strerror()'s text, raised in the calling transaction as in the real
-- extension. Not reproduced: normalising IPv4 shorthands (`127.1`; the worker's resolver accepts
-- them anyway), decoding %XX in host names, and `file:` URLs' special syntax.
create function net._encode_url_with_params_array(url text, params_array text[]) returns text
language plpgsql
immutable
as $$
declare
  -- the schemes a stock libcurl build knows; the worker then refuses everything but http(s),
  -- as pg_net's CURLOPT_PROTOCOLS_STR does
  known_schemes constant text[] := array[
    'dict', 'file', 'ftp', 'ftps', 'gopher', 'gophers', 'http', 'https', 'imap', 'imaps', 'ldap',
    'ldaps', 'mqtt', 'pop3', 'pop3s', 'rtmp', 'rtmpe', 'rtmps', 'rtmpt', 'rtmpte', 'rtmpts', 'rtsp',
    'scp', 'sftp', 'smb', 'smbs', 'smtp', 'smtps', 'telnet', 'tftp'];
  problem text;
  scheme text;
  rest text;
  slashes int;
  authority text;
  userinfo text;
  host text;
  port text;
  path text;
  query text;
  fragment text;
  segments text[] := '{}';
  segment text;
  segment_number int := 0;
  segment_count int;
  param text;
begin
  if url is null or params_array is null then
    return null;
  end if;

  <<parse>>
  begin
    scheme := substring(url from '^([A-Za-z0-9][A-Za-z0-9+.-]*):');
    if scheme is null then
      problem := 'Bad scheme';
      exit parse;
    end if;
    if not lower(scheme) = any (known_schemes) then
      problem := 'Unsupported URL scheme';
      exit parse;
    end if;
    scheme := lower(scheme);
    rest := substr(url, length(scheme) + 2);

    slashes := length(substring(rest from '^/*'));
    if slashes not between 1 and 3 then
      problem := 'Unsupported number of slashes following scheme';
      exit parse;
    end if;
    rest := substr(rest, slashes + 1);

    -- fragment, then query, then authority / path
    fragment := substring(rest from '#(.*)$');
    rest := substring(rest from '^[^#]*');
    query := substring(rest from '\?(.*)$');
    rest := substring(rest from '^[^?]*');
    authority := substring(rest from '^[^/]*');
    path := substr(rest, length(authority) + 1);

    if position('@' in authority) > 0 then
      userinfo := substring(authority from '^[^@]*');
      authority := substr(authority, length(userinfo) + 2);
    end if;

    if authority like '[%' then
      host := substring(authority from '^\[[^]]*\]');
      if host is null or host !~ '^\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(%25[A-Za-z0-9._~-]+)?\]$' then
        problem := 'Bad IPv6 address';
        exit parse;
      end if;
    else
      host := substring(authority from '^[^:]*');
      if host = '' then
        problem := 'No host part in the URL';
        exit parse;
      end if;
      if host ~ '[[:cntrl:] /:#?!@{}\[\]\\$''"^`*<>=;,+&()]' then
        problem := 'Bad hostname';
        exit parse;
      end if;
    end if;

    port := substr(authority, length(host) + 1);
    if port in ('', ':') then
      port := null;
    elsif port ~ '^:[0-9]+$' and length(ltrim(substr(port, 2), '0')) <= 5
          and coalesce(nullif(ltrim(substr(port, 2), '0'), ''), '0')::int <= 65535 then
      port := substr(port, 2)::int::text;
    else
      problem := 'Port number was not a decimal number between 0 and 65535';
      exit parse;
    end if;

    if path ~ '[[:cntrl:] ]' then
      problem := 'Bad path';
      exit parse;
    elsif query ~ '[[:cntrl:] ]' then
      problem := 'Bad query';
      exit parse;
    elsif fragment ~ '[[:cntrl:] ]' then
      problem := 'Bad fragment';
      exit parse;
    end if;
  end parse;

  if problem is not null then
    -- ereport(ERROR) in the real extension: SQLSTATE XX000
    raise exception 'invalid URL "%": %', url, problem using errcode = 'XX000';
  end if;

  -- RFC 3986 remove_dot_segments, as curl does; `%2e` stays as it is.
  segment_count := cardinality(string_to_array(substr(path, 2), '/'));
  foreach segment in array string_to_array(substr(path, 2), '/') loop
    segment_number := segment_number + 1;
    if segment = '..' then
      segments := segments[1:cardinality(segments) - 1];
    elsif segment <> '.' then
      segments := segments || segment;
      continue;
    end if;
    -- a trailing `.` or `..` leaves a directory: keep the trailing slash
    if segment_number = segment_count then
      segments := segments || ''::text;
    end if;
  end loop;
  path := '/' || array_to_string(segments, '/');

  query := nullif(query, '');
  foreach param in array params_array loop
    continue when param is null;
    query := case
      when query is null then param
      when query like '%&' then query || param
      else query || '&' || param
    end;
  end loop;

  return scheme || '://'
    || coalesce(userinfo || '@', '')
    || host
    || coalesce(':' || port, '')
    || path
    || coalesce('?' || query, '')
    || coalesce('#' || nullif(fragment, ''), '');
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Requests. All return the request id; SECURITY INVOKER (0.12+); not STRICT, so a NULL url
-- fails on the queue's NOT NULL column (0.16+) instead of silently queueing nothing.

create function net.http_get(
    url text,
    params jsonb default '{}'::jsonb,
    headers jsonb default '{}'::jsonb,
    timeout_milliseconds int default 5000
)
    returns bigint
    language plpgsql
as $$
declare
  request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values (
    'GET',
    net._encode_url_with_params_array(
      url,
      (select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
         from jsonb_each_text(params))),
    headers,
    timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

create function net.http_post(
    url text,
    body jsonb default '{}'::jsonb,
    params jsonb default '{}'::jsonb,
    headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
    timeout_milliseconds int default 5000
)
    returns bigint
    language plpgsql
as $$
declare
  request_id bigint;
  content_type text;
begin
  -- The first content-type header, whatever its case (a JSON null counts as absent).
  select header_value into content_type
  from jsonb_each_text(coalesce(headers, '{}'::jsonb)) as h(header_name, header_value)
  where lower(header_name) = 'content-type'
  limit 1;

  -- Absent: added (a NULL `headers` stays NULL, as in the real function).
  if content_type is null then
    headers := headers || '{"Content-Type": "application/json"}'::jsonb;
  -- Present: must be exactly application/json (so `application/json; charset=utf-8` is refused).
  elsif content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;

  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (
    'POST',
    net._encode_url_with_params_array(
      url,
      (select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
         from jsonb_each_text(params))),
    headers,
    convert_to(body::text, 'UTF8'),
    timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

-- `body` since 0.15.
create function net.http_delete(
    url text,
    params jsonb default '{}'::jsonb,
    headers jsonb default '{}'::jsonb,
    timeout_milliseconds int default 5000,
    body jsonb default null
)
    returns bigint
    language plpgsql
as $$
declare
  request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (
    'DELETE',
    net._encode_url_with_params_array(
      url,
      (select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
         from jsonb_each_text(params))),
    headers,
    convert_to(body::text, 'UTF8'),
    timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Responses

-- Polls every 50 ms until the response row exists. Never returns inside the transaction that
-- queued the request: the worker only sees it after COMMIT.
create function net._await_response(request_id bigint) returns bool
language plpgsql
as $$
begin
  while not exists (select from net._http_response r where r.id = request_id) loop
    perform pg_sleep(0.05);
  end loop;
  return true;
end
$$;

-- A pending request and an unknown id look the same: both are ERROR 'request matching request_id
-- not found'. A transport failure is ERROR with its error_msg; any HTTP status is SUCCESS.
create function net._http_collect_response(
    request_id bigint,
    async bool default true
)
    returns net.http_response_result
    language plpgsql
as $$
declare
  rec net._http_response;
begin
  if not async then
    perform net._await_response(request_id);
  end if;

  select * into rec from net._http_response r where r.id = request_id;

  if rec is null or rec.error_msg is not null then
    return ('ERROR', coalesce(rec.error_msg, 'request matching request_id not found'), null)::net.http_response_result;
  end if;

  return ('SUCCESS', 'ok', (rec.status_code, rec.headers, rec.content)::net.http_response)::net.http_response_result;
end
$$;

-- Deprecated since 0.7. In every release since 0.7.1 it raises its NOTICE and then fails with
-- "query has no destination for result data" (a SELECT without INTO); kept that way so code that
-- works in the sandbox also works on Supabase. Use net._http_collect_response.
create function net.http_collect_response(
    request_id bigint,
    async bool default true
)
    returns net.http_response_result
    language plpgsql
as $$
begin
  raise notice 'The net.http_collect_response function is deprecated.';
  select net._http_collect_response(request_id, async);
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Privileges (0.12+): every role may queue requests and read responses. Functions keep the
-- default EXECUTE for PUBLIC.

grant usage on schema net to public;
grant all on all sequences in schema net to public;
grant all on all tables in schema net to public;
