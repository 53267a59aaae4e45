"""Integration tests: against the sandbox (or CRONKIT_TEST_DSN), one module at a time."""
