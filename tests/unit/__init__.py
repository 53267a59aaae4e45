"""Unit tests: no database, no sandbox, no network; under 30 s."""
