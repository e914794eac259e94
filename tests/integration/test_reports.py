"""Reports against an independent brute-force computation, on SQLite and PostgreSQL.

The data is the demo company (recycled, reopened, disqualified and won leads, campaigns, webinars and
eBooks) plus merges, leads whose activities are gone, two segments and a score from before a rejection.
Each report's document is compared with the same figures computed here in plain Python from the raw
rows (history, activities, leads), without the report code.
"""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from leadstage.adapters.clock import FixedClock
from leadstage.adapters.db import report_facts
from leadstage.bootstrap import Container, build
from leadstage.cli.app import install_default_model
from leadstage.cli.scoring import yaml_loader
from leadstage.config import Settings
from leadstage.domain.analytics import NON_TOUCH_TYPES, parse_request
from leadstage.services import leads as lead_service
from leadstage.services import segments as segment_service
from leadstage.services.demo import generate_demo
from leadstage.services.reports import run_report
from leadstage.services.scoring import score_all
from tests.cli_runner import run
from tests.conftest import NOW, _truncate_pg

STAGES = ["lead", "mql", "sql", "opportunity", "customer", "evangelist"]
FORWARD = {
    "promote_mql": "mql",
    "qualify_sql": "sql",
    "open_opportunity": "opportunity",
    "win": "customer",
    "advocate": "evangelist",
}
RANK = {s: i for i, s in enumerate(STAGES)}
NONE = "(none)"
SEGMENTS = {"fit-a": "fit_grade = A", "webinar-goers": "activity(webinar_attended)"}
RANGE = ("2026-02-01", "2026-06-30")


# ---- the data ------------------------------------------------------------------------------------------


@dataclass
class Raw:
    """Every row the brute force needs, read with plain SELECTs."""

    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    history: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    activities: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    scores: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json(value: Any) -> dict[str, Any]:
    import json

    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def read_raw(c: Container) -> Raw:
    raw = Raw()
    with c.engine.connect() as conn:
        for r in conn.execute(
            text(
                "SELECT l.id, l.email, l.created_at, l.cycle, l.furthest_stage, l.first_source, l.fit_grade, "
                "l.engagement_level, l.priority, u.username FROM leads l LEFT JOIN users u ON u.id = l.owner_id"
            )
        ):
            raw.leads[r.id] = {
                "id": r.id,
                "email": r.email,
                "created_at": _aware(r.created_at),
                "cycle": r.cycle,
                "furthest": r.furthest_stage,
                "source": r.first_source,
                "fit_grade": r.fit_grade,
                "engagement_level": None if r.engagement_level is None else str(r.engagement_level),
                "priority": r.priority,
                "owner": r.username,
            }
        for r in conn.execute(text("SELECT * FROM lead_history ORDER BY at, id")):
            raw.history[r.lead_id].append({**r._asdict(), "at": _aware(r.at), "data": _json(r.data)})
        for r in conn.execute(
            text(
                "SELECT id, lead_id, type, occurred_at, source, campaign, content FROM activities ORDER BY occurred_at, id"
            )
        ):
            raw.activities[r.lead_id].append({**r._asdict(), "occurred_at": _aware(r.occurred_at)})
        for r in conn.execute(text("SELECT id, lead_id, at, priority FROM score_history ORDER BY at, id")):
            raw.scores[r.lead_id].append({"at": _aware(r.at), "priority": r.priority})
    return raw


@dataclass
class Fixture:
    container: Container
    url: str
    raw: Raw
    segment_members: dict[str, set[int]]


