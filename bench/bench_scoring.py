"""Scoring speed: `score run` over many leads and activities, and `score explain` through the service layer.

    .venv/bin/python bench/bench_scoring.py [--leads 1000000] [--activities 10000000] [--workers 2] [--runs 3]

Data: the demo generator's files (bench/make_data.py): leads and their activities, imported with
`leadstage import` (incremental scoring off, so `score run` does all the scoring) into a database kept
unscored; each run of `score run` starts from a fresh copy of it. Measured:

* `leadstage score run` (whole command) with the default model: every lead's fit from its facts and
  engagement from all its activities, grades, levels, history rows and automatic promotions;
* `services.scoring.explain` for random leads in an open unit of work (median and p95), against a raw
  `sqlite3` read of the same lead's activities as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import time
from pathlib import Path

from common import NOW, OUT, leadstage_bin, machine, median, run, write_section
from leadstage.adapters.demo_files import write_benchmark_files
from leadstage.bootstrap import build
from leadstage.cli.scoring import yaml_loader
from leadstage.config import Settings
from leadstage.services import scoring


def _children_cpu() -> float:
    """CPU seconds (user and system) used so far by finished child processes and theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def prepare(leads: int, activities: int) -> Path:
    """The benchmark database: demo-generator files imported with incremental scoring off (kept unscored
    under bench/out/, made once)."""
    work = OUT / f"scoring-{leads}-{activities}"
    work.mkdir(parents=True, exist_ok=True)
    files = work / "files.json"
    if not files.exists():
        started = time.perf_counter()
        files.write_text(
            json.dumps(write_benchmark_files(work, leads=leads, activities=activities, seed=4, now=NOW))
        )
        print(f"files written in {time.perf_counter() - started:.0f} s")
    paths = json.loads(files.read_text())
    imported = work / "imported.db"
    off = {"LEADSTAGE_INCREMENTAL_SCORING": "false"}
    if not imported.exists():
        tmp = work / "scoring-tmp.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        run([leadstage_bin(), "--db", str(tmp), "init"])
        for kind in ("leads", "activities"):
            started = time.perf_counter()
            run([leadstage_bin(), "--db", str(tmp), "import", kind, paths[kind]], env=off)
            print(f"{kind} imported in {time.perf_counter() - started:.0f} s")
        con = sqlite3.connect(tmp)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        tmp.rename(imported)
    return imported


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--activities", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--explains", type=int, default=500)
    parser.add_argument("--runs", type=int, default=1, help="runs of `score run`, each on a fresh copy")
    parser.add_argument("--prepare-only", action="store_true", help="generate and import the data, then stop")
    args = parser.parse_args()
    imported = prepare(args.leads, args.activities)
    work = imported.parent
    if args.prepare_only:
        return
    db = work / "scoring.db"
    run_times, cpu_times, loads, loads_before = [], [], [], []
    for i in range(args.runs):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copy(imported, db)
        loads_before.append(os.getloadavg()[0])
        started, used = time.perf_counter(), _children_cpu()
        result = run(
            [leadstage_bin(), "--db", str(db), "score", "run", "--workers", str(args.workers), "--json"]
        )
        run_times.append(time.perf_counter() - started)
        cpu_times.append(_children_cpu() - used)
        loads.append(os.getloadavg()[0])
        print(
            f"run {i + 1}: score run in {run_times[-1]:.1f} s, {cpu_times[-1]:.1f} s of CPU in its processes, "
            f"load average {loads[-1]:.1f}"
        )
    run_seconds = median(run_times)
    report = json.loads(result.stdout)

    container = build(Settings(database_url=str(db)))
    con = sqlite3.connect(db)
    max_id = con.execute("SELECT max(id) FROM leads").fetchone()[0]
    rng = random.Random(9)
    ids = [rng.randint(1, max_id) for _ in range(args.explains)]
    explain_times, raw_times = [], []
    with container.uow() as uow:
        at = container.clock.now()
        for lead_id in ids[:20]:
            scoring.explain(uow, lead_id, load=yaml_loader, as_of=at)
        for lead_id in ids:
            t0 = time.perf_counter()
            doc = scoring.explain(uow, lead_id, load=yaml_loader, as_of=at)
            explain_times.append(time.perf_counter() - t0)
            assert doc["lead_id"] == lead_id
    for lead_id in ids:
        t0 = time.perf_counter()
        con.execute("SELECT * FROM leads WHERE id = ?", (lead_id,)).fetchone()
        con.execute("SELECT * FROM activities WHERE lead_id = ? ORDER BY occurred_at", (lead_id,)).fetchall()
        raw_times.append(time.perf_counter() - t0)
    con.close()
    container.close()

    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        return f"{median(values) * 1000:.2f} ms (p95 {ordered[int(len(ordered) * 0.95)] * 1000:.2f} ms)"

    full_scale = args.leads >= 1_000_000 and args.activities >= 10_000_000
    run_verdict = (
        ("meets" if run_seconds <= 60 else "MISSES")
        if full_scale
        else ("a smaller run than the goal's 1,000,000 leads and 10,000,000 activities: no verdict")
    )
    explain_verdict = "meets" if median(explain_times) <= 0.05 else "MISSES"
    body = f"""## Scoring: `score run` and `score explain`

Command: `.venv/bin/python bench/bench_scoring.py --leads {args.leads} --activities {args.activities} --workers {args.workers} --runs {args.runs}`
({machine()}). Demo-generator data imported with incremental scoring off; default scoring model; each
run of `score run` starts from a fresh copy of the unscored database; median of {args.runs} run(s)
({", ".join(f"{s:.1f} s" for s in run_times)}). The command's own processes used a median
{median(cpu_times):.1f} s of CPU per run (the work, whatever else shares the cores; load average before and
after each run: {", ".join(f"{x:.1f} / {y:.1f}" for x, y in zip(loads_before, loads, strict=True))}; other work
on the machine ran niced, the runs did not).

| measure | value |
|---|---|
| `leadstage score run --workers {args.workers}` over {report["leads"]:,} leads and {report["activities"]:,} scored activities | **{run_seconds:,.1f} s** ({run_verdict}{" the goal of at most 60 s" if full_scale else ""}) |
| `services.scoring.explain` per lead, in an open unit of work ({args.explains} random leads) | **{ms(explain_times)}** ({explain_verdict} the goal of at most 50 ms) |
| baseline: raw `sqlite3` read of the same lead and its activities | {ms(raw_times)} |
"""
    write_section("scoring", body)
    print(body)


if __name__ == "__main__":
    main()
