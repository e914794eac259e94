"""The segment filter language: what it reads, what it means, and where it says a filter is wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from leadstage.domain.errors import ValidationError
from leadstage.domain.segments import (
    ActivityCount,
    Ago,
    All,
    AnyOf,
    Compare,
    FilterSyntaxError,
    Kind,
    Not,
    Op,
    ordered_choices,
    owner_names,
    parse_filter,
    tokenize,
    validate_segment_name,
    walk,
)


def only_compare(text: str) -> Compare:
    node = parse_filter(text)
    assert isinstance(node, Compare)
    return node


# ---- what it reads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "stage = mql",
        "stage = MQL",
        "Stage = mql",
        'stage = "mql"',
        "stage != customer",
        "stage >= sql",
        "furthest_stage > lead",
        "stage in (mql, sql)",
        "stage not in (lead)",
        "status = nurture",
        "status in (open, working)",
        "cycle > 1",
        "cycle in (1, 2, 3)",
        "owner = rob",
        'owner in (rob, "ana.smith")',
        "owner is null",
        "owner is not null",
        'email contains "@gmail"',
        "email_domain = acme-logistics.com",
        "email_domain in (gmail.com, yahoo.com)",
        'first_name starts_with "An"',
        'last_name = "O\'Neil"',
        'job_title contains "cfo"',
        'company = "Acme \\"Logistics\\""',
        "first_source = paid_search",
        "latest_source is null",
        "created_at >= 2026-01-01",
        "created_at = 2026-01-31",
        "created_at in (2026-01-01, 2026-01-02)",
        "created_at >= 30d ago",
        "last_touch_at < 90d ago",
        "first_touch_at > 12h ago",
        "last_touch_at <= 2w ago",
        "fit_score >= 55.5",
        "fit_score < -1",
        "fit_score is null",
        "fit_grade = A",
        "fit_grade >= b",
        "fit_grade in (A, B)",
        "engagement_score > 10",
        "engagement_level >= 2",
        "engagement_level = 4",
        "priority = A1",
        "priority in (a1, B2)",
        'account.industry = "Logistics"',
        "account.employees >= 100",
        "account.annual_revenue > 10000000",
        "account.annual_revenue > 1e7",
        "account.country in (US, CA)",
        "account.domain is null",
        'properties."Lead Source" = paid_search',
        "properties.Seniority = Manager",
        "properties.Employees >= 250",
        "properties.Converted = true",
        'properties."Budget Band" in ("40k", 50, false)',
        'properties.Notes contains "urgent"',
        "properties.Missing is null",
        "activity(webinar_attended)",
        'activity(webinar_attended, content = "Webinar: Forecasting Freight Costs", within 30d)',
        "activity(page_view, within 12h)",
        "activity(email_click, campaign = q4 and source = email)",
        "activity(email_click, campaign = q4, source = email)",
        'activity(page_view, page contains "/pricing" or page contains "/plans")',
        'activity(page_view, properties."Page URL" starts_with "https://")',
        "activity(page_view, occurred_at >= 2026-10-01)",
        "activity(form_submit, not (source = chat))",
        'count(page_view, page contains "/pricing") >= 3',
        "count(email_open, within 90d) = 0",
        "count(page_view) > 10",
        "count(page_view, visits >= 2) != 1",
        "not stage = mql",
        "not not stage = mql",
        "stage = mql and fit_grade >= B",
        "stage = mql AND fit_grade >= B OR status = nurture",
        "(stage = mql or stage = sql) and not (owner is null)",
        "((((stage = mql))))",
        "stage=mql and cycle>=2",
    ],
)
def test_reads_every_documented_form(text):
    node = parse_filter(text)
    assert list(walk(node))


def test_a_comparison_keeps_its_field_operator_value_and_positions():
    node = only_compare("fit_grade >= b")
    assert node.field.name == "fit_grade"
    assert node.field.kind is Kind.GRADE
    assert node.op is Op.GE
    assert node.values == ("B",)  # vocabularies are normalised
    assert node.position == 1
    assert node.value_positions == (14,)


def test_values_take_the_type_of_their_field():
    assert only_compare("stage = MQL").values == ("mql",)
    assert only_compare("engagement_level >= 2").values == (2,)
    assert only_compare("fit_score > 2.5").values == (2.5,)
    assert only_compare("created_at < 2026-01-31").values == (date(2026, 1, 31),)
    assert only_compare("created_at >= 30d ago").values == (Ago(30, "d"),)
    assert only_compare("priority = b3").values == ("B3",)
    assert only_compare('company = "Acme \\"X\\" \\\\ Co"').values == ('Acme "X" \\ Co',)
    assert only_compare("owner = Rob").values == ("Rob",)  # user names keep their case


def test_custom_properties_read_numbers_booleans_and_text():
    node = only_compare('properties."Budget Band" in (40, 2.5, true, FALSE, paid, "50k", 2026-01-01)')
    assert node.field.kind is Kind.PROPERTY
    assert node.field.key == "Budget Band"
    assert node.values == (40, 2.5, True, False, "paid", "50k", "2026-01-01")
    assert only_compare("properties.Seniority = Manager").field.key == "Seniority"
    assert only_compare('properties.flag = "true"').values == ("true",)  # quoted: text


def test_and_binds_tighter_than_or_and_not_tightest():
    node = parse_filter("not stage = mql and status = open or cycle > 1")
    assert isinstance(node, AnyOf)
    first, second = node.items
    assert isinstance(first, All)
    assert isinstance(first.items[0], Not)
    assert isinstance(second, Compare)


def test_chains_of_and_are_flat():
    node = parse_filter("stage = mql and status = open and cycle = 1")
    assert isinstance(node, All)
    assert len(node.items) == 3


def test_activity_is_at_least_one_and_count_keeps_its_comparison():
    node = parse_filter('activity(webinar_attended, content = "W", within 30d)')
    assert isinstance(node, ActivityCount)
    assert (node.type, node.op, node.count, node.within) == ("webinar_attended", Op.GE, 1, Ago(30, "d"))
    assert isinstance(node.where, Compare)
    assert node.where.field.name == "content"
    assert node.where.field.scope == "activity"
    counted = parse_filter('count(page_view, page contains "/pricing", source = organic) >= 3')
    assert isinstance(counted, ActivityCount)
    assert (counted.op, counted.count, counted.within) == (Op.GE, 3, None)
    assert isinstance(counted.where, All)  # several comma-separated conditions must all hold
    page = counted.where.items[0]
    assert isinstance(page, Compare)
    assert page.field.kind is Kind.PROPERTY
    assert page.field.key == "page"


def test_count_knows_which_numbers_satisfy_it():
    node = parse_filter("count(page_view) < 2")
    assert isinstance(node, ActivityCount)
    assert [node.holds_for(n) for n in range(4)] == [True, True, False, False]


def test_activity_types_of_the_deployment_are_accepted():
    node = parse_filter("activity(podcast_listened)", activity_types={"podcast_listened"})
    assert isinstance(node, ActivityCount)
    assert node.type == "podcast_listened"


def test_relative_times_are_measured_back_from_as_of():
    as_of = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert Ago(30, "d").before(as_of) == as_of - timedelta(days=30)
    assert Ago(12, "h").before(as_of) == as_of - timedelta(hours=12)
    assert Ago(2, "w").before(as_of) == as_of - timedelta(days=14)


# ---- what grades and stages mean -------------------------------------------------------------------


def test_fit_grade_at_least_b_means_a_or_b():
    assert set(ordered_choices(Kind.GRADE, Op.GE, "B")) == {"A", "B"}
    assert set(ordered_choices(Kind.GRADE, Op.GT, "B")) == {"A"}
    assert set(ordered_choices(Kind.GRADE, Op.LE, "B")) == {"B", "C", "D"}
    assert set(ordered_choices(Kind.GRADE, Op.LT, "B")) == {"C", "D"}
    assert set(ordered_choices(Kind.GRADE, Op.GE, "D")) == {"A", "B", "C", "D"}


def test_engagement_level_at_least_2_means_1_or_2():
    assert set(ordered_choices(Kind.LEVEL, Op.GE, 2)) == {1, 2}
    assert set(ordered_choices(Kind.LEVEL, Op.GT, 2)) == {1}
    assert set(ordered_choices(Kind.LEVEL, Op.LE, 2)) == {2, 3, 4}
    assert set(ordered_choices(Kind.LEVEL, Op.LT, 3)) == {4}


def test_stages_compare_along_the_funnel():
    assert ordered_choices(Kind.STAGE, Op.GE, "sql") == ("sql", "opportunity", "customer", "evangelist")
    assert ordered_choices(Kind.STAGE, Op.LT, "sql") == ("lead", "mql")


def test_owner_names_are_listed_with_their_positions():
    node = parse_filter('owner = rob or activity(call) or owner in (ana, "lee")')
    assert owner_names(node) == [("rob", 9), ("ana", 44), ("lee", 49)]


# ---- where it says a filter is wrong ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "says"),
    [
        ("", 1, "the filter is empty"),
        ("   ", 1, "the filter is empty"),
        ("stage = mql and fitgrade = A", 17, "unknown field 'fitgrade'; known fields: stage, status"),
        ("fitgrade = A", 1, "did you mean 'fit_grade'?"),
        ("stage = ", 9, "expected a value after '='"),
        ("stage = mql and fit_grade = ", 29, "expected a value after '='"),
        ("stage = and", 9, "expected a value after '=', got 'and'"),
        ("stage = wizard", 9, "unknown stage 'wizard' for stage; one of lead, mql, sql"),
        ("stage in (mql, wizard)", 16, "unknown stage 'wizard'"),
        ("status = lost", 10, "unknown status 'lost'"),
        ("stage contains mql", 7, "'contains' does not apply to stage"),
        ("status >= open", 8, "'>=' does not apply to status"),
        ("fit_grade = E", 13, "fit_grade is a grade A (best), B, C or D; got E"),
        ("fit_grade >= 1", 14, "fit_grade is a grade"),
        (
            'engagement_level >= "abc"',
            21,
            'engagement_level is a level 1 (most engaged), 2, 3 or 4; got "abc"',
        ),
        ("engagement_level = 5", 20, "engagement_level is a level"),
        ("engagement_level = 1.5", 20, "engagement_level is a level"),
        ("priority = A5", 12, "priority is a fit grade A-D followed by an engagement level 1-4"),
        ("priority >= A1", 10, "'>=' does not apply to priority"),
        ("cycle = abc", 9, "cycle is a whole number: expected a number, got abc"),
        ("cycle = 1.5", 9, "cycle is a whole number, got 1.5"),
        ("fit_score > high", 13, "fit_score is a number: expected a number"),
        ('company < "x"', 9, "'<' does not apply to company (text)"),
        ("company = 42", 11, 'company is text: put the value in double quotes, e.g. "42"'),
        ("created_at >= yesterday", 15, "created_at is a date: expected an ISO date like 2026-01-31"),
        ("created_at >= 2026-02-30", 15, "2026-02-30 is not a valid date"),
        ("created_at >= 2026-1-5", 15, "cannot read '2026-1-5'"),
        ("created_at >= -30d", 15, "write a relative time as 30d ago, not -30d"),
        ("created_at >= 30d", 18, "expected 'ago' after '30d'"),
        ("created_at = 30d ago", 14, "a relative time (30d ago) needs <, <=, > or >="),
        ("cycle > 30d ago", 9, "cycle is a whole number, not a time"),
        ("stage", 6, "expected an operator after stage"),
        ("stage mql", 7, "expected an operator after stage"),
        ("stage not mql", 11, "expected 'in' after 'not'"),
        ("owner is nothing", 10, "expected 'null' after 'is'"),
        ("owner is not rob", 14, "expected 'null' after 'is not'"),
        ("stage = null", 9, "compare with null using 'is null'"),
        ("stage in mql", 10, "expected '(' and a list of values after 'in'"),
        ("stage in (mql sql)", 15, "expected ',' or ')' in the list of values"),
        ("stage in ()", 11, "expected a value after 'in'"),
        ("(stage = mql", 13, "expected ')' to close the '(' at position 1"),
        ("stage = mql)", 12, "')' without a matching '('"),
        ("stage = mql status = open", 13, "expected 'and', 'or' or the end of the filter, got 'status'"),
        ("stage = mql and", 16, "expected a condition after 'and'"),
        ("and stage = mql", 1, "expected a condition"),
        ("stage = mql # note", 13, "unexpected character '#'"),
        ('company = "Acme', 11, "unterminated string"),
        ('company = "a\\nb"', 13, "unknown escape '\\n'"),
        ("2026 = stage", 1, "expected a condition"),
        ('"stage" = mql', 1, "expected a condition"),
        ("activity(webinar)", 10, "unknown activity type 'webinar'"),
        ("activity(webinar)", 10, "did you mean 'webinar_attended'?"),
        ("activity()", 10, "expected an activity type after 'activity('"),
        ("activity(page_view within 30d)", 20, "expected ',' or ')' in activity(page_view, ...)"),
        ("activity(page_view, within 30)", 28, "expected a time span such as 30d"),
        ("activity(page_view, within 1d, within 2d)", 32, "'within' is given twice"),
        ("activity(page_view, stage = mql)", 21, "'stage' is a lead field"),
        ("activity(page_view, account.industry = x)", 21, "'account.industry' is a lead field"),
        ("activity(page_view, activity(call))", 21, "activity(...) cannot be used inside another one"),
        ("activity(page_view, page contains 3)", 35, "'contains' needs text"),
        ("count(page_view)", 17, "expected a comparison after count(...), e.g. count(page_view) >= 3"),
        ("count(page_view) >= many", 21, "expected a whole number after '>='"),
        ("count(page_view) >= 1.5", 21, "expected a whole number after '>='"),
        ('properties.Employees >= "250"', 25, "'>=' on a custom property compares numbers"),
        ('properties."Lead Source" contains 3', 35, "'contains' needs text"),
        ("properties = 3", 12, "expected '.' and a property name after 'properties'"),
        ("properties.", 12, "expected a property name after 'properties.'"),
        ("properties.(", 12, "expected a property name after 'properties.'"),
        ("properties.x > 1d ago", 16, "custom property, not a time"),
        ("not", 4, "expected a condition after 'not'"),
    ],
)
def test_refuses_a_wrong_filter_at_the_exact_position(text, position, says):
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    message = str(caught.value)
    assert message.startswith(f"position {position}: "), message
    assert says in message, message
    assert caught.value.position == position


def test_syntax_errors_are_validation_errors_on_the_filter_field():
    with pytest.raises(ValidationError) as caught:
        parse_filter("stage = wizard")
    assert caught.value.field == "filter"


def test_unknown_activity_types_of_another_deployment_are_refused():
    with pytest.raises(FilterSyntaxError, match="position 10: unknown activity type 'podcast_listened'"):
        parse_filter("activity(podcast_listened)")


def test_deep_nesting_is_refused_not_a_crash():
    with pytest.raises(FilterSyntaxError, match="nested more than"):
        parse_filter("(" * 200 + "stage = mql" + ")" * 200)


def test_an_overlong_filter_is_refused():
    with pytest.raises(FilterSyntaxError, match="at most 10000 characters"):
        parse_filter("stage = mql or " * 1000 + "stage = sql")


def test_tokens_carry_one_based_positions():
    tokens = tokenize('a >= "x y"  and 30d')
    assert [(tok.kind, tok.position) for tok in tokens] == [
        ("NAME", 1),
        ("OP", 3),
        ("STRING", 6),
        ("NAME", 13),
        ("SPAN", 17),
        ("END", 20),
    ]


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "tab\there"])
def test_segment_names_are_1_to_200_printable_characters(name):
    with pytest.raises(ValidationError):
        validate_segment_name(name)


def test_segment_names_are_trimmed():
    assert validate_segment_name("  Hot leads ") == "Hot leads"
    assert validate_segment_name("x" * 200) == "x" * 200