def _build(c: Container) -> None:
    install_default_model(c)
    generate_demo(uow_factory=c.uow, normalizer=c.identity, leads=400, seed=11, now=NOW, progress=None)
    score_all(c.uow, load=yaml_loader, at=NOW, promote=False)
    with c.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM leads ORDER BY id"))]
        won = [
            r[0]
            for r in conn.execute(
                text("SELECT DISTINCT lead_id FROM lead_history WHERE action = 'win' ORDER BY lead_id")
            )
        ]
        mqls = [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT DISTINCT lead_id FROM lead_history WHERE action = 'promote_mql' ORDER BY lead_id"
                )
            )
        ]
        rejected = conn.execute(
            text("SELECT lead_id, at FROM lead_history WHERE action = 'reject' ORDER BY id LIMIT 1")
        ).first()
    with c.uow() as uow:
        # merges: two MQL-stage leads into a customer, and two plain leads together
        pairs = [(won[0], mqls[5]), (won[1], mqls[6]), (ids[10], ids[11])]
        for keep, other in pairs:
            if keep != other:
                lead_service.merge_leads(uow, keep, other, actor=lead_service.BUILTIN_ADMIN, at=NOW)
        for name, flt in SEGMENTS.items():
            segment_service.create_segment(uow, name, flt, actor_name="admin", at=NOW)
        uow.commit()
    with c.engine.begin() as conn:
        # leads whose activities are gone: a customer and a few others have no touches at all
        conn.execute(
            text(f"DELETE FROM activities WHERE lead_id IN ({won[2]}, {ids[20]}, {ids[21]}, {mqls[8]})")
        )
        # no command deletes activities: their report facts are recomputed as every write does (ADR 18)
        report_facts.history_changed(conn, [won[2], ids[20], ids[21], mqls[8]])
        # a rejected lead that the score called hot at the time, though it is cold now
        conn.execute(text("UPDATE leads SET priority = 'D4' WHERE id = :id"), {"id": rejected.lead_id})
        conn.execute(
            text("INSERT INTO score_history (lead_id, at, model_id, priority) VALUES (:id, :at, 1, 'A1')"),
            {"id": rejected.lead_id, "at": _aware(rejected.at) - timedelta(hours=1)},
        )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def data(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Fixture]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("reports") / "reports.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_server")
        _truncate_pg(url)
    c = build(Settings(database_url=url), clock=FixedClock(NOW))
    _build(c)
    raw = read_raw(c)
    members = {
        "fit-a": {i for i, lead in raw.leads.items() if lead["fit_grade"] == "A"},
        "webinar-goers": {
            i for i in raw.leads if any(a["type"] == "webinar_attended" for a in raw.activities.get(i, []))
        },
    }
    yield Fixture(c, url, raw, members)
    c.close()


def report(data: Fixture, name: str, **options: Any) -> dict[str, Any]:
    req = parse_request(name, **options)
    with data.container.uow() as uow:
        return run_report(uow, req, as_of=NOW)


# ---- brute force ---------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def days(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds() / 86400


def bounds(first: str | None, last: str | None) -> tuple[datetime | None, datetime | None]:
    start = datetime.fromisoformat(first).replace(tzinfo=UTC) if first else None
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1) if last else None
    return start, end


def inside(at: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    return at is not None and (start is None or at >= start) and (end is None or at < end)


def lead_groups(data: Fixture, by: str | None) -> dict[int, list[str]]:
    """Each lead's groups for a dimension (several for segments, none outside every segment)."""
    raw = data.raw
    out: dict[int, list[str]] = {}
    for i, lead in raw.leads.items():
        if by is None:
            out[i] = ["all"]
        elif by in ("campaign", "content"):
            firsts = [a[by] for a in raw.activities.get(i, []) if a[by] is not None]
            out[i] = [firsts[0] if firsts else NONE]
        elif by == "segment":
            out[i] = [name for name, members in data.segment_members.items() if i in members]
        else:
            value = lead[by]
            out[i] = [NONE if value is None else value]
    return out


def approx(a: float | None, b: float | None, tol: float = 0.011) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


# ---- funnel --------------------------------------------------------------------------------------------


def brute_funnel(
    data: Fixture, by: str | None, first: str | None, last: str | None, mode: str, per_cycle: bool
) -> dict[str, dict[str, Any]]:
    raw = data.raw
    start, end = bounds(first, last)
    groups = lead_groups(data, by)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAGES, 0))
    spans: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, lead in raw.leads.items():
        rows = raw.history[i]
        if mode == "period":
            for row in rows:
                if (row["action"] == "create" or row["action"] in FORWARD) and inside(row["at"], start, end):
                    for g in groups[i]:
                        counts[g][row["to_stage"]] += 1
            continue
        if not inside(lead["created_at"], start, end):
            continue
        if per_cycle:
            # attempts: every cycle the lead started; each forward transition reaches its stage once
            for g in groups[i]:
                counts[g]["lead"] += lead["cycle"]
            starts: dict[int, datetime] = {1: lead["created_at"]}
            for row in rows:
                if row["cycle"] > 1 and row["action"] in ("promote_mql", "reopen"):
                    starts[row["cycle"]] = min(starts.get(row["cycle"], row["at"]), row["at"])
            firsts: dict[tuple[int, str], datetime] = {}
            for row in rows:
                if row["action"] in FORWARD:
                    for g in groups[i]:
                        counts[g][FORWARD[row["action"]]] += 1
                    unit = (row["cycle"], FORWARD[row["action"]])
                    firsts[unit] = min(firsts.get(unit, row["at"]), row["at"])
            for (cycle, stage), at in firsts.items():
                for g in groups[i]:
                    spans[g][stage].append(days(at, starts.get(cycle, lead["created_at"])))
            continue
        reached = {"lead": lead["created_at"]}
        for row in rows:
            if row["action"] in FORWARD:
                stage = FORWARD[row["action"]]
                reached[stage] = min(reached.get(stage, row["at"]), row["at"])
        for g in groups[i]:
            for stage, at in reached.items():
                counts[g][stage] += 1
                if stage != "lead":
                    spans[g][stage].append(days(at, lead["created_at"]))
    return {g: {"counts": counts[g], "spans": spans[g]} for g in counts}


