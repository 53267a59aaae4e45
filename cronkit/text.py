"""How cronkit words numbers for people: the one humanizer of durations."""

from __future__ import annotations

from datetime import timedelta


def human_duration(delta: timedelta) -> str:
    """``45 s``, ``12 min``, ``3 h``, ``1.5 h``, ``2.0 days``: short, and exact where it matters."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds / 3600:.1f} h"
    return f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds / 86400:.1f} days"
