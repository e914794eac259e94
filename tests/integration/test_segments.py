"""Segments on SQLite and PostgreSQL: membership computed in SQL equals an independent Python computation,
and the command line creates, lists, shows and uses segments."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import make_engine
from leadstage.bootstrap import Container
from leadstage.domain.errors import NotFound, ValidationError
from leadstage.domain.segments import Segment, parse_filter
from leadstage.services import segments as segment_service
from leadstage.services.leads import LeadInput, upsert_lead
from leadstage.services.ports import LeadFilter
from tests.cli_runner import run
from tests.conftest import NOW

STAGES = ["lead", "mql", "sql", "opportunity", "customer", "evangelist"]
WEBINAR = "Webinar: Forecasting Freight Costs"
ACCOUNTS = {  # domain: (industry, employees, annual_revenue, country)
    "acme-logistics.com": ("Logistics", 250, 12_000_000.0, "US"),
    "globex.io": ("Software", 40, 900_000.0, "DE"),
    "initech.com": (None, None, None, "US"),
}


@dataclass
class Act:
    type: str
    at: datetime
    source: str | None = None
    campaign: str | None = None
    content: str | None = None
    page: str | None = None
    visits: int | None = None


@dataclass
class Model:
    """What we wrote for one lead, kept in Python: the expected answers come from here, not from SQL."""

    id: int = 0
    email: str | None = None
    domain: str | None = None
    first_name: str | None = None
    job_title: str | None = None
    company: str | None = None
    source: str | None = None
    created_at: datetime = NOW
    properties: dict[str, Any] = field(default_factory=dict)
    stage: str = "lead"
    status: str = "open"
    cycle: int = 1
    furthest: str = "lead"
    owner: str | None = None
    fit_score: float | None = None
    grade: str | None = None
    engagement_score: float | None = None
    level: int | None = None
    priority: str | None = None
    activities: list[Act] = field(default_factory=list)

    @property
    def account(self) -> tuple[str | None, int | None, float | None, str | None] | None:
        return ACCOUNTS.get(self.domain or "")

    @property
    def first_source(self) -> str | None:
        """The lead's own source; without one, the import gives it the source of its earliest activity."""
        if self.source or not self.activities:
            return self.source
        return min(self.activities, key=lambda a: a.at).source

    @property
    def last_touch_at(self) -> datetime:
        return max([self.created_at, *(a.at for a in self.activities)])

    def count(
        self, type_: str, where: Callable[[Act], bool] = lambda a: True, within: int | None = None
    ) -> int:
        return sum(
            1
            for a in self.activities
            if a.type == type_
            and where(a)
            and (within is None or NOW - timedelta(days=within) <= a.at <= NOW)
        )


def rank(stage: str) -> int:
    return STAGES.index(stage)


