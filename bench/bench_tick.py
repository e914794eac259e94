"""``leadstage tick`` over 1,000,000 leads (goal: at most 30 s on SQLite).

    .venv/bin/python bench/bench_tick.py [--leads 1000000] [--runs 3]

A SQLite database in bench/out holds ``--leads`` leads (raw SQL), 100 reps in four teams (each with a
daily hand-off capacity of 500) and the routing document of bench_routing. 5% of the leads are open
MQLs: most are owned, with an assignment whose first-response deadline is pending (a third of them
past due, a third answered by a call, the rest not due yet) or settled; the others have no owner yet.
About one activity per lead is stored. Each run copies the seeded database and times one tick
(``services.tick.tick``: SLA evaluation with breaches flagged, tasks and re-routes, then routing and the
queue), then a second tick on the same data (which must change nothing). The baseline in the same run
is a raw ``sqlite3`` ``count(*)`` over the leads and the pending SLAs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import time
from datetime import timedelta

from common import NOW, OUT, machine, median, write_section
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.services import tick as tick_service
from routing_data import LEAD_SQL, REPS, TEAMS, lead_rows, seed_users_and_routing, text_time

ASSIGNMENT_SQL = """
INSERT INTO assignments (lead_id, cycle, team, user_id, username, kind, rule, reason, candidates, actor, at,
                         "current", counted, document_version, sla_due_at, sla_state)
