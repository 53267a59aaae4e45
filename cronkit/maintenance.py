"""cronkit's own maintenance jobs, declared by a manifest's ``[monitoring]`` table.

(Being completed in the monitoring issue: response harvesting before pg_net's TTL, run-history
retention, rollups and queue snapshots.)
"""

from __future__ import annotations

from cronkit.manifest import JobSpec, Manifest


def maintenance_jobs(manifest: Manifest) -> list[JobSpec]:
    """The SQL jobs that keep monitoring data; none unless the manifest has ``[monitoring]``."""
    if not manifest.monitoring:
        return []
    return []