def build_leads(c: Container, tmp_path: Path, capsys: pytest.CaptureFixture[str], n: int = 80) -> list[Model]:
    """Leads through the lead service, activities through ``leadstage import activities``, scores by SQL."""
    rng = random.Random(7)
    with c.uow() as uow:
        user_ids = {
            name: uow.users.add(username=name, role="sales_rep", team=None, password_hash=None, at=NOW)
            for name in ("rob", "ana")
        }
        uow.commit()
    models: list[Model] = []
    updates = []
    with c.uow() as uow:
        for i in range(n):
            m = Model()
            domain = rng.choice([*ACCOUNTS, "gmail.com", None])
            if domain is not None:
                m.email = f"p{i}@{domain}" if i % 5 else f"P{i}@{domain.upper()}"
                m.domain = domain
            elif i % 2:
                m.email = "not-an-email"  # kept, but has no canonical email and no domain
            m.first_name = rng.choice(["Ana", "Bob", "Cy", None])
            m.job_title = rng.choice(["CFO", "VP Finance", "Student", "Head of Ops", None])
            m.company = rng.choice(["Acme Logistics", "Globex", "Initech", "acme labs", None])
            m.source = rng.choice(["paid_search", "organic_search", "event", None])
            m.created_at = NOW - timedelta(days=rng.randrange(0, 120), minutes=rng.randrange(1, 1440))
            if rng.random() < 0.7:
                m.properties["Lead Source"] = rng.choice(["Google Ads", "Referral", "Olark Chat"])
            if rng.random() < 0.7:
                m.properties["Employees"] = rng.choice([5, 50, 100, 250, 1000])
            if rng.random() < 0.3:
                m.properties["Employees"] = "unknown"  # the same property as text
            if rng.random() < 0.5:
                m.properties["Converted"] = rng.random() < 0.5
            if rng.random() < 0.3:
                m.properties["Zip"] = rng.choice(["02134", "10001"])
            if rng.random() < 0.5:
                m.properties["Score"] = rng.choice([0.5, 1.5, 2.5])
            lead, outcome, _ = upsert_lead(
                uow,
                LeadInput(
                    email=m.email,
                    first_name=m.first_name,
                    job_title=m.job_title,
                    company=m.company,
                    source=m.source,
                    created_at=m.created_at,
                    properties=dict(m.properties),
                    fingerprint=f"row-{i}",
                ),
                normalizer=c.identity,
                at=NOW,
            )
            assert outcome == "created"
            assert lead.id is not None
            m.id = lead.id
            m.stage = rng.choice(STAGES)
            m.furthest = STAGES[min(5, rank(m.stage) + rng.choice([0, 0, 1]))]
            m.status = rng.choice(["open", "working", "nurture", "disqualified"])
            m.cycle = rng.choice([1, 1, 2, 3])
            m.owner = rng.choice(["rob", "ana", None])
            if rng.random() < 0.75:
                m.grade = rng.choice("ABCD")
                m.level = rng.choice([1, 2, 3, 4])
                m.priority = f"{m.grade}{m.level}"
                m.fit_score = float(rng.randrange(0, 100))
                m.engagement_score = float(rng.randrange(0, 60))
            updates.append(
                update(t.leads)
                .where(t.leads.c.id == m.id)
                .values(
                    stage=m.stage,
                    status=m.status,
                    furthest_stage=m.furthest,
                    cycle=m.cycle,
                    owner_id=user_ids[m.owner] if m.owner else None,
                    fit_score=m.fit_score,
                    fit_grade=m.grade,
                    engagement_score=m.engagement_score,
                    engagement_level=m.level,
                    priority=m.priority,
                )
            )
            models.append(m)
        for domain, (industry, employees, revenue, country) in ACCOUNTS.items():
            updates.append(
                update(t.accounts)
                .where(t.accounts.c.domain == domain)
                .values(industry=industry, employees=employees, annual_revenue=revenue, country=country)
            )
        uow.commit()
    with c.engine.begin() as conn:  # scores, stages and owners as scoring and sales would have left them
        for statement in updates:
            conn.execute(statement)
    rows = []
    for m in models:
        for _ in range(rng.choice([0, 0, 1, 2, 3, 5, 8])):
            kind = rng.choice(["page_view", "page_view", "webinar_attended", "email_open", "form_submit"])
            act = Act(kind, NOW - timedelta(days=rng.randrange(0, 60), minutes=rng.randrange(1, 1440)))
            act.source = rng.choice(["paid_search", "email", "organic_search", None])
            if kind == "page_view":
                act.page = rng.choice(["/pricing", "/pricing/enterprise", "/Pricing", "/blog", "/"])
                act.visits = rng.choice([None, 1, 2, 3])
            elif kind == "webinar_attended":
                act.content = rng.choice([WEBINAR, "Webinar: Customs 101"])
            elif kind == "email_open":
                act.campaign = rng.choice(["q4-nurture", "newsletter"])
            m.activities.append(act)
            rows.append(
                [
                    m.id,
                    act.type,
                    act.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    act.source or "",
                    act.campaign or "",
                    act.content or "",
                    act.page or "",
                    "" if act.visits is None else str(act.visits),
                ]
            )
    path = tmp_path / "activities.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["lead_id", "type", "occurred_at", "source", "campaign", "content", "page", "visits"])
        writer.writerows(rows)
    db_url = c.settings.database_url
    result = run(capsys, db_url, "import", "activities", str(path), "--json")
    assert result.code == 0, result.err
    assert result.json()["created"] == len(rows)
    return models


def day(m: Model, y: int, mo: int, d: int) -> bool:
    start = datetime(y, mo, d, tzinfo=UTC)
    return start <= m.created_at < start + timedelta(days=1)


def num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def pricing(a: Act) -> bool:
    return a.page is not None and "/pricing" in a.page.lower()


D30 = NOW - timedelta(days=30)