def check_funnel(doc: dict[str, Any], expected: dict[str, Any], mode: str, label: str) -> None:
    counts = expected["counts"]
    assert [s["stage"] for s in doc["stages"]] == STAGES
    for k, row in enumerate(doc["stages"]):
        assert row["count"] == counts[row["stage"]], (label, row)
        if k + 1 < len(STAGES):
            nxt = counts[STAGES[k + 1]]
            expected_rate = nxt / counts[row["stage"]] if counts[row["stage"]] else 0
            assert row["conversion_to_next"] == pytest.approx(expected_rate), (label, row)
        if mode == "cohort" and row["stage"] != "lead":
            values = expected["spans"].get(row["stage"], [])
            assert approx(row["median_days"], percentile(values, 0.5)), (label, row)
            assert approx(row["p80_days"], percentile(values, 0.8)), (label, row)


@pytest.mark.parametrize(
    ("by", "first", "last", "mode", "per_cycle"),
    [
        (None, None, None, "cohort", False),
        (None, *RANGE, "cohort", False),
        (None, None, None, "cohort", True),
        (None, *RANGE, "period", False),
        ("source", None, None, "cohort", False),
        ("content", *RANGE, "cohort", False),
        ("campaign", None, None, "period", False),
        ("owner", None, None, "cohort", True),
        ("fit_grade", *RANGE, "cohort", False),
        ("segment", None, None, "cohort", False),
    ],
)
def test_funnel_matches_brute_force(
    data: Fixture, by: str | None, first: str | None, last: str | None, mode: str, per_cycle: bool
) -> None:
    doc = report(data, "funnel", by=by, date_from=first, date_to=last, mode=mode, per_cycle=per_cycle)
    expected = brute_funnel(data, by, first, last, mode, per_cycle)
    if by is None:
        check_funnel(doc, expected["all"], mode, "all")
        assert doc["stages"][0]["count"] > 0
        return
    totals = brute_funnel(data, None, first, last, mode, per_cycle)["all"]
    check_funnel(doc, totals, mode, "all")
    assert {g["group"] for g in doc["groups"]} == set(expected)
    for g in doc["groups"]:
        check_funnel(g, expected[g["group"]], mode, g["group"])


