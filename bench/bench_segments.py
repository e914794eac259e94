"""Segment member counts with 1,000,000 leads stored (goal: at most 2 s per count on SQLite).

    .venv/bin/python bench/bench_segments.py [--leads 1000000] [--active 200000] [--runs 5]

The leads (with stages, owners, accounts, score columns and a custom-properties JSON) and the
activities of a subset of them (``--active`` leads, about ten each) are written with set-based SQL to
save set-up time; the database is kept in bench/out and reused. Then, for a few representative
segments, ``services.segments.count_segment(uow, name, as_of=...)`` is timed (a fresh unit of work per
run: look the segment up, parse, compile, count) against a raw ``sqlite3`` ``SELECT count(*)`` with an
equivalent hand-written WHERE in the same run. The first run of each warms the page cache and is not
counted. No ``ANALYZE`` is run: the planner sees what a deployment's database has.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from common import NOW, OUT, machine, median, write_section
from leadstage.adapters.db.engine import make_engine, upgrade
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.services import segments as segment_service

STAGES = ["lead"] * 12 + ["mql"] * 4 + ["sql"] * 2 + ["opportunity", "customer", "evangelist"]
STATUSES = ["open"] * 5 + ["working"] * 3 + ["nurture"] * 2 + ["disqualified"]
TITLES = ["CFO", "Chief Financial Officer", "VP Finance", "Head of Logistics", "Analyst", "Student", "CEO"]
SOURCES = ["organic_search", "paid_search", "social", "email", "referral", "event"]
INDUSTRIES = ["Logistics", "Retail", "Manufacturing", "Software", "Healthcare"]
SENIORITY = ["C-Level", "VP", "Director", "Manager", "Individual Contributor"]
TYPES = (
    ["page_view"] * 6 + ["email_open"] * 3 + ["webinar_registered", "webinar_attended", "content_download"]
)
PAGES = ["/pricing", "/pricing/enterprise", "/blog/freight", "/", "/customers"]

LEAD_SQL = """
INSERT INTO leads (id, email, email_normalized, email_valid, first_name, last_name, job_title, company,
                   account_id, owner_id, stage, status, cycle, furthest_stage, first_source, latest_source,
                   first_touch_at, last_touch_at, properties, created_at, updated_at, version,
                   fit_score, fit_grade, engagement_score, engagement_level, priority)
VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
"""
ACTIVITY_SQL = """
INSERT INTO activities (lead_id, type, occurred_at, source, campaign, content, idempotency_key, properties)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

#: name -> (what it stands for, segment filter, hand-written equivalent for raw sqlite3, its parameters)
SEGMENTS: dict[str, tuple[str, str, str, tuple[object, ...]]] = {
    "hot-mqls": (
        "fields only (indexed columns)",
        "stage in (mql, sql) and fit_grade >= B and engagement_level >= 2",
        "stage IN ('mql', 'sql') AND fit_grade IN ('A', 'B') AND engagement_level IN (1, 2)",
        (),
    ),
    "finance-at-big-accounts": (
        "fields: text search and an account field",
        'job_title contains "cfo" or job_title contains "financial" and account.annual_revenue > 10000000',
        "lower(job_title) LIKE '%cfo%' OR lower(job_title) LIKE '%financial%' AND account_id IN "
        "(SELECT id FROM accounts WHERE annual_revenue > 10000000)",
        (),
    ),
    "senior-at-250-plus": (
        "custom properties (JSON, text and number)",
        'properties.Seniority in ("C-Level", VP) and properties.Employees >= 250',
        "json_extract(properties, '$.Seniority') IN ('C-Level', 'VP') "
        "AND json_extract(properties, '$.Employees') >= 250",
        (),
    ),
    "webinar-last-30d": (
        "an activity condition",
        "activity(webinar_attended, within 30d)",
        "id IN (SELECT lead_id FROM activities WHERE type = 'webinar_attended' "
        "AND occurred_at >= ? AND occurred_at <= ?)",
        ("{since}", "{now}"),
    ),
    "pricing-fans": (
        "an activity count with a property condition",
        'count(page_view, page contains "/pricing") >= 3',
        "id IN (SELECT lead_id FROM activities WHERE type = 'page_view' "
        "AND json_extract(properties, '$.page') LIKE '%/pricing%' GROUP BY lead_id HAVING count(*) >= 3)",
        (),
    ),
    "cfo-webinar-open": (
        "R4's example: fields, an account field and an activity",
        'job_title contains "cfo" and account.annual_revenue > 10000000 and status != disqualified '
        "and activity(webinar_attended, within 30d)",
        "lower(job_title) LIKE '%cfo%' AND account_id IN (SELECT id FROM accounts WHERE annual_revenue > 10000000) "
        "AND status != 'disqualified' AND id IN (SELECT lead_id FROM activities "
        "WHERE type = 'webinar_attended' AND occurred_at >= ? AND occurred_at <= ?)",
        ("{since}", "{now}"),
    ),
}