#: filter -> the same question asked of the Python model
CASES: list[tuple[str, Callable[[Model], bool]]] = [
    ("stage = mql", lambda m: m.stage == "mql"),
    ("stage >= sql", lambda m: rank(m.stage) >= rank("sql")),
    ("stage < opportunity", lambda m: rank(m.stage) < rank("opportunity")),
    ("furthest_stage > mql", lambda m: rank(m.furthest) > rank("mql")),
    (
        "stage in (mql, sql) and status = working",
        lambda m: m.stage in ("mql", "sql") and m.status == "working",
    ),
    ("status != nurture", lambda m: m.status != "nurture"),
    ("status not in (nurture, disqualified)", lambda m: m.status not in ("nurture", "disqualified")),
    ("cycle >= 2", lambda m: m.cycle >= 2),
    ("fit_grade >= B", lambda m: m.grade in ("A", "B")),
    ("fit_grade > B", lambda m: m.grade == "A"),
    ("fit_grade <= B", lambda m: m.grade in ("B", "C", "D")),
    ("fit_grade = C", lambda m: m.grade == "C"),
    ("not fit_grade >= B", lambda m: m.grade not in ("A", "B")),
    ("engagement_level >= 2", lambda m: m.level in (1, 2)),
    ("engagement_level < 3", lambda m: m.level == 4),
    ("fit_grade >= B and engagement_level >= 2", lambda m: m.grade in ("A", "B") and m.level in (1, 2)),
    ("fit_grade is null", lambda m: m.grade is None),
    ("priority in (A1, A2, B1)", lambda m: m.priority in ("A1", "A2", "B1")),
    ("priority != A1", lambda m: m.priority != "A1"),
    (
        "fit_score > 50 and engagement_score <= 30",
        lambda m: (
            m.fit_score is not None
            and m.fit_score > 50
            and m.engagement_score is not None
            and m.engagement_score <= 30
        ),
    ),
    ("not fit_score > 50", lambda m: not (m.fit_score is not None and m.fit_score > 50)),
    ("owner = rob", lambda m: m.owner == "rob"),
    ("owner != rob", lambda m: m.owner != "rob"),
    ("owner in (rob, ana)", lambda m: m.owner in ("rob", "ana")),
    ("owner is null", lambda m: m.owner is None),
    ("owner is not null and stage = lead", lambda m: m.owner is not None and m.stage == "lead"),
    ("email_domain = acme-logistics.com", lambda m: m.domain == "acme-logistics.com"),
    ("email_domain in (gmail.com, globex.io)", lambda m: m.domain in ("gmail.com", "globex.io")),
    ("email_domain != gmail.com", lambda m: m.domain != "gmail.com"),
    ("email_domain is null", lambda m: m.domain is None),
    ('email_domain contains "ACME"', lambda m: m.domain is not None and "acme" in m.domain),
    ('email starts_with "p1"', lambda m: m.email is not None and m.email.lower().startswith("p1")),
    ('email contains "not-an"', lambda m: m.email == "not-an-email"),
    ('job_title contains "cf"', lambda m: m.job_title is not None and "cf" in m.job_title.lower()),
    ('job_title = "VP Finance"', lambda m: m.job_title == "VP Finance"),
    ('company starts_with "acme"', lambda m: m.company is not None and m.company.lower().startswith("acme")),
    ('company != "Globex"', lambda m: m.company != "Globex"),
    ("company is null", lambda m: m.company is None),
    ("first_name in (Ana, Cy)", lambda m: m.first_name in ("Ana", "Cy")),
    ("first_source = paid_search", lambda m: m.first_source == "paid_search"),
    ("first_source is null", lambda m: m.first_source is None),
    ("created_at >= 30d ago", lambda m: m.created_at >= D30),
    ("created_at < 2026-09-15", lambda m: m.created_at < datetime(2026, 9, 15, tzinfo=UTC)),
    ("created_at <= 2026-09-15", lambda m: m.created_at < datetime(2026, 9, 16, tzinfo=UTC)),
    ("created_at > 2026-09-15", lambda m: m.created_at >= datetime(2026, 9, 16, tzinfo=UTC)),
    (
        "created_at in (2026-10-01, 2026-10-02, 2026-10-03, 2026-10-04, 2026-10-05, 2026-10-06)",
        lambda m: any(day(m, 2026, 10, d) for d in range(1, 7)),
    ),
    ("last_touch_at < 14d ago", lambda m: m.last_touch_at < NOW - timedelta(days=14)),
    ("last_touch_at >= 2w ago", lambda m: m.last_touch_at >= NOW - timedelta(days=14)),
    ("account.industry = Logistics", lambda m: m.account is not None and m.account[0] == "Logistics"),
    ("account.industry != Logistics", lambda m: m.account is None or m.account[0] != "Logistics"),
    ("account.industry is null", lambda m: m.account is None or m.account[0] is None),
    ("account.industry is not null", lambda m: m.account is not None and m.account[0] is not None),
    ("account.employees >= 100", lambda m: m.account is not None and (m.account[1] or 0) >= 100),
    (
        "not account.annual_revenue > 1000000",
        lambda m: not (m.account is not None and m.account[2] is not None and m.account[2] > 1_000_000),
    ),
    ("account.country in (US)", lambda m: m.account is not None and m.account[3] == "US"),
    ('properties."Lead Source" = "Google Ads"', lambda m: m.properties.get("Lead Source") == "Google Ads"),
    ('properties."Lead Source" != "Google Ads"', lambda m: m.properties.get("Lead Source") != "Google Ads"),
    ('properties."Lead Source" is null', lambda m: "Lead Source" not in m.properties),
    (
        'properties."Lead Source" contains "CHAT"',
        lambda m: "chat" in str(m.properties.get("Lead Source", "")).lower(),
    ),
    (
        "properties.Employees >= 100",
        lambda m: num(m.properties.get("Employees")) and m.properties["Employees"] >= 100,
    ),
    (
        "not properties.Employees >= 100",
        lambda m: not (num(m.properties.get("Employees")) and m.properties["Employees"] >= 100),
    ),
    ("properties.Employees = unknown", lambda m: m.properties.get("Employees") == "unknown"),
    ('properties.Employees = "100"', lambda m: False),  # text never equals the number 100
    (
        "properties.Employees in (5, 50, unknown)",
        lambda m: m.properties.get("Employees") in (5, 50, "unknown"),
    ),
    ("properties.Converted = true", lambda m: m.properties.get("Converted") is True),
    ("properties.Converted != true", lambda m: m.properties.get("Converted") is not True),
    ('properties.Zip = "02134"', lambda m: m.properties.get("Zip") == "02134"),
    ("properties.Zip = 2134", lambda m: False),  # "02134" stays text
    ("properties.Score > 1", lambda m: num(m.properties.get("Score")) and m.properties["Score"] > 1),
    ("activity(webinar_attended)", lambda m: m.count("webinar_attended") >= 1),
    ("activity(webinar_attended, within 30d)", lambda m: m.count("webinar_attended", within=30) >= 1),
    (
        f'activity(webinar_attended, content = "{WEBINAR}", within 30d)',
        lambda m: m.count("webinar_attended", lambda a: a.content == WEBINAR, within=30) >= 1,
    ),
    ('count(page_view, page contains "/pricing") >= 3', lambda m: m.count("page_view", pricing) >= 3),
    (
        'count(page_view, page starts_with "/pricing") >= 2',
        lambda m: m.count("page_view", lambda a: (a.page or "").lower().startswith("/pricing")) >= 2,
    ),
    ("count(email_open, within 30d) = 0", lambda m: m.count("email_open", within=30) == 0),
    ("count(page_view) < 2", lambda m: m.count("page_view") < 2),
    ("count(page_view) != 1", lambda m: m.count("page_view") != 1),
    ("count(page_view) > 2", lambda m: m.count("page_view") > 2),
    ("not count(page_view) > 2", lambda m: m.count("page_view") <= 2),
    ("count(page_view) = 0", lambda m: m.count("page_view") == 0),
    ("count(page_view) <= 1", lambda m: m.count("page_view") <= 1),
    ("count(page_view) = 2", lambda m: m.count("page_view") == 2),
    ("not count(page_view) != 1", lambda m: m.count("page_view") == 1),
    ("not count(email_open, within 30d) = 0", lambda m: m.count("email_open", within=30) > 0),
    ("count(page_view, within 30d) > 0", lambda m: m.count("page_view", within=30) > 0),
    (
        "stage = mql or activity(webinar_attended)",
        lambda m: m.stage == "mql" or m.count("webinar_attended") > 0,
    ),
    (
        "not (activity(page_view) and stage in (lead, mql))",
        lambda m: not (m.count("page_view") > 0 and m.stage in ("lead", "mql")),
    ),
    (
        "properties.Employees in (unknown, 250, true)",
        lambda m: m.properties.get("Employees") in ("unknown", 250),
    ),
    (
        "properties.Converted in (true, false)",
        lambda m: isinstance(m.properties.get("Converted"), bool),
    ),
    ("not activity(form_submit)", lambda m: m.count("form_submit") == 0),
    (
        "activity(page_view, visits >= 2 or source = paid_search)",
        lambda m: m.count("page_view", lambda a: (a.visits or 0) >= 2 or a.source == "paid_search") >= 1,
    ),
    (
        "activity(page_view, visits >= 2, source = paid_search)",
        lambda m: m.count("page_view", lambda a: (a.visits or 0) >= 2 and a.source == "paid_search") >= 1,
    ),
    (
        "activity(page_view, not source = email)",
        lambda m: m.count("page_view", lambda a: a.source != "email") >= 1,
    ),
    (
        "activity(email_open, campaign = q4-nurture, occurred_at >= 2026-10-15)",
        lambda m: (
            m.count(
                "email_open",
                lambda a: a.campaign == "q4-nurture" and a.at >= datetime(2026, 10, 15, tzinfo=UTC),
            )
            >= 1
        ),
    ),
    (
        "stage in (mql, sql) and (fit_grade >= B or activity(webinar_attended, within 30d)) and not owner is null",
        lambda m: (
            m.stage in ("mql", "sql")
            and (m.grade in ("A", "B") or m.count("webinar_attended", within=30) >= 1)
            and m.owner is not None
        ),
    ),
    (
        'not (job_title contains "cfo" or properties.Employees >= 250) or count(page_view, within 7d) >= 2',
        lambda m: (
            not (
                ("cfo" in (m.job_title or "").lower())
                or (num(m.properties.get("Employees")) and m.properties["Employees"] >= 250)
            )
            or m.count("page_view", within=7) >= 2
        ),
    ),
]

