"""Report speed over 1,000,000 leads and 10,000,000 activities (goal: at most 5 s per report on each database).

    .venv/bin/python bench/seed_reports.py --target sqlite      # once: bench/out/reports-N-M/reports.db
    .venv/bin/python bench/seed_reports.py --target postgres    # once: database leadstage_bench_reports
    .venv/bin/python bench/bench_reports.py --target sqlite [--runs 5]
    .venv/bin/python bench/bench_reports.py --target postgres [--runs 5]

Each report is timed through the service layer as the CLI runs it (``parse_request`` then
``services.reports.run_report`` in a fresh unit of work: SQL aggregates and shaping the document),
after one warm-up run; the median of ``--runs`` is reported. In the same run, baselines: plain
aggregates over the same tables (history per action, the number of activities, and leads per
furthest stage). Results per database are kept in ``bench/out/reports-results.json`` and
the section of docs/benchmarks.md is written from both.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from common import NOW, OUT, machine, median, write_section
from leadstage.adapters.clock import FixedClock
from leadstage.bootstrap import build
from leadstage.config import Settings
from leadstage.domain.analytics import parse_request
from leadstage.services.reports import run_report
from seed_reports import pg_url

#: label -> (report name, options)
REPORTS: dict[str, tuple[str, dict[str, Any]]] = {
    "funnel": ("funnel", {}),
    "funnel --per-cycle": ("funnel", {"per_cycle": True}),
    "funnel --by source": ("funnel", {"by": "source"}),
    "funnel --mode period --from 2026-05-01 --to 2026-07-31": (
        "funnel",
        {"mode": "period", "date_from": "2026-05-01", "date_to": "2026-07-31"},
    ),
    "velocity": ("velocity", {}),
    "attribution (by source, the default)": ("attribution", {}),
    "attribution --by content": ("attribution", {"by": "content"}),
    # another half-life than the default: credits computed from the touches, not the stored ones
    "attribution --half-life 14": ("attribution", {"half_life_days": 14.0}),
    "feedback": ("feedback", {}),
    "calibration": ("calibration", {}),
}
# (a full scan such as SELECT source, count(*) FROM activities GROUP BY source took 45 s on the shared
# machine: one pass over every activity is already far above any report's goal, which is why no report
# reads all activities)
BASELINES = {
    "SELECT action, count(*) FROM lead_history GROUP BY action": (
        "SELECT action, count(*) FROM lead_history GROUP BY action"
    ),
    "SELECT count(*) FROM activities": "SELECT count(*) FROM activities",
    "SELECT furthest_stage, count(*) FROM leads GROUP BY furthest_stage": (
        "SELECT furthest_stage, count(*) FROM leads GROUP BY furthest_stage"
    ),
}
RESULTS = OUT / "reports-results.json"


def load_average() -> str:
    """The 1-minute load average: how busy the shared machine was while measuring."""
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--activities", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default=None, help="time only the reports whose label contains this text")
    parser.add_argument(
        "--write-only", action="store_true", help="rewrite docs/benchmarks.md from the saved results only"
    )
    args = parser.parse_args()
    if args.write_only:
        write_doc(json.loads(RESULTS.read_text()))
        return
    url = (
        str(OUT / f"reports-{args.leads}-{args.activities}" / "reports.db")
        if args.target == "sqlite"
        else pg_url()
    )
    c = build(Settings(database_url=url), clock=FixedClock(NOW))
    with c.engine.connect() as conn:
        sizes = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("leads", "activities", "lead_history")
        }
    print(sizes, flush=True)
    timings: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    load_before = load_average()
    for label, sql in BASELINES.items():
        times = []
        for run in range(args.runs + 1):
            with c.engine.connect() as conn:
                t0 = time.perf_counter()
                conn.execute(text(sql)).all()
                if run:
                    times.append(time.perf_counter() - t0)
        timings[f"baseline: `{label}`"] = times
        print(f"{label}: {median(times):.2f} s", flush=True)
    for label, (name, options) in REPORTS.items():
        if args.only and args.only not in label:
            continue
        times, cpu = [], []
        for run in range(args.runs + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            request = parse_request(name, **options)
            with c.uow() as uow:
                run_report(uow, request, as_of=NOW)
            if run:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        timings[label] = times
        cpus[label] = cpu
        print(
            f"{label}: median {median(times):.2f} s ({', '.join(f'{x:.2f}' for x in times)}); "
            f"CPU of this process {median(cpu):.2f} s",
            flush=True,
        )
    c.close()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous = results.get(args.target, {}) if args.only else {}
    if previous.get("leads") == args.leads:  # --only: keep the other reports' figures
        timings = {**{k: [v] for k, v in previous["timings"].items()}, **timings}
        cpus = {**{k: [v] for k, v in previous.get("cpu", {}).items()}, **cpus}
    results[args.target] = {
        "sizes": sizes,
        "runs": args.runs,
        "machine": machine(),
        "timings": {k: median(v) for k, v in timings.items()},
        "cpu": {k: median(v) for k, v in cpus.items()},
        "load": f"{load_before} before, {load_average()} after",
        "leads": args.leads,
        "activities": args.activities,
    }
    RESULTS.write_text(json.dumps(results, indent=2))
    write_doc(results)


def write_doc(results: dict[str, Any]) -> None:
    dbs = [db for db in ("sqlite", "postgres") if db in results]
    labels: list[str] = []
    for db in dbs:
        labels += [k for k in results[db]["timings"] if k not in labels]
    header = (
        "| report | "
        + " | ".join(f"{'SQLite' if db == 'sqlite' else 'PostgreSQL'} (median)" for db in dbs)
        + " |"
        + (" SQLite CPU of the report (median) |" if "sqlite" in dbs else "")
    )
    lines = [header, "|---|" + "---|" * (len(dbs) + ("sqlite" in dbs))]
    worst: dict[str, float] = {}
    for label in labels:
        cells = []
        for db in dbs:
            value = results[db]["timings"].get(label)
            cells.append("-" if value is None else f"{value:.2f} s")
            if value is not None and not label.startswith("baseline"):
                worst[db] = max(worst.get(db, 0.0), value)
        if "sqlite" in dbs:
            cpu = results["sqlite"].get("cpu", {}).get(label)
            cells.append("-" if cpu is None else f"{cpu:.2f} s")
        name = label if label.startswith("baseline") else f"`leadstage report {label}`"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    sizes = "; ".join(
        f"{'SQLite' if db == 'sqlite' else 'PostgreSQL'}: {results[db]['sizes']['leads']:,} leads, "
        f"{results[db]['sizes']['activities']:,} activities, {results[db]['sizes']['lead_history']:,} history rows "
        f"({results[db]['runs']} runs; load average {results[db].get('load', '?')}; {results[db]['machine']})"
        for db in dbs
    )
    verdicts: list[str] = []
    for db in dbs:
        name = "SQLite" if db == "sqlite" else "PostgreSQL"
        full = results[db]["leads"] >= 1_000_000 and results[db]["activities"] >= 10_000_000
        if not full:
            verdicts.append(f"{name}: a smaller run than the goal's scale, no verdict.")
        else:
            verdict = "meets" if worst[db] <= 5 else "MISSES"
            over = [
                label
                for label, value in results[db]["timings"].items()
                if not label.startswith("baseline") and value > 5
            ]
            verdicts.append(
                f"{name}: the slowest report takes {worst[db]:.2f} s: {verdict} the goal of at most 5 s"
                + (f" (over 5 s: {'; '.join(over)})." if over else ".")
            )
    body = f"""## Reports over 1,000,000 leads and 10,000,000 activities

Commands: `.venv/bin/python bench/seed_reports.py --target sqlite|postgres` (once), then
`.venv/bin/python bench/bench_reports.py --target sqlite|postgres --runs 3`. Data written with raw bulk
inserts (`executemany` / `COPY`): journeys that follow the transition table (recycled, lost, rejected,
disqualified and reopened leads in several cycles), activities with sources, campaigns, webinars and
eBooks. {sizes}. Each report is `parse_request` + `services.reports.run_report` in a fresh unit of work
(everything the CLI does but start-up and printing), median after one warm-up run; the baselines are
plain aggregates over the same tables, timed in the same run. The machine's 2 cores were shared with
other work while measuring (the load average is given): wall times are inflated by waiting for a core,
so the SQLite column "CPU" adds the CPU time the report itself used (SQLite runs in the process).

{chr(10).join(lines)}

{" ".join(verdicts)}
"""
    write_section("reports", body)
    print(body)


if __name__ == "__main__":
    main()