#: The SQL shapes considered for activity conditions, timed with raw sqlite3 (why the compiler is set-based).
PAGE = "json_type(a.properties, '$.page') = 'text' AND json_extract(a.properties, '$.page') LIKE '%/pricing%'"
SHAPES: list[tuple[str, str]] = [
    (
        "`activity(webinar_attended, within 30d)` as a correlated `EXISTS` (one index probe per lead)",
        "EXISTS (SELECT 1 FROM activities a WHERE a.lead_id = leads.id AND a.type = 'webinar_attended' "
        "AND a.occurred_at >= ? AND a.occurred_at <= ?)",
    ),
    (
        "the same as `id IN (SELECT lead_id ...)` (one pass over activities; what leadstage writes)",
        "id IN (SELECT lead_id FROM activities a WHERE a.type = 'webinar_attended' "
        "AND a.occurred_at >= ? AND a.occurred_at <= ?)",
    ),
    (
        '`count(page_view, page contains "/pricing") >= 3` as a correlated `count(*)` subquery',
        f"(SELECT count(*) FROM activities a WHERE a.lead_id = leads.id AND a.type = 'page_view' AND {PAGE}) >= 3",
    ),
    (
        "the same as `id IN (SELECT lead_id ... GROUP BY lead_id HAVING ...)` (SQLite groups along the "
        "(lead_id, occurred_at) index)",
        f"id IN (SELECT lead_id FROM activities a WHERE a.type = 'page_view' AND {PAGE} "
        "GROUP BY lead_id HAVING count(*) >= 3)",
    ),
    (
        "the same grouped by `lead_id + 0` (a sequential scan and an in-memory sort; what leadstage writes)",
        f"id IN (SELECT lead_id + 0 FROM activities a WHERE a.type = 'page_view' AND {PAGE} "
        "GROUP BY lead_id + 0 HAVING count(*) >= 3)",
    ),
]


