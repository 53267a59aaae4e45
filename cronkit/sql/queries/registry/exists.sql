-- Whether cronkit's registry exists in this database (an older or absent schema is not an error).
SELECT to_regclass('cronkit.managed_jobs') IS NOT NULL AS ok
