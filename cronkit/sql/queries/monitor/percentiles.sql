-- Nearest-rank percentiles from merged histograms: the bin holding the ceil(p * n)-th duration.
-- unnest() in the select list streams the elements (in FROM it would fill a tuplestore per row).
bins AS (
    SELECT {keys}, (e >> 32)::int AS bin, sum((e & 4294967295)::int) AS n
      FROM (SELECT {keys}, unnest(u.hist) AS e FROM {source} AS u) AS elements
     GROUP BY {keys}, bin
), cum AS (
    SELECT {keys}, bin, sum(n) OVER (PARTITION BY {keys} ORDER BY bin) AS c,
           sum(n) OVER (PARTITION BY {keys}) AS total
      FROM bins
), pct AS (
    SELECT {keys},
           exp((min(bin) FILTER (WHERE c >= ceil(0.5 * total)) + 0.5) * ln(1.05::float8)) AS p50,
           exp((min(bin) FILTER (WHERE c >= ceil(0.95 * total)) + 0.5) * ln(1.05::float8)) AS p95
      FROM cum GROUP BY {keys}
)