def text_time(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat(" ", "microseconds")[:26]


def seed(db: Path, leads: int, active: int) -> None:
    engine = make_engine(str(db))
    upgrade(engine)
    engine.dispose()
    rng = random.Random(11)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    created = text_time(400)
    con.executemany(
        "INSERT INTO users (id, username, role, active, created_at) VALUES (?, ?, 'sales_rep', 1, ?)",
        [(i, f"rep{i}", created) for i in range(1, 21)],
    )
    accounts = leads // 20
    con.executemany(
        "INSERT INTO accounts (id, name, name_normalized, domain, industry, employees, annual_revenue, country, "
        "properties, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?)",
        [
            (
                i,
                f"Company {i}",
                f"company {i}",
                f"company{i}.example",
                rng.choice(INDUSTRIES),
                rng.choice([10, 50, 250, 1000, 5000]),
                float(rng.choice([500_000, 2_000_000, 8_000_000, 25_000_000, 120_000_000])),
                rng.choice(["US", "DE", "GB", "FR"]),
                created,
                created,
            )
            for i in range(1, accounts + 1)
        ],
    )
    batch = []
    for i in range(1, leads + 1):
        email = f"person{i}@company{i % accounts + 1}.example"
        stage = rng.choice(STAGES)
        scored = rng.random() < 0.8
        grade = rng.choice("ABCD") if scored else None
        level = rng.randint(1, 4) if scored else None
        props = {"Seniority": rng.choice(SENIORITY), "Employees": rng.choice([5, 50, 250, 1000])}
        if i % 3 == 0:
            props["Lead Source"] = rng.choice(SOURCES)
        age = rng.uniform(0, 700)
        batch.append(
            (
                i,
                email,
                email,
                f"First{i}",
                f"Last{i}",
                rng.choice(TITLES),
                f"Company {i % accounts + 1}",
                i % accounts + 1 if i % 10 < 7 else None,
                rng.randint(1, 20) if rng.random() < 0.6 else None,
                stage,
                rng.choice(STATUSES),
                stage,
                rng.choice(SOURCES),
                rng.choice(SOURCES),
                text_time(age),
                text_time(rng.uniform(0, age)),
                json.dumps(props, separators=(",", ":")),
                text_time(age),
                text_time(age),
                float(rng.randint(0, 100)) if scored else None,
                grade,
                float(rng.randint(0, 80)) if scored else None,
                level,
                f"{grade}{level}" if scored else None,
            )
        )
        if len(batch) == 50_000:
            con.executemany(LEAD_SQL, batch)
            batch.clear()
    con.executemany(LEAD_SQL, batch)
    con.commit()
    acts = []
    key = 0
    for lead_id in rng.sample(range(1, leads + 1), active):
        for _ in range(rng.randint(1, 19)):
            key += 1
            type_ = rng.choice(TYPES)
            props = json.dumps({"page": rng.choice(PAGES)}) if type_ == "page_view" else None
            acts.append(
                (
                    lead_id,
                    type_,
                    text_time(rng.uniform(0, 180)),
                    rng.choice(SOURCES),
                    None,
                    "Webinar: Forecasting Freight Costs" if type_.startswith("webinar") else None,
                    f"bench:{key}",
                    props,
                )
            )
        if len(acts) >= 100_000:
            con.executemany(ACTIVITY_SQL, acts)
            acts.clear()
    con.executemany(ACTIVITY_SQL, acts)
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--active", type=int, default=200_000, help="leads that have activities")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"segments-{args.leads}-{args.active}.db"
    if not db.exists():
        started = time.perf_counter()
        seed(db, args.leads, args.active)
        print(f"seeded {args.leads} leads in {time.perf_counter() - started:.0f} s")
    container = build(Settings(database_url=str(db)))
    with container.uow() as uow:
        for name in list(SEGMENTS):
            if uow.segments.get(name) is not None:
                segment_service.delete_segment(uow, name)
            segment_service.create_segment(uow, name, SEGMENTS[name][1], actor_name="bench", at=NOW)
        uow.commit()
    con = sqlite3.connect(db)
    activities = con.execute("SELECT count(*) FROM activities").fetchone()[0]
    fill = {"{since}": text_time(30), "{now}": text_time(0)}
    rows = []
    for name, (what, filter_text, where, params) in SEGMENTS.items():
        raw_params = tuple(fill.get(str(p), p) for p in params)
        service: list[float] = []
        raw: list[float] = []
        counts: set[int] = set()
        for run in range(args.runs + 1):
            t0 = time.perf_counter()
            with container.uow() as uow:
                n = segment_service.count_segment(uow, name, as_of=NOW)
            elapsed = time.perf_counter() - t0
            t0 = time.perf_counter()
            expected = con.execute(f"SELECT count(*) FROM leads WHERE {where}", raw_params).fetchone()[0]
            raw_elapsed = time.perf_counter() - t0
            counts.update((n, expected))
            if run:  # the first run warms the cache
                service.append(elapsed)
                raw.append(raw_elapsed)
        if len(counts) != 1:
            raise SystemExit(f"{name}: leadstage and the hand-written query disagree: {sorted(counts)}")
        rows.append((name, what, filter_text, counts.pop(), median(service), median(raw)))
        print(f"{name}: {rows[-1][3]:,} leads, {median(service):.3f} s (raw {median(raw):.3f} s)")
    con.execute("PRAGMA temp_store=MEMORY")  # as leadstage's connections have it
    shapes = []
    for what, where in SHAPES:
        params = (fill["{since}"], fill["{now}"]) if "?" in where else ()
        times = []
        for run in range(4):
            t0 = time.perf_counter()
            con.execute(f"SELECT count(*) FROM leads WHERE {where}", params).fetchone()
            if run:
                times.append(time.perf_counter() - t0)
        shapes.append(f"| {what} | {median(times):.3f} s |")
        print(shapes[-1])
    con.close()
    container.close()

    worst = max(r[4] for r in rows)
    verdict = "meets" if worst <= 2.0 else "MISSES"
    table = "\n".join(
        f"| {what} | `{filter_text}` | {count:,} | {svc:.3f} s | {raw_s:.3f} s | {svc / raw_s:.2f}x |"
        for _name, what, filter_text, count, svc, raw_s in rows
    )
    body = f"""## Segment member counts, {args.leads:,} leads stored (SQLite)

Command: `.venv/bin/python bench/bench_segments.py --leads {args.leads} --active {args.active} --runs {args.runs}`
({machine()}). {activities:,} activities for {args.active:,} of the leads; score columns, owners, accounts
and a custom-properties JSON on every lead. Median of {args.runs} runs after one warm-up run, each a fresh
unit of work: `services.segments.count_segment` (look up, parse, compile to SQL, count) against raw
`sqlite3` `SELECT count(*) FROM leads WHERE ...` with an equivalent hand-written WHERE; both counts agree.

| segment | filter | members | leadstage | raw sqlite3 | ratio |
|---|---|---|---|---|---|
{table}

The slowest count takes {worst:.2f} s: leadstage {verdict} the goal of at most 2 s per count.

Activity conditions are compiled set-based rather than as correlated subqueries; the shapes considered,
timed with raw `sqlite3` in the same run (median of 3):

| shape | time |
|---|---|
{chr(10).join(shapes)}

An index on `activities (type, lead_id, occurred_at)` would let both shapes read only the activities of
the wanted type (in lead order, with `within` answered from the index), instead of a pass over all
activities; counts with conditions on activity properties would still read those rows.
"""
    write_section("segments", body)
    print(body)


if __name__ == "__main__":
    main()
