"""How a secret may be shown: never its value, only facts about it; and the one scrubber of text.

``fingerprint`` is a short SHA-256 prefix: enough to tell two values apart or to check that a
stored key matches the one an endpoint expects, useless for recovering the value.

:class:`Scrubber` is the one place that removes secrets from text shown to people: every value it
is given (the current values of a manifest's secrets) and anything shaped like a key (a JWT,
Supabase's ``sb_secret_``/``sb_publishable_`` keys, ``password=...``) become masks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PLACEHOLDER_MARKERS = ("placeholder", "your-", "your_", "changeme", "change-me", "xxx", "todo", "[")

#: anything shaped like a key: a JWT or Supabase's new API keys, also when cut short (PostgreSQL
#: quotes a statement's text around an error position and ends it with "..." mid-key)
KEY_PATTERN = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?|sb_(?:secret|publishable)_[A-Za-z0-9_-]+"
)
#: a credential echoed as ``name: value`` / ``name=value`` (e.g. in a response body): the value is masked
CREDENTIAL_PATTERN = re.compile(
    r"""(?i)((?:authorization|apikey|api[_-]key|token|secret|password)["']?\s*[:=]\s*["']?(?:bearer\s+)?)"""
    r"""(?!<secret )([^\s"',;}]{6,})"""
)
#: known values shorter than this are not scrubbed (they would mangle unrelated text)
MIN_SCRUB_LENGTH = 6


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


@dataclass(frozen=True, repr=False)
class Scrubber:
    """Masks known secret values and key-shaped text in strings, nested data and polars frames.

    Build one per call from the secrets' current values (:meth:`for_values`) and drop it; never
    keep one in a global. ``Scrubber()`` masks key-shaped text only.
    """

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_values(cls, values: Mapping[str, str | None]) -> Scrubber:
        """A scrubber for ``{secret name: current value}``; each value becomes ``<secret NAME>``."""
        shown = {v: f"<secret {name}>" for name, v in values.items() if v and len(v) >= MIN_SCRUB_LENGTH}
        # longest first, so a value that contains another is replaced whole
        return cls(tuple(sorted(shown.items(), key=lambda kv: -len(kv[0]))))

    def __repr__(self) -> str:
        return f"Scrubber({len(self.pairs)} secret(s))"

    def text(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for secret, shown in self.pairs:
            value = value.replace(secret, shown)
        value = mask_keys(value)
        return CREDENTIAL_PATTERN.sub(lambda m: m.group(1) + mask(m.group(2)), value)

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.deep(v) for v in value)
        return value

    def frame(self, frame: Any) -> Any:
        """The polars frame with every string column scrubbed."""
        import polars as pl

        columns = [name for name, dtype in frame.schema.items() if dtype == pl.String]
        if not columns:
            return frame
        # frames shown to people are small: scrub value by value, key shapes need a callback
        return frame.with_columns(pl.Series(name, [self.text(v) for v in frame.get_column(name).to_list()],
                                            dtype=pl.String) for name in columns)


def mask_keys(text: str) -> str:
    """``text`` with anything shaped like a key masked; for messages that name, never quote, values
    (cronkit's errors), where ``name: value`` is a key path and a reason, not a credential."""
    return KEY_PATTERN.sub(lambda m: mask(m.group(0)), text)


def scrub(value: Any) -> Any:
    """``value`` with key-shaped text masked (strings, dicts, lists); for evidence and exports."""
    return Scrubber().deep(value)


def key_kind(key: str) -> str:
    """What kind of Supabase key a value is: ``sb_secret``, ``sb_publishable``, ``jwt:<role>``
    (a legacy key; the role from its payload, never verified) or ``jwt`` (anything else)."""
    if key.startswith("sb_secret_"):
        return "sb_secret"
    if key.startswith("sb_publishable_"):
        return "sb_publishable"
    try:
        payload = key.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        role = claims.get("role") if isinstance(claims, dict) else None
        return f"jwt:{role}" if isinstance(role, str) and re.fullmatch(r"[a-z_]{1,40}", role) else "jwt"
    except (ValueError, IndexError):
        return "jwt"