#: Filters that legitimately match no lead in the data set.
EMPTY_ON_PURPOSE = {'properties.Employees = "100"', "properties.Zip = 2134"}


def test_membership_equals_an_independent_python_computation(container, tmp_path, capsys):
    models = build_leads(container, tmp_path, capsys)
    wrong = []
    with container.uow() as uow:
        for filter_text, predicate in CASES:
            expected = sorted(m.id for m in models if predicate(m))
            tree = segment_service.parse(uow, filter_text)
            got_ids = uow.segments.lead_ids(tree, as_of=NOW)
            got_count = uow.segments.count(tree, as_of=NOW)
            if got_ids != expected or got_count != len(expected):
                missing = sorted(set(expected) - set(got_ids))[:5]
                extra = sorted(set(got_ids) - set(expected))[:5]
                wrong.append(
                    f"{filter_text}: {got_count} found, {len(expected)} expected; missing {missing}, extra {extra}"
                )
            if filter_text not in EMPTY_ON_PURPOSE:
                assert 0 < len(expected) < len(models), f"the data set does not exercise {filter_text!r}"
    assert not wrong, "\n".join(wrong)


def test_leads_of_a_segment_page_and_combine_with_the_listing_filter(container, tmp_path, capsys):
    models = build_leads(container, tmp_path, capsys, n=40)
    with container.uow() as uow:
        tree = parse_filter("fit_grade >= C")
        members = sorted(m.id for m in models if m.grade in ("A", "B", "C"))
        assert uow.segments.lead_ids(tree, as_of=NOW, limit=5, offset=2) == members[2:7]
        total, page = uow.segments.search(tree, LeadFilter(stage="lead", limit=3), as_of=NOW)
        wanted = [i for i in members if next(m for m in models if m.id == i).stage == "lead"]
        assert total == len(wanted)
        assert [lead.id for lead in page] == wanted[:3]


