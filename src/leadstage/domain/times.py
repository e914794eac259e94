"""Reading timestamps from files: many formats, one meaning (UTC).

Naive times are read in the configured default time zone; everything is returned in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any

_EPOCH = re.compile(r"\d{9,10}(\.\d+)?|\d{12,13}")
_SLASH = re.compile(
    r"(\d{1,4})[/.](\d{1,2})[/.](\d{1,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap]m)?)?", re.I
)


class TimestampError(ValueError):
    """A value that is not a readable timestamp."""


def parse_timestamp(text: str, *, default_tz: tzinfo = UTC, day_first: bool = True) -> datetime:
    """Parse ISO 8601, RFC 2822, Unix epoch (s or ms) and slashed dates into an aware UTC datetime."""
    s = text.strip()
    if not s:
        raise TimestampError("empty timestamp")
    value = _parse_iso(s)
    if value is None and _EPOCH.fullmatch(s):
        seconds = float(s) / (1000 if len(s.split(".")[0]) >= 12 else 1)
        return datetime.fromtimestamp(seconds, tz=UTC)
    if value is None:
        value = _parse_slashed(s, day_first)
    if value is None:
        try:
            value = parsedate_to_datetime(s)
        except (TypeError, ValueError, IndexError):
            value = None
    if value is None:
        raise TimestampError(f"unreadable timestamp {text!r} (use ISO 8601, e.g. 2026-03-01T09:30:00Z)")
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    return value.astimezone(UTC)


def _parse_iso(s: str) -> datetime | None:
    try:
        if len(s) == 10:
            return datetime.combine(date.fromisoformat(s), time())
        return datetime.fromisoformat(s)
    except ValueError:
        return None


def _parse_slashed(s: str, day_first: bool) -> datetime | None:
    m = _SLASH.fullmatch(s)
    if not m:
        return None
    a, b, c, hh, mm, ss, ampm = m.groups()
    if len(a) == 4:
        year, month, day = int(a), int(b), int(c)
    else:
        year = int(c) + (2000 if len(c) == 2 else 0)
        day, month = (int(a), int(b)) if day_first else (int(b), int(a))
    hour = int(hh or 0)
    if ampm:
        hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
    try:
        return datetime(year, month, day, hour, int(mm or 0), int(ss or 0))
    except ValueError:
        return None


def to_utc(value: datetime, default_tz: tzinfo = UTC) -> datetime:
    """An aware UTC datetime from an aware or naive one (naive is read in ``default_tz``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    return value.astimezone(UTC)


def utc_text(value: datetime) -> str:
    """The canonical text of a UTC instant, ``YYYY-MM-DD HH:MM:SS.ffffff``: sortable, exact to the microsecond."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def utc_text_fast(text: str) -> str | None:
    """``2026-03-01T09:30:00Z`` straight to its canonical UTC text, or None when it is not in that form."""
    if len(text) == 20 and text[19] == "Z" and text[10] == "T":
        try:
            datetime.fromisoformat(text)  # validates the calendar and the clock
        except ValueError:
            return None
        return f"{text[:10]} {text[11:19]}.000000"
    return None


def utc_texts_fast(values: list[Any]) -> list[str | None]:
    """:func:`utc_text_fast` over a whole column in one loop (None where a value needs the full parser)."""
    out: list[str | None] = []
    append = out.append
    parse = datetime.fromisoformat
    for v in values:
        if v.__class__ is str and len(v) == 20 and v[19] == "Z" and v[10] == "T":
            try:
                parse(v)
            except ValueError:
                append(None)
                continue
            append(f"{v[:10]} {v[11:19]}.000000")
        else:
            append(None)
    return out


def utc_text_ts(text: str) -> float:
    """Unix seconds of a canonical UTC text."""
    return datetime.fromisoformat(text + "+00:00").timestamp()


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
