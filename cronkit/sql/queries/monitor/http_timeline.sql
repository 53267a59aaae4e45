-- HTTP outcomes per bucket (the bucket parameter), job and class.
WITH {units}
SELECT bucket, jobname, outcome, sum(n)::bigint AS requests FROM units
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
