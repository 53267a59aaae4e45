"""Acceptance tests: the five seed systems end to end, as a user runs them."""