def test_funnel_counts_a_recycled_lead_once_per_stage_and_each_cycle_per_cycle(data: Fixture) -> None:
    cohort = report(data, "funnel")
    per_cycle = report(data, "funnel", per_cycle=True)
    multi = [i for i, rows in data.raw.history.items() if len({r["cycle"] for r in rows}) > 1]
    assert multi, "the demo data has leads with several cycles"
    assert cohort["stages"][0]["count"] == len(data.raw.leads)
    assert per_cycle["stages"][0]["count"] > cohort["stages"][0]["count"]
    # each lead counts once in every stage it reached: the furthest stage kept on the lead agrees
    reached = defaultdict(int)
    for lead in data.raw.leads.values():
        for stage in STAGES[: RANK[lead["furthest"]] + 1]:
            reached[stage] += 1
    assert {s["stage"]: s["count"] for s in cohort["stages"]} == reached
    # the demo company's funnel is plausible: it narrows, and every conversion is a fraction
    counts = [s["count"] for s in cohort["stages"]]
    assert counts == sorted(counts, reverse=True)
    assert counts[1] > 0.1 * counts[0]
    assert counts[4] > 0
    assert all(0 <= s["conversion_to_next"] <= 1 for s in cohort["stages"][:-1])


# ---- velocity ------------------------------------------------------------------------------------------


def brute_velocity(
    data: Fixture, by: str | None, first: str | None, last: str | None, mode: str
) -> dict[str, dict[str, list[float]]]:
    raw = data.raw
    start, end = bounds(first, last)
    groups = lead_groups(data, by)
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for i, lead in raw.leads.items():
        rows = sorted(raw.history[i], key=lambda r: (r["at"], r["id"]))
        visits = []
        for row in rows:
            if not visits or visits[-1][0] != row["to_stage"]:
                visits.append([row["to_stage"], row["at"], None])
                if len(visits) > 1:
                    visits[-2][2] = row["at"]
        in_cohort = inside(lead["created_at"], start, end)
        wins = [r["at"] for r in rows if r["action"] == "win"]
        for g in groups[i]:
            for stage, started, ended in visits:
                if ended is None:
                    continue
                if (mode == "cohort" and in_cohort) or (mode == "period" and inside(ended, start, end)):
                    out[g][stage].append(days(ended, started))
            if wins and (
                (mode == "cohort" and in_cohort) or (mode == "period" and inside(wins[0], start, end))
            ):
                out[g]["lead_to_customer"].append(days(wins[0], lead["created_at"]))
    return out


def check_velocity(block: dict[str, Any], expected: dict[str, list[float]], label: str) -> None:
    assert [s["stage"] for s in block["stages"]] == STAGES
    for s in block["stages"]:
        values = expected.get(s["stage"], [])
        assert s["visits"] == len(values), (label, s)
        assert approx(s["median_days"], percentile(values, 0.5)), (label, s)
        assert approx(s["p80_days"], percentile(values, 0.8)), (label, s)
    won = expected.get("lead_to_customer", [])
    assert block["lead_to_customer"]["count"] == len(won)
    assert approx(block["lead_to_customer"]["median_days"], percentile(won, 0.5))
    assert approx(block["lead_to_customer"]["p80_days"], percentile(won, 0.8))


@pytest.mark.parametrize(
    ("by", "first", "last", "mode"),
    [
        (None, None, None, "cohort"),
        (None, *RANGE, "period"),
        ("source", *RANGE, "cohort"),
        ("segment", None, None, "cohort"),
    ],
)
def test_velocity_matches_brute_force(
    data: Fixture, by: str | None, first: str | None, last: str | None, mode: str
) -> None:
    doc = report(data, "velocity", by=by, date_from=first, date_to=last, mode=mode)
    check_velocity(doc, brute_velocity(data, None, first, last, mode)["all"], "all")
    assert doc["stages"][1]["visits"] > 0
    if by is not None:
        expected = brute_velocity(data, by, first, last, mode)
        assert {g["group"] for g in doc["groups"]} == set(expected)
        for g in doc["groups"]:
            check_velocity(g, expected[g["group"]], g["group"])


# ---- attribution ---------------------------------------------------------------------------------------

MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay")


