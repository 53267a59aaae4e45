"""pg_cron's schedule parser, mirrored character by character.

pg_cron accepts a schedule when Paul Vixie's crontab parser (``src/entry.c`` and ``src/misc.c``,
fed from an in-memory buffer) accepts it, and otherwise when ``TryParseInterval`` in
``src/job_metadata.c`` reads it as ``'N second(s)'``. Both are lenient in ways a regular
expression would not reproduce: text after the fifth field is ignored, a field stops at the first
character that cannot continue it and the rest of that word is skipped (``'0 12.30 * * *'`` is
12:00), leading comment lines are skipped, numbers wrap like C's ``atoi``. This module follows
the same steps so that cronkit accepts exactly what pg_cron accepts, and it records what pg_cron
silently ignores so :mod:`cronkit.schedules` can warn about it.

Every behaviour here was checked against the C parser of pg_cron 1.4.2, 1.6.4 and 1.6.7
(compiled stand-alone as a test oracle) and against a real pg_cron 1.4.2 server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, NoReturn

from cronkit.errors import ScheduleError

Kind = Literal["cron", "interval", "reboot"]
Version = tuple[int, int, int]

#: what pg_cron's ``get_char`` returns once at the end of the buffer, and after that
_END = "\0"
_EOF = ""
_BLANKS = frozenset(" \t")
_FIELD_END = frozenset(" \t\n") | {_END, _EOF}  # where Skip_Nonblanks stops
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale, used by sscanf
_ALNUM = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # asc_tolower()

#: pg_cron refuses a cron schedule of this many bytes or more (MAX_FILE_BUFFER_LENGTH)
MAX_SCHEDULE_BYTES = 1000

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

_MACROS = {
    "reboot": None,
    "restart": None,
    "yearly": "0 0 1 1 *",
    "annually": "0 0 1 1 *",
    "monthly": "0 0 1 * *",
    "weekly": "0 0 * * 0",
    "daily": "0 0 * * *",
    "midnight": "0 0 * * *",
    "hourly": "0 * * * *",
}

_INTERVAL_REMEDY = (
    "Write 'N seconds' with N from 1 to 59 (pg_cron 1.5+); for a minute or longer use cron syntax, "
    "e.g. '* * * * *' (every minute) or '*/5 * * * *'."
)


@dataclass(frozen=True)
class Field:
    """One of the five cron fields: its name, its bounds and the names pg_cron accepts in it."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


MINUTE = Field("minute", 0, 59)
HOUR = Field("hour", 0, 23)
DAY_OF_MONTH = Field("day-of-month", 1, 31)
MONTH = Field("month", 1, 12, _MONTH_NAMES)
DAY_OF_WEEK = Field("day-of-week", 0, 7, _DOW_NAMES)


@dataclass(frozen=True)
class CronFields:
    """The sets a cron schedule selects, as pg_cron stores them.

    ``dom_star``/``dow_star`` record whether the day-of-month/day-of-week field *starts with*
    ``*``: if either does, a day must match both fields, otherwise either one (Vixie cron).
    ``text`` holds each field as pg_cron read it, without the characters it ignored.
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0-6, Sunday is 0 (a 7 is folded into 0)
    dom_star: bool
    dow_star: bool
    last_day: bool  # the day-of-month field is '$'
    text: tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Parsed:
    kind: Kind
    fields: CronFields | None = None
    interval_seconds: int | None = None
    macro: str | None = None
    warnings: tuple[str, ...] = ()


class _ListRead(NamedTuple):
    values: frozenset[int]
    text: str  # the field as pg_cron read it
    ignored: str  # what pg_cron skipped after it
    next_ch: str  # the first character of the next field


class _Rejected(Exception):
    """pg_cron's cron parser gave up; the message says where and why."""


