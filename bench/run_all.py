"""Run every benchmark of docs/benchmarks.md with the command each section names (`make bench`):

    .venv/bin/python bench/run_all.py [--only NAME ...] [--list]

Each script rewrites its own section of docs/benchmarks.md. At full size (1,000,000 leads and 10,000,000
activities) the whole set takes hours on 2 cores and several GB under bench/out; run on a quiet machine
(other work on the cores makes every figure worse), or pick sections with ``--only``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (script, arguments): the commands docs/benchmarks.md gives to reproduce each section.
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "lookup": ("bench_lookup.py", ["--leads", "1000000", "--lookups", "5000"]),
    "import": ("bench_import.py", ["--activities", "1000000", "--leads", "100000", "--runs", "3"]),
    "activity-indexes": ("bench_activity_indexes.py", ["--activities", "1000000", "--leads", "100000"]),
    "memory": ("bench_memory.py", ["--activities", "10000000", "--leads", "200000"]),
    "segments": ("bench_segments.py", ["--leads", "1000000", "--active", "200000", "--runs", "5"]),
    "scoring": ("bench_scoring.py", ["--leads", "1000000", "--activities", "10000000", "--workers", "2"]),
    "routing": ("bench_routing.py", ["--stored", "200000", "--batch", "1000", "--runs", "5"]),
    "tick": ("bench_tick.py", ["--leads", "1000000", "--runs", "3"]),
    "predictive-xeducation": ("bench_predictive.py", ["xeducation"]),
    "predictive-demo": ("bench_predictive.py", ["demo", "--leads", "20000", "--seeds", "42", "43", "44"]),
    "predictive-train": ("bench_predictive.py", ["train", "--leads", "100000"]),
    "predictive-score": ("bench_predictive.py", ["score", "--leads", "1000000", "--activities", "10000000"]),
    "reports-seed-sqlite": ("seed_reports.py", ["--target", "sqlite"]),
    "reports-sqlite": ("bench_reports.py", ["--target", "sqlite", "--runs", "3"]),
    "reports-seed-postgres": ("seed_reports.py", ["--target", "postgres"]),
    "reports-postgres": ("bench_reports.py", ["--target", "postgres", "--runs", "3"]),
    "api": ("bench_api.py", ["--leads", "2000", "--seconds", "8", "--runs", "3", "--batches", "40"]),
    "web": ("bench_web.py", []),
    "web-insights": ("bench_web_insights.py", []),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--list", action="store_true", help="print the commands and stop")
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    failed = []
    for name in chosen:
        script, extra = BENCHMARKS[name]
        command = [sys.executable, str(HERE / script), *extra]
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        if args.list:
            continue
        started = time.monotonic()
        code = subprocess.call(command, cwd=HERE.parent)
        print(f"== {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
