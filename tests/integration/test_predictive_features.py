"""Predictive features computed by the database (ADR 17), on SQLite and PostgreSQL: the activity aggregates
equal the one-by-one Python fold, the columns scoring reads equal the rows training reads, the sparse
matrix LightGBM predicts from equals the dense one, and scoring in several processes stores the same
scores as scoring here."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import create_engine, text, update

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.engine import normalize_url
from leadstage.adapters.ml import Encoder, SklearnLightGbmTrainer
from leadstage.domain.leads import PropertyType
from leadstage.domain.predictive import ColumnKind, LabelSpec
from leadstage.domain.times import utc_text
from leadstage.services import leads as lead_service
from leadstage.services import predictive
from leadstage.services.leads import LeadInput
from leadstage.services.ports import FeatureFrame
from tests.conftest import NOW

TYPES = ["page_view", "email_open", "webinar_attended", "content_download", "demo"]
SOURCES = [None, "", "ads", "Partner", "partner", "email", "odd\x1fsource", " spaced "]
CONTENTS = [None, "", "eBook: Playbook", "Webinar: Q3", "ebook: playbook"]


def _leads(container, n: int, *, prefix: str = "p") -> list[int]:
    ids = []
    with container.uow() as uow:
        for i in range(n):
            lead, _outcome, _ = lead_service.upsert_lead(
                uow, LeadInput(email=f"{prefix}{i}@features.io"), normalizer=container.identity, at=NOW
            )
            assert lead.id is not None
            ids.append(lead.id)
        uow.commit()
    return ids


def _activities(container, ids: list[int], rng: random.Random, count: int) -> None:
    rows = []
    for n in range(count):
        lead_id = rng.choice(ids[:-3])  # the last leads have no activities
        when = NOW - timedelta(days=rng.uniform(-20, 400), microseconds=rng.randint(0, 999_999))
        if n % 30 == 0:
            when = NOW - timedelta(days=2)  # several at one time
        if n % 97 == 0:
            when = datetime(1930, 1, 1, tzinfo=UTC)  # decayed to nothing
        rows.append(
            (
                lead_id,
                rng.choice(TYPES),
                utc_text(when),
                f"f-{n}",
                rng.choice(SOURCES),
                None,
                rng.choice(CONTENTS),
                None,
            )
        )
    with container.uow() as uow:
        assert uow.bulk.insert_activities(rows) == len(rows)
        uow.commit()


def _same(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for lead_id, e in expected.items():
        g = got[lead_id]
        assert (dict(g.by_type), dict(g.by_source), g.last, g.contents) == (
            dict(e.by_type),
            dict(e.by_source),
            e.last,
            e.contents,
        ), lead_id
        assert abs(g.decayed - e.decayed) <= 1e-9 * max(1.0, e.decayed), lead_id


@pytest.mark.parametrize("seed", [1, 2])
def test_activity_aggregates_in_sql_equal_the_python_fold(container, seed):
    rng = random.Random(seed)
    ids = _leads(container, 40)
    _activities(container, ids, rng, 1200)
    as_of = NOW - timedelta(days=1, seconds=17)  # some activities come after: never read
    snapshots = {i: NOW - timedelta(days=rng.uniform(0, 300)) for i in ids}
    some = ids[3:30:2]
    with container.uow() as uow:
        assert uow.scoring.groups_supported()
        for scope in ({}, {"lead_ids": some}, {"id_range": (ids[5], ids[25])}):
            expected = uow.predictive.activity_aggregates(as_of=as_of, in_sql=False, **scope)
            got = uow.predictive.activity_aggregates(as_of=as_of, in_sql=True, **scope)
            _same(got, expected)
        expected = uow.predictive.activity_aggregates(as_of=NOW, snapshots=snapshots, in_sql=False)
        got = uow.predictive.activity_aggregates(as_of=NOW, snapshots=snapshots, in_sql=True)
        _same(got, expected)
        # the table of snapshots is gone: the same call works again in the same transaction
        _same(uow.predictive.activity_aggregates(as_of=NOW, snapshots=snapshots, in_sql=True), expected)
    assert any("odd\x1fsource" in agg.by_source for agg in expected.values())  # the separator case ran
    assert not any("" in agg.by_source for agg in expected.values())


def test_feature_columns_equal_the_rows_training_reads(container):
    """Scoring reads only the features a model names, column by column; the values are those of the rows
    training reads (a property named like a field comes first; the field stands in where it is absent)."""
    rng = random.Random(5)
    ids = _leads(container, 30, prefix="c")
    _activities(container, ids, rng, 600)
    values = [1, 1.0, True, False, None, "1", "Select", " VP ", ["x"], {"y": 1}, 2.5, "ünï"]
    with container.uow() as uow:
        for lead_id in ids:
            props = {
                k: rng.choice(values) for k in ("Seniority", "Employees", "job title") if rng.random() < 0.7
            }
            if rng.random() < 0.3:
                props["odd: name"] = rng.choice(values)
            uow.connection.execute(update(t.leads).where(t.leads.c.id == lead_id).values(properties=props))
        uow.connection.execute(
            update(t.leads).where(t.leads.c.id.in_(ids[::2])).values(job_title="Buyer", first_source="ads")
        )
        uow.properties.save_definitions("lead", {"job title": PropertyType.STRING}, at=NOW)
        uow.commit()
    at = NOW - timedelta(hours=5)
    with container.uow() as uow:
        rows = uow.predictive.feature_rows(label_stage=None, snapshot_days=None, as_of=at, lead_ids=ids)
        names = sorted({*rows[0].fields, "Seniority", "Employees", "job title", "odd: name", "nobody has it"})
        assert any(n.startswith("activities from: ") for n in names)
        wanted = ids[::3] + ids[1:4]  # not contiguous, unordered, repeated
        got_ids, columns = uow.predictive.feature_columns(lead_ids=wanted, names=names, as_of=at)
        all_ids, all_columns = uow.predictive.feature_columns(lead_ids=ids, names=names, as_of=at)
    assert got_ids == sorted(set(wanted))
    assert all_ids == ids
    by_id = {r.lead_id: r for r in rows}
    for got, cols in ((got_ids, columns), (all_ids, all_columns)):
        for j, lead_id in enumerate(got):
            row = by_id[lead_id]
            for name in names:
                expected = row.properties[name] if name in row.properties else row.fields.get(name)
                if expected is None and name.startswith("activities"):
                    expected = 0  # (a lead without activities counts none of any kind)
                assert cols[name][j] == expected, (lead_id, name)
                assert type(cols[name][j]) is type(expected), (lead_id, name)


def test_the_sparse_tree_matrix_equals_the_dense_one():
    rng = np.random.default_rng(3)
    n = 600
    levels = [f"L{i}" for i in range(12)]
    columns = {
        "many": [rng.choice(levels) if rng.random() > 0.1 else None for _ in range(n)],
        "few": [rng.choice(["a", "b"]) if rng.random() > 0.3 else None for _ in range(n)],
        "count": [float(rng.integers(0, 4)) if rng.random() > 0.1 else None for _ in range(n)],
        "size": [float(rng.normal()) if rng.random() > 0.2 else None for _ in range(n)],
    }
    columns["many"][:30] = ["unseen"] * 30  # neither a kept level nor missing: "other"
    kinds = {
        "many": ColumnKind.CATEGORICAL,
        "few": ColumnKind.CATEGORICAL,
        "count": ColumnKind.NUMERIC,
        "size": ColumnKind.NUMERIC,
    }
    frame = FeatureFrame(names=list(columns), kinds=kinds, columns=columns, n_rows=n)
    encoder = Encoder.fit(frame, np.arange(n), None)
    assert "count" in encoder.spikes
    dense = encoder.tree_matrix(frame)[0]
    sparse = encoder.tree_sparse(frame)
    assert sparse.shape == dense.shape
    kept = (np.abs(dense) > 1e-35) | np.isnan(dense)  # LightGBM leaves out zeros of a dense row too
    np.testing.assert_array_equal(sparse.toarray(), np.where(kept, dense, 0.0))
    assert np.isnan(dense).any()


def test_scoring_in_processes_stores_what_scoring_here_stores(tmp_path, sqlite_container):
    """The runner the CLI uses for many leads forks workers; the scores and deciles are the same."""
    from leadstage.cli.model import batch_runner

    c = sqlite_container
    rng = random.Random(11)
    ids = _leads(c, 260, prefix="w")
    _activities(c, ids, rng, 2500)
    with c.uow() as uow:
        for lead_id in ids:
            props = {"Channel": rng.choice(["Webinar", "Partner", "Ads"]), "Won": rng.choice(["yes", "no"])}
            uow.connection.execute(update(t.leads).where(t.leads.c.id == lead_id).values(properties=props))
        uow.commit()
    trainer = SklearnLightGbmTrainer()
    request = predictive.TrainRequest(label=LabelSpec(property="Won", positive="yes"), cv=2, min_positives=10)
    model = predictive.train_model(c.uow, trainer, request, actor="admin", at=NOW)
    predictive.activate_model(c.writer, trainer, model["model_id"], at=NOW)

    def stored() -> list[tuple[int, float, int]]:
        with c.uow() as uow:
            return [
                tuple(r)
                for r in uow.connection.exec_driver_sql(
                    "SELECT id, predictive_score, predictive_decile FROM leads ORDER BY id"
                )
            ]

    here = stored()
    assert all(score is not None for _i, score, _d in here)
    with c.uow() as uow:
        uow.connection.exec_driver_sql("UPDATE leads SET predictive_score = NULL, predictive_decile = NULL")
        uow.commit()
    later = NOW  # the same time: the same features
    scored = predictive.score_leads(
        c.uow, trainer, at=later, changed_only=False, runner=batch_runner(c, workers=2), batch_size=70
    )
    assert scored == len(ids)
    assert stored() == here
    assert json.dumps(here)  # plain values


def test_an_mql_criterion_may_read_the_predictive_decile(capsys, db_url, tmp_path):
    """Issue 6: the predictive score can be used in MQL criteria. Leads in the top decile are promoted
    once the model scores them (exactly once per cycle), with the criterion as the reason."""
    from leadstage.adapters.scoring_yaml import default_model_source
    from tests.cli_runner import run
    from tests.integration.test_predictive import load, write_leads

    load(capsys, db_url, write_leads(tmp_path / "leads.csv", 400))
    source = default_model_source().replace(
        "    - {fit: B, engagement: 2}", "    - {fit: B, engagement: 2}\n    - {predictive_decile: 1}"
    )
    assert "predictive_decile" in source
    (tmp_path / "model.yaml").write_text(source, encoding="utf-8")
    assert run(capsys, db_url, "score", "activate", str(tmp_path / "model.yaml")).code == 0
    trained = run(
        capsys, db_url, "model", "train", "--label", "Deal won", "--positive", "yes", "--cv", "3", "--json"
    )
    assert trained.code == 0, trained.err
    model_id = str(trained.json()["model_id"])
    shown = run(capsys, db_url, "model", "activate", model_id, "--preview", "--json")  # issue 9 section 7
    assert shown.code == 0, shown.err
    assert shown.json()["activated"] is False
    preview = shown.json()["preview"]
    assert preview["reads_predictive"] is True
    assert preview["routing"] is False  # no routing rules: the new MQLs would wait unassigned
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:  # the preview stored nothing
        assert (
            conn.execute(text("SELECT count(*) FROM leads WHERE predictive_score IS NOT NULL")).scalar() == 0
        )
        assert conn.execute(text("SELECT count(*) FROM leads WHERE stage = 'mql'")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM predictive_models WHERE active = true")).scalar() == 0
    engine.dispose()
    worded = run(capsys, db_url, "model", "activate", model_id, "--preview")
    assert f"activating it promotes {preview['would_promote']} leads to MQL now" in worded.err
    activated = run(capsys, db_url, "model", "activate", model_id, "--json")
    assert activated.code == 0, activated.err
    promoted = activated.json()["promoted"]
    assert promoted == preview["would_promote"]  # the preview said what activation did
    assert activated.json()["preview"] == preview
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        top = conn.execute(
            text("SELECT stage, count(*) FROM leads WHERE predictive_decile = 1 GROUP BY stage")
        ).all()
        reasons = conn.execute(text("SELECT data FROM lead_history WHERE action = 'promote_mql'")).all()
    engine.dispose()
    assert promoted > 0
    assert dict(top) == {"mql": promoted}  # every lead of the top decile, none other
    assert len(reasons) == promoted
    assert all("predictive decile at most 1" in str(r[0]) for r in reasons)
    again = run(capsys, db_url, "model", "score", "--all", "--json")
    assert again.code == 0, again.err
    assert again.json() == {"scored": 400, "promoted": 0}


def test_previewing_a_predictive_model_the_scoring_model_does_not_read_promotes_nothing(
    capsys, db_url, tmp_path
):
    """With MQL criteria that ignore the predictive score, the preview says so, and activating promotes
    no lead through it."""
    from tests.cli_runner import run
    from tests.integration.test_predictive import load, write_leads

    load(capsys, db_url, write_leads(tmp_path / "leads.csv", 300))
    trained = run(
        capsys, db_url, "model", "train", "--label", "Deal won", "--positive", "yes", "--cv", "2", "--json"
    )
    assert trained.code == 0, trained.err
    model_id = str(trained.json()["model_id"])
    shown = run(capsys, db_url, "model", "activate", model_id, "--preview", "--json").json()["preview"]
    assert shown["reads_predictive"] is False
    assert shown["would_promote"] == 0
    worded = run(capsys, db_url, "model", "activate", model_id, "--preview")
    assert "MQL criteria do not read the predictive score" in worded.err
    unknown = run(capsys, db_url, "model", "activate", "999", "--preview")
    assert unknown.code == 2
    assert "no predictive model with id 999" in unknown.err
    activated = run(capsys, db_url, "model", "activate", model_id, "--json")
    assert activated.code == 0, activated.err
    assert activated.json()["promoted"] == 0


ROUTE_BY_PREDICTION = """\
name: by prediction
teams:
  closers:
    manager: max
    timezone: UTC
    hours: {mon-sun: "00:00-24:00"}
    first_response: 4h
    members: {cleo: {}}
  nurturers:
    manager: max
    timezone: UTC
    hours: {mon-sun: "00:00-24:00"}
    first_response: 24h
    members: {nat: {}}
