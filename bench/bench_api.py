"""HTTP speed of the REST API, one uvicorn worker on loopback (issue 7):

    .venv/bin/python bench/bench_api.py [--leads 2000] [--seconds 10] [--runs 3] [--batches 40]

* `GET /api/v1/leads/{id}` with a bearer token (random ids of the demo company) against a hello-world
  endpoint added to the same app, same server and settings, measured with `wrk` in the same run
  (each run: hello, lead, lead with `?include=activities&include=duplicates`; the ratio is taken run by
  run, the median reported; goal: at least 0.4x). The server's CPU seconds per request (from
  /proc) are reported beside requests/s: on a shared machine they move less than throughput does;
* `POST /api/v1/activities/batch` with 1,000 activities per request, one client, sequential batches
  (activities/s over all batches, per run, median; goal: at least 20,000/s on SQLite), beside a raw
  `sqlite3` `executemany` of the same rows into the same table as the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
  return wrk.format("GET", "/api/v1/leads/" .. ids[math.random(#ids)] .. "%s", {["Authorization"] = "Bearer %s"})
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live child of a process (the server's follow-up process, ADR 25)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):  # (ended meanwhile)
                out[int(child)] = cpu_seconds(int(child))
    return out


def wrk(url: str, seconds: int, pid: int, script: Path | None = None) -> tuple[float, float]:
    """Requests/s and the server's CPU milliseconds per request."""
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    before = cpu_seconds(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(pid) - before
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"wrk saw {non_2xx.group(1)} failed responses:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    assert found, out
    assert total, out
    return float(found.group(1)), 1000 * used / max(1, int(total.group(1)))


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
    setup = ["nice", "-n", "15", ls]  # preparing is not what is measured (the machine is shared)
    run([*setup, "--db", str(db), "init"])
    run([*setup, "--db", str(db), "demo", "--leads", str(args.leads), "--seed", "5"])
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
    script.write_text(LUA % (", ".join(map(str, lead_ids)), "", token))
    full_script = work / "get_full_lead.lua"
    full_script.write_text(
        LUA % (", ".join(map(str, lead_ids)), "?include=activities&include=duplicates", token)
    )

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, f"sqlite:///{db}", str(port)])
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[float, ...]] = []
    rates: list[float] = []
    settled_rates: list[float] = []
    lags: list[float] = []
    batch_cpu: list[float] = []
    follow_cpu: list[float] = []
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/bench/hello", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for i in range(args.runs):
            hello, hello_cpu = wrk(f"{base}/bench/hello", args.seconds, server.pid)
            lead, lead_cpu = wrk(base, args.seconds, server.pid, script)
            full, full_cpu = wrk(base, args.seconds, server.pid, full_script)
            load = os.getloadavg()[0]
            rows.append((hello, lead, full, hello_cpu, lead_cpu, full_cpu, load))
            print(
                f"run {i + 1}: hello {hello:,.0f} req/s ({hello_cpu:.2f} ms CPU), GET lead {lead:,.0f} "
                f"({lead_cpu:.2f} ms), with activities and duplicates {full:,.0f} ({full_cpu:.2f} ms); "
                f"ratio {lead / hello:.2f}; load {load:.1f}"
            )

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
            for b in range(args.batches * args.runs)
        ]
        bodies = [json.dumps(b).encode() for b in batches]
        watch = sqlite3.connect(f"file:{db}?mode=ro", uri=True)

        def backlog() -> int:
            """Activities not followed up yet: waiting in the inbox file (ADR 24) or in the backlog."""
            waiting = int(watch.execute("SELECT count(*) FROM activity_backlog").fetchone()[0])
            inbox = Path(f"{db}.inbox")
            if inbox.exists():
                with sqlite3.connect(f"file:{inbox}?mode=ro", uri=True) as box:
                    waiting += int(box.execute("SELECT count(*) FROM activity_inbox").fetchone()[0])
            return waiting

        for run_no in range(args.runs):
            mine = bodies[run_no * args.batches : (run_no + 1) * args.batches]
            while backlog():  # the previous run's follow-ups are not this run's
                time.sleep(0.05)
            before = cpu_seconds(server.pid)
            before_children = children_cpu(server.pid)
            started = time.perf_counter()
            for body in mine:
                req = urllib.request.Request(
                    f"{base}/api/v1/activities/batch",
                    data=body,
                    method="POST",
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=120) as r:
                    report = json.loads(r.read())
                    assert report["created"] == 1000, report
            answered = time.perf_counter() - started
            rates.append(len(mine) * 1000 / answered)
            while backlog():  # scored, touched and credited (ADR 21): the end of the ingestion's work
                time.sleep(0.02)
            settled = time.perf_counter() - started
            settled_rates.append(len(mine) * 1000 / settled)
            lags.append(settled - answered)
            batch_cpu.append(1000 * (cpu_seconds(server.pid) - before) / len(mine))
            after_children = children_cpu(server.pid)
            follow_cpu.append(
                1000
                * sum(after_children[c] - before_children.get(c, 0.0) for c in after_children)
                / len(mine)
            )
            print(
                f"batches run {run_no + 1}: {rates[-1]:,.0f} activities/s answered, "
                f"{settled_rates[-1]:,.0f}/s followed up (last follow-up {lags[-1]:.2f} s after the last "
                f"answer), CPU per batch: {batch_cpu[-1]:.0f} ms in the server, {follow_cpu[-1]:.0f} ms in "
                "its follow-up process"
            )
        watch.close()
    finally:
        server.terminate()
        server.wait(timeout=60)

    # baseline: the same rows straight into the same table with sqlite3 (email -> id from a dict)
    con = sqlite3.connect(db)
    ids = dict(con.execute("SELECT email_normalized, id FROM leads WHERE email_normalized IS NOT NULL"))
    raw_rows = [
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
        raw_rows,
    )
    con.commit()
    raw_rate = len(raw_rows) / (time.perf_counter() - started)
    con.close()

    ratios = [r[1] / r[0] for r in rows]
    ratio = median(ratios)
    api_rate = median(rates)
    col = list(zip(*rows, strict=True))
    h, g, f, hc, gc, fc = (median(list(c)) for c in col[:6])
    loads = ", ".join(f"{r[6]:.1f}" for r in rows)
    per_run = "; ".join(f"{r[1]:,.0f}/{r[0]:,.0f} = {r[1] / r[0]:.2f}" for r in rows)
    body = f"""## REST API over HTTP (one uvicorn worker, loopback)

Command: `.venv/bin/python bench/bench_api.py --leads {args.leads} --seconds {args.seconds} --runs {args.runs} --batches {args.batches}`
({machine()}; not niced; 1-minute load average after each run: {loads}: the machine is shared).
Demo company of {args.leads:,} leads on SQLite; `wrk -t1 -c16` for {args.seconds} s per endpoint and run; the
hello-world endpoint is added to the same app in the same server process; each run measures the three
endpoints one after the other, and the ratio is taken within the run. CPU is the server's CPU time per
request (user + system, from /proc), which a busy machine disturbs less than requests/s.

| endpoint | median requests/s ({args.runs} runs) | median server CPU per request |
|---|---|---|
| `GET /bench/hello` (hello world, same app and server) | {h:,.0f} | {hc:.2f} ms |
| `GET /api/v1/leads/{{id}}` with a bearer token (the lead, its history, scores, routing, disqualification) | {g:,.0f} | {gc:.2f} ms |
| the same with `?include=activities&include=duplicates` (50 latest activities, fuzzy duplicates) | {f:,.0f} | {fc:.2f} ms |

Ratio, run by run (lead / hello): {per_run}. Median: **{ratio:.2f}x** the hello-world endpoint:
{"meets" if ratio >= 0.4 else "MISSES"} the goal of at least 0.4x.

| activity ingestion, {args.batches} batches of 1,000 per run, one client sending them back to back | activities/s |
|---|---|
| baseline: raw `sqlite3` `executemany` of the same rows into the same table | {raw_rate:,.0f} |
| `POST /api/v1/activities/batch` answered (validated, leads resolved, keys checked, kept in the inbox file and committed: ADR 24), median of {args.runs} runs ({", ".join(f"{r:,.0f}" for r in rates)}) | **{api_rate:,.0f}** |
| the same until every follow-up has run (stored into `activities` sorted by lead, touches, incremental scoring and promotion, attribution credits: ADRs 21, 24 and 25, run by the server's follow-up process at the loop's default of 1 s), median of {args.runs} runs ({", ".join(f"{r:,.0f}" for r in settled_rates)}) | {median(settled_rates):,.0f} |

The last follow-up ended a median {median(lags):.2f} s after the last answer. CPU per 1,000-activity batch:
median {median(batch_cpu):.0f} ms in the server's process (answering), {median(follow_cpu):.0f} ms in its
follow-up process (ADR 25). Batch ingestion: **{api_rate:,.0f}
activities/s** answered: {"meets" if api_rate >= 20_000 else "MISSES"} the goal of at least 20,000/s
({median(settled_rates):,.0f}/s counting the follow-ups until the last one ends).
"""
    write_section("api", body)
    print(body)


if __name__ == "__main__":
    main()
