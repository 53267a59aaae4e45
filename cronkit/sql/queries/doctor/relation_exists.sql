-- Whether a table exists (fails when the role may not look into its schema).
select to_regclass(%(name)s) is not null as ok
