"""How a secret may be shown: never its value, only facts about it.

``fingerprint`` is a short SHA-256 prefix: enough to tell two values apart or to check that a
stored key matches the one an endpoint expects, useless for recovering the value.
"""

from __future__ import annotations

import hashlib

PLACEHOLDER_MARKERS = ("placeholder", "your-", "your_", "changeme", "change-me", "xxx", "todo", "[")


def fingerprint(value: str) -> str:
    """A 12-hex-digit SHA-256 prefix of ``value``."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def mask(value: str | None) -> str:
    """``<secret len=N fp=...>`` or ``<missing>``; safe for logs, reprs and outputs."""
    if value is None:
        return "<missing>"
    return f"<secret len={len(value)} fp={fingerprint(value)}>"


def looks_like_placeholder(value: str) -> bool:
    """True for values copied from a guide and never filled in (``placeholder``, ``[SERVICE_ROLE_KEY]``...)."""
    lowered = value.strip().lower()
    return lowered == "" or any(lowered.startswith(m) for m in PLACEHOLDER_MARKERS)