rules:
  - {name: top decile to closers, filter: "predictive_decile <= 1", team: closers}
  - {name: everyone else, team: nurturers}
"""


def test_routing_rules_may_read_the_predictive_score(capsys, db_url, tmp_path):
    """Issue 6: the predictive score can be used in routing. MQLs of the top decile go to the closers'
    team by a filter on it; the others to the rest."""
    from leadstage.adapters.scoring_yaml import default_model_source
    from tests.cli_runner import run
    from tests.integration.test_predictive import load, write_leads

    load(capsys, db_url, write_leads(tmp_path / "leads.csv", 400))
    for name, role in (("max", "sales_manager"), ("cleo", "sales_rep"), ("nat", "sales_rep")):
        assert run(capsys, db_url, "users", "add", name, "--role", role).code == 0
    (tmp_path / "routing.yaml").write_text(ROUTE_BY_PREDICTION, encoding="utf-8")
    assert run(capsys, db_url, "routing", "set", str(tmp_path / "routing.yaml")).code == 0
    source = default_model_source().replace(
        "    - {fit: B, engagement: 2}", "    - {fit: B, engagement: 2}\n    - {predictive_decile: 2}"
    )
    (tmp_path / "model.yaml").write_text(source, encoding="utf-8")
    assert run(capsys, db_url, "score", "activate", str(tmp_path / "model.yaml")).code == 0
    trained = run(
        capsys, db_url, "model", "train", "--label", "Deal won", "--positive", "yes", "--cv", "2", "--json"
    )
    assert trained.code == 0, trained.err
    activated = run(capsys, db_url, "model", "activate", str(trained.json()["model_id"]), "--json").json()
    assert activated["promoted"] > 0
    assert activated["routed"] == activated["promoted"]  # promoted, then routed by the predictive rule
    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        owners = conn.execute(
            text(
                "SELECT l.predictive_decile, u.username, count(*) FROM leads l JOIN users u ON u.id = l.owner_id "
                "WHERE l.stage = 'mql' GROUP BY l.predictive_decile, u.username"
            )
        ).all()
    engine.dispose()
    by_decile = {(d, who): n for d, who, n in owners}
    assert {who for (d, who) in by_decile if d == 1} == {"cleo"}
    assert {who for (d, who) in by_decile if d == 2} == {"nat"}
