-- Whether a job's guard finds work now (the guard composed in with psycopg.sql.SQL).
SELECT coalesce(({guard}), false) AS open
