"""Peak memory of `leadstage import activities` on a 10,000,000-row file (goal: at most 500 MB).

    .venv/bin/python bench/bench_memory.py [--activities 10000000] [--leads 200000]

The import runs as its own process; its peak resident set size is read from the kernel
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``) after it exits.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import time
from pathlib import Path

from common import NOW, OUT, leadstage_bin, machine, run, write_section
from leadstage.adapters.demo_files import write_benchmark_files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--activities", type=int, default=10_000_000)
    parser.add_argument("--leads", type=int, default=200_000)
    args = parser.parse_args()
    work = OUT / f"memory-{args.leads}-{args.activities}"
    work.mkdir(parents=True, exist_ok=True)
    files = work / "files.json"
    if not files.exists():
        started = time.perf_counter()
        paths = write_benchmark_files(work, leads=args.leads, activities=args.activities, seed=2, now=NOW)
        files.write_text(json.dumps(paths))
        print(f"files written in {time.perf_counter() - started:.0f} s")
    paths = json.loads(files.read_text())
    db = work / "memory.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    run([leadstage_bin(), "--db", str(db), "init"])
    run([leadstage_bin(), "--db", str(db), "import", "leads", paths["leads"]])
    size_mb = Path(paths["activities"]).stat().st_size / 1e6
    started = time.perf_counter()
    proc = subprocess.run(
        [leadstage_bin(), "--db", str(db), "import", "activities", paths["activities"], "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = json.loads(proc.stdout)
    con = sqlite3.connect(db)
    stored = con.execute("SELECT count(*) FROM activities").fetchone()[0]
    con.close()
    verdict = "meets" if peak_mb <= 500 else "MISSES"
    body = f"""## Peak memory importing {args.activities:,} activities

Command: `.venv/bin/python bench/bench_memory.py --activities {args.activities} --leads {args.leads}`
({machine()}). File: {size_mb:,.0f} MB of CSV from the demo generator; {args.leads:,} leads imported first.

| measure | value |
|---|---|
| rows imported | {report["created"]:,} (stored: {stored:,}; rejected: {report["rejected"]}) |
| wall time of the command | {seconds:,.0f} s ({report["created"] / seconds:,.0f} rows/s) |
| peak resident memory of the import process | **{peak_mb:,.0f} MB** |

The import (incremental scoring on, the default model active) streams the file in 1 MB blocks and commits
every 50,000 rows: {verdict} the goal of at most 500 MB.
"""
    write_section("memory", body)
    print(body)


if __name__ == "__main__":
    main()
