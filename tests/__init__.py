"""cronkit's test suite: unit (no database), integration (the sandbox), acceptance (the seed systems end to end)."""