def shares(
    model: str,
    touches: list[dict[str, Any]],
    moment: datetime,
    mql_at: datetime,
    opp_at: datetime | None,
    half_life: float,
) -> list[float]:
    n = len(touches)
    if model == "first_touch":
        return [1.0 if k == 0 else 0.0 for k in range(n)]
    if model == "last_touch":
        return [1.0 if k == n - 1 else 0.0 for k in range(n)]
    if model == "linear":
        return [1 / n] * n
    if model == "u_shaped":
        if n <= 2:
            return [1 / n] * n
        return [0.4 if k in (0, n - 1) else 0.2 / (n - 2) for k in range(n)]
    if model == "w_shaped":
        weights = [0.0] * n
        roles = [0]
        before_mql = [k for k, t in enumerate(touches) if t["occurred_at"] <= mql_at]
        if before_mql:
            roles.append(before_mql[-1])
        if opp_at is not None and opp_at <= moment:
            before_opp = [k for k, t in enumerate(touches) if t["occurred_at"] <= opp_at]
            if before_opp:
                roles.append(before_opp[-1])
        for k in roles:
            weights[k] += 0.3
        others = [k for k in range(n) if k not in roles]
        for k in others:
            weights[k] += 0.1 / len(others)
        total = sum(weights)
        return [w / total for w in weights]
    weights = [2 ** (-days(moment, t["occurred_at"]) / half_life) for t in touches]
    total = sum(weights)
    return [w / total for w in weights]


def brute_attribution(
    data: Fixture, by: str, first: str | None, last: str | None, mode: str, half_life: float
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    raw = data.raw
    start, end = bounds(first, last)
    outcomes = {"mql": 0, "sql": 0, "customer": 0}
    credits: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "credit": {m: defaultdict(float) for m in MODELS},
            "revenue": {m: defaultdict(float) for m in MODELS},
            "touched": defaultdict(int),
        }
    )
    for i, lead in raw.leads.items():
        rows = raw.history[i]

        def first_at(action: str, rows: list[dict[str, Any]] = rows) -> datetime | None:
            ats = [r["at"] for r in rows if r["action"] == action]
            return min(ats) if ats else None

        mql_at, sql_at, opp_at, won_at = (
            first_at(a) for a in ("promote_mql", "qualify_sql", "open_opportunity", "win")
        )
        if mql_at is None:
            continue
        wins = [r for r in rows if r["action"] == "win"]
        revenue = sum(float(r["data"]["closed_amount"]) for r in wins)
        currency = max((r["data"].get("currency") for r in wins), default=None)
        moments = {"mql": mql_at, "sql": sql_at, "customer": won_at}
        if mode == "cohort":
            if not inside(lead["created_at"], start, end):
                continue
        else:
            moments = {k: (m if inside(m, start, end) else None) for k, m in moments.items()}
        touches = [
            a for a in raw.activities.get(i, []) if a[by] is not None and a["type"] not in NON_TOUCH_TYPES
        ]
        for outcome, moment in moments.items():
            if moment is None:
                continue
            outcomes[outcome] += 1
            mine = [t for t in touches if t["occurred_at"] <= moment]
            if not mine:
                continue
            for value in {t[by] for t in mine}:
                credits[value]["touched"][outcome] += 1
            for model in MODELS:
                for t, share in zip(
                    mine, shares(model, mine, moment, mql_at, opp_at, half_life), strict=True
                ):
                    credits[t[by]]["credit"][model][outcome] += share
                    if outcome == "customer":
                        credits[t[by]]["revenue"][model][currency] += share * revenue
    return outcomes, credits


