"""LEADSTAGE_FOLLOW_UP_SECONDS (ADR 21): above 0 and at most 60; anything else is refused by name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadstage.config import Settings


def test_the_follow_up_delay_defaults_to_a_second_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().follow_up_seconds == 1.0
    monkeypatch.setenv("LEADSTAGE_FOLLOW_UP_SECONDS", "0.2")
    assert Settings().follow_up_seconds == 0.2


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon"])
def test_a_follow_up_delay_out_of_range_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LEADSTAGE_FOLLOW_UP_SECONDS", value)
    with pytest.raises(ValidationError, match="follow_up_seconds"):
        Settings()
