-- Whether cronkit's HTTP outcome tables and classifier exist, and whether pg_net's response table does.
SELECT to_regclass('cronkit.http_responses') IS NOT NULL
       AND to_regprocedure('cronkit.http_outcome(integer, boolean, text)') IS NOT NULL AS monitoring,
       to_regclass('net._http_response') IS NOT NULL AS net
