"""Write benchmark files from the demo company's generator.

python bench/make_data.py OUT_DIR --leads N --activities M --seed S [--now 2026-03-01T00:00:00Z]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from leadstage.adapters.demo_files import write_benchmark_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--activities", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--now", default=None, help="end of the twelve months (ISO 8601; default: today 00:00 UTC)"
    )
    args = parser.parse_args(argv)
    if args.now:
        now = datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    else:
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    paths = write_benchmark_files(
        args.out_dir, leads=args.leads, activities=args.activities, seed=args.seed, now=now
    )
    seconds = round(time.perf_counter() - started, 1)
    json.dump({**paths, "now": now.isoformat(), "seconds": seconds}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
