"""How cronkit words things for people: durations, moments relative to now, and an error in one line."""

from __future__ import annotations

from datetime import datetime, timedelta


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


def ago(moment: datetime | None, now: datetime) -> str | None:
    """``3 min ago`` for a past moment, ``in 2 h`` for a future one, None for no moment."""
    if moment is None:
        return None
    delta = now - moment
    return f"in {human_duration(-delta)}" if delta < timedelta(0) else f"{human_duration(delta)} ago"


def first_line(text: str) -> str:
    """The first line of ``text`` (stripped), or ``""``."""
    text = text.strip()
    return text.splitlines()[0] if text else text


def error_line(exc: BaseException) -> str:
    """An error in one line: a server error's primary message, another error's text, first line
    only (a DETAIL, CONTEXT or quoted statement below it can hold values); its type when empty."""
    diag = getattr(exc, "diag", None)
    return first_line(getattr(diag, "message_primary", None) or str(exc)) or type(exc).__name__
