"""Databases holding data at an earlier schema revision, for the upgrade tests (issue 9 section 2).

:func:`build_source` makes one database at the newest revision with data in every table: the demo
generator's company (accounts, leads, activities, history, qualification, scores, routing) plus what the
demo does not make (imports with external ids, a disqualification, a forgotten person, a merge, a
predictive model, tokens, forms, webhooks and their outbox, inbound hooks, mail, sessions, jobs, leases).

:func:`build_at` makes a database at revision ``r`` (the migrations up to ``r``) and inserts, table by
table through that schema, the source's rows projected onto the columns the table had at ``r``: rows an
older leadstage could hold. The migrations only ever add tables and columns, so a projected row is a row
of that schema. :func:`snapshot` reads every table's rows as they were at ``r`` to compare after upgrading.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Column, Engine, MetaData, String, Table, create_engine, inspect, select, text

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import alembic_config, make_engine, normalize_url
from leadstage.adapters.demo_files import demo_routing_source
from leadstage.bootstrap import build
from leadstage.cli.app import main
from leadstage.config import Settings
from leadstage.domain.times import utc_text
from leadstage.services import leases
from leadstage.services.ports import Job

#: every schema revision before the newest, read from the migrations themselves (a new one joins by itself)
REVISIONS = sorted(
    p.name.split("_", 1)[0] for p in (Path(t.__file__).parent / "migrations" / "versions").glob("[0-9]*_*.py")
)[:-1]
SKIP = {"alembic_version"}
Snapshot = dict[str, list[tuple[Any, ...]]]


def cli(db_url: str, *args: str) -> Any:
    """Run a leadstage command in this process; its JSON answer (or None), failing on a non-zero exit."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main(["--db", db_url, *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 0, f"leadstage {' '.join(args)} exited {code}: {out.getvalue()[-2000:]}"
    text_out = out.getvalue().strip()
    return json.loads(text_out) if text_out.startswith(("{", "[")) else None


def build_source(path: Path, work: Path) -> str:
    """A SQLite database at the newest revision with rows in every table."""
    url = f"sqlite:///{path}"
    cli(url, "init")
    cli(url, "demo", "--leads", "80", "--seed", "7")
    people = work / "crm.csv"
    people.write_text(
        "CRM ID,email,first_name,last_name,company,Country,Lead Source\n"
        "C-1,ana@northwind.example,Ana,Ruiz,Northwind,Germany,Referral\n"
        "C-2,ben@northwind.example,Ben,Ode,Northwind,Germany,Webinar\n"
        "C-3,cy@southwind.example,Cy,Lam,Southwind,Japan,Ads\n"
        "C-4,dee@southwind.example,Dee,Sol,Southwind,France,Ads\n"
        "C-5,eve@eastwind.example,Eve,Ng,Eastwind,Spain,Partner\n"
        "C-6,eve.ng@eastwind.example,Eve,Ng,Eastwind,Spain,Partner\n",
        encoding="utf-8",
    )
    cli(url, "import", "leads", str(people), "--id-column", "CRM ID")
    events = work / "events.csv"
    events.write_text(
        "email,type,occurred_at,source,campaign,idempotency_key,page\n"
        "ana@northwind.example,page_view,2026-10-01T09:00:00Z,web,,e-1,/pricing\n"
        "ana@northwind.example,webinar_attended,2026-10-02T15:00:00Z,webinar,Q4 webinar,e-2,\n"
        "cy@southwind.example,content_download,2026-10-03T10:00:00Z,ebook,Freight eBook,e-3,\n",
        encoding="utf-8",
    )
    cli(url, "import", "activities", str(events))
    cli(url, "users", "add", "zoe", "--role", "sales_rep", "--team", "emea", "--email", "zoe@x.example",
        "--password", "zoe-password-1")  # fmt: skip
    cli(
        url,
        "leads",
        "transition",
        "ana@northwind.example",
        "promote_mql",
        "--reason",
        "manual",
        "--note",
        "fair",
    )
    cli(
        url,
        "leads",
        "transition",
        "ben@northwind.example",
        "disqualify",
        "--reason",
        "not_icp",
        "--note",
        "agency",
    )
    cli(url, "leads", "forget", "dee@southwind.example")
    cli(url, "leads", "merge", "eve@eastwind.example", "eve.ng@eastwind.example")
    cli(url, "segments", "create", "German leads", "--filter", 'properties.Country = "Germany"')
    cli(url, "tokens", "create", "zoe", "--scope", "read")
    cli(url, "forms", "create", "Contact us", "--redirect", "/thanks")
    cli(url, "webhooks", "add", "http://127.0.0.1:9/unreachable", "--event", "lead.stage_changed")
    cli(url, "hooks", "add", "mailer", "--source", "mailchimp")
    cli(
        url,
        "leads",
        "transition",
        "cy@southwind.example",
        "promote_mql",
        "--reason",
        "manual",
        "--note",
        "call",
    )
    cli(url, "tick")  # queues the webhook event (its delivery fails: pending, retried later)
    routing = work / "routing.yaml"  # the demo's team, but only German leads are routed: others wait
    rules = demo_routing_source().split("\nrules:")[0]
    routing.write_text(rules + "\nrules:\n  - {name: germany only, territory: EMEA-Central, team: sales}\n")
    cli(url, "routing", "set", str(routing))
    cli(
        url,
        "leads",
        "transition",
        "eve@eastwind.example",
        "promote_mql",
        "--reason",
        "manual",
        "--note",
        "wait",
    )
    trained = cli(
        url,
        "model",
        "train",
        "--stage",
        "mql",
        "--min-leads",
        "40",
        "--min-positives",
        "5",
        "--cv",
        "3",
        "--json",
    )
    cli(url, "model", "activate", str(trained["model_id"]))
    _direct_rows(url)
    return url


