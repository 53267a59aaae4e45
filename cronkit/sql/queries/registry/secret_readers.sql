-- Which managed jobs read which secret (names from each job's stored spec, never values).
SELECT s.name, m.jobname, m.project
  FROM cronkit.managed_jobs m, jsonb_array_elements_text(m.spec -> 'secrets') AS s(name)
 ORDER BY s.name, m.jobname