class _Reader:
    """pg_cron's view of the schedule: a FILE-like buffer that yields NUL once at its end, then EOF."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.pushed: list[str] = []

    def get(self) -> str:
        if self.pushed:
            return self.pushed.pop()
        if self.pos < len(self.text):
            self.pos += 1
            return self.text[self.pos - 1]
        if self.pos == len(self.text):
            self.pos += 1
            return _END
        return _EOF

    def unget(self, ch: str) -> None:
        self.pushed.append(ch)

    def rest(self, ch: str) -> str:
        """The unread text, starting with the current character ``ch``."""
        return (ch if ch not in (_END, _EOF) else "") + self.text[self.pos :]


def parse(expr: str, version: Version) -> Parsed:
    """Parse ``expr`` as pg_cron ``version`` does; raise :class:`ScheduleError` if it would refuse it.

    '$' and 'N seconds' are parsed whatever the version; the caller gates those features.
    """
    if "\0" in expr:
        raise _error(expr, "it contains a NUL character, which PostgreSQL text cannot hold")
    try:
        return _parse_cron(expr, version)
    except _Rejected as cron_failure:
        # pg_cron tries the interval form only after the cron parser has failed (ParseSchedule).
        seconds = _scan_interval(expr)
        if seconds is not None:
            return Parsed("interval", interval_seconds=seconds)
        if _looks_like_interval(expr):
            raise _error(expr, _interval_problem(expr), remedy=_INTERVAL_REMEDY) from None
        raise _error(expr, str(cron_failure)) from None


def parse_field(text: str, field: Field, version: Version) -> frozenset[int]:
    """The values one field selects, e.g. ``parse_field('mon-fri', DAY_OF_WEEK, v)``."""
    reader = _Reader(text)
    try:
        read = _CronParser(reader, version).get_list(field, reader.get())
    except _Rejected as exc:
        raise _error(text, str(exc)) from None
    if read.ignored or read.next_ch not in (_END, _EOF):
        raise _error(text, f"it is not a single {field.name} field")
    return _fold_sunday(read.values) if field is DAY_OF_WEEK else read.values


def _error(expr: str, reason: str, remedy: str | None = None) -> ScheduleError:
    return ScheduleError(f"invalid schedule '{expr}': {reason}", remedy=remedy)


def _fold_sunday(weekdays: frozenset[int]) -> frozenset[int]:
    return frozenset(d % 7 for d in weekdays)


def _parse_cron(expr: str, version: Version) -> Parsed:
    if len(expr.encode()) >= MAX_SCHEDULE_BYTES:
        raise _Rejected(f"it is longer than {MAX_SCHEDULE_BYTES - 1} bytes")
    reader = _Reader(expr)
    _skip_comment_lines(reader)
    ch = reader.get()
    if ch == _EOF:
        raise _Rejected("it holds only comments")
    if ch == "@":
        return _parse_macro(reader, version)
    parser = _CronParser(reader, version)
    fields = parser.parse_fields(ch)
    return Parsed("cron", fields=fields, warnings=tuple(parser.warnings))


def _skip_comment_lines(reader: _Reader) -> None:
    """Skip blank lines, '#' comment lines and the blanks before the first field (skip_comments)."""
    while (ch := reader.get()) != _EOF:
        while ch in _BLANKS:
            ch = reader.get()
        if ch not in ("\n", "#"):
            break
        while ch not in ("\n", _EOF):
            ch = reader.get()
    if ch != _EOF:
        reader.unget(ch)


def _parse_macro(reader: _Reader, version: Version) -> Parsed:
    name = ""
    while (ch := reader.get()) not in _FIELD_END:
        name += ch
    if name not in _MACROS:  # pg_cron compares case-sensitively
        known = " ".join(f"@{m}" for m in _MACROS)
        hint = " (macros are lower case)" if name.lower() in _MACROS else ""
        raise _Rejected(f"'@{name}' is not a macro pg_cron knows{hint}; it knows {known}")
    rest = reader.rest(_EOF).strip()
    warnings = [f"pg_cron ignores the text after @{name}: '{rest}'"] if rest else []
    equivalent = _MACROS[name]
    if equivalent is None:
        return Parsed("reboot", macro=name, warnings=tuple(warnings))
    fields = _CronParser(_Reader(equivalent), version).parse_fields(None)
    if name in ("yearly", "annually") and version >= (1, 6, 0):
        # pg_cron 1.6.0 rewrote the macros with set_element(), passing FIRST_MINUTE (0) as the
        # month, which is out of range 1-12: no month bit is set, so the job can never run.
        fields = replace(fields, months=frozenset())
    return Parsed("cron", fields=fields, macro=name, warnings=tuple(warnings))


class _CronParser:
    """The five-field grammar of entry.c: ``list = range {',' range}``,
    ``range = '*' | number ['-' number]``, then an optional ``'/' step`` after a '*' or a range."""

    def __init__(self, reader: _Reader, version: Version) -> None:
        self.reader = reader
        self.version = version
        self.warnings: list[str] = []

    def parse_fields(self, ch: str | None) -> CronFields:
        reader = self.reader
        ch = reader.get() if ch is None else ch
        minutes, minute_text, ch = self._field(MINUTE, ch)
        hours, hour_text, ch = self._field(HOUR, ch)
        last_day = ch == "$"
        dom_star = ch == "*"
        if last_day:
            ch = reader.get()
            if ch not in _BLANKS:
                self._reject_after_dollar(ch)
            while ch in _BLANKS:
                ch = reader.get()
            days, dom_text = frozenset[int](), "$"
        else:
            days, dom_text, ch = self._field(DAY_OF_MONTH, ch)
        months, month_text, ch = self._field(MONTH, ch)
        dow_star = ch == "*"
        weekdays, dow_text, ch = self._field(DAY_OF_WEEK, ch)
        rest = reader.rest(ch).strip(_C_SPACE)
        if rest:
            self.warnings.append(
                f"pg_cron ignores everything after the fifth field: '{rest}' (it has no seconds or year field)"
            )
        return CronFields(
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=_fold_sunday(weekdays),
            dom_star=dom_star,
            dow_star=dow_star,
            last_day=last_day,
            text=(minute_text, hour_text, dom_text, month_text, dow_text),
        )

    def _reject_after_dollar(self, ch: str) -> NoReturn:
        if ch in (_END, _EOF):
            self._reject_missing(MONTH)
        raise _Rejected("'$' (last day of the month) must be the whole day-of-month field")

    @staticmethod
    def _reject_missing(field: Field) -> NoReturn:
        raise _Rejected(f"{field.name} is missing; pg_cron needs 5 fields: minute hour day-of-month month day-of-week")

    def _field(self, field: Field, ch: str) -> tuple[frozenset[int], str, str]:
        """Read one field of the five; return its values, its text as read, and the next character."""
        if ch in (_END, _EOF):
            self._reject_missing(field)
        read = self.get_list(field, ch)
        if read.ignored:
            self.warnings.append(
                f"pg_cron ignores '{read.ignored}' at the end of the {field.name} field '{read.text}{read.ignored}'"
            )
        return read.values, read.text, read.next_ch

    def get_list(self, field: Field, ch: str) -> _ListRead:
        """Read ``range {',' range}`` starting at ``ch`` (get_list in entry.c)."""
        start = self.reader.pos - 1
        values: set[int] = set()
        while True:
            ch = self._get_range(field, ch, values)
            if ch != ",":
                break
            ch = self.reader.get()
        text = self.reader.text[start : self.reader.pos - 1]
        # Like Skip_Nonblanks: whatever follows the last range up to a blank is dropped silently.
        ignored = ""
        while ch not in _FIELD_END:
            ignored += ch
            ch = self.reader.get()
        while ch in _BLANKS:
            ch = self.reader.get()
        return _ListRead(frozenset(values), text, ignored, ch)

    def _get_range(self, field: Field, ch: str, values: set[int]) -> str:
        start = self.reader.pos - 1
        if ch == "*":
            first, last = field.low, field.high
            ch = self.reader.get()
        else:
            first, ch = self._get_number(field, ch)
            if ch != "-":
                if ch == "/":
                    raise _Rejected(
                        f"a step needs a range in the {field.name} field: write '{first}-{field.high}/N' "
                        f"or '*/N', not '{first}/N'"
                    )
                self._check_bounds(field, first)
                values.add(first)
                return ch
            last, ch = self._get_number(field, self.reader.get())
        step = 1
        if ch == "/":
            step, ch = self._get_number(field, self.reader.get(), step=True)
            if step <= 0:
                raise _Rejected(f"step {step} in the {field.name} field must be 1 or more")
        self._check_bounds(field, first)
        self._check_bounds(field, last)
        if step > field.high and self.version >= (1, 6, 5):
            raise _Rejected(
                f"step {step} in the {field.name} field is larger than {field.high} "
                "(pg_cron 1.6.5 and later refuse it; older versions read it as a single value)"
            )
        values.update(self._expand(field, first, last, step, self.reader.text[start : self.reader.pos - 1]))
        return ch

    def _expand(self, field: Field, first: int, last: int, step: int, text: str) -> set[int]:
        if first <= last:
            return set(range(first, last + 1, step))
        if step == 1 and self.version >= (1, 6, 0):
            # pg_cron 1.6 sets a reversed range with bit_nset(), a byte-wise macro: it sets the
            # bits from `first` to the end of its byte and from the start of `last`'s byte to
            # `last`; within one byte it sets nothing.
            lo, hi = first - field.low, last - field.low
            if lo // 8 != hi // 8:
                bits = set(range(lo, lo // 8 * 8 + 8)) | set(range(hi // 8 * 8, hi + 1))
                chosen = {b + field.low for b in bits if b + field.low <= field.high}
                listed = ",".join(str(v) for v in sorted(chosen))
                self.warnings.append(
                    f"pg_cron reads the reversed range '{text}' in the {field.name} field as {listed}; "
                    "write the values you mean explicitly"
                )
                return chosen
        self.warnings.append(f"the reversed range '{text}' in the {field.name} field selects nothing")
        return set()

    def _check_bounds(self, field: Field, value: int) -> None:
        if not field.low <= value <= field.high:
            raise _Rejected(f"{field.name} {value} is out of range {field.low}-{field.high}")

    def _get_number(self, field: Field, ch: str, step: bool = False) -> tuple[int, str]:
        token = ""
        while ch in _ALNUM:
            token += ch
            ch = self.reader.get()
        what = f"step in the {field.name} field" if step else field.name
        if not token:
            found = "the end" if ch in (_END, _EOF) else f"'{ch}'"
            raise _Rejected(f"expected a {what} but found {found}")
        if field.names and not step and token.lower() in field.names:
            return field.names.index(token.lower()) + field.low, ch
        if set(token) <= _DIGITS:
            return _c_atoi(token), ch
        if field.names and not step:
            examples = "jan-dec" if field is MONTH else "sun-sat"
            raise _Rejected(f"'{token}' is not a {field.name} name ({examples}) or number")
        raise _Rejected(f"'{token}' is not a number ({what})")


def _c_atoi(digits: str) -> int:
    """C's atoi() on glibc: strtol() clamped to LONG_MAX, then truncated to a 32-bit int."""
    value = min(int(digits), 2**63 - 1) & 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