def test_a_segment_is_stored_only_with_a_valid_filter_and_a_free_name(container):
    with container.uow() as uow:
        with pytest.raises(ValidationError, match="position 9: unknown stage 'wizard'"):
            segment_service.create_segment(uow, "Wizards", "stage = wizard", actor_name="admin", at=NOW)
        with pytest.raises(ValidationError, match="position 9: no user 'nobody'"):
            segment_service.create_segment(uow, "Nobody's", "owner = nobody", actor_name="admin", at=NOW)
        with pytest.raises(ValidationError, match="needs a name"):
            segment_service.create_segment(uow, "  ", "stage = mql", actor_name="admin", at=NOW)
        with pytest.raises(ValidationError, match="at most 200 characters"):
            segment_service.create_segment(uow, "x" * 201, "stage = mql", actor_name="admin", at=NOW)
        assert uow.segments.all() == []
        info = segment_service.create_segment(
            uow, " MQLs ", " stage = mql ", actor_name="marketing", at=NOW, description="hand-off queue"
        )
        assert (info["name"], info["filter"], info["created_by"]) == ("MQLs", "stage = mql", "marketing")
        with pytest.raises(ValidationError, match="already exists"):
            segment_service.create_segment(uow, "MQLs", "stage = sql", actor_name="admin", at=NOW)
        uow.commit()
    with container.uow() as uow:
        listed = segment_service.list_segments(uow, as_of=NOW)
        assert [(s["name"], s["count"], s["description"]) for s in listed] == [("MQLs", 0, "hand-off queue")]
        with pytest.raises(NotFound, match="no segment 'Nope'"):
            segment_service.segment_filter(uow, "Nope")
        with pytest.raises(NotFound):
            segment_service.show_segment(uow, "Nope", as_of=NOW)
        segment_service.delete_segment(uow, "MQLs")
        uow.commit()
    with container.uow() as uow:
        assert uow.segments.all() == []


