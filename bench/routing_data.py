"""Shared set-up for the routing benchmarks: 100 reps in four teams, a routing document, leads by raw SQL."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import timedelta
from pathlib import Path

from common import NOW
from leadstage.adapters.db.engine import make_engine, upgrade
from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.services import routing as routing_service
from leadstage.services import segments as segment_service
from leadstage.services.leads import BUILTIN_ADMIN

COUNTRIES = ["United States", "Canada", "Germany", "France", "United Kingdom", "Japan", "Brazil", "India"]
TEAMS = {
    "enterprise": ("America/New_York", "North America"),
    "na": ("America/Chicago", "North America"),
    "emea": ("Europe/Berlin", "Europe"),
    "global": ("Asia/Singapore", "Rest of world"),
}
REPS = 100

LEAD_SQL = """
INSERT INTO leads (id, email, email_normalized, email_valid, first_name, last_name, company, owner_id, stage,
                   status, cycle, furthest_stage, properties, created_at, updated_at, version, fit_score,
                   fit_grade, engagement_score, engagement_level, priority)
VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
"""


def text_time(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat(" ", "microseconds")[:26]


def routing_document() -> str:
    """Four teams of 25 reps with weights, capacities and territories, and four ordered rules."""
    lines = [
        "name: bench routing",
        "territories:",
        "  North America: [United States, Canada]",
        "  Europe: [Germany, France, United Kingdom]",
        "  Rest of world: [Japan, Brazil, India]",
        "teams:",
    ]
    for t_index, (team, (zone, territory)) in enumerate(TEAMS.items()):
        lines += [
            f"  {team}:",
            f"    manager: manager-{team}",
            f"    timezone: {zone}",
            "    hours: {mon-fri: '08:00-18:00'}",
            "    holidays: [2026-12-25, 2027-01-01]",
            "    first_response: 4h",
            "    reroute_on_breach: true",
            "    members:",
        ]
        for r in range(25):
            n = t_index * 25 + r + 1
            weight = 1 + n % 3
            terr = f", territories: [{territory}]" if r % 2 else ""
            lines.append(f"      rep{n}: {{weight: {weight}, max_open: 100000, max_per_day: 100000{terr}}}")
    lines += [
        "rules:",
        "  - {name: big accounts, segment: enterprise, team: enterprise}",
        "  - {name: north america, territory: North America, team: na}",
        "  - {name: good fit in europe, territory: Europe, filter: 'fit_grade >= B', team: emea}",
        "  - {name: everyone else, team: global}",
    ]
    return "\n".join(lines) + "\n"


def seed_users_and_routing(db: Path) -> None:
    """Schema, 100 reps and 4 managers, the `enterprise` segment and the routing document."""
    engine = make_engine(str(db))
    upgrade(engine)
    engine.dispose()
    con = sqlite3.connect(db)
    created = text_time(400)
    con.executemany(
        "INSERT INTO users (id, username, role, active, created_at) VALUES (?, ?, 'sales_rep', 1, ?)",
        [(i, f"rep{i}", created) for i in range(1, REPS + 1)],
    )
    con.executemany(
        "INSERT INTO users (id, username, role, active, created_at) VALUES (?, ?, 'sales_manager', 1, ?)",
        [(REPS + 1 + i, f"manager-{team}", created) for i, team in enumerate(TEAMS)],
    )
    con.commit()
    con.close()
    container = build(Settings(database_url=str(db)))
    with container.uow() as uow:
        segment_service.create_segment(
            uow, "enterprise", "properties.Employees >= 1000", actor_name="bench", at=NOW
        )
        routing_service.set_routing(
            uow,
            routing_document(),
            source="bench routing",
            load=lambda text, name: load_yaml(text, source=name),
            actor=BUILTIN_ADMIN,
            at=NOW,
        )
        uow.commit()
    container.close()


def lead_rows(
    rng: random.Random, first_id: int, count: int, *, mql_share: float, owned_share: float
) -> list[tuple[object, ...]]:
    rows = []
    for i in range(first_id, first_id + count):
        mql = rng.random() < mql_share
        stage = "mql" if mql else rng.choice(["lead", "lead", "lead", "sql", "customer"])
        status = "open" if mql else rng.choice(["open", "nurture", "working"])
        owned = rng.random() < (owned_share if mql else 0.7)
        owner = rng.randint(1, REPS) if owned else None
        grade, level = rng.choice("ABCD"), rng.randint(1, 4)
        props = {"Country": rng.choice(COUNTRIES), "Employees": rng.choice([10, 50, 250, 1000, 5000])}
        age = rng.uniform(1, 700)
        rows.append(
            (
                i,
                f"person{i}@company{i % 5000}.example",
                f"person{i}@company{i % 5000}.example",
                f"First{i}",
                f"Last{i}",
                f"Company {i % 5000}",
                owner,
                stage,
                status,
                stage,
                json.dumps(props, separators=(",", ":")),
                text_time(age),
                text_time(rng.uniform(0, age)),
                float(rng.randint(0, 100)),
                grade,
                float(rng.randint(0, 80)),
                level,
                f"{grade}{level}",
            )
        )
    return rows
