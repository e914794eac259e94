"""Lead lookup by email through the service layer with 1,000,000 leads stored (goal: median <= 1 ms).

    .venv/bin/python bench/bench_lookup.py [--leads 1000000] [--lookups 5000]

The million leads are written with set-based SQL to save set-up time (the lookup is what is measured);
then ``services.leads.resolve_lead(uow, email)`` is timed for random existing emails, both inside one
open unit of work and including opening a fresh unit of work (a new connection) for each lookup.
A raw ``sqlite3`` query by the same indexed column is the baseline.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from pathlib import Path

from common import OUT, machine, median, write_section
from leadstage.adapters.db.engine import make_engine, upgrade
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.services.leads import resolve_lead

SEED_SQL = """
INSERT INTO leads (email, email_normalized, email_valid, first_name, last_name, company, stage, status, cycle,
                   furthest_stage, first_source, latest_source, properties, created_at, updated_at, version)
VALUES (?, ?, 1, ?, ?, ?, 'lead', 'open', 1, 'lead', ?, ?, ?, '2026-01-01 00:00:00.000000',
        '2026-01-01 00:00:00.000000', 1)
"""


def seed(db: Path, count: int) -> None:
    engine = make_engine(str(db))
    upgrade(engine)
    engine.dispose()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    sources = ["organic_search", "paid_search", "social", "email", "referral", "event"]
    batch = []
    for i in range(count):
        email = f"person{i}@company{i % 50_000}.example"
        batch.append(
            (
                email,
                email,
                f"First{i}",
                f"Last{i}",
                f"Company {i % 50_000}",
                sources[i % 6],
                sources[(i + 1) % 6],
                '{"Seniority": "Manager", "Employees": 250}',
            )
        )
        if len(batch) == 50_000:
            con.executemany(SEED_SQL, batch)
            batch.clear()
    con.executemany(SEED_SQL, batch)
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"lookup-{args.leads}.db"
    if not db.exists():
        started = time.perf_counter()
        seed(db, args.leads)
        print(f"seeded {args.leads} leads in {time.perf_counter() - started:.0f} s")
    engine = make_engine(str(db))
    upgrade(engine)  # a database seeded by an earlier version is brought to the current schema
    engine.dispose()
    rng = random.Random(3)
    picks = [rng.randrange(args.leads) for _ in range(args.lookups)]
    emails = [f"person{n}@company{n % 50_000}.example" for n in picks]
    container = build(Settings(database_url=str(db)))
    in_uow: list[float] = []
    with container.uow() as uow:
        for email in emails[:200]:  # warm-up
            resolve_lead(uow, email)
        for email in emails:
            t0 = time.perf_counter()
            lead = resolve_lead(uow, email)
            in_uow.append(time.perf_counter() - t0)
            assert lead.identity.email == email
    with_uow: list[float] = []
    for email in emails[: args.lookups // 5]:
        t0 = time.perf_counter()
        with container.uow() as uow:
            resolve_lead(uow, email)
        with_uow.append(time.perf_counter() - t0)
    container.close()
    con = sqlite3.connect(db)
    raw: list[float] = []
    for email in emails:
        t0 = time.perf_counter()
        con.execute("SELECT * FROM leads WHERE email_normalized = ?", (email,)).fetchone()
        raw.append(time.perf_counter() - t0)
    con.close()

    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        return f"{median(values) * 1000:.3f} ms (p95 {ordered[int(len(ordered) * 0.95)] * 1000:.3f} ms)"

    verdict = "meets" if median(in_uow) <= 0.001 else "MISSES"
    body = f"""## Lead lookup by email, {args.leads:,} leads stored (SQLite)

Command: `.venv/bin/python bench/bench_lookup.py --leads {args.leads} --lookups {args.lookups}` ({machine()}).

| path | median (p95) |
|---|---|
| `services.leads.resolve_lead(uow, email)` in an open unit of work (the lead aggregate, with external ids) | {ms(in_uow)} |
| the same, opening a new unit of work (connection, pragmas, transaction) per lookup | {ms(with_uow)} |
| baseline: raw `sqlite3` `SELECT * FROM leads WHERE email_normalized = ?` | {ms(raw)} |

The service-layer lookup {verdict} the goal of a median of at most 1 ms.
"""
    write_section("lookup", body)
    print(body)


if __name__ == "__main__":
    main()
