"""Storage: the unit of work, optimistic concurrency, migrations and killed imports, on both databases."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import (
    DatabaseTooNew,
    _revisions,
    alembic_config,
    current_revision,
    head_revision,
    is_known_revision,
    make_engine,
    revisions_in,
    upgrade,
)
from leadstage.bootstrap import Container
from leadstage.domain.errors import ConcurrencyConflict
from leadstage.domain.stages import TransitionRequest
from leadstage.domain.times import utc_text
from leadstage.services import leads as lead_service
from leadstage.services.leads import BUILTIN_ADMIN, LeadInput
from tests.cli_runner import leadstage_bin, run_process
from tests.conftest import NOW


def add_lead(c: Container, email: str) -> int:
    with c.uow() as uow:
        lead, outcome, _ = lead_service.upsert_lead(
            uow, LeadInput(email=email), normalizer=c.identity, at=NOW
        )
        uow.commit()
    assert outcome == "created"
    assert lead.id is not None
    return lead.id


def test_leaving_the_unit_of_work_without_commit_rolls_back(container):
    with container.uow() as uow:
        lead_service.upsert_lead(uow, LeadInput(email="x@acme.io"), normalizer=container.identity, at=NOW)
    with container.uow() as uow:
        assert uow.leads.find_by_email("x@acme.io") is None


def test_times_come_back_as_aware_utc(container):
    lead_id = add_lead(container, "utc@acme.io")
    with container.uow() as uow:
        lead = uow.leads.get(lead_id)
        history = uow.leads.history(lead_id)
    assert lead is not None
    assert lead.created_at == NOW
    assert history[0].at == NOW
    assert lead.created_at.utcoffset() is not None


def test_two_concurrent_transitions_one_wins_the_other_conflicts_and_changes_nothing(container):
    lead_id = add_lead(container, "race@acme.io")
    request = TransitionRequest("promote_mql", reason="manual", note="first")
    other = TransitionRequest("disqualify", reason="not_icp", note="second")
    with container.uow() as first, container.uow() as second:
        a = first.leads.get(lead_id)
        b = second.leads.get(lead_id)
        assert a is not None
        assert b is not None
        lead_service.transition_lead(first, lead_id, request, actor=BUILTIN_ADMIN, at=NOW)
        first.commit()
        with pytest.raises(ConcurrencyConflict):
            lead_service.transition_lead(
                second, lead_id, other, actor=BUILTIN_ADMIN, at=NOW, expected_version=b.version
            )
    with container.uow() as uow:
        lead = uow.leads.get(lead_id)
        history = uow.leads.history(lead_id)
    assert lead is not None
    assert (lead.stage.value, lead.status.value, lead.version) == ("mql", "open", 2)
    assert [h.action for h in history] == ["create", "promote_mql"]


def test_a_stale_write_is_refused_by_the_repository(container):
    lead_id = add_lead(container, "stale@acme.io")
    with container.uow() as uow:
        stale = uow.leads.get(lead_id)
    assert stale is not None
    with container.uow() as uow:
        fresh = uow.leads.get(lead_id)
        assert fresh is not None
        uow.leads.update(fresh)
        uow.commit()
    with container.uow() as uow, pytest.raises(ConcurrencyConflict):
        uow.leads.update(stale)


def test_migrations_match_the_models(container):
    with container.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), t.metadata)
    assert diff == []


def test_the_touches_index_keeps_the_condition_attribution_queries_write(container):
    """The partial index's condition, as the migrations left it, is the text ``touch_filter`` writes, and
    SQLite answers a lead's touches from that index alone (the attribution report's read, ADR 18)."""
    with container.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            stored = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_activities_touches'")
            ).scalar_one()
            assert stored.endswith(f"WHERE {t.TOUCH_FILTER}")
            plan = " ".join(
                str(r[-1])
                for r in conn.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT a.id, a.occurred_at, a.type, a.source, a.campaign, a.content "
                        f"FROM activities a WHERE a.lead_id = 1 AND {t.touch_filter('a')} AND a.source IS NOT NULL"
                    )
                )
            )
            assert "COVERING INDEX ix_activities_touches" in plan, plan
        else:
            stored = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_activities_touches'")
            ).scalar_one()
            assert stored.count("<>") == len(t.TOUCH_FILTER.split(" AND ")), stored
            assert "NOT IN" not in stored.upper(), stored
            assert "ALL (ARRAY" not in stored.upper(), stored


def test_init_refuses_a_database_newer_than_the_code(container):
    with container.engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        with pytest.raises(DatabaseTooNew):
            upgrade(container.engine)
    finally:
        with container.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_revisions_read_at_start_up_are_alembic_s(container):
    """Commands check the schema without loading alembic (start-up time): the scripts read as text give
    the same revisions, head and database revision as alembic gives."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(container.engine))
    downs = {r.revision: r.down_revision for r in script.walk_revisions()}
    assert {k: () if v is None else (v,) if isinstance(v, str) else tuple(v) for k, v in downs.items()} == (
        _revisions()
    )
    assert head_revision() == script.get_current_head()
    with container.engine.connect() as conn:
        assert current_revision(container.engine) == MigrationContext.configure(conn).get_current_revision()
    assert current_revision(container.engine) == head_revision()
    assert is_known_revision("0001")
    assert not is_known_revision("9999")


