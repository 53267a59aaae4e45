-- The doctor's per-statement limit, local to its (rolled back) transaction.
select set_config('statement_timeout', %(timeout)s, true)
