-- The extensions asked for that the server offers: installed version and schema (NULL: not enabled).
SELECT a.name, e.extversion, n.nspname
  FROM pg_available_extensions a
  LEFT JOIN pg_extension e ON e.extname = a.name
  LEFT JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE a.name = ANY(%(names)s)
 ORDER BY a.name
