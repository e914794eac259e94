"""Identity rules, timestamp reading and typed properties."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadstage.domain.identity import EmailRules, canonical_email, company_domain, normalize_domain
from leadstage.domain.leads import PropertyType, infer_value, merge_properties
from leadstage.domain.times import TimestampError, parse_timestamp


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jane.Doe@Acme.COM ", "jane.doe@acme.com"),
        ("jane+news@acme.com", "jane@acme.com"),
        ("J.a.n.e+x@GoogleMail.com", "jane@gmail.com"),
        ("j.ane@outlook.com", "j.ane@outlook.com"),
    ],
)
def test_emails_fold_case_space_plus_and_gmail_dots(raw, expected):
    assert canonical_email(raw) == expected


def test_the_folding_rules_can_be_switched_off():
    rules = EmailRules(strip_plus=False, gmail_dots=False)
    assert canonical_email("J.Ane+x@gmail.com", rules) == "j.ane+x@gmail.com"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("acme.co.uk:443", "acme.co.uk"),
        ("WWW.ACME.IO.", "acme.io"),
        ("not a domain", None),
        ("", None),
    ],
)
def test_domains_normalise(raw, expected):
    assert normalize_domain(raw) == expected


def test_free_mail_never_identifies_an_account():
    assert company_domain("cfo@gmail.com") is None
    assert company_domain("cfo@acme-logistics.com") == "acme-logistics.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T09:30:00Z", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("2026-03-01 09:30:00+02:00", datetime(2026, 3, 1, 7, 30, tzinfo=UTC)),
        ("2026-03-01T09:30:00.250-05:00", datetime(2026, 3, 1, 14, 30, 0, 250000, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("01/03/2026 09:30", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("2026/03/01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("Sun, 01 Mar 2026 09:30:00 +0100", datetime(2026, 3, 1, 8, 30, tzinfo=UTC)),
        ("1772357400", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("1772357400000", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_timestamps_in_many_formats_become_utc(text, expected):
    assert parse_timestamp(text) == expected


def test_naive_times_are_read_in_the_default_zone_across_daylight_saving():
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_timestamp("2026-01-15 10:00", default_tz=berlin) == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    assert parse_timestamp("2026-07-15 10:00", default_tz=berlin) == datetime(2026, 7, 15, 8, 0, tzinfo=UTC)


def test_month_first_dates_when_configured():
    assert parse_timestamp("03/04/2026", day_first=False) == datetime(2026, 3, 4, tzinfo=UTC)
    assert parse_timestamp("03/04/2026", day_first=True) == datetime(2026, 4, 3, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "31/02/2026", "", "12:00"])
def test_unreadable_timestamps_are_refused_with_the_value(text):
    with pytest.raises(TimestampError) as info:
        parse_timestamp(text)
    assert (repr(text) in str(info.value)) or not text


@pytest.mark.parametrize(
    ("text", "value", "type_"),
    [
        ("42", 42, PropertyType.INTEGER),
        ("-3", -3, PropertyType.INTEGER),
        ("2.5", 2.5, PropertyType.NUMBER),
        ("007", "007", PropertyType.STRING),
        ("true", True, PropertyType.BOOLEAN),
        ("Yes", "Yes", PropertyType.STRING),
        ("Select", "Select", PropertyType.STRING),
        ("nan", "nan", PropertyType.STRING),
    ],
)
def test_cells_are_read_as_the_narrowest_type_that_keeps_them(text, value, type_):
    assert infer_value(text) == (value, type_)


def test_property_types_only_widen():
    assert PropertyType.INTEGER.widen(PropertyType.NUMBER) is PropertyType.NUMBER
    assert PropertyType.NUMBER.widen(PropertyType.STRING) is PropertyType.STRING
    assert PropertyType.BOOLEAN.widen(PropertyType.INTEGER) is PropertyType.STRING


def test_a_missing_incoming_value_never_erases_a_known_one():
    assert merge_properties({"a": 1, "b": "x"}, {"a": None, "b": "y", "c": None}) == {
        "a": 1,
        "b": "y",
        "c": None,
    }


@given(st.emails())
def test_canonical_email_is_idempotent(address):
    once = canonical_email(address)
    assert canonical_email(once) == once


def test_punycode_and_unicode_domains_are_one_domain():
    assert canonical_email("Jane@xn--bcher-kva.de") == canonical_email("jane@bücher.de") == "jane@bücher.de"


def test_look_ups_try_every_folding_an_address_may_have_been_stored_under():
    from leadstage.domain.identity import lookup_forms

    assert lookup_forms("Ann+x@acme.com") == ["ann@acme.com", "ann+x@acme.com"]


def test_only_ascii_digits_within_64_bits_are_internal_ids() -> None:
    from leadstage.domain.leads import MAX_ID, as_id

    assert as_id("42") == 42
    assert as_id(str(MAX_ID)) == MAX_ID
    for text in ("²", "٣", "0", str(MAX_ID + 1), "9" * 30, "", None, "4 2", "-1"):
        assert as_id(text) is None, text