@pytest.mark.parametrize(
    ("by", "first", "last", "mode", "half_life"),
    [
        ("source", None, None, "cohort", None),
        ("content", None, None, "cohort", 3.0),
        ("campaign", *RANGE, "cohort", None),
        ("source", *RANGE, "period", 30.0),
        ("content", *RANGE, "period", None),
    ],
)
def test_attribution_matches_brute_force(
    data: Fixture, by: str, first: str | None, last: str | None, mode: str, half_life: float | None
) -> None:
    doc = report(
        data, "attribution", by=by, date_from=first, date_to=last, mode=mode, half_life_days=half_life
    )
    outcomes, credits = brute_attribution(data, by, first, last, mode, half_life or 7.0)
    assert set(doc["models"]) == set(MODELS)
    for outcome, count in outcomes.items():
        assert doc["outcomes"][outcome]["count"] == count
        attributed = sum(c["credit"]["first_touch"][outcome] for c in credits.values())
        assert doc["outcomes"][outcome]["attributed"] == round(attributed)
    assert outcomes["customer"] > 0
    for model in MODELS:
        items = {item["value"]: item for item in doc["models"][model]}
        assert set(items) == set(credits), model
        for value, expected in credits.items():
            item = items[value]
            for outcome in outcomes:
                assert item[outcome] == pytest.approx(expected["credit"][model][outcome], abs=1e-3), (
                    model,
                    value,
                    outcome,
                )
                assert item["leads_touched"][outcome] == expected["touched"][outcome]
            want = {c: x for c, x in expected["revenue"][model].items() if round(x, 2) > 0}
            assert set(item["revenue"]) == set(want), (model, value)
            for cur, x in want.items():
                assert item["revenue"][cur] == pytest.approx(x, abs=0.02)
        # every model shares out exactly the attributed outcomes
        for outcome in outcomes:
            assert sum(i[outcome] for i in items.values()) == pytest.approx(
                doc["outcomes"][outcome]["attributed"], abs=1e-2
            )


def test_attribution_answers_which_content_brings_customers(data: Fixture) -> None:
    doc = report(data, "attribution", by="content")
    top = doc["models"]["w_shaped"][0]
    assert top["value"].startswith(("Webinar:", "eBook:", "Case Study:"))
    assert top["customer"] > 0
    assert top["leads_touched"]["customer"] >= top["customer"]
    assert doc["outcomes"]["customer"]["unattributed"] >= 1  # the customer whose activities are gone


# ---- feedback ------------------------------------------------------------------------------------------


def brute_feedback(
    data: Fixture, by: str | None, first: str | None, last: str | None, mode: str
) -> dict[str, Any]:
    raw = data.raw
    start, end = bounds(first, last)
    groups = lead_groups(data, by)
    blocks: dict[str, Any] = defaultdict(
        lambda: {"mqls": 0, "accepted": 0, "rejected": 0, "later": 0, "reasons": defaultdict(int)}
    )
    hot = []
    for i, lead in raw.leads.items():
        for row in raw.history[i]:
            at_ok = (
                inside(row["at"], start, end) if mode == "period" else inside(lead["created_at"], start, end)
            )
            if not at_ok:
                continue
            action = row["action"]
            for g in groups[i]:
                b = blocks[g]
                if action == "promote_mql":
                    b["mqls"] += 1
                elif action == "accept":
                    b["accepted"] += 1
                elif action == "reject":
                    b["later" if row["from_status"] == "working" else "rejected"] += 1
                elif action == "disqualify" and row["from_stage"] == "mql" and row["from_status"] == "open":
                    b["rejected"] += 1
                if action in ("reject", "disqualify", "recycle", "lose"):
                    b["reasons"][(action, row["reason"] or NONE)] += 1
            if action == "reject" or (
                action == "disqualify" and row["from_stage"] == "mql" and row["from_status"] == "open"
            ):
                before = [s["priority"] for s in raw.scores.get(i, []) if s["at"] <= row["at"]]
                then = before[-1] if before else lead["priority"]
                if then in ("A1", "A2", "B1", "B2"):
                    hot.append((row["at"], i, row["reason"], then))
    hot.sort(key=lambda h: (-h[0].timestamp(), h[1]))
    return {"blocks": blocks, "hot": hot}


def check_feedback(block: dict[str, Any], expected: dict[str, Any]) -> None:
    assert block["mqls"] == expected["mqls"]
    assert block["accepted"] == expected["accepted"]
    assert block["rejected"] == expected["rejected"]
    assert block["rejected_after_acceptance"] == expected["later"]
    reviewed = expected["accepted"] + expected["rejected"]
    assert block["acceptance_rate"] == pytest.approx(expected["accepted"] / reviewed if reviewed else 0)
    assert {(r["action"], r["reason"]): r["count"] for r in block["reasons"]} == dict(expected["reasons"])


