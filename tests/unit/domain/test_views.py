"""A view of the lead list is a filter of the segment language (domain/views.py)."""

from __future__ import annotations

import pytest

from leadstage.domain.errors import ValidationError
from leadstage.domain.segments import ActivityCount, All, Compare, parse_filter
from leadstage.domain.views import LeadView, segment_filter


def test_every_filter_of_the_list_reads_as_one_parsable_filter() -> None:
    view = LeadView(
        stage="mql",
        status="open",
        owner="none",
        source="paid_search",
        campaign='Spring "launch"',
        content="eBook: Freight",
        fit="B",
        engagement="2",
        predictive="0.4",
        created_from="2026-01-01",
        created_to="2026-03-31",
        q="acme",
    )
    text = view.filter_text()
    assert text.startswith('stage = mql and status = open and owner is null and first_source = "paid_search"')
    assert 'activity(any, campaign = "Spring \\"launch\\"")' in text
    tree = parse_filter(text)
    assert isinstance(tree, All)
    activities = [item for item in tree.items if isinstance(item, ActivityCount)]
    assert [a.type for a in activities] == ["any", "any"]


def test_typed_text_cannot_change_the_filter_around_it() -> None:
    view = LeadView(q='x" or stage = customer or email contains "')
    tree = parse_filter(view.filter_text())
    texts = [c.values[0] for c in tree.items if isinstance(c, Compare)] if isinstance(tree, All) else []
    assert not any(v == "customer" for v in texts)
    assert "stage" not in {c.field.name for c in getattr(tree, "items", ()) if isinstance(c, Compare)}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stage": "won"}, "stage"),
        ({"fit": "E"}, "fit"),
        ({"engagement": "0"}, "engagement"),
        ({"predictive": "1.5"}, "predictive"),
        ({"created_from": "2026-02-30"}, "created_from"),
        ({"created_from": "2026-03-01", "created_to": "2026-02-01"}, "created_from"),
        ({"sort": "random"}, "sort"),
    ],
)
def test_bad_values_are_refused_naming_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        LeadView.from_params(params)
    assert refused.value.field == field


def test_a_saved_view_keeps_its_segment_and_its_own_conditions() -> None:
    assert segment_filter("fit_grade >= B", None) == "fit_grade >= B"
    assert segment_filter("fit_grade >= B", "stage = mql or stage = sql") == (
        "(stage = mql or stage = sql) and (fit_grade >= B)"
    )
    assert segment_filter("", "stage = mql") == "stage = mql"


def test_ids_and_any_activity_are_part_of_the_filter_language() -> None:
    tree = parse_filter("id in (3, 5) or activity(any, campaign = Autumn)")
    assert parse_filter("count(any, within 30d) >= 2") is not None
    with pytest.raises(ValidationError):
        parse_filter("activity(anything)")
    assert tree is not None


def test_a_qualification_form_reads_back_as_the_same_answer() -> None:
    from leadstage.domain.qualification import BANT_FRAMEWORK, format_answer, parse_answer

    text = format_answer(
        {"status": "confirmed", "amount": "40000", "currency": "eur"}, "CFO said 'yes' on the call"
    )
    answer = parse_answer(BANT_FRAMEWORK, "budget", text)
    assert answer.confirmed
    assert answer.value == {"status": "confirmed", "amount": "40000", "currency": "EUR"}
    assert answer.evidence == "CFO said 'yes' on the call"
    assert format_answer({"status": "", "amount": " "}) == ""
