"""``cronkit doctor``: find what keeps scheduled jobs from doing their work, show the evidence, name the fix.

A job goes pg_cron → generated wrapper → secret → ``net.http_post`` → Edge Function, and every hop
fails silently in its own way: pg_cron says *succeeded* when pg_net merely queued a request, pg_net
drops a header whose value is NULL, a dropped role crash-loops the scheduler, responses vanish
after ``pg_net.ttl``. The doctor runs one small check per failure mode (the catalogue,
:data:`CATALOGUE`, documented in ``docs/doctor.md``) and reports :class:`Finding` records with
rows as evidence and the SQL or action that fixes each.

The package, layer by layer:

* ``model`` — :class:`Severity`, :class:`Finding`, :class:`Report` (exit code 0 ok · 1 warnings ·
  2 critical, from :class:`cronkit.errors.ExitCode`), :class:`Thresholds`;
* ``catalogue`` — ``@check`` and :data:`CATALOGUE`, which also writes docs/doctor.md's table
  (``python -m cronkit.doctor catalogue``);
* ``context`` — the memoised reads the checks share; every one a named query in
  ``cronkit/sql/queries/doctor/`` or a call into the module that owns the data;
* ``checks/`` — one module per catalogue section: scheduler, jobs, runs, http, secrets,
  schedules, retention, queues;
* ``engine`` — :func:`diagnose` (one read-only transaction, a savepoint and a statement timeout
  per check, "skipped, because …") and the CLI handler :func:`cmd_doctor`;
* ``hosts`` — :func:`container_hints`: does the database run in a container?
* ``causes`` — which findings are consequences of which (:data:`causes.CAUSED_BY`), linked by job
  or queue: the root cause and causal chain the incident runbook opens with.

One rule, one place: HTTP outcomes come from :mod:`cronkit.outcomes` (only 2xx succeeds), missed
runs from the monitor's engine (:mod:`cronkit.monitor.missed`), queue numbers from
:mod:`cronkit.monitor.queues`, masking from :mod:`cronkit.redact`, durations from :mod:`cronkit.text`.
"""

from __future__ import annotations

from cronkit.doctor.catalogue import CATALOGUE, Check, check
from cronkit.doctor.engine import cmd_doctor, diagnose
from cronkit.doctor.hosts import container_hints
from cronkit.doctor.model import (
    DEFAULTS,
    SEVERITIES,
    Finding,
    Report,
    Severity,
    Skip,
    Thresholds,
)

__all__ = [
    "CATALOGUE", "DEFAULTS", "SEVERITIES", "Check", "Finding", "Report", "Severity", "Skip", "Thresholds",
    "check", "cmd_doctor", "container_hints", "diagnose",
]