@pytest.mark.parametrize(
    ("by", "first", "last", "mode"),
    [
        (None, None, None, "cohort"),
        (None, *RANGE, "period"),
        ("source", None, None, "cohort"),
        ("fit_grade", *RANGE, "cohort"),
        ("content", None, None, "period"),
    ],
)
def test_feedback_matches_brute_force(
    data: Fixture, by: str | None, first: str | None, last: str | None, mode: str
) -> None:
    doc = report(data, "feedback", by=by, date_from=first, date_to=last, mode=mode, limit=500)
    expected = brute_feedback(data, None, first, last, mode)
    check_feedback(doc, expected["blocks"]["all"])
    assert doc["reviewed"] > 0
    hot = doc["hot_rejected"]
    assert hot["total"] == len(expected["hot"])
    assert [(x["lead_id"], x["priority_then"]) for x in hot["leads"]] == [
        (h[1], h[3]) for h in expected["hot"]
    ][:500]
    if by is not None:
        grouped = brute_feedback(data, by, first, last, mode)["blocks"]
        assert {g["group"] for g in doc["groups"]} == set(grouped)
        for g in doc["groups"]:
            check_feedback(g, grouped[g["group"]])


def test_feedback_lists_a_lead_the_score_called_hot_before_sales_rejected_it(data: Fixture) -> None:
    doc = report(data, "feedback", limit=1000)
    cold_now = [x for x in doc["hot_rejected"]["leads"] if x["priority_now"] == "D4"]
    assert cold_now
    assert cold_now[0]["priority_then"] == "A1"


# ---- calibration ---------------------------------------------------------------------------------------


def wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def reached(data: Fixture, i: int) -> int:
    ranks = [RANK[FORWARD[r["action"]]] for r in data.raw.history[i] if r["action"] in FORWARD]
    return max(ranks, default=0)


@pytest.mark.parametrize(
    ("by", "first", "last"), [(None, None, None), ("priority", *RANGE), ("engagement_level", None, None)]
)
def test_calibration_matches_brute_force(
    data: Fixture, by: str | None, first: str | None, last: str | None
) -> None:
    doc = report(data, "calibration", by=by, date_from=first, date_to=last)
    band = by or "fit_grade"
    start, end = bounds(first, last)
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for i, lead in data.raw.leads.items():
        if not inside(lead["created_at"], start, end):
            continue
        e = expected[lead[band] if lead[band] is not None else NONE]
        e[0] += 1
        e[1] += reached(data, i) >= RANK["sql"]
        e[2] += reached(data, i) >= RANK["customer"]
    assert doc["band"] == band
    assert {b["band"]: [b["leads"], b["sql"], b["customer"]] for b in doc["bands"]} == dict(expected)
    for b in doc["bands"]:
        assert b["sql_ci95"] == pytest.approx(list(wilson(b["sql"], b["leads"])), abs=1e-4)
        assert b["customer_ci95"] == pytest.approx(list(wilson(b["customer"], b["leads"])), abs=1e-4)
        assert b["sql_ci95"][0] <= b["sql_rate"] <= b["sql_ci95"][1]
    if band == "fit_grade":
        rates = {b["band"]: b["sql_rate"] for b in doc["bands"]}
        assert rates["A"] > rates["C"]  # the demo company's fit predicts conversion


def test_calibration_by_predictive_decile_once_leads_carry_a_predictive_score(data: Fixture) -> None:
    with data.container.engine.begin() as conn:
        conn.execute(text("UPDATE leads SET predictive_score = (id * 37 % 101) / 100.0 WHERE id % 7 <> 0"))
    try:
        doc = report(data, "calibration", by="predictive_decile")
        with data.container.engine.connect() as conn:
            scores = dict(conn.execute(text("SELECT id, predictive_score FROM leads")).all())
        scored = sorted((i for i, s in scores.items() if s is not None), key=lambda i: (-scores[i], i))
        n = len(scored)
        expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for rank, i in enumerate(scored):
            # NTILE: the first n % 10 tiles hold one more
            size, extra = divmod(n, 10)
            bound, decile = 0, 0
            while rank >= bound:
                decile += 1
                bound += size + (1 if decile <= extra else 0)
            e = expected[str(decile)]
            e[0] += 1
            e[1] += reached(data, i) >= RANK["sql"]
            e[2] += reached(data, i) >= RANK["customer"]
        unscored = [i for i, s in scores.items() if s is None]
        expected[NONE] = [
            len(unscored),
            sum(reached(data, i) >= 2 for i in unscored),
            sum(reached(data, i) >= 4 for i in unscored),
        ]
        assert doc["predictive_available"] is True
        assert [b["band"] for b in doc["bands"]] == [*(str(k) for k in range(1, 11)), NONE]
        assert {b["band"]: [b["leads"], b["sql"], b["customer"]] for b in doc["bands"]} == dict(expected)
    finally:
        with data.container.engine.begin() as conn:
            conn.execute(text("UPDATE leads SET predictive_score = NULL"))