def test_revisions_are_read_in_either_quotes_and_merges_name_both_parents(tmp_path):
    (tmp_path / "0001_a.py").write_text('revision: str = "0001"\ndown_revision: str | None = None\n')
    (tmp_path / "0002_b.py").write_text("revision: str = '0002'\ndown_revision: str | None = '0001'\n")
    (tmp_path / "0003_c.py").write_text("revision = '0003'\ndown_revision = '0001'\n")
    (tmp_path / "0004_merge.py").write_text(
        "revision: str = '0004'\ndown_revision: str | Sequence[str] | None = ('0002', '0003')\n"
    )
    assert revisions_in(tmp_path) == {
        "0001": (),
        "0002": ("0001",),
        "0003": ("0001",),
        "0004": ("0002", "0003"),
    }
    (tmp_path / "0005_bad.py").write_text("down_revision = '0004'\n")
    with pytest.raises(RuntimeError, match=r"0005_bad\.py: a migration script without a revision"):
        revisions_in(tmp_path)


def test_a_database_without_a_schema_has_no_revision(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_builtin_activity_types_are_installed(container):
    with container.uow() as uow:
        types = uow.activities.known_types()
    assert {"webinar_attended", "content_download", "nps_response"} <= types
    assert len(types) == 22


def write_activities(path: Path, emails: list[str], per_lead: int) -> int:
    n = 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "type", "occurred_at", "source", "campaign", "content", "idempotency_key"])
        for i, email in enumerate(emails):
            for j in range(per_lead):
                w.writerow(
                    [
                        email,
                        "page_view",
                        f"2026-0{1 + j % 9}-1{j % 10}T10:{j % 60:02d}:00Z",
                        "organic_search",
                        "",
                        "",
                        f"k-{i}-{j}",
                    ]
                )
                n += 1
    return n


def table_count(url: str, table: t.Table) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    engine.dispose()
    return n


def test_an_import_killed_halfway_and_run_again_loses_nothing_and_doubles_nothing(db_url, tmp_path):
    leads = tmp_path / "leads.csv"
    emails = [f"p{i}@kill.io" for i in range(200)]
    leads.write_text("email\n" + "\n".join(emails) + "\n")
    assert run_process(db_url, "import", "leads", str(leads)).code == 0
    acts = tmp_path / "acts.csv"
    total = write_activities(acts, emails, 300)
    env = {**os.environ, "LEADSTAGE_IMPORT_BATCH_ROWS": "500"}
    proc = subprocess.Popen(
        [leadstage_bin(), "--db", db_url, "import", "activities", str(acts)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and table_count(db_url, t.activities) < 1000 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = table_count(db_url, t.activities)
    assert 0 < partial < total, "the import should have been killed halfway"
    again = run_process(
        db_url, "import", "activities", str(acts), "--json", env={"LEADSTAGE_IMPORT_BATCH_ROWS": "500"}
    )
    assert again.code == 0, again.err
    assert table_count(db_url, t.activities) == total
    assert again.json()["created"] == total - partial


def test_an_idempotency_key_is_unique_per_lead_and_a_merge_keeps_a_shared_event_once(container):
    """The same key on two leads is two events; stored again for the same lead it is nothing new; when the
    two leads turn out to be one person, the merge keeps the survivor's copy and moves the rest (ADR 22)."""
    keep, other = add_lead(container, "keep@example.com"), add_lead(container, "other@example.com")
    at = utc_text(NOW)

    def row(lead_id: int, key: str, source: str) -> tuple:
        return (lead_id, "page_view", at, f"crm|{key}", source, None, None, None)

    with container.uow() as uow:
        rows = [row(keep, "e-1", "kept"), row(other, "e-1", "moved away"), row(other, "e-2", "web")]
        assert uow.bulk.insert_activities(rows) == 3
        assert uow.bulk.insert_activities([row(keep, "e-1", "again"), row(other, "e-2", "again")]) == 0
        uow.commit()
    with container.uow() as uow:
        lead_service.merge_leads(uow, keep, other, actor=BUILTIN_ADMIN, at=NOW)
        uow.commit()
    with container.uow() as uow:
        stored = sorted((a.idempotency_key, a.source) for a in uow.activities.for_lead(keep))
    assert stored == [("crm|e-1", "kept"), ("crm|e-2", "web")]
