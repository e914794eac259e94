"""Business hours: a team's working week in its own time zone, with holidays (response SLAs, R16).

A :class:`BusinessCalendar` is a zone, the open intervals of each weekday (minutes after local
midnight, end up to 24:00) and a set of holiday dates. Time is counted in real elapsed minutes inside
the open intervals: every interval's start and end are wall-clock times of that local day, converted to
UTC on their own, so a day on which the clocks change (Europe/Berlin in March and October,
America/New_York in March and November) is handled by the zone database, never by adding 24 hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadstage.domain.errors import ValidationError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead a deadline is searched for (a calendar with hours always finds one well before).
MAX_DAYS = 800

Interval = tuple[int, int]  # minutes after local midnight: [start, end)
Week = tuple[tuple[Interval, ...], ...]  # seven days, Monday first

_SPAN = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)?\s*", re.I)


def zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """An IANA time zone by name (``ValidationError`` naming ``field`` when it is unknown)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{field}: a time zone name is required (e.g. Europe/Berlin)", field=field)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{field}: unknown time zone {name!r} (use an IANA name such as Europe/Berlin)", field=field
        ) from None


def parse_span(text: str, *, field: str) -> Interval:
    """``"09:00-17:00"`` as minutes ``(540, 1020)``; the end may be ``24:00``."""
    m = _SPAN.fullmatch(str(text))
    if not m:
        raise ValidationError(f"{field}: {text!r} is not a time span like 09:00-17:30", field=field)
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValidationError(f"{field}: {text!r} is not a valid time of day", field=field)
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise ValidationError(f"{field}: {text!r} ends before it starts", field=field)
    return start, end


def _days(key: str, *, field: str) -> list[int]:
    """``mon``, ``mon-fri``, ``sat,sun`` as weekday numbers (Monday 0)."""
    out: list[int] = []
    for part in str(key).lower().replace(" ", "").split(","):
        if "-" in part:
            a, _, b = part.partition("-")
            if a not in WEEKDAYS or b not in WEEKDAYS:
                raise ValidationError(f"{field}: unknown weekday range {part!r} (mon..sun)", field=field)
            i, j = WEEKDAYS.index(a), WEEKDAYS.index(b)
            if j < i:
                raise ValidationError(f"{field}: weekday range {part!r} runs backwards", field=field)
            out.extend(range(i, j + 1))
        elif part in WEEKDAYS:
            out.append(WEEKDAYS.index(part))
        else:
            raise ValidationError(f"{field}: unknown weekday {part!r} (mon, tue, ... sun)", field=field)
    return out


def parse_week(spec: Mapping[str, object], *, field: str = "hours") -> Week:
    """Weekday keys (``mon-fri``, ``sat``) to spans (``"09:00-17:00"`` or a list of them).

    Days that are not named are closed. A day named twice, or overlapping spans, are refused.
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ValidationError(
            f"{field}: give the open hours per weekday, e.g. mon-fri: 09:00-17:00", field=field
        )
    week: list[list[Interval] | None] = [None] * 7
    for key, value in spec.items():
        where = f"{field}.{key}"
        spans = value if isinstance(value, list) else [value]
        intervals = sorted(parse_span(str(s), field=where) for s in spans)
        for (_a, end), (start, _b) in pairwise(intervals):
            if start < end:
                raise ValidationError(f"{where}: the spans overlap", field=where)
        for day in _days(str(key), field=where):
            if week[day] is not None:
                raise ValidationError(f"{where}: {WEEKDAYS[day]} is given twice", field=where)
            week[day] = intervals
    result = tuple(tuple(day or ()) for day in week)
    if not any(result):
        raise ValidationError(f"{field}: no open hours at all", field=field)
    return result


def parse_duration_minutes(value: object, *, field: str) -> int:
    """Business time: ``90`` (minutes), ``"90m"``, ``"4h"``, ``"1d"`` (one 8-hour business day is not
    assumed: ``d`` means 24 business hours)."""
    if isinstance(value, bool):
        raise ValidationError(f"{field}: a duration such as 4h or 30m is required", field=field)
    if isinstance(value, int | float):
        minutes = float(value)
    else:
        m = _DURATION.fullmatch(str(value))
        if not m:
            raise ValidationError(f"{field}: {value!r} is not a duration such as 4h or 30m", field=field)
        number, unit = float(m.group(1)), (m.group(2) or "m").lower()
        minutes = number * {"m": 1, "min": 1, "h": 60, "d": 1440}[unit]
    if minutes <= 0 or minutes != int(minutes):
        raise ValidationError(f"{field}: {value!r} must be a positive whole number of minutes", field=field)
    return int(minutes)


@dataclass(frozen=True)
class BusinessCalendar:
    zone: ZoneInfo
    week: Week
    holidays: frozenset[date] = frozenset()

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def start_of_day(self, at: datetime) -> datetime:
        """The UTC instant of local midnight of ``at``'s local day."""
        local = self.local_date(at)
        return datetime.combine(local, time(), tzinfo=self.zone).astimezone(UTC)

    def intervals(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals of a local day as UTC instants."""
        if day in self.holidays:
            return
        midnight = datetime.combine(day, time())
        for start, end in self.week[day.weekday()]:
            yield (
                (midnight + timedelta(minutes=start)).replace(tzinfo=self.zone).astimezone(UTC),
                (midnight + timedelta(minutes=end)).replace(tzinfo=self.zone).astimezone(UTC),
            )

    def add_minutes(self, start: datetime, minutes: float) -> datetime:
        """The instant ``minutes`` business minutes after ``start`` (from the next opening when closed)."""
        remaining = timedelta(minutes=minutes)
        day = self.local_date(start) - timedelta(days=1)  # a late-night start may fall in yesterday's span
        for _ in range(MAX_DAYS):
            for open_at, close_at in self.intervals(day):
                lo = max(open_at, start)
                if close_at <= lo:
                    continue
                span = close_at - lo
                if span >= remaining:
                    return lo + remaining
                remaining -= span
            day += timedelta(days=1)
        raise ValidationError("the calendar has no open hours in the next two years", field="hours")

    def minutes_between(self, start: datetime, end: datetime) -> float:
        """Business minutes between two instants (0 when ``end`` is not after ``start``)."""
        if end <= start:
            return 0.0
        total = timedelta()
        day = self.local_date(start) - timedelta(days=1)
        last = self.local_date(end)
        while day <= last:
            for open_at, close_at in self.intervals(day):
                lo, hi = max(open_at, start), min(close_at, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 60.0


def calendar(timezone: str, week: Week, holidays: Sequence[date] = ()) -> BusinessCalendar:
    return BusinessCalendar(zone=zone(timezone), week=week, holidays=frozenset(holidays))
