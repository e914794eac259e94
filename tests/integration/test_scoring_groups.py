"""Batch scoring reads activities as SQL aggregates (GroupPlan): on both databases the per-rule states it
builds equal the one-by-one fold of the same activities, whatever the filters, decays and property values."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from leadstage.adapters.scoring_yaml import load_yaml
from leadstage.domain.scoring import fold_all, parse_model
from leadstage.domain.times import utc_text
from leadstage.services import leads as lead_service
from leadstage.services import scoring
from leadstage.services.leads import LeadInput
from tests.builders import assert_same_states
from tests.conftest import NOW

MODEL = """name: groups
fit:
  rules:
    - {name: vp, property: Seniority, op: equals, value: VP, points: 30}
engagement:
  groups:
    web: {cap: 25}
  rules:
    - {name: pricing, activity: page_view, where: {page: {contains: /pricing}}, points: 8, group: web,
       decay: {half_life_days: 21}}
    - {name: pages, activity: page_view, points: 1, group: web, decay: {half_life_days: 3}}
    - {name: paid page, activity: page_view, where: {source: {in: [ads, Partner]}}, points: 2,
       decay: {half_life_days: 10}}
    - {name: numbered, activity: page_view, where: {n: {equals: 1}}, points: 0.7, decay: {half_life_days: 5}}
    - {name: flagged, activity: email_click, where: {flag: {equals: "true"}}, points: 3, decay: none}
    - {name: clicks, activity: email_click, points: 0.1, decay: none}
    - {name: opens, activity: email_open, points: 0.5, decay: {half_life_days: 1}}
    - {name: trial, activity: free_trial, points: 20, repeat: false, decay: {half_life_days: 60}}
    - {name: form, activity: form_submit, points: 5, repeat: false, decay: none}
    - {name: demo, activity: demo, points: 30, repeat: false, qualifies: true, decay: {window_days: 30}}
    - {name: events, activity: event_attended, points: 5, decay: {window_days: 14}}
    - {name: dotted, activity: chat, where: {"a.b": {equals: x}}, points: 4, decay: {half_life_days: 7}}
    - {name: unsubscribed, activity: webinar_registered, points: -15, repeat: false}
grades:
  fit: {A: {min: 40}, B: {min: 25, max: 40}, C: {min: 10, max: 25}, D: {max: 10}}
  engagement: {1: {min: 30}, 2: {min: 15, max: 30}, 3: {min: 5, max: 15}, 4: {max: 5}}
mql:
  when:
    - {fit: B, engagement: 2}