def test_a_race_for_the_same_name_is_refused_by_the_database(container):
    with container.uow() as uow:
        uow.segments.add(Segment(None, "Twice", "stage = mql", "admin", NOW, NOW))
        with pytest.raises(ValidationError, match="already exists"):
            uow.segments.add(Segment(None, "Twice", "stage = sql", "admin", NOW, NOW))
        uow.commit()  # the first one survives the refused second insert
    with container.uow() as uow:
        assert [s.name for s in uow.segments.all()] == ["Twice"]


# ---- the command line --------------------------------------------------------------------------------


def write_leads(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Email", "First Name", "Job Title", "Company", "Lead Source", "Employees"])
        writer.writerow(["ana@acme-logistics.com", "Ana", "CFO", "Acme Logistics", "paid_search", "250"])
        writer.writerow(["dee@acme-logistics.com", "Dee", "VP Ops", "Acme Logistics", "referral", "40"])
        writer.writerow(["bob@gmail.com", "Bob", "Student", "", "organic_search", "3"])
        writer.writerow(["cy@globex.io", "Cy", "CFO", "Globex", "event", "1200"])
    return path


def write_activities(path: Path) -> Path:
    recent = datetime.now(UTC) - timedelta(days=2)
    old = datetime.now(UTC) - timedelta(days=90)
    rows = [
        ["ana@acme-logistics.com", "page_view", recent, "/pricing", ""],
        ["ana@acme-logistics.com", "page_view", recent + timedelta(hours=1), "/pricing/enterprise", ""],
        ["ana@acme-logistics.com", "page_view", recent + timedelta(hours=2), "/Pricing", ""],
        ["ana@acme-logistics.com", "webinar_attended", recent, "", WEBINAR],
        ["cy@globex.io", "page_view", recent, "/pricing", ""],
        ["cy@globex.io", "webinar_attended", old, "", WEBINAR],
        ["bob@gmail.com", "page_view", recent, "/blog", ""],
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "type", "occurred_at", "page", "content"])
        for email, type_, at, page, content in rows:
            writer.writerow([email, type_, at.strftime("%Y-%m-%dT%H:%M:%SZ"), page, content])
    return path


@pytest.fixture
def cli_db(db_url, tmp_path, capsys) -> str:
    assert run(capsys, db_url, "import", "leads", str(write_leads(tmp_path / "leads.csv"))).code == 0
    assert run(capsys, db_url, "import", "activities", str(write_activities(tmp_path / "acts.csv"))).code == 0
    return db_url


