"""HTTP speed of the REST API, one uvicorn worker on loopback (issue 7):

    .venv/bin/python bench/bench_api.py [--leads 2000] [--seconds 10] [--runs 3] [--batches 40]

* `GET /api/v1/leads/{id}` with a bearer token (random ids of the demo company) against a hello-world
  endpoint added to the same app, same server and settings, measured with `wrk` in the same run
  (median requests/s of the runs; goal: at least 0.4x);
* `POST /api/v1/activities/batch` with 1,000 activities per request, one client, sequential batches
  (activities/s over all batches; goal: at least 20,000/s on SQLite), beside a raw `sqlite3`
  `executemany` of the same rows into the same table as the baseline.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import OUT, leadstage_bin, machine, median, run, write_section

SERVER = """
import sys
import uvicorn
from leadstage.api.app import create_app
from leadstage.config import Settings

app = create_app(Settings(database_url=sys.argv[1]))


@app.get("/bench/hello", include_in_schema=False)
def hello() -> dict[str, str]:
    return {"hello": "world"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""

LUA = """
local ids = {%s}
request = function()
  return wrk.format("GET", "/api/v1/leads/" .. ids[math.random(#ids)], {["Authorization"] = "Bearer %s"})
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, seconds: int, script: Path | None = None) -> float:
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"wrk saw {non_2xx.group(1)} failed responses:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found, out
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    work = OUT / "api"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "api.db"
    ls = leadstage_bin()
    run([ls, "--db", str(db), "init"])
    run([ls, "--db", str(db), "demo", "--leads", str(args.leads), "--seed", "5"])
    run([ls, "--db", str(db), "users", "add", "bench", "--role", "admin", "--password", "bench-password"])
    token = json.loads(
        run([ls, "--db", str(db), "tokens", "create", "bench", "--scope", "write", "--json"]).stdout
    )["token"]
    con = sqlite3.connect(db)
    lead_ids = [r[0] for r in con.execute("SELECT id FROM leads ORDER BY random() LIMIT 500")]
    emails = [
        r[0]
        for r in con.execute(
            "SELECT email_normalized FROM leads WHERE email_normalized IS NOT NULL LIMIT 1000"
        )
    ]
    con.close()
    script = work / "get_lead.lua"
    script.write_text(LUA % (", ".join(map(str, lead_ids)), token))

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, f"sqlite:///{db}", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/bench/hello", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        hello, lead = [], []
        for i in range(args.runs):
            hello.append(wrk(f"{base}/bench/hello", args.seconds))
            lead.append(wrk(base, args.seconds, script))
            print(f"run {i + 1}: hello {hello[-1]:,.0f} req/s, GET lead {lead[-1]:,.0f} req/s")

        rng = random.Random(7)
        batches = [
            {
                "activities": [
                    {
                        "email": rng.choice(emails),
                        "type": rng.choice(["page_view", "email_open", "email_click", "content_download"]),
                        "occurred_at": f"2026-10-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
                        "source": "bench",
                        "idempotency_key": f"b{b}-{k}",
                    }
                    for k in range(1000)
                ]
            }
            for b in range(args.batches)
        ]
        bodies = [json.dumps(b).encode() for b in batches]
        started = time.perf_counter()
        for body in bodies:
            req = urllib.request.Request(
                f"{base}/api/v1/activities/batch",
                data=body,
                method="POST",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=120) as r:
                report = json.loads(r.read())
                assert report["created"] == 1000, report
        api_rate = args.batches * 1000 / (time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(timeout=30)

    # baseline: the same rows straight into the same table with sqlite3 (email -> id from a dict)
    con = sqlite3.connect(db)
    ids = dict(con.execute("SELECT email_normalized, id FROM leads WHERE email_normalized IS NOT NULL"))
    rows = [
        (
            ids[a["email"]],
            a["type"],
            a["occurred_at"].replace("T", " ").replace("Z", ".000000"),
            a["source"],
            "raw-" + a["idempotency_key"],
        )
        for b in batches
        for a in b["activities"]
    ]
    started = time.perf_counter()
    con.executemany(
        "INSERT INTO activities (lead_id, type, occurred_at, source, idempotency_key) VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    con.commit()
    raw_rate = len(rows) / (time.perf_counter() - started)
    con.close()

    h, g = median(hello), median(lead)
    ratio = g / h
    body = f"""## REST API over HTTP (one uvicorn worker, loopback)

Command: `.venv/bin/python bench/bench_api.py --leads {args.leads} --seconds {args.seconds} --runs {args.runs} --batches {args.batches}`
({machine()}). Demo company of {args.leads:,} leads on SQLite; `wrk -t1 -c16` for {args.seconds} s per run; hello-world
endpoint added to the same app in the same server process.

| endpoint | median requests/s ({args.runs} runs) |
|---|---|
| `GET /bench/hello` (hello world, same app and server) | {h:,.0f} |
| `GET /api/v1/leads/{{id}}` with a bearer token (full lead: history, activities, scores, duplicates) | {g:,.0f} |

Ratio: **{ratio:.2f}x** the hello-world endpoint: {"meets" if ratio >= 0.4 else "MISSES"} the goal of at least 0.4x.

| activity ingestion, {args.batches} batches of 1,000 | activities/s |
|---|---|
| baseline: raw `sqlite3` `executemany` of the same rows into the same table | {raw_rate:,.0f} |
| `POST /api/v1/activities/batch`, one client, sequential (validation, identity, keys, scoring) | {api_rate:,.0f} |

Batch ingestion: **{api_rate:,.0f} activities/s**: {"meets" if api_rate >= 20_000 else "MISSES"} the goal of at least 20,000/s.
"""
    write_section("api", body)
    print(body)


if __name__ == "__main__":
    main()
