"""The pure rules of predictive scoring: labels, column kinds, the leakage guard, wording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadstage.domain.errors import ValidationError
from leadstage.domain.predictive import (
    ColumnKind,
    InsufficientData,
    auc,
    check_enough,
    classify_column,
    describe_factor,
    guard_columns,
    is_sales_assigned,
    lifecycle_label,
    property_labels,
    top_factors,
)


def test_sales_assigned_names_match_whatever_their_spelling():
    assert is_sales_assigned("Tags") == "tags"
    assert is_sales_assigned("Lead Quality") == "lead quality"
    assert is_sales_assigned("lead_quality_v2") == "lead quality"
    assert is_sales_assigned("Lost Reason") == "lost reason"
    assert is_sales_assigned("Lead Source") is None
    assert is_sales_assigned("Total Time Spent on Website") is None


def test_placeholders_are_missing_and_numbers_are_numbers():
    col = classify_column("Visits", [1, "2", "Select", None, 3.5, "", "N/A"])
    assert col.kind is ColumnKind.NUMERIC
    assert col.values == [1.0, 2.0, None, None, 3.5, None, None]
    cat = classify_column("City", ["Select", "Mumbai", True, 2.0])
    assert cat.kind is ColumnKind.CATEGORICAL
    assert cat.values == [None, "Mumbai", "true", "2"]


def test_garbage_in_a_numeric_column_is_refused_naming_the_column():
    values = [str(i) for i in range(50)] + ["twelve"]
    with pytest.raises(ValidationError, match=r"'Employees'.*twelve") as info:
        classify_column("Employees", values)
    assert info.value.field == "Employees"


def test_a_label_with_one_class_or_an_unknown_positive_is_bad_input():
    with pytest.raises(ValidationError, match="one class") as one:
        property_labels("Won", ["yes", "yes", None], "yes")
    assert one.value.field == "label"
    with pytest.raises(ValidationError, match="'maybe' is not a value") as unknown:
        property_labels("Won", ["yes", "no"], "maybe")
    assert unknown.value.field == "positive"
    labels, positive = property_labels("Converted", [1, 0, 1.0, None], "1")
    assert (labels, positive) == ([1, 0, 1, None], "1")
    assert property_labels("Converted", [1, 0], None) == ([1, 0], "1")


def test_too_little_history_is_refused_by_a_rule():
    with pytest.raises(InsufficientData, match="199 labelled leads"):
        check_enough([1] * 50 + [0] * 149, min_labelled=200, min_positives=30)
    with pytest.raises(InsufficientData, match="29 positives"):
        check_enough([1] * 29 + [0] * 300, min_labelled=200, min_positives=30)
    check_enough([1] * 30 + [0] * 170, min_labelled=200, min_positives=30)


def _columns(n: int) -> tuple[list, list[int]]:
    labels = [i % 3 == 0 for i in range(n)]
    y = [int(v) for v in labels]
    cols = [
        classify_column("Lead Number", list(range(1000, 1000 + n))),
        classify_column("Visits", [(i * 7) % 11 for i in range(n)]),
        classify_column("Tags", ["Will revert" if v else "Ringing" for v in labels]),
        classify_column("Echo", ["won" if v else "lost" for v in labels]),
        classify_column("Source", ["Google" if i % 4 else "Reference" for i in range(n)]),
        classify_column("Always", ["x"] * n),
    ]
    return cols, y


def test_the_guard_excludes_identifiers_sales_fields_and_leaks_each_with_its_reason():
    cols, y = _columns(300)
    result = guard_columns(cols, y)
    reasons = {e.name: e.reason for e in result.excluded}
    assert result.used == ["Visits", "Source"]
    assert reasons["Lead Number"].startswith("identifier")
    assert reasons["Tags"].startswith("sales-assigned")
    assert "predicts it almost perfectly" in reasons["Echo"]
    assert reasons["Always"].startswith("constant")


def test_include_overrides_the_guard_and_exclude_wins_first():
    cols, y = _columns(300)
    result = guard_columns(cols, y, include=["tags"], exclude=["Visits"])
    assert "Tags" in result.used
    assert "Visits" not in result.used
    assert {e.name: e.reason for e in result.excluded}["Visits"] == "excluded by --exclude"
    assert result.included_despite[0].name == "Tags"


def test_strictly_sequential_numbers_are_identifiers_even_with_repeats_elsewhere():
    col = classify_column("Row", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
    result = guard_columns([col], [0, 1] * 6)
    assert result.excluded[0].reason.startswith("identifier")


def test_columns_filled_only_after_a_stage_change_are_excluded():
    n = 200
    moved = [i % 4 == 0 for i in range(n)]
    amount = classify_column("Deal size", [float(i % 7) if m else None for i, m in enumerate(moved)])
    y = [int(i % 2 == 0) for i in range(n)]
    result = guard_columns([amount], y, moved=moved)
    assert "only after a stage change" in result.excluded[0].reason


def test_factors_read_in_plain_words():
    assert describe_factor("Lead Source", "Reference", 0.2149) == "Lead Source = Reference: +0.21"
    assert describe_factor("TotalVisits", 3.0, -0.5) == "TotalVisits = 3: -0.50"
    assert describe_factor("City", None, 0.1) == "City = (missing): +0.10"
    doc = top_factors({"a": 0.5, "b": -0.2, "c": 0.1, "d": -0.9}, {"a": "x", "d": 2.0}, top=1)
    assert [f["text"] for f in doc["positive"]] == ["a = x: +0.50"]
    assert [f["text"] for f in doc["negative"]] == ["d = 2: -0.90"]


def test_lifecycle_label_waits_for_the_window_to_close():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert lifecycle_label(t0, t0 + timedelta(days=30), t0 + timedelta(days=40), 90) == 1
    assert lifecycle_label(t0, None, t0 + timedelta(days=40), 90) is None
    assert lifecycle_label(t0, None, t0 + timedelta(days=91), 90) == 0
    assert lifecycle_label(t0, t0 + timedelta(days=120), t0 + timedelta(days=200), 90) == 0


def test_auc_by_ranks_with_ties():
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auc([0.5, 0.5], [0, 1]) == 0.5
