"""Routing decisions with 100 reps (goal: at most 5 ms per lead).

    .venv/bin/python bench/bench_routing.py [--stored 200000] [--batch 1000] [--runs 5]

A SQLite database in bench/out holds ``--stored`` leads (written by raw SQL) and 100 reps in four teams
(weights, capacities, territories) with four ordered rules (a segment, territories, a filter, a
catch-all). Each run adds ``--batch`` new open MQLs without an owner and times
``services.routing.route_pending`` in one unit of work with its commit: the lock, the set-based read, one
SQL membership query per rule, the loads, the pure decisions, and the writes (owner with version check,
assignment with the candidates, history row, SLA deadline, queue). Reported: the median time per lead.
The baseline in the same run is the pure planner alone (``domain.routing.plan``) on the same leads.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import time
from datetime import timedelta

from common import NOW, OUT, machine, median, write_section
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.domain.routing import TeamDay, plan
from leadstage.services import routing as routing_service
from routing_data import LEAD_SQL, REPS, lead_rows, seed_users_and_routing


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stored", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = OUT / f"routing-{args.stored}.db"
    if not base.exists():
        seed_users_and_routing(base)
        con = sqlite3.connect(base)
        rng = random.Random(5)
        for start in range(1, args.stored + 1, 50_000):
            con.executemany(
                LEAD_SQL,
                lead_rows(rng, start, min(50_000, args.stored - start + 1), mql_share=0.05, owned_share=1.0),
            )
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    db = OUT / "routing-run.db"
    shutil.copy(base, db)
    container = build(Settings(database_url=str(db)))
    rng = random.Random(9)
    per_lead: list[float] = []
    pure: list[float] = []
    next_id = args.stored + 1
    routed = 0
    for run in range(args.runs + 1):
        con = sqlite3.connect(db)
        con.executemany(LEAD_SQL, lead_rows(rng, next_id, args.batch, mql_share=1.0, owned_share=0.0))
        con.commit()
        con.close()
        next_id += args.batch
        at = NOW + timedelta(minutes=run)
        # the pure planner alone on the same leads (read outside the timing)
        with container.uow() as uow:
            stored = uow.routing.active()
            assert stored is not None
            leads = uow.routing.unrouted()
            ids = frozenset(lead.lead_id for lead in leads)
            loads, days, _users = routing_service._loads(uow, stored.document, at)
        matches = dict.fromkeys(range(len(stored.document.rules)), ids)
        fresh_days = {
            k: TeamDay(today=v.today, handed=v.handed, capacity=v.capacity) for k, v in days.items()
        }
        t0 = time.perf_counter()
        plan(stored.document, leads, matches, loads=loads, days=fresh_days, now_ts=at.timestamp())
        pure_elapsed = time.perf_counter() - t0
        t0 = time.perf_counter()
        with container.uow() as uow:
            report = routing_service.route_pending(uow, at=at)
            uow.commit()
        elapsed = time.perf_counter() - t0
        if report.routed + report.queued + report.unassigned != args.batch:
            raise SystemExit(f"expected {args.batch} leads decided, got {report}")
        print(
            f"run {run}: {report.routed} routed in {elapsed:.3f} s ({elapsed / args.batch * 1000:.2f} ms/lead)"
        )
        if run:  # the first run warms caches
            per_lead.append(elapsed / args.batch)
            pure.append(pure_elapsed / args.batch)
            routed += report.routed
    container.close()
    ms = median(per_lead) * 1000
    verdict = "meets" if ms <= 5 else "MISSES"
    body = f"""## Routing decisions, 100 reps (SQLite)

Command: `.venv/bin/python bench/bench_routing.py --stored {args.stored} --batch {args.batch} --runs {args.runs}`
({machine()}). {args.stored:,} leads stored, {REPS} reps in four teams (weights 1-3, capacities, half of
them with territories), four ordered rules (a segment, a territory, a territory with a filter, a
catch-all). Each run adds {args.batch:,} open MQLs without an owner and times `route_pending` in one unit
of work with its commit (lock, set-based read, one membership query per rule, loads, decisions, and per
lead: owner with version check, assignment with its candidates, history row, first-response deadline).
Median of {args.runs} runs after a warm-up run.

| | per lead |
|---|---|
| `route_pending`, everything above | {ms:.2f} ms |
| baseline: the pure planner alone (`domain.routing.plan`, 100 candidates each) | {median(pure) * 1000:.3f} ms |

{routed:,} leads routed in the timed runs. Routing {verdict} the goal of at most 5 ms per lead.
"""
    write_section("routing", body)
    print(body)


if __name__ == "__main__":
    main()
