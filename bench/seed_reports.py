"""Seed a database for the report benchmarks: leads, activities and lead_history with realistic journeys.

    .venv/bin/python bench/seed_reports.py --target sqlite|postgres [--leads 1000000] [--activities 10000000]

Rows are written with raw SQL bulk inserts (``executemany`` on SQLite, ``COPY`` on PostgreSQL) into a
database migrated by leadstage itself. Every lead gets a ``create`` row, then a journey that follows the
transition table (promote, accept or reject, qualify, open an opportunity, win with an amount, lose,
recycle, disqualify, reopen into a new cycle, advocate), so recycled and reopened leads are part of the
data; activities (about ``--activities / --leads`` per lead, more for leads that went further) carry
sources, campaigns and content assets, and score columns are filled. Deterministic for a seed. The
report facts (ADR 18) are then computed for every lead, as migration 0014 does for existing data.

SQLite lands in ``bench/out/reports-N-M/reports.db``; PostgreSQL in database ``leadstage_bench_reports``
on ``LEADSTAGE_BENCH_PG_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import NOW, OUT
from leadstage.adapters.db import report_facts
from leadstage.adapters.db.engine import make_engine, upgrade

PG_ADMIN = os.environ.get("LEADSTAGE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_DB = "leadstage_bench_reports"

SOURCES = [
    ("organic_search", 24, 0.9),
    ("paid_search", 16, 1.0),
    ("paid_social", 12, 0.6),
    ("email", 10, 0.9),
    ("referral", 6, 1.8),
    ("event", 8, 1.4),
    ("partner", 5, 1.3),
    ("direct", 9, 1.0),
    ("chat", 5, 1.1),
    ("call_in", 5, 1.5),
]
WEBINARS = ["Webinar: Forecasting Freight Costs", "Webinar: Carrier Scorecards", "Webinar: Landed Cost"]
EBOOKS = ["eBook: Logistics CFO Playbook", "eBook: 7 Ways to Cut Freight Spend", "eBook: Contract Guide"]
TYPES = [
    ("page_view", 40),
    ("email_open", 20),
    ("email_click", 8),
    ("ad_click", 5),
    ("form_submit", 4),
    ("content_download", 7),
    ("webinar_registered", 4),
    ("webinar_attended", 3),
    ("social_engagement", 4),
    ("chat", 2),
    ("call", 2),
    ("meeting", 1),
]
REJECT_REASONS = ["not_icp", "no_need", "bad_timing", "no_budget", "not_decision_maker", "unresponsive"]
LOSS_REASONS = ["price", "competitor", "no_decision", "no_budget", "bad_timing", "product_fit"]
GRADES = ["A", "B", "C", "D"]
OWNERS = 8


def stamp(at: datetime) -> str:
    return at.isoformat(" ", "microseconds")[:26]


class Journeys:
    """Generates leads, their activities and their history, chunk by chunk."""

    def __init__(self, seed: int, leads: int, activities: int) -> None:
        self.rng = random.Random(seed)
        self.leads = leads
        self.per_lead = 1.16 * activities / leads
        self.target_activities = activities
        self.history_id = 0
        self.activity_id = 0
        self.src_names = [s[0] for s in SOURCES]
        self.src_weights = list(__import__("itertools").accumulate(s[1] for s in SOURCES))
        self.src_quality = {s[0]: s[2] for s in SOURCES}
        self.type_names = [t[0] for t in TYPES]
        self.type_weights = list(__import__("itertools").accumulate(t[1] for t in TYPES))

    def chunks(
        self, size: int
    ) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        for start in range(1, self.leads + 1, size):
            leads: list[tuple[Any, ...]] = []
            acts: list[tuple[Any, ...]] = []
            hist: list[tuple[Any, ...]] = []
            for lead_id in range(start, min(self.leads, start + size - 1) + 1):
                self.one(lead_id, leads, acts, hist)
            yield leads, acts, hist

    def campaign(self, source: str, at: datetime) -> str | None:
        q = f"{at.year}-Q{(at.month - 1) // 3 + 1}"
        if source == "paid_search":
            return f"{q} Paid Search {self.rng.choice(('Brand', 'Freight Analytics'))}"
        if source == "paid_social":
            return f"{q} Paid Social {self.rng.choice(('LinkedIn CFO', 'Retargeting'))}"
        if source == "email":
            return f"{q} Nurture Series"
        if source == "partner":
            return f"{q} Partner Co-marketing"
        return None

    def one(
        self,
        lead_id: int,
        leads: list[tuple[Any, ...]],
        acts: list[tuple[Any, ...]],
        hist: list[tuple[Any, ...]],
    ) -> None:
        rng = self.rng
        source = rng.choices(self.src_names, cum_weights=self.src_weights)[0]
        grade = rng.choices(GRADES, weights=(1, 2, 3, 4))[0]
        p = min(
            0.95, (0.35 + 0.2 * (3 - GRADES.index(grade))) * self.src_quality[source] * rng.uniform(0.5, 1.2)
        )
        created = NOW - timedelta(days=365 * rng.random() ** 0.8, seconds=rng.randint(0, 86399))
        owner = rng.randint(1, OWNERS) if rng.random() < 0.6 else None
        stage, status, cycle, furthest = "lead", "open", 1, 0
        rank = {"lead": 0, "mql": 1, "sql": 2, "opportunity": 3, "customer": 4, "evangelist": 5}
        # (action, from_stage, from_status, to_stage, to_status, cycle, reason, data)
        at = created
        hist_rows: list[tuple[Any, ...]] = []

        def move(
            action: str,
            to_stage: str,
            to_status: str,
            days: float,
            reason: str | None = None,
            data: str | None = None,
            new_cycle: bool = False,
        ) -> bool:
            nonlocal at, stage, status, cycle, furthest
            nxt = at + timedelta(days=days)
            if nxt >= NOW:
                return False
            at = nxt
            if new_cycle:
                cycle += 1
            hist_rows.append(
                (lead_id, cycle, action, stage, status, to_stage, to_status, "bench", reason, stamp(at), data)
            )
            stage, status = to_stage, to_status
            furthest = max(furthest, rank[stage])
            return True

        hist_rows.append(
            (lead_id, 1, "create", None, None, "lead", "open", "bench", None, stamp(created), None)
        )
        mql_p = 0.22 * p / 0.6
        for _attempt in range(3):
            if not (
                rng.random() < mql_p
                and move(
                    "promote_mql",
                    "mql",
                    "open",
                    rng.expovariate(1 / 20),
                    "criteria_met",
                    new_cycle=(status == "nurture"),
                )
            ):
                break
            roll = rng.random()
            if roll < 0.2:
                move("reject", "lead", "nurture", rng.expovariate(1 / 3), rng.choice(REJECT_REASONS))
                continue
            if roll < 0.27:
                if (
                    move(
                        "disqualify",
                        "mql",
                        "disqualified",
                        rng.expovariate(1 / 3),
                        rng.choice(REJECT_REASONS),
                    )
                    and rng.random() < 0.3
                ):
                    move("reopen", "lead", "open", rng.uniform(45, 200), "recheck_due", new_cycle=True)
                break
            if not move("accept", "mql", "working", rng.expovariate(1 / 2)):
                break
            if rng.random() >= 0.55 * p / 0.6:
                move("reject", "lead", "nurture", rng.expovariate(1 / 10), rng.choice(REJECT_REASONS))
                continue
            if not move("qualify_sql", "sql", "working", rng.expovariate(1 / 12)):
                break
            if rng.random() >= 0.65:
                move("recycle", "lead", "nurture", rng.expovariate(1 / 20), "bad_timing")
                continue
            amount = round(rng.lognormvariate(9.5, 0.6), -2)
            currency = "EUR" if rng.random() < 0.35 else "USD"
            opp = json.dumps(
                {"amount": str(int(amount)), "currency": currency, "expected_close": "2026-12-31"}
            )
            if not move("open_opportunity", "opportunity", "working", rng.expovariate(1 / 10), data=opp):
                break
            roll = rng.random()
            if roll < 0.3 + 0.2 * p:
                won = json.dumps(
                    {
                        "closed_amount": str(int(amount * rng.uniform(0.8, 1.05))),
                        "currency": currency,
                        "closed_on": "2026-12-31",
                    }
                )
                if move("win", "customer", "open", rng.expovariate(1 / 40), data=won) and rng.random() < 0.2:
                    move("advocate", "evangelist", "open", rng.uniform(20, 200))
                break
            if roll < 0.85:
                move("lose", "lead", "nurture", rng.expovariate(1 / 40), rng.choice(LOSS_REASONS))
                continue
            move("recycle", "lead", "nurture", rng.expovariate(1 / 40), "bad_timing")
        for row in hist_rows:
            self.history_id += 1
            hist.append((self.history_id, *row))
        end = max(at, created)
        # activities: more for leads that went further; the first near creation with the lead's source
        mean = self.per_lead * (0.7 + 0.5 * furthest)
        n = max(1, int(rng.expovariate(1 / mean) + 0.5)) if mean > 1 else 1
        span = max(1.0, (NOW - created).total_seconds() / 86400)
        times = sorted(
            [created - timedelta(minutes=rng.randint(1, 600))]
            + [
                created + timedelta(days=min(span, rng.expovariate(1 / max(5.0, (end - created).days + 5))))
                for _ in range(n - 1)
            ]
        )
        first_touch = last_touch = None
        for k, t in enumerate(times):
            if t >= NOW:
                t = NOW - timedelta(seconds=k + 1)
            typ = "form_submit" if k == 0 else rng.choices(self.type_names, cum_weights=self.type_weights)[0]
            src = (
                source
                if k == 0 or rng.random() < 0.3
                else rng.choices(self.src_names, cum_weights=self.src_weights)[0]
            )
            content = None
            if typ in ("content_download",) or (k == 0 and rng.random() < 0.3):
                content = rng.choice(EBOOKS)
            elif typ.startswith("webinar"):
                content = rng.choice(WEBINARS)
            self.activity_id += 1
            acts.append(
                (
                    self.activity_id,
                    lead_id,
                    typ,
                    stamp(t),
                    src,
                    self.campaign(src, t),
                    content,
                    f"b:{self.activity_id:010d}",
                )
            )
            first_touch = first_touch or t
            last_touch = t
        level = 1 + min(3, int(rng.random() * 4 * (1.2 - p)))
        stages = ["lead", "mql", "sql", "opportunity", "customer", "evangelist"]
        leads.append(
            (
                lead_id,
                f"lead{lead_id}@bench.example",
                f"lead{lead_id}@bench.example",
                owner,
                stage,
                status,
                cycle,
                stages[furthest],
                source,
                source,
                stamp(first_touch or created),
                stamp(last_touch or created),
                stamp(created),
                stamp(max(end, created)),
                float(60 - 15 * GRADES.index(grade)),
                grade,
                level,
                f"{grade}{level}",
            )
        )


LEAD_COLS = (
    "id, email, email_normalized, owner_id, stage, status, cycle, furthest_stage, first_source, "
    "latest_source, first_touch_at, last_touch_at, created_at, updated_at, fit_score, fit_grade, "
    "engagement_level, priority"
)
ACT_COLS = "id, lead_id, type, occurred_at, source, campaign, content, idempotency_key"
HIST_COLS = (
    "id, lead_id, cycle, action, from_stage, from_status, to_stage, to_status, actor, reason, at, data"
)


def top_up_sql(have: int, want: int) -> str | None:
    """Activities the journeys fell short of ``--activities``: copies of the first ones under new keys."""
    if have >= want:
        return None
    return (
        "INSERT INTO activities (lead_id, type, occurred_at, source, campaign, content, idempotency_key) "
        "SELECT lead_id, type, occurred_at, source, campaign, content, 'top:' || id FROM activities "
        f"WHERE id <= {want - have}"
    )


def top_up(conn: Any, want: int) -> None:
    have = conn.execute("SELECT count(*) FROM activities").fetchone()[0]
    sql = top_up_sql(have, want)
    if sql:
        conn.execute(sql)


def seed_sqlite(path: Path, gen: Journeys) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(str(path))
    upgrade(engine)
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    for i in range(1, OWNERS + 1):
        con.execute(
            "INSERT INTO users (id, username, role, active, created_at) VALUES (?, ?, 'sales_rep', 1, ?)",
            (i, f"rep{i}", stamp(NOW)),
        )
    q = lambda cols: ", ".join("?" for _ in cols.split(","))  # noqa: E731
    lead_sql = f"INSERT INTO leads ({LEAD_COLS}, properties, version) VALUES ({q(LEAD_COLS)}, '{{}}', 1)"
    for leads, acts, hist in gen.chunks(50_000):
        con.executemany(lead_sql, leads)
        con.executemany(f"INSERT INTO activities ({ACT_COLS}) VALUES ({q(ACT_COLS)})", acts)
        con.executemany(f"INSERT INTO lead_history ({HIST_COLS}) VALUES ({q(HIST_COLS)})", hist)
        print(f"  sqlite: {leads[-1][0]:,} leads", flush=True)
    top_up(con, gen.target_activities)
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    engine = make_engine(str(path))
    with engine.begin() as conn:  # the rows bypassed the repositories: their report facts, as migration 0014
        report_facts.rebuild(conn)
    engine.dispose()


def pg_url() -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_DB}"


def seed_postgres(gen: Journeys) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_DB}"'))
    admin.dispose()
    engine = make_engine(pg_url())
    upgrade(engine)
    raw = engine.raw_connection()
    cur = raw.cursor()
    for i in range(1, OWNERS + 1):
        cur.execute(
            "INSERT INTO users (id, username, role, active, created_at) VALUES (%s, %s, 'sales_rep', true, now())",
            (i, f"rep{i}"),
        )
    for leads, acts, hist in gen.chunks(50_000):
        with cur.copy(f"COPY leads ({LEAD_COLS}, properties, version) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in leads:
                copy.write_row((*row, "{}", 1))
        with cur.copy(f"COPY activities ({ACT_COLS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in acts:
                copy.write_row(row)
        with cur.copy(f"COPY lead_history ({HIST_COLS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in hist:
                copy.write_row(row)
        print(f"  postgres: {leads[-1][0]:,} leads", flush=True)
    # the ids so far came from the generator: the sequence moves past them before the top-up draws new ones
    cur.execute("SELECT setval(pg_get_serial_sequence('activities', 'id'), (SELECT max(id) FROM activities))")
    top_up(cur, gen.target_activities)
    for table in ("users", "leads", "activities", "lead_history"):
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    raw.commit()
    cur.execute("COMMIT")
    raw.close()
    with engine.begin() as conn:  # the rows bypassed the repositories: their report facts, as migration 0014
        report_facts.rebuild(conn)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--activities", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    gen = Journeys(args.seed, args.leads, args.activities)
    if args.target == "sqlite":
        work = OUT / f"reports-{args.leads}-{args.activities}"
        work.mkdir(parents=True, exist_ok=True)
        seed_sqlite(work / "reports.db", gen)
        print(work / "reports.db")
    else:
        seed_postgres(gen)
        print(pg_url())
    print(
        f"{gen.activity_id:,} activities, {gen.history_id:,} history rows in {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
