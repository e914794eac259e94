"""Benchmark data files from the demo company's generator: ``leads.csv`` and ``activities.csv``.

The people and their stories come from :mod:`leadstage.services.demo` (one generator for the demo
database and for these files); this adapter only writes them, row by row in chunks, so memory stays
constant however many activity rows are asked for.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from importlib import resources
from pathlib import Path

from leadstage.services import demo

DEMO_ROUTING_FILE = "demo_routing.yaml"

#: Rows buffered before each ``writerows`` call.
WRITE_CHUNK = 20_000
#: About how many activities a lead of the demo company has at ``volume=1``.
BASE_ACTIVITIES_PER_LEAD = 16.0


def write_benchmark_files(
    out_dir: Path, *, leads: int, activities: int, seed: int, now: datetime
) -> dict[str, str]:
    """Write ``leads.csv`` and exactly ``activities`` rows of ``activities.csv`` into ``out_dir``.

    Every activity names a lead of ``leads.csv`` by email, has an ISO 8601 UTC time no later than
    ``now`` and a unique idempotency key. The same arguments give the same files.
    """
    if leads < 1 and activities > 0:
        raise ValueError("activities need at least one lead")
    out_dir.mkdir(parents=True, exist_ok=True)
    leads_path = out_dir / "leads.csv"
    activities_path = out_dir / "activities.csv"
    people_rng, rng = demo.demo_randoms(seed)
    world = demo.World.build(now)
    team = demo.offline_team()
    volume = max(0.05, activities / max(1, leads) / BASE_ACTIVITIES_PER_LEAD)
    written = 0
    natural_total = 0.0
    with (
        leads_path.open("w", newline="", encoding="utf-8") as lead_file,
        activities_path.open("w", newline="", encoding="utf-8") as activity_file,
    ):
        lead_writer = csv.writer(lead_file, lineterminator="\n")
        activity_writer = csv.writer(activity_file, lineterminator="\n")
        lead_writer.writerow(demo.LEAD_CSV_COLUMNS)
        activity_writer.writerow(demo.ACTIVITY_CSV_COLUMNS)
        lead_rows: list[list[str]] = []
        activity_rows: list[list[str]] = []
        for person in demo.iter_people(people_rng, world, leads, times=rng):
            i = person.index
            lead_rows.append(demo.lead_csv_row(person))
            journey = demo.simulate_journey(rng, world, person, team, volume=volume)
            natural = journey.activities
            natural_total += len(natural)
            remaining = activities - written
            if i == leads - 1:
                quota = remaining
            else:
                # Share what is left by how active this person naturally is, so the total comes out exact.
                need = remaining / (leads - i)
                average = natural_total / (i + 1) or 1.0
                quota = min(remaining, max(0, round(len(natural) * need / average)))
            chosen: Iterable[demo.DemoActivity] = natural
            extra: Iterable[demo.DemoActivity] = ()
            if quota <= len(natural):
                chosen = [natural[k] for k in sorted(rng.sample(range(len(natural)), quota))]
            else:
                extra = demo.scattered_activities(rng, world, person, quota - len(natural))
            n = 0
            for source in (chosen, extra):
                for activity in source:
                    activity_rows.append(demo.activity_csv_row(person, activity, f"bench:{seed}:{i}:{n}"))
                    n += 1
                    if len(activity_rows) >= WRITE_CHUNK:
                        activity_writer.writerows(activity_rows)
                        activity_rows.clear()
            written += n
            if len(lead_rows) >= WRITE_CHUNK:
                lead_writer.writerows(lead_rows)
                lead_rows.clear()
        lead_writer.writerows(lead_rows)
        activity_writer.writerows(activity_rows)
    return {"leads": str(leads_path), "activities": str(activities_path)}


def demo_routing_source() -> str:
    """The demo company's routing document (its sales team, territories and rules)."""
    return (
        resources.files("leadstage.adapters.models").joinpath(DEMO_ROUTING_FILE).read_text(encoding="utf-8")
    )
