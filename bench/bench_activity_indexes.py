"""Where an activity import's insert time goes: the same rows into `activities` as it is and with variants
of its indexes and keys (raw sqlite3, no leadstage code; the import benchmark's files and database).

    .venv/bin/python bench/bench_activity_indexes.py [--activities 1000000] [--leads 100000]

Each variant starts from a copy of the import benchmark's database (leads imported, no activities; run
`bench/bench_import.py --prepare-only` first) and inserts every row of its activity file with
`INSERT OR IGNORE` in transactions of 50,000 rows (as the import commits), the connection set up as
leadstage sets it up (WAL, synchronous=NORMAL, foreign keys, 64 MB cache). Rows carry the keys leadstage
stores (the file's key scoped by the lead's reference, `email:ADDRESS|KEY`) unless a variant says
otherwise. Times are the inserts and commits alone (the file is read first).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

from common import OUT, machine, write_section

PRAGMAS = (
    "journal_mode=WAL",
    "foreign_keys=ON",
    "synchronous=NORMAL",
    "cache_size=-65536",
    "wal_autocheckpoint=10000",
)
BATCH = 50_000


def _drop_touches(con: sqlite3.Connection) -> None:
    con.execute("DROP INDEX ix_activities_touches")


def _merge_lead_indexes(con: sqlite3.Connection) -> None:
    con.execute("DROP INDEX ix_activities_touches")
    con.execute("DROP INDEX ix_activities_lead_occurred")
    con.execute(
        "CREATE INDEX ix_activities_lead_all ON activities (lead_id, occurred_at, type, source, campaign, content)"
    )


def _bigger_cache(con: sqlite3.Connection) -> None:
    con.execute("PRAGMA cache_size=-262144")


def _rebuilt(con: sqlite3.Connection, unique: str, touches: str | None) -> None:
    """``activities`` rebuilt (it is empty) with another unique key and touches condition."""
    ddl = con.execute("SELECT sql FROM sqlite_master WHERE name = 'activities'").fetchone()[0]
    indexes = [
        r[0]
        for r in con.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'activities' AND type = 'index' AND sql IS NOT NULL"
        )
    ]
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("DROP TABLE activities")
    con.execute(ddl.replace("UNIQUE (lead_id, idempotency_key)", unique))
    for statement in indexes:
        if touches is not None and "ix_activities_touches" in statement:
            statement = statement.split(" WHERE ")[0] + f" WHERE {touches}"
        con.execute(statement)
    con.execute("PRAGMA foreign_keys=ON")


NOT_IN = (
    "type NOT IN ('call', 'case_study', 'email_bounce', 'email_open', 'email_sent', 'meeting', "
    "'nps_response', 'page_view', 'referral_made', 'review', 'unsubscribe')"
)


def _before_adr_22(con: sqlite3.Connection) -> None:
    _rebuilt(con, "UNIQUE (idempotency_key)", NOT_IN)


def _global_key(con: sqlite3.Connection) -> None:
    _rebuilt(con, "UNIQUE (idempotency_key)", None)


def _not_in(con: sqlite3.Connection) -> None:
    _rebuilt(con, "UNIQUE (lead_id, idempotency_key)", NOT_IN)


VARIANTS: list[tuple[str, Callable[[sqlite3.Connection], None] | None, bool, int]] = [
    # name, schema change, short keys (the file's key alone), rows per transaction
    ("as it is (key unique per lead; touches condition as a chain of <>)", None, False, BATCH),
    ("before ADR 22 (key unique across leads; touches condition NOT IN (...))", _before_adr_22, False, BATCH),
    ("key unique across leads, touches condition as it is", _global_key, False, BATCH),
    ("key unique per lead, touches condition NOT IN (...)", _not_in, False, BATCH),
    ("cache of 256 MB instead of 64 MB", _bigger_cache, False, BATCH),
    ("one transaction for the whole file", None, False, 10**9),
    ("without the touches index", _drop_touches, False, BATCH),
    ("lead+time and touches merged into one full index", _merge_lead_indexes, False, BATCH),
    ("keys as short as the file's (not scoped by lead)", None, True, BATCH),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1, help="rounds over every variant; medians reported")
    args = parser.parse_args()
    work = OUT / f"import-{args.leads}-{args.activities}"
    base = work / "base.db"
    if not base.exists():
        raise SystemExit(f"{base} is missing: run bench/bench_import.py --prepare-only with the same sizes")
    with (work / "activities.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        raw = list(reader)
    times: dict[str, list[float]] = {}
    for _run, (name, change, short, per_tx) in ((r, v) for r in range(args.runs) for v in VARIANTS):
        db = work / "indexes.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copy(base, db)
        con = sqlite3.connect(db, isolation_level=None)
        for pragma in PRAGMAS:
            con.execute(f"PRAGMA {pragma}")
        if change is not None:
            change(con)
        ids = dict(con.execute("SELECT email, id FROM leads"))
        rows = [
            (
                ids[r[0]],
                r[1],
                r[2].replace("T", " ").replace("Z", ".000000"),
                r[6] if short else f"email:{r[0]}|{r[6]}",
                r[3] or None,
                r[4] or None,
                r[5] or None,
            )
            for r in raw
        ]
        started = time.perf_counter()
        for k in range(0, len(rows), per_tx):
            con.execute("BEGIN")
            con.executemany(
                "INSERT OR IGNORE INTO activities (lead_id, type, occurred_at, idempotency_key, source, campaign, "
                "content) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows[k : k + per_tx],
            )
            con.execute("COMMIT")
        seconds = time.perf_counter() - started
        con.close()
        times.setdefault(name, []).append(seconds)
        print(f"{name}: {seconds:.2f} s", flush=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work / 'indexes.db'}{suffix}").unlink(missing_ok=True)
    results = [(name, median(values)) for name, values in times.items()]
    first = results[0][1]
    table = "\n".join(f"| {name} | {s:.2f} s | {s / first:.2f}x |" for name, s in results)
    body = f"""## Activity import: where the insert's time goes (SQLite)

Command: `.venv/bin/python bench/bench_activity_indexes.py --activities {args.activities} --leads {args.leads} --runs {args.runs}`
({machine()}). The import benchmark's {args.activities:,} rows inserted with raw `sqlite3` into `activities`
as leadstage creates it and with variants of its indexes and keys (median of {args.runs} round(s) over
all variants, alternating; a guide for the import goal, not a figure of the product).

| variant | insert and commit time | against as it is |
|---|---|---|
{table}
"""
    write_section("activity-indexes", body)
    print(body)


if __name__ == "__main__":
    main()