def test_cli_creates_lists_shows_and_lists_the_leads_of_segments(cli_db, capsys):
    created = run(
        capsys,
        cli_db,
        "segments",
        "create",
        "Pricing page fans",
        "--filter",
        'count(page_view, page contains "/pricing") >= 3',
        "--json",
    )
    assert created.code == 0, created.err
    assert created.json()["count"] == 1
    webinar = run(
        capsys,
        cli_db,
        "segments",
        "create",
        "Recent webinar CFOs",
        "--filter",
        f'job_title = CFO and activity(webinar_attended, content = "{WEBINAR}", within 30d)',
        "--description",
        "CFOs who attended the freight webinar in the last 30 days",
        "--json",
    )
    assert webinar.code == 0, webinar.err
    assert (
        run(capsys, cli_db, "segments", "create", "Big", "--filter", "properties.Employees >= 100").code == 0
    )

    listed = run(capsys, cli_db, "segments", "list", "--json").json()
    assert listed["total"] == 3
    assert {s["name"]: s["count"] for s in listed["items"]} == {
        "Big": 2,
        "Pricing page fans": 1,
        "Recent webinar CFOs": 1,
    }
    shown = run(capsys, cli_db, "segments", "show", "Big", "--json").json()
    assert shown["filter"] == "properties.Employees >= 100"
    assert shown["count"] == 2
    assert sorted(m["email"] for m in shown["members"]) == ["ana@acme-logistics.com", "cy@globex.io"]
    human = run(capsys, cli_db, "segments", "show", "Recent webinar CFOs")
    assert human.code == 0
    assert "ana@acme-logistics.com" in human.out

    members = run(capsys, cli_db, "leads", "list", "--segment", "Big", "--json").json()
    assert members["total"] == 2
    assert sorted(i["email"] for i in members["items"]) == ["ana@acme-logistics.com", "cy@globex.io"]
    page = run(capsys, cli_db, "leads", "list", "--segment", "Big", "--limit", "1", "--json").json()
    assert page["total"] == 2
    assert len(page["items"]) == 1
    none = run(capsys, cli_db, "leads", "list", "--segment", "Big", "--stage", "mql", "--json").json()
    assert none == {"total": 0, "items": []}
    assert run(capsys, cli_db, "segments", "list").code == 0


def test_cli_refuses_an_invalid_filter_with_its_position_and_stores_nothing(cli_db, capsys):
    bad = run(capsys, cli_db, "segments", "create", "Broken", "--filter", "stage = mql and fitgrade >= B")
    assert bad.code == 2
    assert "position 17: unknown field 'fitgrade'" in bad.err
    assert "^" in bad.err  # the filter is shown with a caret under the position
    level = run(capsys, cli_db, "segments", "create", "Broken", "--filter", 'engagement_level >= "abc"')
    assert level.code == 2
    assert "position 21:" in level.err
    wizard = run(capsys, cli_db, "segments", "create", "Broken", "--filter", "stage = wizard")
    assert wizard.code == 2
    assert "position 9: unknown stage 'wizard'" in wizard.err
    assert run(capsys, cli_db, "segments", "list", "--json").json() == {"total": 0, "items": []}
    assert stored_segments(cli_db) == 0


def stored_segments(db_url: str) -> int:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM segments")).scalar_one())
    engine.dispose()
    return n


def test_cli_refuses_a_duplicate_name_and_unknown_segments(cli_db, capsys):
    assert run(capsys, cli_db, "segments", "create", "MQLs", "--filter", "stage = mql").code == 0
    again = run(capsys, cli_db, "segments", "create", "MQLs", "--filter", "stage = sql")
    assert again.code == 2
    assert "already exists" in again.err
    shown = run(capsys, cli_db, "segments", "show", "MQLs", "--json").json()
    assert shown["filter"] == "stage = mql"  # the first one is untouched
    unknown = run(capsys, cli_db, "leads", "list", "--segment", "Nope", "--json")
    assert unknown.code == 2
    assert "no segment 'Nope'" in unknown.err
    assert run(capsys, cli_db, "segments", "show", "Nope").code == 2
    assert run(capsys, cli_db, "segments", "delete", "MQLs").code == 0
    assert run(capsys, cli_db, "segments", "delete", "MQLs").code == 2


def test_cli_segment_editing_is_for_admins_marketing_and_sales_managers(cli_db, capsys):
    run(capsys, cli_db, "users", "add", "rob", "--role", "sales_rep")
    run(capsys, cli_db, "users", "add", "mia", "--role", "marketing")
    refused = run(capsys, cli_db, "segments", "create", "Mine", "--filter", "stage = mql", "--as", "rob")
    assert refused.code == 3
    assert "may not create segments" in refused.err
    assert stored_segments(cli_db) == 0
    assert (
        run(capsys, cli_db, "segments", "create", "Mine", "--filter", "stage = mql", "--as", "mia").code == 0
    )
    assert run(capsys, cli_db, "segments", "delete", "Mine", "--as", "rob").code == 3
    assert run(capsys, cli_db, "segments", "delete", "Mine", "--as", "mia").code == 0
