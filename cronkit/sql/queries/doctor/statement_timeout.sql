-- The doctor's session settings, local to its (rolled back) transaction: its per-statement limit,
-- and no JIT — the history's row estimates make cheap key-range reads look costly enough to compile
-- (measured at 10M rows: 0.4 s of compilation in a 1.3 s doctor).
select set_config('statement_timeout', %(timeout)s, true), set_config('jit', 'off', true)
