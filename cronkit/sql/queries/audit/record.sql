-- One entry of the change record. {placeholders} are psycopg.sql literals: the same statement runs
-- in the caller's transaction (cronkit.audit.record) and ends an exported migration.
INSERT INTO cronkit.audit_log (action, project, target, summary, os_user, host, details)
VALUES ({action}, {project}, {target}, {summary}, {os_user}, {host}, {details}::jsonb)
