"""Canonical UTC text: the fast reading of Unix seconds agrees with datetime to the last bit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from leadstage.domain.times import utc_text, utc_text_ts


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
        lambda d: d.replace(tzinfo=UTC)
    )
)
def test_utc_text_ts_is_datetime_timestamp(moment):
    text = utc_text(moment)
    assert utc_text_ts(text) == datetime.fromisoformat(text + "+00:00").timestamp()


def test_utc_text_ts_reads_other_texts_through_datetime():
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC) + timedelta(microseconds=7)
    assert utc_text_ts("2026-03-01T12:30:00.000007") == moment.timestamp()
    assert utc_text_ts(utc_text(moment)) == moment.timestamp()
