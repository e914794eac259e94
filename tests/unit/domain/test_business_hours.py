"""Business-hours arithmetic: nights, weekends, holidays and clock changes in the team's own zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from leadstage.domain.business_hours import calendar, parse_duration_minutes, parse_week
from leadstage.domain.errors import ValidationError

OFFICE = parse_week({"mon-fri": "09:00-17:00"})
ALWAYS = parse_week({"mon-sun": "00:00-24:00"})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_deadline_inside_one_working_day() -> None:
    berlin = calendar("Europe/Berlin", OFFICE)
    # Tuesday 2026-01-06 10:00 CET = 09:00 UTC; four business hours later: 14:00 CET
    assert berlin.add_minutes(utc(2026, 1, 6, 9), 240) == utc(2026, 1, 6, 13)


def test_a_deadline_skips_the_night_and_the_weekend() -> None:
    berlin = calendar("Europe/Berlin", OFFICE)
    # Friday 16:00 CET + 2 business hours = 1 h on Friday, 1 h on Monday: Monday 10:00 CET
    assert berlin.add_minutes(utc(2026, 1, 9, 15), 120) == utc(2026, 1, 12, 9)
    # arriving on Saturday: the clock starts on Monday at 09:00
    assert berlin.add_minutes(utc(2026, 1, 10, 12), 30) == utc(2026, 1, 12, 8, 30)


def test_holidays_are_closed_days() -> None:
    berlin = calendar("Europe/Berlin", OFFICE, [date(2026, 1, 12)])
    assert berlin.add_minutes(utc(2026, 1, 9, 15), 120) == utc(2026, 1, 13, 9)


def test_berlin_spring_forward_over_the_weekend_uses_summer_time_on_monday() -> None:
    berlin = calendar("Europe/Berlin", OFFICE)
    # Friday 2026-03-27 16:00 CET (UTC+1) + 2 h: Monday 2026-03-30 10:00 CEST (UTC+2) = 08:00 UTC
    assert berlin.add_minutes(utc(2026, 3, 27, 15), 120) == utc(2026, 3, 30, 8)


def test_berlin_fall_back_over_the_weekend_uses_winter_time_on_monday() -> None:
    berlin = calendar("Europe/Berlin", OFFICE)
    # Friday 2026-10-23 16:00 CEST (UTC+2) + 2 h: Monday 2026-10-26 10:00 CET (UTC+1) = 09:00 UTC
    assert berlin.add_minutes(utc(2026, 10, 23, 14), 120) == utc(2026, 10, 26, 9)


def test_the_night_the_clocks_change_counts_real_minutes() -> None:
    berlin = calendar("Europe/Berlin", ALWAYS)
    # 2026-03-29 00:00 CET; 02:00 does not exist; three real hours later it is 04:00 CEST = 02:00 UTC
    assert berlin.add_minutes(utc(2026, 3, 28, 23), 180) == utc(2026, 3, 29, 2)
    # 2026-10-25 00:00 CEST; 02:00-03:00 happens twice; three real hours later it is 02:00 CET = 01:00 UTC
    assert berlin.add_minutes(utc(2026, 10, 24, 22), 180) == utc(2026, 10, 25, 1)
    # that day has 25 hours, the spring one 23
    assert berlin.minutes_between(utc(2026, 10, 24, 22), utc(2026, 10, 25, 23)) == 25 * 60
    assert berlin.minutes_between(utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)) == 23 * 60


def test_new_york_march_and_november_switches() -> None:
    new_york = calendar("America/New_York", OFFICE)
    # Friday 2026-03-06 16:00 EST (UTC-5) + 2 h: Monday 2026-03-09 10:00 EDT (UTC-4) = 14:00 UTC
    assert new_york.add_minutes(utc(2026, 3, 6, 21), 120) == utc(2026, 3, 9, 14)
    # Friday 2026-10-30 16:00 EDT (UTC-4) + 2 h: Monday 2026-11-02 10:00 EST (UTC-5) = 15:00 UTC
    assert new_york.add_minutes(utc(2026, 10, 30, 20), 120) == utc(2026, 11, 2, 15)


def test_business_minutes_between_two_instants() -> None:
    new_york = calendar("America/New_York", OFFICE)
    assert new_york.minutes_between(utc(2026, 10, 30, 20), utc(2026, 11, 2, 15)) == 120
    assert new_york.minutes_between(utc(2026, 11, 2, 15), utc(2026, 10, 30, 20)) == 0
    # a response on Saturday took no business time after Friday's close
    assert new_york.minutes_between(utc(2026, 10, 30, 20), utc(2026, 10, 31, 15)) == 60


def test_split_days_and_lunch_breaks() -> None:
    week = parse_week({"mon-thu": ["09:00-12:00", "13:00-17:00"], "fri": "09:00-13:00"})
    cal = calendar("UTC", week)
    # Monday 11:30 + 60 min: 30 before lunch, 30 after
    assert cal.add_minutes(utc(2026, 1, 5, 11, 30), 60) == utc(2026, 1, 5, 13, 30)
    assert week[5] == ()
    assert week[6] == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mon-fri": ["09:00-13:00", "12:00-17:00"]}, "overlap"),
        ({"mon-fri": "17:00-09:00"}, "ends before it starts"),
        ({"mon-fri": "9am-5pm"}, "not a time span"),
        ({"funday": "09:00-17:00"}, "unknown weekday"),
        ({"mon-fri": "09:00-17:00", "fri": "10:00-12:00"}, "given twice"),
        ({"mon": "25:00-26:00"}, "not a valid time"),
        ({}, "open hours per weekday"),
    ],
)
def test_malformed_hours_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_week(spec)


def test_unknown_time_zones_and_bad_durations_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        calendar("Mars/Olympus", OFFICE)
    assert parse_duration_minutes("4h", field="x") == 240
    assert parse_duration_minutes("90m", field="x") == 90
    assert parse_duration_minutes(30, field="x") == 30
    for bad in ("soon", "0h", -5, "1.5m", True):
        with pytest.raises(ValidationError):
            parse_duration_minutes(bad, field="first_response")