# --- 'N seconds' (TryParseInterval) -----------------------------------------------------------


def _scan_interval(expr: str) -> int | None:
    """Seconds if pg_cron (>= 1.5.1) reads ``expr`` as an interval, else None.

    pg_cron lower-cases the text and runs ``sscanf(s, " %u secon%c%c %c", &n, &d, &plural, &extra)``:
    accepted are ``<n> second`` with nothing after it, and ``<n> seconds`` followed only by
    whitespace; blanks may surround the number (or be absent: '30seconds').
    """
    scan = _sscanf_interval(expr.translate(_ASCII_LOWER))
    if scan is None:
        return None
    seconds, parts, plural = scan
    if parts == 2 or (parts == 3 and plural == "s"):
        return seconds if 0 < seconds < 60 else None
    return None


def _sscanf_interval(text: str) -> tuple[int, int, str] | None:
    """(number, conversions sscanf reports, the 'plural' character) once 'secon' + 'd' matched."""
    match = re.match(r"[ \t\n\v\f\r]*([+-]?)(\d+)[ \t\n\v\f\r]*secon(.)", text, re.ASCII | re.DOTALL)
    if match is None or match[3] != "d":
        return None
    sign, digits = match[1], match[2]
    value = min(int(digits), 2**64 - 1)  # strtoul() saturates, then %u keeps the low 32 bits
    if sign == "-" and int(digits) <= 2**64 - 1:
        value = -value % 2**64
    seconds = value & 0xFFFFFFFF
    tail = text[match.end() :]
    if not tail:
        return seconds, 2, ""
    after_plural = tail[1:].lstrip(_C_SPACE)
    return seconds, 3 if not after_plural else 4, tail[0]


def _looks_like_interval(expr: str) -> bool:
    """A number followed by a word, in at most three words: meant as 'N seconds', not cron."""
    return bool(re.match(r"\s*[+-]?\d+\s*[a-z]", expr, re.ASCII | re.IGNORECASE)) and len(expr.split()) <= 3


def _interval_problem(expr: str) -> str:
    match = re.match(r"\s*([+-]?\d+)\s*([a-z]*)(.*)", expr.translate(_ASCII_LOWER), re.ASCII | re.DOTALL)
    assert match is not None  # _looks_like_interval() matched
    number, unit, rest = match[1], match[2], match[3]
    if unit not in ("second", "seconds"):
        return f"'{unit}' is not a unit pg_cron accepts; its only interval form is 'N seconds' (or 'N second')"
    value = int(number)
    if not 0 < value < 60:
        return f"{value} seconds is out of range 1-59"
    if unit == "second" and not rest.strip(_C_SPACE):
        return "pg_cron refuses blanks after the singular 'second'; write 'N seconds'"
    return f"pg_cron refuses text after '{unit}': '{rest.strip(_C_SPACE)}'"
