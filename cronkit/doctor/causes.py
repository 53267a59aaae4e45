"""Which findings are consequences of which: the doctor's one table of causes, and how findings link.

A stale key makes a job's calls answer 401, and the 401s leave its queue undrained: three findings,
one root cause. :data:`CAUSED_BY` says which codes can explain which; :func:`explains` links two
findings of a report when their codes are related and they concern the same jobs (or one of them
concerns the whole server). The incident runbook's verdict reads its root cause and causal chain
from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cronkit.doctor.model import Finding

#: the HTTP outcomes a job's calls can fail with
_HTTP_FAILURES = ("HTTP_UNAUTHORIZED", "HTTP_SERVER_ERROR", "HTTP_CLIENT_ERROR", "HTTP_REDIRECT", "HTTP_TIMEOUT",
                  "HTTP_UNREACHABLE")
#: what keeps pg_cron from starting any job
_NO_SCHEDULER = ("PG_CRON_MISSING", "PG_CRON_NOT_PRELOADED", "WRONG_CRON_DATABASE", "SCHEDULER_DOWN")
#: what keeps a queue's draining job from doing its work
_NOT_DRAINED = (*_HTTP_FAILURES, "CONSECUTIVE_FAILURES", "RUNS_CALLED_NOTHING", "JOB_INACTIVE", "MISSED_RUNS",
                "PG_NET_MISSING", "PG_NET_WORKER_DOWN")

#: consequence → the codes that can cause it (acyclic: a unit test walks it)
CAUSED_BY: Mapping[str, tuple[str, ...]] = {
    # a secret that is not there (or a guide's placeholder) is sent as NULL or as a non-key
    "HTTP_UNAUTHORIZED": ("SECRET_MISSING", "SECRET_PLACEHOLDER"),
    "RUNS_CALLED_NOTHING": ("SECRET_MISSING",),
    "CONSECUTIVE_FAILURES": ("SECRET_MISSING", "SECRET_PLACEHOLDER", "PG_NET_MISSING", "RUNID_SEQ_BEHIND"),
    # no scheduler, no runs; a dropped owner or a duplicate runid make the scheduler exit
    "SCHEDULER_DOWN": ("JOB_OWNER_MISSING", "RUNID_SEQ_BEHIND"),
    "MISSED_RUNS": (*_NO_SCHEDULER, "JOB_OWNER_MISSING", "RUNID_SEQ_BEHIND", "CONSECUTIVE_FAILURES"),
    # requests that pg_net never sends are never answered
    "RESPONSES_EXPIRING": ("PG_NET_WORKER_DOWN",),
    "HTTP_TIMEOUT": ("PG_NET_WORKER_DOWN",),
    # a queue whose job does not get through fills up, and its items use up their retries
    "QUEUE_BACKLOG": _NOT_DRAINED,
    "RETRIES_EXHAUSTED": _HTTP_FAILURES,
    "QUEUE_STUCK_ITEMS": ("HTTP_TIMEOUT", "HTTP_SERVER_ERROR", "RUNS_STUCK"),
    "OVERRUNS": ("HTTP_TIMEOUT",),
    "RUN_HISTORY_BLOAT": ("NO_RETENTION",),
}


def jobs_of(finding: Finding) -> frozenset[str]:
    """The jobs a finding concerns: its job, and the jobs its evidence names (a secret's readers, a
    queue's drainers); empty for a finding about the whole server."""
    jobs = {finding.job} if finding.job else set()
    evidence = finding.evidence
    if isinstance(evidence, Mapping) and isinstance(evidence.get("jobs"), list):
        jobs.update(str(j) for j in evidence["jobs"])
    return frozenset(jobs)


def explains(cause: Finding, effect: Finding) -> bool:
    """Whether ``cause`` can explain ``effect``: related codes, about the same jobs (or the server)."""
    if cause is effect or cause.code not in CAUSED_BY.get(effect.code, ()):
        return False
    mine, theirs = jobs_of(cause), jobs_of(effect)
    return not mine or not theirs or bool(mine & theirs)


def is_consequence(finding: Finding, findings: Sequence[Finding]) -> bool:
    """Whether another of ``findings`` explains this one."""
    return any(explains(other, finding) for other in findings)


def chain(root: Finding, findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """``root`` and, link by link, the first finding (in ``findings``' order) the previous one explains."""
    links = [root]
    while True:
        step = next((f for f in findings if f not in links and explains(links[-1], f)), None)
        if step is None:
            return tuple(links)
        links.append(step)


def consequences(root: Finding, findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Every finding ``root`` explains, directly or through another, in ``findings``' order."""
    reached = {id(root)}
    grew = True
    while grew:
        grew = False
        for f in findings:
            if id(f) not in reached and any(explains(r, f) for r in findings if id(r) in reached):
                reached.add(id(f))
                grew = True
    return tuple(f for f in findings if id(f) in reached and f is not root)
