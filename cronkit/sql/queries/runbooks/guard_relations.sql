-- The plan of a job's guard, whose "Relation Name" nodes are the tables it reads. The guard is
-- the manifest's SQL expression, composed in with psycopg.sql.SQL (it is SQL, not a value).
EXPLAIN (VERBOSE, FORMAT JSON) SELECT ({guard})
