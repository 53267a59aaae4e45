"""cronkit: pg_cron jobs that call Edge Functions through pg_net, as reviewed code.

Importing cronkit has no side effects; configuration is loaded by :func:`cronkit.config.load`.
"""

__version__ = "0.1.0"