# ---- the command line ----------------------------------------------------------------------------------


def test_report_json_documents_have_the_contracted_keys(
    data: Fixture, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    keys = {
        "funnel": "stages",
        "velocity": "stages",
        "attribution": "models",
        "feedback": "acceptance_rate",
        "calibration": "bands",
    }
    for name, key in keys.items():
        png = tmp_path / f"{name}.png"
        result = run(capsys, data.url, "report", name, "--json", "--png", str(png))
        assert result.code == 0, result.err
        doc = result.json()
        assert key in doc
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000
    funnel = run(capsys, data.url, "report", "funnel", "--json").json()
    assert [set(s) >= {"stage", "count", "conversion_to_next"} for s in funnel["stages"]] == [True] * 6
    velocity = run(capsys, data.url, "report", "velocity", "--json").json()
    assert all(set(s) >= {"stage", "median_days", "p80_days"} for s in velocity["stages"])
    attribution = run(capsys, data.url, "report", "attribution", "--json").json()
    assert set(attribution["models"]) == set(MODELS)
    assert "reasons" in run(capsys, data.url, "report", "feedback", "--json").json()
    human = run(capsys, data.url, "report", "funnel", "--by", "source")
    assert human.code == 0
    assert "opportunity" in human.out


BAD_INPUT: list[tuple[list[str], str]] = [
    (["report", "pipeline"], "report"),
    (["report", "funnel", "--by", "colour"], "--by"),
    (["report", "attribution", "--by", "owner"], "--by"),
    (["report", "calibration", "--by", "source"], "--by"),
    (["report", "funnel", "--from", "2026-05-01", "--to", "2026-04-01"], "reversed"),
    (["report", "funnel", "--from", ""], "--from"),
    (["report", "velocity", "--to", "2026-13-01"], "--to"),
    (["report", "funnel", "--mode", "weekly"], "--mode"),
    (["report", "attribution", "--half-life", "0"], "--half-life"),
    (["report", "attribution", "--half-life", "-3"], "--half-life"),
    (["report", "attribution", "--half-life", "5000"], "--half-life"),
    (["report", "attribution", "--half-life", "nan"], "--half-life"),
    (["report", "funnel", "--half-life", "7"], "--half-life"),
    (["report", "funnel", "--mode", "period", "--per-cycle"], "--per-cycle"),
    (["report", "calibration", "--mode", "period"], "--mode"),
    (["report", "calibration", "--by", "predictive_decile"], "predictive"),
    (["report", "feedback", "--limit", "0"], "--limit"),
]


@pytest.mark.parametrize(("args", "names"), BAD_INPUT)
def test_bad_report_input_exits_2_naming_the_parameter(
    db_url: str, capsys: pytest.CaptureFixture[str], args: list[str], names: str
) -> None:
    result = run(capsys, db_url, *args)
    assert result.code == 2, (result.out, result.err)
    assert names in result.err
    assert result.out == ""


def test_by_segment_without_segments_exits_2(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, db_url, "report", "funnel", "--by", "segment")
    assert result.code == 2
    assert "--by segment" in result.err


def test_reports_on_an_empty_database_are_zero_not_errors(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("funnel", "velocity", "attribution", "feedback", "calibration"):
        result = run(capsys, db_url, "report", name, "--json")
        assert result.code == 0, result.err
    funnel = run(capsys, db_url, "report", "funnel", "--json").json()
    assert [s["count"] for s in funnel["stages"]] == [0] * 6
    assert [s["conversion_to_next"] for s in funnel["stages"][:-1]] == [0.0] * 5