VALUES (?, 1, ?, ?, ?, 'rule', 'everyone else', 'bench', '[]', 'system', ?, 1, 1, 1, ?, ?)
"""
ACTIVITY_SQL = """
INSERT INTO activities (lead_id, type, occurred_at, source, idempotency_key) VALUES (?, ?, ?, 'email', ?)
"""
TYPES = ["page_view", "email_open", "webinar_attended", "content_download", "form_submit"]


def seed(db: str, leads: int) -> None:
    from pathlib import Path

    seed_users_and_routing(Path(db))
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("UPDATE teams SET daily_capacity = 500")
    definition = json.loads(
        con.execute("SELECT definition FROM routing_documents WHERE active").fetchone()[0]
    )
    for team in definition["teams"].values():
        team["daily_capacity"] = 500
    con.execute("UPDATE routing_documents SET definition = ? WHERE active", (json.dumps(definition),))
    rng = random.Random(21)
    team_of = {}
    for t_index, team in enumerate(TEAMS):
        for r in range(25):
            team_of[t_index * 25 + r + 1] = team
    key = 0
    for start in range(1, leads + 1, 50_000):
        rows = lead_rows(rng, start, min(50_000, leads - start + 1), mql_share=0.05, owned_share=0.9)
        con.executemany(LEAD_SQL, rows)
        assignments, acts = [], []
        for row in rows:
            lead_id, owner, stage = row[0], row[6], row[7]
            key += 1
            acts.append((lead_id, rng.choice(TYPES), text_time(rng.uniform(2, 300)), f"b:{key}"))
            if stage != "mql" or owner is None:
                continue
            assigned_days = rng.uniform(0.1, 30)
            at = NOW - timedelta(days=assigned_days)
            kind = rng.random()
            if kind < 0.6:
                state, due = "met", at + timedelta(hours=4)
            elif kind < 0.75:
                state, due = "pending", NOW - timedelta(hours=rng.uniform(1, 48))  # past due
            elif kind < 0.9:
                state, due = "pending", at + timedelta(hours=4)
                key += 1
                acts.append(
                    (
                        lead_id,
                        "call",
                        (at + timedelta(hours=1)).isoformat(" ", "microseconds")[:26],
                        f"b:{key}",
                    )
                )
            else:
                state, due = "pending", NOW + timedelta(hours=rng.uniform(1, 8))  # not due yet
            assignments.append(
                (
                    lead_id,
                    team_of[owner],
                    owner,
                    f"rep{owner}",
                    at.isoformat(" ", "microseconds")[:26],
                    due.isoformat(" ", "microseconds")[:26],
                    state,
                )
            )
        con.executemany(ASSIGNMENT_SQL, assignments)
        con.executemany(ACTIVITY_SQL, acts)
        con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = OUT / f"tick-{args.leads}.db"
    if not base.exists():
        started = time.perf_counter()
        seed(str(base), args.leads)
        print(f"seeded {args.leads} leads in {time.perf_counter() - started:.0f} s")
    con = sqlite3.connect(base)
    facts = {
        "leads": con.execute("SELECT count(*) FROM leads").fetchone()[0],
        "activities": con.execute("SELECT count(*) FROM activities").fetchone()[0],
        "assignments": con.execute("SELECT count(*) FROM assignments").fetchone()[0],
        "pending": con.execute("SELECT count(*) FROM assignments WHERE sla_state = 'pending'").fetchone()[0],
        "unrouted": con.execute(
            "SELECT count(*) FROM leads WHERE stage = 'mql' AND status = 'open' AND owner_id IS NULL"
        ).fetchone()[0],
    }
    con.close()
    first: list[float] = []
    second: list[float] = []
    raw: list[float] = []
    results = None
    for run in range(args.runs):
        db = OUT / "tick-run.db"
        shutil.copy(base, db)
        container = build(Settings(database_url=str(db)))
        t0 = time.perf_counter()
        report = tick_service.tick(container.uow, now=NOW)
        first.append(time.perf_counter() - t0)
        if report.errors:
            raise SystemExit(f"tick failed: {report.errors}")
        results = report.results
        t0 = time.perf_counter()
        again = tick_service.tick(container.uow, now=NOW)
        second.append(time.perf_counter() - t0)
        if again.results["sla"]["breached"] or again.results["handoff"]["routed"]:
            raise SystemExit(f"the second tick acted again: {again.results}")
        container.close()
        con = sqlite3.connect(db)
        t0 = time.perf_counter()
        con.execute("SELECT count(*) FROM leads").fetchone()
        con.execute("SELECT count(*) FROM assignments WHERE sla_state = 'pending'").fetchone()
        raw.append(time.perf_counter() - t0)
        con.close()
        print(f"run {run}: first tick {first[-1]:.2f} s, second {second[-1]:.2f} s: {results}")
    assert results is not None
    verdict = "meets" if median(first) <= 30 else "MISSES"
    sla, handoff = results["sla"], results["handoff"]
    body = f"""## `tick` over {facts["leads"]:,} leads (SQLite)

Command: `.venv/bin/python bench/bench_tick.py --leads {args.leads} --runs {args.runs}` ({machine()}).
{facts["leads"]:,} leads, {facts["activities"]:,} activities, {REPS} reps in four teams with a daily
hand-off capacity of 500 each, {facts["assignments"]:,} assignments of which {facts["pending"]:,} have a
pending first-response deadline, {facts["unrouted"]:,} open MQLs without an owner. Each run starts from a
copy of the seeded database; median of {args.runs} runs.

| | time |
|---|---|
| first tick (does the work below) | {median(first):.2f} s |
| second tick on the same data (changes nothing) | {median(second):.2f} s |
| baseline: raw `sqlite3` `count(*)` of leads and of pending SLAs | {median(raw):.3f} s |

What the first tick did: SLA {sla["checked"]:,} checked, {sla["met"]:,} met, {sla["breached"]:,} breached
({sla["tasks"]:,} manager tasks, {sla["rerouted"]:,} re-routed), {sla["closed"]:,} closed; hand-off
{handoff["considered"]:,} considered, {handoff["routed"]:,} routed, {handoff["queued"]:,} waiting in team
queues, {handoff["unassigned"]:,} unassigned.

`tick` {verdict} the goal of at most 30 s over 1,000,000 leads.
"""
    write_section("tick", body)
    print(body)


if __name__ == "__main__":
    main()
