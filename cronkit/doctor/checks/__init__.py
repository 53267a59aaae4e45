"""The doctor's checks, one module per section of the catalogue; importing them registers them."""

from __future__ import annotations

# catalogue.SECTIONS, not this import order, decides the run order
from cronkit.doctor.checks import (  # noqa: F401
    http,
    jobs,
    queues,
    retention,
    runs,
    scheduler,
    schedules,
    secrets,
)