"""

TYPES = [
    "page_view",
    "email_click",
    "email_open",
    "free_trial",
    "form_submit",
    "demo",
    "event_attended",
    "chat",
    "webinar_registered",
    "ad_click",
]
PAGES = ["/pricing", "/Pricing/plans", "/", "/blog", " /pricing "]
ODD_VALUES = [1, 1.0, True, False, None, "1", "true", 10**22, ["x"], {"y": 1}, 2.5, "ünï"]


def _props(rng: random.Random) -> str | None:
    props: dict[str, object] = {}
    if rng.random() < 0.8:
        props["page"] = rng.choice(PAGES)
    if rng.random() < 0.5:
        props["n"] = rng.choice(ODD_VALUES)
    if rng.random() < 0.5:
        props["flag"] = rng.choice(ODD_VALUES)
    if rng.random() < 0.3:
        props["a.b"] = rng.choice(["x", "X ", "y"])
    if not props and rng.random() < 0.5:
        return None
    return json.dumps(props)


@pytest.mark.parametrize("seed", [1, 2])
def test_aggregated_states_equal_the_one_by_one_fold(container, seed):
    rng = random.Random(seed)
    data, locate = load_yaml(MODEL, source="groups.yaml")
    model = parse_model(data, locate=locate)
    ids = []
    with container.uow() as uow:
        for i in range(40):
            lead, _outcome, _ = lead_service.upsert_lead(
                uow, LeadInput(email=f"l{i}@groups.io"), normalizer=container.identity, at=NOW
            )
            assert lead.id is not None
            ids.append(lead.id)
        rows = []
        for n in range(1500):
            lead_id = rng.choice(ids[:-3])  # the last leads have no activities
            when = NOW - timedelta(days=rng.uniform(-5, 400), microseconds=rng.randint(0, 999_999))
            if n % 40 == 0:
                when = NOW - timedelta(days=3)  # hits at one same time (window rules keep each)
            if lead_id == ids[0] and n % 7 == 0:
                when = datetime(1975, 3, 1, tzinfo=UTC)  # far back: vanishes from the sums beside later ones
            if lead_id == ids[1]:  # nothing but far back: too far for the sums, folded one by one
                when = datetime(1975, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**6))
            rows.append(
                (
                    lead_id,
                    rng.choice(TYPES),
                    utc_text(when),
                    f"k{seed}-{n}",
                    rng.choice([None, "ads", "Partner", "partner", "email"]),
                    rng.choice([None, "spring"]),
                    None,
                    _props(rng),
                )
            )
        assert uow.bulk.insert_activities(rows) == len(rows)
        uow.commit()
    ref = NOW.timestamp()
    types = sorted({r.activity_type for r in model.engagement_rules})
    with container.uow() as uow:
        assert uow.scoring.groups_supported()
        id_range = (min(ids), max(ids))
        grouped, count = scoring._range_states(uow, model, id_range, ref)
        acts = scoring.activity_facts(
            uow.scoring.activities_of(id_range=id_range, types=types, with_properties=True),
            scoring.property_filtered_types(model),
        )
    assert model.group_plan.raw_types == ("chat",)
    assert model.group_plan.timed == {"demo", "event_attended"}
    assert count == sum(len(v) for v in acts.values())
    assert set(grouped) == set(acts)
    for lead_id, lead_acts in acts.items():
        assert_same_states(grouped[lead_id], fold_all(model, lead_acts), where=lead_id)


FIT_MODEL = """name: fit facts
fit:
  rules:
    - {name: vp, property: Seniority, op: in, value: [VP, C-level], points: 30}
    - {name: size, property: Employees, op: range, min: 50, max: 5000, points: 20}
    - {name: flagged, property: Partner, op: equals, value: "true", points: 5}
    - {name: one, property: Partner, op: equals, value: 1, points: 7}
    - {name: no phone, field: phone, op: missing, points: -5}
  exclusions:
    - {name: students, property: Seniority, op: equals, value: Student, reason: student_or_job_seeker}
engagement:
  rules:
    - {name: clicks, activity: email_click, points: 1}
grades:
  fit: {A: {min: 40}, B: {min: 25, max: 40}, C: {min: 10, max: 25}, D: {max: 10}}
  engagement: {1: {min: 30}, 2: {min: 15, max: 30}, 3: {min: 5, max: 15}, 4: {max: 5}}
mql:
  when:
    - {fit: B, engagement: 2}
"""


def test_facts_read_property_by_property_score_like_the_whole_object(container):
    """Batch scoring reads only the properties fit rules name, out of the JSON in SQL; the fit is the
    same as from the whole object, whatever the JSON types."""
    from sqlalchemy import update

    from leadstage.adapters.db import tables as t
    from leadstage.domain.scoring import evaluate_fit

    data, locate = load_yaml(FIT_MODEL, source="fit.yaml")
    model = parse_model(data, locate=locate)
    rng = random.Random(3)
    values = [*ODD_VALUES, "VP", " vp", "Student", 120, 50.0, "4999", -0.0, 0.0, 10**30]
    with container.uow() as uow:
        ids = []
        for i in range(60):
            lead, _outcome, _ = lead_service.upsert_lead(
                uow, LeadInput(email=f"f{i}@facts.io"), normalizer=container.identity, at=NOW
            )
            assert lead.id is not None
            ids.append(lead.id)
            props = {
                k: rng.choice(values)
                for k in ("Seniority", "Employees", "Partner", "Other")
                if rng.random() < 0.8
            }
            uow.connection.execute(update(t.leads).where(t.leads.c.id == lead.id).values(properties=props))
        uow.commit()
    with container.uow() as uow:
        whole = uow.scoring.lead_rows(ids=ids)
        picked = uow.scoring.lead_rows(ids=ids, facts=model.fit_subjects, with_state=False)
    assert [r.lead_id for r in whole] == [r.lead_id for r in picked]
    for a, b in zip(whole, picked, strict=True):
        names = ("Seniority", "Employees", "Partner")
        expected = [a.facts["properties"].get(k) for k in names]
        got = [b.facts["properties"].get(k) for k in names]
        assert got == expected
        assert [type(v) for v in got] == [type(v) for v in expected]
        assert "Other" not in b.facts["properties"]
        assert evaluate_fit(model, b.facts) == evaluate_fit(model, a.facts)
        assert b.engagement_state is None
