-- Whether a table (schema-qualified name as text) exists.
SELECT to_regclass(%(name)s) IS NOT NULL AS ok
