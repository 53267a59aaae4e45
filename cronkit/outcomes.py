"""HTTP outcome classes of a pg_net request: the one vocabulary and classifier every view uses.

A scheduled job's HTTP call ends in exactly one :class:`Outcome`. The SQL function
``cronkit.http_outcome`` (``sql/schema_monitoring.sql``) mirrors :func:`classify` for queries
that aggregate in the database; a test feeds both the same responses and requires them to agree.

Only ``2xx`` is a success. pg_net follows redirects itself (libcurl ``FOLLOWLOCATION``), so a
``3xx`` that reaches ``net._http_response`` is one it could not follow (no ``Location``, ``304``, a
loop): the function's work did not run, and it counts as a failure, never as "ok".
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What became of one HTTP request a job queued."""

    OK = "2xx"
    REDIRECT = "3xx"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"
    TIMEOUT = "timeout"
    TRANSPORT_ERROR = "transport_error"
    OTHER = "other"
    #: queued, no response yet (within pg_net's TTL)
    PENDING = "pending"
    #: no response within pg_net's TTL: the outcome can no longer be known
    EXPIRED = "expired"

    @property
    def succeeded(self) -> bool:
        return self is Outcome.OK

    @property
    def failed(self) -> bool:
        """A finished request that did not do the job's work (everything but 2xx and pending)."""
        return self not in (Outcome.OK, Outcome.PENDING)


#: every outcome in display order
OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
#: the outcomes that count as a failed call
FAILED: tuple[Outcome, ...] = tuple(o for o in Outcome if o.failed)


def classify(status_code: int | None, timed_out: bool | None, error_msg: str | None) -> Outcome:
    """The outcome of one ``net._http_response`` row (mirrored by SQL ``cronkit.http_outcome``).

    A timeout is told by ``timed_out`` (NULL before pg_net 0.19.6) or by its message; any other
    ``error_msg`` is a transport failure; otherwise the status code decides.
    """
    if timed_out is True or (error_msg or "").startswith("Timeout"):
        return Outcome.TIMEOUT
    if error_msg is not None:
        return Outcome.TRANSPORT_ERROR
    if status_code is None:
        return Outcome.OTHER
    for low, outcome in ((200, Outcome.OK), (300, Outcome.REDIRECT), (400, Outcome.CLIENT_ERROR),
                         (500, Outcome.SERVER_ERROR)):
        if low <= status_code <= low + 99:
            return outcome
    return Outcome.OTHER


def is_unauthorized(status_code: int | None) -> bool:
    """401/403: the key or token the job sent was refused (a refinement of ``4xx`` the doctor names)."""
    return status_code in (401, 403)