def _direct_rows(url: str) -> None:
    """What no command makes without a server: a session, a job, an inbound event, a mail, leases."""
    c = build(Settings(database_url=url))
    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    with c.uow(write=True) as uow:
        user = uow.users.get_by_username("zoe")
        assert user is not None
        uow.access.add_session(
            digest="0" * 64, user_id=user.id, at=now, expires_at=now + timedelta(hours=12), client="10.0.0.1"
        )
        uow.access.add_job(
            Job("job-1", "score.activate", "done", {"file": "m.yaml"}, "admin", now, runner="s1")
        )
        hook = uow.webhooks.inbound("mailer")
        assert hook is not None
        uow.webhooks.remember_signature(hook.id, "f" * 64, now)
        uow.mail.enqueue(
            [
                {
                    "key": "mail-1",
                    "to_addr": "zoe@x.example",
                    "subject": "New MQL",
                    "body": "Ana Ruiz is yours",
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            ]
        )
        # an API batch's activity whose follow-ups a server had not run yet (the activity backlog)
        ana = uow.bulk.lead_ids_by_email({"ana@northwind.example"})["ana@northwind.example"]
        when = utc_text(now - timedelta(hours=1))
        row = (ana, "page_view", when, "email:ana@northwind.example|api-1", "web", None, None, None)
        assert uow.bulk.insert_new_activities([row], defer=True) == [row]
        uow.commit()
    leases.hold(c.uow, leases.BACKGROUND_LOOP, "host:1:abc", now=now, seconds=30)
    c.close()


def tables_at(engine: Engine) -> dict[str, list[str]]:
    """The tables of a database and their columns."""
    found = inspect(engine)
    return {name: [col["name"] for col in found.get_columns(name)] for name in found.get_table_names()}


#: Columns a later revision dropped, with the value an older leadstage kept in them.
DROPPED: dict[tuple[str, str], str] = {("web_sessions", "csrf"): "csrf-token-of-an-old-session"}


def _projected(name: str, columns: list[str]) -> Table:
    """The newest table's definition cut down to ``columns`` (same types: times, JSON)."""
    head = t.metadata.tables[name]
    return Table(
        name,
        MetaData(),
        *(
            Column(c, head.c[c].type, primary_key=head.c[c].primary_key) if c in head.c else Column(c, String)
            for c in columns
        ),
    )


def _ordered(names: list[str]) -> list[str]:
    order = [tbl.name for tbl in t.metadata.sorted_tables]
    return sorted(names, key=lambda n: order.index(n) if n in order else len(order))


def _plain_engine(url: str) -> Engine:
    """An engine without leadstage's connection settings: SQLite without enforced foreign keys, so rows
    can go in table by table (a merge points at a later lead)."""
    return create_engine(normalize_url(url))


@contextlib.contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def build_at(revision: str, source_url: str, target_url: str) -> tuple[dict[str, list[str]], Snapshot]:
    """Migrate an empty database to ``revision`` and fill it with the source's rows; its tables and
    columns, and its snapshot."""
    with _engine(target_url) as engine:
        command.upgrade(alembic_config(engine), revision)
        layout = tables_at(engine)
    head = {name: set(tbl.c.keys()) for name, tbl in t.metadata.tables.items()}
    with _engine(source_url) as source:
        rows = {
            name: [
                {**dict(r._mapping), **{c: DROPPED[name, c] for c in columns if c not in head[name]}}
                for r in _read(source, name, [c for c in columns if c in head[name]])
            ]
            for name, columns in layout.items()
            if name not in SKIP
        }
    target = _plain_engine(target_url)
    try:
        with target.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(text("SET session_replication_role = replica"))  # no FK checks while filling
            for name in _ordered(list(rows)):
                table = _projected(name, layout[name])
                if name == "activity_types":  # the migrations insert the built-in ones
                    have = {r[0] for r in conn.execute(select(table.c.name))}
                    rows[name] = [r for r in rows[name] if r["name"] not in have]
                if rows[name]:
                    conn.execute(table.insert(), rows[name])
                numbered = "id" in layout[name] and t.metadata.tables[name].c.id.type.python_type is int
                if postgres and numbered:  # the ids were given: move the sequence past them
                    conn.execute(
                        text(
                            f'SELECT setval(seq, COALESCE((SELECT max(id) FROM "{name}"), 0) + 1, false) '
                            f"FROM (SELECT pg_get_serial_sequence('\"{name}\"', 'id') AS seq) s "
                            "WHERE seq IS NOT NULL"
                        )
                    )
    finally:
        target.dispose()
    return layout, snapshot(target_url, layout)


def _read(engine: Engine, name: str, columns: list[str]) -> list[Any]:
    table = _projected(name, columns)
    key = [c for c in table.columns if c.primary_key] or list(table.columns)
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(*key)))


def snapshot(url: str, layout: dict[str, list[str]]) -> Snapshot:
    """Every row of the tables in ``layout``, read as those columns, ordered by primary key."""
    with _engine(url) as engine:
        return {
            name: [tuple(r) for r in _read(engine, name, cols)]
            for name, cols in layout.items()
            if name not in SKIP
        }
